"""Pure-torch reference of the Gaussian filterbank detail sampler.

Numerics follow the official S2DNet code exactly (float32, σ² = 1, `max(sum, 1e-7)` clamps; see
the README's Numerics section); shapes are batched over videos with per-video valid lengths, so
there is no Python loop over the batch. Two forms live here:

- `filterbank_sample_dense`: the batched dense algorithm (temporal contraction at full resolution,
  then width, then height), the yardstick every faster path is checked against and the path the
  FLOP counts are taken on;
- `filterbank_sample_per_video`: the official-style per-video loop (valid frames sliced per video,
  filterbanks built per video), kept as the baseline the benchmarks compare against.
"""
from __future__ import annotations

import torch

from s2d_kernels.sampler.bands import filter_band, temporal_band
from s2d_kernels.sampler.params import RawSampling, check_inputs, spatial_grid

__all__ = ["filterbank_sample_dense", "filterbank_sample_per_video", "filterbanks"]


def filterbanks(num_frames: torch.Tensor, params: RawSampling, in_frames: int, height: int,
                width: int, out_size: int, temporal: str = "gaussian", sigma: float = 1.0):
    """Build the three dense filterbanks: F_t `[B, T_d, T]`, F_y `[B, T_d, S, H]`, F_x `[B, T_d, S, W]`
    (spatial rows of width `sigma` px; the temporal rows keep σ = 1 frame)."""
    _, Ft = temporal_band(num_frames, params, in_frames, temporal)
    _, _, mu_x = spatial_grid(params.dx, params.delta_x, width, out_size)
    _, _, mu_y = spatial_grid(params.dy, params.delta_y, height, out_size)
    return Ft, filter_band(mu_y, height, sigma=sigma)[1], filter_band(mu_x, width, sigma=sigma)[1]


def filterbank_sample_dense(frames: torch.Tensor, num_frames: torch.Tensor, params: RawSampling,
                            out_size: int, temporal: str = "gaussian", sigma: float = 1.0) -> torch.Tensor:
    """Dense batched reference: `V̂[b,j,c,i,k] = Σ_t Σ_y Σ_x F_t F_y F_x I[b,t,c,y,x]`.

    `frames` `[B, T, C, H, W]` float (already normalised); returns `[B, T_d, C, S, S]` in float32
    (float64 when the parameters are float64, for gradient checks).
    """
    check_inputs(frames, num_frames, params, out_size, temporal=temporal, sigma=sigma)
    B, T, C, H, W = frames.shape
    T_d = params.out_frames
    Ft, Fy, Fx = filterbanks(num_frames, params, T, H, W, out_size, temporal, sigma)
    x = frames.to(Ft.dtype)
    x = torch.bmm(Ft, x.reshape(B, T, C * H * W)).view(B, T_d, C, H, W)  # time, full resolution
    x = torch.matmul(x, Fx.transpose(-1, -2)[:, :, None])  # width:  [B,T_d,C,H,S]
    return torch.matmul(Fy[:, :, None], x)  # height: [B,T_d,C,S,S]


def filterbank_sample_per_video(frames: torch.Tensor, num_frames: torch.Tensor, params: RawSampling,
                                out_size: int, temporal: str = "gaussian", sigma: float = 1.0) -> torch.Tensor:
    """Official-style loop: each video's valid frames sliced and filtered on their own."""
    check_inputs(frames, num_frames, params, out_size, temporal=temporal, sigma=sigma)
    outs = []
    for b in range(frames.shape[0]):
        n = int(num_frames[b])
        sub = RawSampling(*(p[b:b + 1] for p in params.as_tuple()))
        outs.append(filterbank_sample_dense(frames[b:b + 1, :n], num_frames[b:b + 1], sub, out_size, temporal, sigma))
    return torch.cat(outs)
