"""The kernels as `torch.library` custom ops: fake (meta) impls, autograd and FLOP formulas.

Registered ops (namespace `s2d`):

- `banded_sample` / `banded_sample_backward`: the fast torch sampler's contraction;
- `triton_sample` / `triton_sample_backward`: the Triton sampler kernels;
- `fusion_gemm`: the Triton fusion GEMM with its bias + ReLU epilogue (backward in torch ops).

Each op is opaque to torch.compile (one graph node with a fake impl for shapes), so
`torch.compile(fullgraph=True)` traces the public functions without graph breaks, and each has a
`register_flop_formula` so `FlopCounterMode` counts what it computes instead of nothing. The
Triton modules are imported inside the op bodies, so registering the ops never imports Triton.

FLOP counts are 2 × multiply-adds of the work each op performs: the temporal GEMMs over all T
input frames, 13 taps per row for the banded spatial steps (their adjoints touch the same band
entries), and for the Triton sampler its temporal band of KT frames per output frame.
"""
from typing import Optional

import torch
from torch.utils.flop_counter import register_flop_formula

from s2d_kernels.sampler.banded import banded_backward, banded_forward

__all__ = ["banded_sample_op", "fusion_gemm_op", "triton_sample_op"]

Tensor = torch.Tensor


def _out_shape(frames: Tensor, ft_or_tw: Tensor, sy: Tensor, layout: str) -> tuple[int, ...]:
    B, _, C = frames.shape[:3]
    T_d, S = ft_or_tw.shape[1], sy.shape[1]
    return (B, T_d, C, S, S) if layout == "btchw" else (B, C, T_d, S, S)


# --- fast torch sampler -------------------------------------------------------------------------

@torch.library.custom_op("s2d::banded_sample", mutates_args=())
def banded_sample(ft: Tensor, wy: Tensor, wx: Tensor, frames: Tensor, sy: Tensor, sx: Tensor,
                  scale: Optional[Tensor], shift: Optional[Tensor], layout: str) -> Tensor:
    """V̂ from the temporal filterbank, the spatial band weights/starts and the frames."""
    return banded_forward(ft, wy, wx, frames, sy, sx, scale, shift, layout)


@banded_sample.register_fake
def _(ft, wy, wx, frames, sy, sx, scale, shift, layout):
    return ft.new_empty(_out_shape(frames, ft, sy, layout))


