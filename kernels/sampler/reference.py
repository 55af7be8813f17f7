"""Pure-torch reference of the Gaussian filterbank detail sampler (SPEC §2-3).

Numerics follow the official S2DNet code exactly (float32, σ² = 1, `max(sum, 1e-7)` clamps,
strides `n/(T_d-1)·exp(δ_t)` and `W/(S-1)·exp(δ_x)`); shapes are batched over videos with per-video
valid lengths, so there is no Python loop over the batch. Two forms live here:

- `filterbank_sample_dense`: the batched dense algorithm (temporal contraction at full resolution,
  then width, then height), the yardstick every faster path is checked against and the path the
  FLOP counts are taken on;
- `filterbank_sample_per_video`: the official-style per-video loop (valid frames sliced per video,
  filterbanks built per video), kept as the baseline the benchmarks compare against.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

#: Normalisation sums below this are clamped (a clamp, not an epsilon: far-away rows fade to 0).
SUM_CLAMP = 1e-7


@dataclass
class SamplerParams:
    """Raw (unscaled) sampling parameters predicted by the locator f_θ.

    `dt`, `delta_t`: `[B]` temporal centre and log-stride; `dx`, `dy`, `delta_x`, `delta_y`:
    `[B, T_d]` spatial centre and log-stride of every output frame. Scaling (tanh / exp) happens
    inside the sampler so gradients reach these raw values.
    """

    dt: torch.Tensor
    delta_t: torch.Tensor
    dx: torch.Tensor
    dy: torch.Tensor
    delta_x: torch.Tensor
    delta_y: torch.Tensor

    def as_tuple(self) -> tuple[torch.Tensor, ...]:
        return (self.dt, self.delta_t, self.dx, self.dy, self.delta_x, self.delta_y)

    @property
    def out_frames(self) -> int:
        return self.dx.shape[1]

    @staticmethod
    def fixed(batch: int, out_frames: int, device=None, dtype=torch.float32) -> "SamplerParams":
        """Raw values that give the initial sampling: clip centre, whole clip and frame covered."""
        z1 = torch.zeros(batch, device=device, dtype=dtype)
        z2 = torch.zeros(batch, out_frames, device=device, dtype=dtype)
        return SamplerParams(z1, z1.clone(), z2, z2.clone(), z2.clone(), z2.clone())


def _check(frames: torch.Tensor, num_frames: torch.Tensor, params: SamplerParams, out_size: int) -> None:
    if frames.dim() != 5:
        raise ValueError(f"frames must be [B, T, C, H, W], got shape {tuple(frames.shape)}")
    B, T = frames.shape[:2]
    if num_frames.shape != (B,):
        raise ValueError(f"num_frames must have shape [{B}], got {tuple(num_frames.shape)}")
    if out_size < 2:
        raise ValueError(f"out_size must be >= 2 (the stride divides by S-1), got {out_size}")
    spatial = {"dx": params.dx, "dy": params.dy, "delta_x": params.delta_x, "delta_y": params.delta_y}
    shapes = {k: list(v.shape) for k, v in spatial.items()}
    if len({tuple(s) for s in shapes.values()}) != 1 or len(params.dx.shape) != 2 or params.dx.shape[0] != B:
        raise ValueError(f"spatial sampler parameters must all be [B={B}, T_d]; got "
                         + ", ".join(f"{k} {v}" for k, v in shapes.items()))
    T_d = params.out_frames
    if T_d < 2:
        raise ValueError(f"the sampler needs >= 2 output frames (stride divides by T_d-1), got {T_d}")
    for name, t in (("dt", params.dt), ("delta_t", params.delta_t)):
        if tuple(t.shape) != (B,):
            raise ValueError(f"sampler parameter {name} must have shape [{B}], got {list(t.shape)}")
    # A data-dependent check: done eagerly only, so torch.compile traces callers without a break.
    if not torch.compiler.is_compiling():
        n = num_frames
        if bool((n < 1).any()) or bool((n > T).any()):
            raise ValueError(f"num_frames must lie in [1, {T}] (the padded clip length), got {n.tolist()}")


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    """float32 (the official numerics), or float64 when the parameters are (for gradcheck)."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def temporal_grid(dt: torch.Tensor, delta_t: torch.Tensor, n: torch.Tensor, out_frames: int):
    """Scaled temporal centre, stride and grid `[B, T_d]`, in input-frame units."""
    dtype = _compute_dtype(dt)
    n = n.to(dtype)
    anchor = (n - 1) / 2.0
    centre = torch.tanh(dt) * (n - 1) / 2.0 + anchor
    stride = (n / (out_frames - 1)) * torch.exp(delta_t)
    j = torch.arange(out_frames, device=dt.device, dtype=dtype)
    grid = centre[:, None] + (j - (out_frames - 1) / 2.0)[None, :] * stride[:, None]
    return centre, stride, grid


