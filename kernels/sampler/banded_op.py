"""The fast torch sampler as a `torch.library` custom op, and its entry point `filterbank_sample_banded`.

`s2d::banded_sample` / `s2d::banded_sample_backward` wrap the contraction of `banded.py` with a
fake (meta) impl, autograd and a FLOP formula, so `torch.compile(fullgraph=True)` traces the
sampler as one graph node and `FlopCounterMode` counts what it computes. FLOPs are 2 × the
multiply-adds performed: the temporal GEMM over all T input frames of the pixels read, 13 taps
per row for the banded spatial steps (their adjoints touch the same band entries).

The entry point reads only the box of rows and columns the spatial bands cover (`crop_plan`):
pixels outside it have weight 0 in every filter, so V̂ and its gradients are unchanged while the
temporal contraction, the bulk of the work on a small window, shrinks with the window.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch.utils.flop_counter import register_flop_formula

from s2d_kernels.sampler.banded import banded_backward, banded_forward
from s2d_kernels.sampler.bands import flush_subnormal, spatial_bands, temporal_band
from s2d_kernels.sampler.normalize import uint8_affine
from s2d_kernels.sampler.params import RawSampling, check_inputs, volume_shape

__all__ = ["banded_sample_op", "crop_plan", "filterbank_sample_banded"]

Tensor = torch.Tensor


@torch.library.custom_op("s2d::banded_sample", mutates_args=())
def banded_sample(ft: Tensor, wy: Tensor, wx: Tensor, frames: Tensor, sy: Tensor, sx: Tensor,
                  scale: Optional[Tensor], shift: Optional[Tensor], layout: str) -> Tensor:
    """V̂ from the temporal filterbank, the spatial band weights/starts and the frames."""
    return banded_forward(ft, wy, wx, frames, sy, sx, scale, shift, layout)


@banded_sample.register_fake
def _(ft, wy, wx, frames, sy, sx, scale, shift, layout):
    return ft.new_empty(volume_shape(frames.shape[0], ft.shape[1], frames.shape[2], sy.shape[1], layout))


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


def filterbank_sample_banded(frames: torch.Tensor, num_frames: torch.Tensor, params: RawSampling,
                             out_size: int, *, mean: Sequence[float] | None = None,
                             std: Sequence[float] | None = None, temporal: str = "gaussian",
                             layout: str = "btchw", sigma: float = 1.0) -> torch.Tensor:
    """Detail volume V̂ with banded spatial filters; same contract as `filterbank_sample`.

    `frames` `[B, T, C, H, W]` uint8 (normalised with `mean`/`std`) or float (already normalised;
    16-bit floats are read as float32). Returns `[B, T_d, C, S, S]` ("btchw") or
    `[B, C, T_d, S, S]` ("bcthw"), float32 (float64 for a float64 clip, so the path can be
    gradchecked). Padded frames past `num_frames` get weight 0 (they must be finite).
    """
    check_inputs(frames, num_frames, params, out_size, layout=layout, temporal=temporal, sigma=sigma)
    B, T, C, H, W = frames.shape
    # float32 compute (as the reference) unless the clip itself is float64 (e.g. for gradcheck).
    dtype = torch.float64 if frames.dtype == torch.float64 else torch.float32
    scale = shift = None
    if frames.dtype == torch.uint8:
        scale, shift = uint8_affine(mean, std, C, frames.device)
    _, ft = temporal_band(num_frames, params, T, temporal)  # dense F_t [B, T_d, T]
    ft = (flush_subnormal(ft) if temporal == "gaussian" else ft).to(dtype)
    if not torch.compiler.is_compiling():
        # Frames past every video's end have weight 0 everywhere: do not read them at all.
        t_max = int(num_frames.max())
        if t_max < T:
            frames, ft = frames[:, :t_max], ft[..., :t_max]
    sy, wy, sx, wx = spatial_bands(params, H, W, out_size, sigma)  # [N, S], [N, S, K]
    wy, wx = wy.to(dtype), wx.to(dtype)
    if torch.compiler.is_compiling():  # crop boxes are data-dependent: one node over whole frames
        return banded_sample_op(ft, wy, wx, frames, sy, sx, scale, shift, layout)
    T_d = ft.shape[1]
    out = []
    for b0, b1, (y0, y1, x0, x1) in crop_plan(sy, sx, wy.shape[-1], wx.shape[-1], B):
        n0, n1 = b0 * T_d, b1 * T_d
        out.append(banded_sample_op(ft[b0:b1], wy[n0:n1], wx[n0:n1], frames[b0:b1, ..., y0:y1, x0:x1],
                                    sy[n0:n1] - y0, sx[n0:n1] - x0, scale, shift, layout))
    return out[0] if len(out) == 1 else torch.cat(out)


def crop_plan(sy: Tensor, sx: Tensor, taps_y: int, taps_x: int, batch: int,
              slack: float = 1.25) -> list[tuple[int, int, tuple[int, int, int, int]]]:
    """Which videos to sample together, and the box `(y0, y1, x0, x1)` of pixels they read.

    A detail window touches only the rows and columns its bands cover, usually a fraction of the
    frame; every other pixel has weight 0 in every filter, so the contraction reads just the box
    and its output is unchanged. One call over the batch's common box when it is at most `slack`
    times the videos' own boxes in area, else one call per video with its own box.
    """
    y, x = sy.view(batch, -1), sx.view(batch, -1)
    y0, y1 = y.min(1).values, y.max(1).values + taps_y
    x0, x1 = x.min(1).values, x.max(1).values + taps_x
    boxes = list(zip(y0.tolist(), y1.tolist(), x0.tolist(), x1.tolist()))
    union = (min(y0.tolist()), max(y1.tolist()), min(x0.tolist()), max(x1.tolist()))
    area = lambda box: (box[1] - box[0]) * (box[3] - box[2])  # noqa: E731
    if batch * area(union) <= slack * sum(area(box) for box in boxes):
        return [(0, batch, union)]
    return [(b, b + 1, box) for b, box in enumerate(boxes)]
