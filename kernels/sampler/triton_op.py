"""The Triton sampler as a `torch.library` custom op, and its entry point `filterbank_sample_triton`.

Host side (torch, differentiable, tiny tensors): the band of every filter row, its first position
and its weights, built by `s2d_kernels.sampler.bands` as for the torch path (the temporal band
clamped into each video's valid frames: 13 taps for the Gaussian filter, 3 for the linear one).
Device side: the kernels of `triton_sampler.py`, run by `s2d::triton_sample` /
`s2d::triton_sample_backward` (fake impls, autograd, FLOP formulas). The kernel module is
imported inside the op bodies, so registering the ops never imports Triton.

FLOPs are 2 × multiply-adds: the temporal band of KT frames per output frame (an upper bound:
over the full frame), 13 taps per row for the spatial steps.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch.utils.flop_counter import register_flop_formula

from s2d_kernels.sampler.bands import BAND_TAPS, LINEAR_TAPS, spatial_bands, temporal_band
from s2d_kernels.sampler.normalize import uint8_affine
from s2d_kernels.sampler.params import RawSampling, check_inputs, volume_shape

__all__ = ["filterbank_sample_triton", "triton_sample_op"]

Tensor = torch.Tensor


@torch.library.custom_op("s2d::triton_sample", mutates_args=())
def triton_sample(tw: Tensor, wy: Tensor, wx: Tensor, frames: Tensor, num_frames: Tensor, ts: Tensor,
                  sy: Tensor, sx: Tensor, scale: Optional[Tensor], shift: Optional[Tensor], layout: str) -> Tensor:
    """V̂ from the temporal and spatial bands and the frames, with the Triton forward kernel."""
    from s2d_kernels.sampler.triton_sampler import triton_forward

    return triton_forward(tw, wy, wx, frames, num_frames, ts, sy, sx, scale, shift, layout)


@triton_sample.register_fake
def _(tw, wy, wx, frames, num_frames, ts, sy, sx, scale, shift, layout):
    return tw.new_empty(volume_shape(frames.shape[0], tw.shape[1], frames.shape[2], sy.shape[1], layout), dtype=torch.float32)


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


def filterbank_sample_triton(frames: torch.Tensor, num_frames: torch.Tensor, params: RawSampling,
                             out_size: int, *, mean: Sequence[float] | None = None,
                             std: Sequence[float] | None = None, temporal: str = "gaussian",
                             layout: str = "btchw", sigma: float = 1.0) -> torch.Tensor:
    """Detail volume V̂ with the Triton kernels; same contract as `filterbank_sample`.

    `frames` uint8 (normalised on load with `mean`/`std`), float32, float16 or bfloat16, on a CUDA
    device (or the CPU under `TRITON_INTERPRET=1`). Returns float32 in the requested layout.
    """
    check_inputs(frames, num_frames, params, out_size, layout=layout, temporal=temporal, sigma=sigma)
    if frames.dtype not in (torch.uint8, torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"the Triton sampler reads uint8, float32, float16 or bfloat16 frames, got {frames.dtype}")
    B, T, C, H, W = frames.shape
    T_d = params.out_frames
    dev = frames.device
    scale = shift = None
    if frames.dtype == torch.uint8:
        scale, shift = uint8_affine(mean, std, C, dev)
    params = RawSampling(*(p.to(torch.float32) for p in params.as_tuple()))
    num_frames = num_frames.to(dev)
    taps = BAND_TAPS if temporal == "gaussian" else LINEAR_TAPS
    ts, tw = temporal_band(num_frames, params, T, temporal, taps)
    sy, wy, sx, wx = spatial_bands(params, H, W, out_size, sigma)
    if frames.requires_grad and not frames.is_contiguous():
        frames = frames.contiguous()  # the frames gradient is accumulated with the frames' strides
    i32 = torch.int32
    return triton_sample_op(tw.reshape(B, T_d, -1).contiguous(), wy.contiguous(), wx.contiguous(), frames,
                            num_frames.to(i32).contiguous(), ts.to(i32).reshape(-1).contiguous(),
                            sy.to(i32).contiguous(), sx.to(i32).contiguous(), scale, shift, layout)
