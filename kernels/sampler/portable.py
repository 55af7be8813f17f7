"""The sampler in plain tensor ops, for graphs that leave PyTorch (`torch.export`, ONNX).

The fast path's contraction is a custom op (`s2d::banded_sample`) that another runtime does not
know, and its crop boxes depend on values. This path computes the same V̂ from the same filter
rows, with ops every exporter translates: the temporal `F_t` and the 13-tap spatial bands of
`bands.py` (so every weight equals the fast path's), the bands scattered into dense `[S, H]` and
`[S, W]` filterbanks, then the contractions in the fast path's order (time, height, width) as
matrix products. uint8 clips are normalised as the fast path does it, by the per-channel affine
folded into the temporal contraction (`Σ F·(a·x + b) = (a·F)·x + b·ΣF`). The results agree with
the fast path to float32 rounding; it costs the dense reference's multiply-adds.
"""
from __future__ import annotations

from typing import Sequence

import torch

from s2d_kernels.sampler.bands import flush_subnormal, spatial_bands, temporal_band
from s2d_kernels.sampler.normalize import uint8_affine
from s2d_kernels.sampler.params import RawSampling, check_inputs

__all__ = ["dense_rows", "filterbank_sample_portable"]


def dense_rows(start: torch.Tensor, weight: torch.Tensor, size: int) -> torch.Tensor:
    """Band rows (`start` `[N, S]`, `weight` `[N, S, K]`) as dense filterbank rows `[N, S, size]`.

    A row's K positions are distinct, so a plain scatter places them (no accumulation needed)."""
    pos = start.unsqueeze(-1) + torch.arange(weight.shape[-1], device=start.device)
    return torch.zeros(*weight.shape[:-1], size, dtype=weight.dtype, device=weight.device).scatter(-1, pos, weight)


def filterbank_sample_portable(frames: torch.Tensor, num_frames: torch.Tensor, params: RawSampling,
                               out_size: int, *, mean: Sequence[float] | None = None,
                               std: Sequence[float] | None = None, temporal: str = "gaussian",
                               layout: str = "btchw", sigma: float = 1.0) -> torch.Tensor:
    """Detail volume V̂ in plain tensor ops; same contract and values as `filterbank_sample_banded`."""
    check_inputs(frames, num_frames, params, out_size, layout=layout, temporal=temporal, sigma=sigma)
    B, T, C, H, W = frames.shape
    T_d, S = params.out_frames, out_size
    dtype = torch.float64 if frames.dtype == torch.float64 else torch.float32
    _, ft = temporal_band(num_frames, params, T, temporal)  # dense F_t [B, T_d, T]
    ft = (flush_subnormal(ft) if temporal == "gaussian" else ft).to(dtype)
    sy, wy, sx, wx = spatial_bands(params, H, W, out_size, sigma)  # [N, S], [N, S, K]
    fy = dense_rows(sy, wy.to(dtype), H).view(B, T_d, 1, S, H)
    fx = dense_rows(sx, wx.to(dtype), W).view(B, T_d, 1, S, W)
    if frames.dtype == torch.uint8:
        # the fast path's folded affine: per channel c, `[scale_c·F_t | shift_c·ΣF_t]` against `[x ; 1]`
        scale, shift = (v.to(dtype).view(1, C, 1, 1) for v in uint8_affine(mean, std, C, frames.device))
        ft_c = flush_subnormal(torch.cat([ft[:, None] * scale, ft.sum(-1, keepdim=True)[:, None] * shift], -1))
        x = frames.to(dtype).transpose(1, 2).reshape(B, C, T, H * W)
        x = torch.cat([x, torch.ones_like(x[:, :, :1])], 2)
        x = torch.matmul(ft_c, x).view(B, C, T_d, H, W).transpose(1, 2)  # time: [B, T_d, C, H, W]
    else:
        x = torch.bmm(ft, frames.to(dtype).reshape(B, T, C * H * W)).view(B, T_d, C, H, W)  # time
    x = torch.matmul(fy, x)  # height: [B, T_d, C, S, W]
    out = torch.matmul(x, fx.transpose(-1, -2))  # width: [B, T_d, C, S, S]
    return out.transpose(1, 2) if layout == "bcthw" else out
