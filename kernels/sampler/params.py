"""The sampler's raw parameters (`RawSampling`), their scaling to sampling grids, and input checks.

Every sampler path (reference, banded torch, Triton) scales the locator's raw outputs with the
same two functions and validates its inputs with the same `check_inputs`. Numerics follow the
official S2DNet code (see the README's Numerics section): centres `tanh(d)·(n-1)/2 + (n-1)/2`,
strides `n/(T_d-1)·exp(δ_t)` and `W/(S-1)·exp(δ_x)`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["LAYOUTS", "TEMPORAL_FILTERS", "RawSampling", "check_inputs", "check_layout", "compute_dtype",
           "spatial_grid", "temporal_grid", "volume_shape"]

#: Output layouts of the detail volume: "btchw" `[B, T_d, 3, S, S]` (TSM), "bcthw" `[B, 3, T_d, S, S]` (X3D).
LAYOUTS = ("btchw", "bcthw")

#: Temporal filters: "gaussian" (S2DNet) or "linear" (the interpolation ablation).
TEMPORAL_FILTERS = ("gaussian", "linear")


@dataclass
class RawSampling:
    """Raw (unscaled) sampling parameters, as the locator f_θ predicts them.

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
    def fixed(batch: int, out_frames: int, device=None, dtype=torch.float32) -> "RawSampling":
        """Raw values that give the initial sampling: clip centre, whole clip and frame covered."""
        z1 = torch.zeros(batch, device=device, dtype=dtype)
        z2 = torch.zeros(batch, out_frames, device=device, dtype=dtype)
        return RawSampling(z1, z1.clone(), z2, z2.clone(), z2.clone(), z2.clone())


def compute_dtype(t: torch.Tensor) -> torch.dtype:
    """float32 (the official numerics), or float64 when the parameters are (for gradcheck)."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def temporal_grid(dt: torch.Tensor, delta_t: torch.Tensor, n: torch.Tensor, out_frames: int):
    """Scaled temporal centre, stride and grid `[B, T_d]`, in input-frame units."""
    dtype = compute_dtype(dt)
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
    k = torch.arange(out_size, device=d.device, dtype=compute_dtype(d))
    grid = centre[..., None] + (k - (out_size - 1) / 2.0) * stride[..., None]
    return centre, stride, grid


def volume_shape(batch: int, out_frames: int, channels: int, out_size: int, layout: str) -> tuple[int, ...]:
    """Shape of the detail volume V̂ in `layout`."""
    S = out_size
    return (batch, out_frames, channels, S, S) if layout == "btchw" else (batch, channels, out_frames, S, S)


def check_layout(layout: str) -> None:
    """Raise unless `layout` names a detail-volume layout."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'btchw' or 'bcthw', got {layout!r}")


def check_inputs(frames: torch.Tensor, num_frames: torch.Tensor, params: RawSampling, out_size: int, *,
                 layout: str = "btchw", temporal: str = "gaussian", sigma: float = 1.0) -> None:
    """Validate a sampler call (shapes, dtype, layout, filter, valid lengths); raise naming the argument."""
    check_layout(layout)
    if not 0 < sigma <= 1:  # the 13-tap bands hold a Gaussian row only for σ ≤ 1 (±6σ)
        raise ValueError(f"sigma (the spatial Gaussian width) must lie in (0, 1] px, got {sigma}")
    if temporal not in TEMPORAL_FILTERS:
        raise ValueError(f"temporal filter must be 'gaussian' or 'linear', got {temporal!r}")
    if frames.dim() != 5:
        raise ValueError(f"frames must be [B, T, C, H, W], got shape {tuple(frames.shape)}")
    if not (frames.dtype == torch.uint8 or frames.is_floating_point()):
        raise TypeError(f"frames must be uint8 or floating point, got {frames.dtype}")
    B, T = frames.shape[:2]
    if num_frames.shape != (B,):
        raise ValueError(f"num_frames must have shape [{B}], got {tuple(num_frames.shape)}")
    if out_size < 2:
        raise ValueError(f"out_size must be >= 2 (the stride divides by S-1), got {out_size}")
    spatial = {"dx": params.dx, "dy": params.dy, "delta_x": params.delta_x, "delta_y": params.delta_y}
    shapes = {k: list(v.shape) for k, v in spatial.items()}
    # compared as lists, not hashed: under torch.export the batch size is a symbol, which has no hash
    if any(s != shapes["dx"] for s in shapes.values()) or len(params.dx.shape) != 2 or params.dx.shape[0] != B:
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
