"""The one builder of the sampler's filter rows, dense or banded, used by every sampler path.

A filter row is a normalised Gaussian (σ² = 1; or, for the linear-temporal ablation, a hat) over
the positions of one axis, centred on a grid point. `filter_band` builds rows restricted to a band
of `taps` consecutive positions (`start`, `weights`); with `taps=None` the band is the whole axis,
which is the dense row of the reference. Placement: the band starts at `floor(μ) - taps//2`,
clamped into the valid positions `[0, length)`. Every position within 6σ of μ is therefore inside
a 13-tap band, and a row whose centre lies off the axis keeps the positions nearest to it, which
carry all of its mass; so band sums equal the dense row sums to float32 rounding, including the
`max(sum, 1e-7)` clamp of rows that fade out (see the README's Numerics section).

The Triton kernels consume these bands as they are (starts and weights built here on the host);
only the contraction runs on the device.
"""
from __future__ import annotations

import torch

from s2d_kernels.sampler.params import RawSampling, spatial_grid, temporal_grid

__all__ = ["BAND_TAPS", "LINEAR_TAPS", "SUM_CLAMP", "band_rows", "filter_band", "flush_subnormal",
           "spatial_bands", "temporal_band"]

#: Normalisation sums below this are clamped (a clamp, not an epsilon: far-away rows fade to 0).
SUM_CLAMP = 1e-7

#: Taps kept per Gaussian row: every position within 6σ of the centre (σ = 1); a tap 6σ away
#: weighs exp(-18) ≈ 1.5e-8 of the peak.
BAND_TAPS = 13

#: Taps of the linear (interpolation) temporal filter's band: every integer within 1 of the centre
#: (three when the centre is an integer, where the zero-weight neighbours still carry a subgradient).
LINEAR_TAPS = 3


def filter_band(grid: torch.Tensor, size: int, taps: int | None = None, *, length: torch.Tensor | None = None,
                kind: str = "gaussian", sigma: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Filter rows centred on `grid[...]` over `size` positions, kept on bands of `taps` positions.

    Returns `start` (`grid.shape`, integral values in `grid`'s dtype) and `weights`
    (`[*grid.shape, K]`, `K = min(taps, size)`, or `size` when `taps` is None): row `r` is
    `weights[r, m]` at position `start[r] + m`. `length` (broadcastable to `grid.shape`) limits
    the valid positions to `[0, length)`, as the official code slices a video's frames: the band
    is clamped into them and positions past them get weight 0 before the normalisation.
    "gaussian" rows (width `sigma`; the official σ = 1) are normalised with the `max(sum, 1e-7)` clamp; "linear" rows are the hat
    `max(1 - |p - μ|, 0)` (grid_sample with align_corners=True and zero padding).
    """
    K = size if taps is None else min(taps, size)
    dtype = grid.dtype
    # Band start in float: a non-finite centre is mapped into range here, and the weights of such
    # a row come out as the dense ones do (NaN stays NaN, ±inf fades to 0).
    start = torch.floor(grid.detach()) - (K // 2)
    start = torch.nan_to_num(start, nan=0.0, posinf=float(size), neginf=0.0).clamp_min_(0)
    if length is None:
        start = start.clamp_max_(size - K)
    else:
        limit = (length - K).clamp_min(0).to(dtype)
        start = torch.minimum(start, limit.expand_as(start))
    pos = start.unsqueeze(-1) + torch.arange(K, device=grid.device, dtype=dtype)
    valid = None if length is None else pos < length.unsqueeze(-1)
    if kind == "linear":
        w = torch.clamp_min(1 - (pos - grid.unsqueeze(-1)).abs(), 0)
        return start, (w if valid is None else w * valid)
    if kind != "gaussian":
        raise ValueError(f"temporal filter must be 'gaussian' or 'linear', got {kind!r}")
    w = torch.exp(-1 * torch.pow(pos - grid.unsqueeze(-1), 2) / (2.0 * sigma * sigma))
    if valid is not None:
        w = w * valid
    return start, w / torch.clamp_min(w.sum(-1, keepdim=True), SUM_CLAMP)


def flush_subnormal(w: torch.Tensor) -> torch.Tensor:
    """Zero weights below the smallest normal float (they change no float32 sum), because
    subnormal operands slow CPU arithmetic many times over (the tails of far Gaussian rows)."""
    return torch.where(w.abs() < torch.finfo(w.dtype).tiny, torch.zeros((), dtype=w.dtype, device=w.device), w)


def band_rows(grid: torch.Tensor, size: int, taps: int = BAND_TAPS,
              sigma: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial Gaussian bands (width `sigma` ≤ 1: the band spans ±6σ or more) for the fast paths:
    `filter_band` with int64 starts and subnormal weights flushed to zero."""
    start, w = filter_band(grid, size, taps, sigma=sigma)
    return start.long(), flush_subnormal(w)


def spatial_bands(params: RawSampling, height: int, width: int, out_size: int,
                  sigma: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Height and width bands of every output frame, flattened over `N = B·T_d` frames:
    starts `sy`, `sx` `[N, S]` (int64) and weights `wy`, `wx` `[N, S, K]`."""
    N = params.dx.shape[0] * params.out_frames
    _, _, mu_x = spatial_grid(params.dx, params.delta_x, width, out_size)  # [B, T_d, S]
    _, _, mu_y = spatial_grid(params.dy, params.delta_y, height, out_size)
    sy, wy = band_rows(mu_y.reshape(N, out_size), height, sigma=sigma)
    sx, wx = band_rows(mu_x.reshape(N, out_size), width, sigma=sigma)
    return sy, wy, sx, wx


def temporal_band(num_frames: torch.Tensor, params: RawSampling, in_frames: int, temporal: str = "gaussian",
                  taps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Temporal filter rows over each video's valid frames: start `[B, T_d]` and weights
    `[B, T_d, K]`. `taps=None` gives the dense `F_t` `[B, T_d, T]` (start 0)."""
    _, _, mu = temporal_grid(params.dt, params.delta_t, num_frames, params.out_frames)  # [B, T_d]
    length = num_frames.to(mu.device).view(-1, 1)
    return filter_band(mu, in_frames, taps, length=length, kind=temporal)