def spatial_grid(d: torch.Tensor, delta: torch.Tensor, size: int, out_size: int):
    """Scaled spatial centres, strides `[B, T_d]` and grids `[B, T_d, S]`, in input-pixel units."""
    centre = torch.tanh(d) * (size - 1) / 2.0 + (size - 1) / 2.0
    stride = (size / (out_size - 1)) * torch.exp(delta)
    k = torch.arange(out_size, device=d.device, dtype=_compute_dtype(d))
    grid = centre[..., None] + (k - (out_size - 1) / 2.0) * stride[..., None]
    return centre, stride, grid


def gaussian_rows(grid: torch.Tensor, size: int, valid: torch.Tensor | None = None,
                  sigma: float = 1.0) -> torch.Tensor:
    """Normalised Gaussian rows `[..., size]` centred on `grid[...]` (width `sigma`; the official σ² = 1).

    `valid` (broadcastable bool `[..., size]`) zeroes positions past a video's end before the
    normalisation, as the official code slices them away.
    """
    p = torch.arange(size, device=grid.device, dtype=grid.dtype)
    w = torch.exp(-1 * torch.pow(p - grid[..., None], 2) / (2.0 * sigma * sigma))
    if valid is not None:
        w = w * valid
    return w / torch.clamp_min(w.sum(-1, keepdim=True), SUM_CLAMP)


def linear_rows(grid: torch.Tensor, size: int, valid: torch.Tensor) -> torch.Tensor:
    """Linear-interpolation rows `[..., size]` (grid_sample, align_corners=True, zero padding)."""
    p = torch.arange(size, device=grid.device, dtype=grid.dtype)
    return torch.clamp_min(1 - (p - grid[..., None]).abs(), 0) * valid


def filterbanks(num_frames: torch.Tensor, params: SamplerParams, in_frames: int, height: int,
                width: int, out_size: int, temporal: str = "gaussian", sigma: float = 1.0):
    """Build the three filterbanks: F_t `[B, T_d, T]`, F_y `[B, T_d, S, H]`, F_x `[B, T_d, S, W]`
    (spatial rows of width `sigma` px; the temporal rows keep σ = 1 frame)."""
    T_d = params.out_frames
    _, _, mu_t = temporal_grid(params.dt, params.delta_t, num_frames, T_d)
    valid = (torch.arange(in_frames, device=mu_t.device)[None, :] < num_frames[:, None])[:, None, :]
    if temporal == "gaussian":
        Ft = gaussian_rows(mu_t, in_frames, valid)
    elif temporal == "linear":
        Ft = linear_rows(mu_t, in_frames, valid)
    else:
        raise ValueError(f"temporal filter must be 'gaussian' or 'linear', got {temporal!r}")
    _, _, mu_x = spatial_grid(params.dx, params.delta_x, width, out_size)
    _, _, mu_y = spatial_grid(params.dy, params.delta_y, height, out_size)
    return Ft, gaussian_rows(mu_y, height, sigma=sigma), gaussian_rows(mu_x, width, sigma=sigma)


def filterbank_sample_dense(frames: torch.Tensor, num_frames: torch.Tensor, params: SamplerParams,
                            out_size: int, temporal: str = "gaussian", sigma: float = 1.0) -> torch.Tensor:
    """Dense batched reference: `V̂[b,j,c,i,k] = Σ_t Σ_y Σ_x F_t F_y F_x I[b,t,c,y,x]`.

    `frames` `[B, T, C, H, W]` float (already normalised); returns `[B, T_d, C, S, S]` in float32
    (float64 when the parameters are float64, for gradient checks).
    """
    _check(frames, num_frames, params, out_size)
    B, T, C, H, W = frames.shape
    T_d = params.out_frames
    Ft, Fy, Fx = filterbanks(num_frames, params, T, H, W, out_size, temporal, sigma)
    x = frames.to(Ft.dtype)
    x = torch.bmm(Ft, x.reshape(B, T, C * H * W)).view(B, T_d, C, H, W)  # time, full resolution
    x = torch.matmul(x, Fx.transpose(-1, -2)[:, :, None])  # width:  [B,T_d,C,H,S]
    return torch.matmul(Fy[:, :, None], x)  # height: [B,T_d,C,S,S]


def filterbank_sample_per_video(frames: torch.Tensor, num_frames: torch.Tensor, params: SamplerParams,
                                out_size: int, temporal: str = "gaussian", sigma: float = 1.0) -> torch.Tensor:
    """Official-style loop: each video's valid frames sliced and filtered on their own."""
    _check(frames, num_frames, params, out_size)
    outs = []
    for b in range(frames.shape[0]):
        n = int(num_frames[b])
        sub = SamplerParams(*(p[b:b + 1] for p in params.as_tuple()))
        outs.append(filterbank_sample_dense(frames[b:b + 1, :n], num_frames[b:b + 1], sub, out_size, temporal, sigma))
    return torch.cat(outs)