@torch.library.custom_op("s2d::banded_sample_backward", mutates_args=())
def banded_sample_backward(grad: Tensor, ft: Tensor, wy: Tensor, wx: Tensor, frames: Tensor, sy: Tensor,
                           sx: Tensor, scale: Optional[Tensor], shift: Optional[Tensor], layout: str,
                           need_x: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients for `ft`, `wy`, `wx` and (empty unless `need_x`) the frames."""
    return banded_backward(grad, ft, wy, wx, frames, sy, sx, scale, shift, layout, need_x)


@banded_sample_backward.register_fake
def _(grad, ft, wy, wx, frames, sy, sx, scale, shift, layout, need_x):
    g_x = frames.new_empty(frames.shape if need_x else (0,))
    return torch.empty_like(ft), torch.empty_like(wy), torch.empty_like(wx), g_x


def _banded_setup(ctx, inputs, output):
    ft, wy, wx, frames, sy, sx, scale, shift, layout = inputs
    ctx.save_for_backward(ft, wy, wx, frames, sy, sx, scale, shift)
    ctx.layout = layout


def _banded_grad(ctx, grad):
    ft, wy, wx, frames, sy, sx, scale, shift = ctx.saved_tensors
    need_x = ctx.needs_input_grad[3]
    g_ft, g_wy, g_wx, g_x = torch.ops.s2d.banded_sample_backward(grad, ft, wy, wx, frames, sy, sx, scale, shift,
                                                                 ctx.layout, need_x)
    return g_ft, g_wy, g_wx, (g_x if need_x else None), None, None, None, None, None


banded_sample.register_autograd(_banded_grad, setup_context=_banded_setup)


def _banded_macs(ft, wy, frames, need_x: bool = False, backward: bool = False) -> int:
    B, T_d, T = ft
    N, S, K = wy
    _, _, C, H, W = frames
    temporal = B * T_d * T * C * H * W
    height = N * C * S * K * W
    width = N * C * S * S * K
    if not backward:
        return temporal + height + width
    # Recompute (temporal + height), tap gradients and adjoints of both bands, the F_t GEMM,
    # and the frames GEMM when asked for.
    return temporal + height + 2 * width + 2 * height + temporal + (temporal if need_x else 0)


@register_flop_formula(torch.ops.s2d.banded_sample)
def _banded_flops(ft, wy, wx, frames, sy, sx, scale, shift, layout, *args, out_shape=None, **kwargs) -> int:
    return 2 * _banded_macs(ft, wy, frames)


@register_flop_formula(torch.ops.s2d.banded_sample_backward)
def _banded_bwd_flops(grad, ft, wy, wx, frames, sy, sx, scale, shift, layout, need_x, *args, out_shape=None,
                      **kwargs) -> int:
    return 2 * _banded_macs(ft, wy, frames, need_x, backward=True)


def banded_sample_op(ft: Tensor, wy: Tensor, wx: Tensor, frames: Tensor, sy: Tensor, sx: Tensor,
                     scale: Optional[Tensor], shift: Optional[Tensor], layout: str) -> Tensor:
    """Call `s2d::banded_sample` (differentiable w.r.t. `ft`, `wy`, `wx` and float frames)."""
    return torch.ops.s2d.banded_sample(ft, wy, wx, frames, sy, sx, scale, shift, layout)


# --- Triton sampler -----------------------------------------------------------------------------

@torch.library.custom_op("s2d::triton_sample", mutates_args=())
def triton_sample(tw: Tensor, wy: Tensor, wx: Tensor, frames: Tensor, num_frames: Tensor, ts: Tensor,
                  sy: Tensor, sx: Tensor, scale: Optional[Tensor], shift: Optional[Tensor], layout: str) -> Tensor:
    """V̂ from the temporal and spatial bands and the frames, with the Triton forward kernel."""
    from s2d_kernels.sampler.triton_sampler import triton_forward

    return triton_forward(tw, wy, wx, frames, num_frames, ts, sy, sx, scale, shift, layout)


@triton_sample.register_fake
def _(tw, wy, wx, frames, num_frames, ts, sy, sx, scale, shift, layout):
    return tw.new_empty(_out_shape(frames, tw, sy, layout), dtype=torch.float32)


@torch.library.custom_op("s2d::triton_sample_backward", mutates_args=())
def triton_sample_backward(grad: Tensor, tw: Tensor, wy: Tensor, wx: Tensor, frames: Tensor, num_frames: Tensor,
                           ts: Tensor, sy: Tensor, sx: Tensor, scale: Optional[Tensor], shift: Optional[Tensor],
                           layout: str, need_x: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients for the band weights and (empty unless `need_x`) the frames, with the Triton kernel."""
    from s2d_kernels.sampler.triton_sampler import triton_backward

    return triton_backward(grad, tw, wy, wx, frames, num_frames, ts, sy, sx, scale, shift, layout, need_x)


@triton_sample_backward.register_fake
def _(grad, tw, wy, wx, frames, num_frames, ts, sy, sx, scale, shift, layout, need_x):
    g_x = frames.new_empty(frames.shape if need_x else (0,))
    return torch.empty_like(tw), torch.empty_like(wy), torch.empty_like(wx), g_x


def _triton_setup(ctx, inputs, output):
    tw, wy, wx, frames, num_frames, ts, sy, sx, scale, shift, layout = inputs
    ctx.save_for_backward(tw, wy, wx, frames, num_frames, ts, sy, sx, scale, shift)
    ctx.layout = layout


def _triton_grad(ctx, grad):
    tw, wy, wx, frames, num_frames, ts, sy, sx, scale, shift = ctx.saved_tensors
    need_x = ctx.needs_input_grad[3]
    g_tw, g_wy, g_wx, g_x = torch.ops.s2d.triton_sample_backward(grad, tw, wy, wx, frames, num_frames, ts, sy, sx,
                                                                 scale, shift, ctx.layout, need_x)
    return g_tw, g_wy, g_wx, (g_x if need_x else None), None, None, None, None, None, None, None


triton_sample.register_autograd(_triton_grad, setup_context=_triton_setup)


def _triton_macs(tw, wy, frames, need_x: bool = False, backward: bool = False) -> int:
    B, T_d, KT = tw
    N, S, K = wy
    _, _, C, H, W = frames
    temporal = N * C * KT * H * W  # upper bound: each output frame's band over the full frame
    height = N * C * S * K * W
    width = N * C * S * S * K
    if not backward:
        return temporal + height + width
    return 2 * temporal + 3 * height + 3 * width + (temporal if need_x else 0)


@register_flop_formula(torch.ops.s2d.triton_sample)
def _triton_flops(tw, wy, wx, frames, num_frames, ts, sy, sx, scale, shift, layout, *args, out_shape=None,
                  **kwargs) -> int:
    return 2 * _triton_macs(tw, wy, frames)


@register_flop_formula(torch.ops.s2d.triton_sample_backward)
def _triton_bwd_flops(grad, tw, wy, wx, frames, num_frames, ts, sy, sx, scale, shift, layout, need_x, *args,
                      out_shape=None, **kwargs) -> int:
    return 2 * _triton_macs(tw, wy, frames, need_x, backward=True)


def triton_sample_op(tw: Tensor, wy: Tensor, wx: Tensor, frames: Tensor, num_frames: Tensor, ts: Tensor,
                     sy: Tensor, sx: Tensor, scale: Optional[Tensor], shift: Optional[Tensor], layout: str) -> Tensor:
    """Call `s2d::triton_sample` (differentiable w.r.t. `tw`, `wy`, `wx` and float frames)."""
    return torch.ops.s2d.triton_sample(tw, wy, wx, frames, num_frames, ts, sy, sx, scale, shift, layout)


# --- Triton fusion GEMM -------------------------------------------------------------------------

@torch.library.custom_op("s2d::fusion_gemm", mutates_args=())
def fusion_gemm(x3: Tensor, wx: Tensor, bias: Tensor, frames_per_bias: int, allow_tf32: bool) -> Tensor:
    """`ReLU(wx @ x3[g] + bias[g // frames_per_bias])`, x3 `[G, C, P]` → `[G, C_out, P]`."""
    from s2d_kernels.fusion.triton_fusion import fusion_forward

    return fusion_forward(x3, wx, bias, frames_per_bias, allow_tf32)


@fusion_gemm.register_fake
def _(x3, wx, bias, frames_per_bias, allow_tf32):
    return x3.new_empty(x3.shape[0], wx.shape[0], x3.shape[2])


def _fusion_setup(ctx, inputs, output):
    x3, wx, bias, frames_per_bias, _ = inputs
    ctx.save_for_backward(x3, wx, output)
    ctx.frames_per_bias = frames_per_bias


def _fusion_grad(ctx, grad):
    from s2d_kernels.fusion.triton_fusion import fusion_backward

    x3, wx, y = ctx.saved_tensors
    g_x, g_w, g_b = fusion_backward(grad, x3, wx, y, ctx.frames_per_bias)
    return g_x, g_w, g_b, None, None


fusion_gemm.register_autograd(_fusion_grad, setup_context=_fusion_setup)


@register_flop_formula(torch.ops.s2d.fusion_gemm)
def _fusion_flops(x3, wx, bias, frames_per_bias, allow_tf32, *args, out_shape=None, **kwargs) -> int:
    G, C, P = x3
    return 2 * G * wx[0] * C * P


def fusion_gemm_op(x3: Tensor, wx: Tensor, bias: Tensor, frames_per_bias: int, allow_tf32: bool = False) -> Tensor:
    """Call `s2d::fusion_gemm` (differentiable w.r.t. `x3`, `wx` and `bias`)."""
    return torch.ops.s2d.fusion_gemm(x3, wx, bias, frames_per_bias, allow_tf32)
