"""Detail sampler module: raw locator outputs (`RawSampling`) → where it looks (`SamplingWindow`) → V̂.

`sampled_box` is the one definition of the region a detail frame covers: the extent of its
sample points, `centre ± stride·(S−1)/2` per axis (the S grid points of `spatial_grid`; each
point is a σ = 1 Gaussian, so the pixels read reach about 2 px further).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from s2d.models.config import SamplerConfig
from s2d_kernels.sampler import RawSampling, filterbank_sample, spatial_grid, temporal_grid


@dataclass
class SamplingWindow:
    """Where the detail sampler looked, in input units: frames for time, pixels for space.

    `centre_t`, `stride_t`: `[B]`; `centre_x`, `centre_y`, `stride_x`, `stride_y`: `[B, T_d]`;
    `raw`: the locator's unscaled outputs.
    """

    centre_t: torch.Tensor
    stride_t: torch.Tensor
    centre_x: torch.Tensor
    centre_y: torch.Tensor
    stride_x: torch.Tensor
    stride_y: torch.Tensor
    raw: RawSampling

    @staticmethod
    def from_raw(raw: RawSampling, num_frames: torch.Tensor, height: int, width: int,
                 out_size: int) -> "SamplingWindow":
        """Scale the locator's raw outputs for a clip of `height × width` and `num_frames` frames."""
        ct, st, _ = temporal_grid(raw.dt, raw.delta_t, num_frames, raw.out_frames)
        cx, sx, _ = spatial_grid(raw.dx, raw.delta_x, width, out_size)
        cy, sy, _ = spatial_grid(raw.dy, raw.delta_y, height, out_size)
        return SamplingWindow(ct, st, cx, cy, sx, sy, raw)


def fixed_stride(raw: RawSampling, stride: float, width: int, height: int, out_size: int) -> RawSampling:
    """`raw` with every output frame's spatial stride set to `stride` px (`locator.fixed_stride_px`)."""
    return replace(raw, delta_x=torch.full_like(raw.delta_x, math.log(stride * (out_size - 1) / width)),
                   delta_y=torch.full_like(raw.delta_y, math.log(stride * (out_size - 1) / height)))


def sampled_box(window: SamplingWindow, out_size: int) -> torch.Tensor:
    """Where each detail frame looked: `[B, T_d, 4]` boxes `(x0, y0, x1, y1)` in input pixels,
    the extent of its S×S sample points, `centre ± stride·(S−1)/2` per axis."""
    reach = (out_size - 1) / 2
    hx, hy = window.stride_x * reach, window.stride_y * reach
    cx, cy = window.centre_x, window.centre_y
    return torch.stack([cx - hx, cy - hy, cx + hx, cy + hy], -1)


class _NormalizeGrad(torch.autograd.Function):
    """Identity forward; backward rescales each video's gradient by its max |value| into [-1, 1]."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        scale = g.flatten(1).abs().amax(1).clamp_min(1e-12)
        return g / scale.view(-1, *([1] * (g.dim() - 1)))


def normalize_grad(x: torch.Tensor) -> torch.Tensor:
    """Supplement §2: V̂'s gradient is normalised to (-1, 1) per video before it reaches f_θ."""
    return _NormalizeGrad.apply(x)


def centre_crop_params(batch: int, out_frames: int, width: int, height: int, out_size: int,
                       device=None) -> RawSampling:
    """Raw parameters of stage 1 (θ frozen): uniform frames over the clip, 1-pixel spatial
    stride around the frame centre, i.e. a (σ=1 blurred) centre crop of the uniform frames."""
    p = RawSampling.fixed(batch, out_frames, device)
    p.delta_x = torch.full_like(p.dx, math.log((out_size - 1) / width))
    p.delta_y = torch.full_like(p.dy, math.log((out_size - 1) / height))
    return p


def window_params(centre_x: torch.Tensor, centre_y: torch.Tensor, stride: torch.Tensor, out_frames: int,
                  width: int, height: int, out_size: int) -> RawSampling:
    """Raw parameters that look at pixel centre (`centre_x`, `centre_y`) with spatial `stride` (px)
    in every output frame, time covered uniformly: the exact inverse of the sampler's scaling
    (`tanh` centre, `exp` stride). Inputs are `[B]` (or `[B, T_d]` for per-frame windows); centres
    must lie strictly inside the frame."""
    def per_frame(v: torch.Tensor) -> torch.Tensor:
        v = v.float()
        return (v[:, None].expand(-1, out_frames) if v.dim() == 1 else v).contiguous()

    cx, cy, s = per_frame(centre_x), per_frame(centre_y), per_frame(stride)
    hx, hy = (width - 1) / 2.0, (height - 1) / 2.0
    if not torch.compiler.is_compiling():
        inside = (cx > 0) & (cx < width - 1) & (cy > 0) & (cy < height - 1) & (s > 0)
        if not bool(inside.all()):
            raise ValueError(f"window centres must lie strictly inside the {width}x{height} frame and strides "
                             "be positive")
    p = RawSampling.fixed(cx.shape[0], out_frames, cx.device)
    p.dx, p.dy = torch.atanh((cx - hx) / hx), torch.atanh((cy - hy) / hy)
    p.delta_x, p.delta_y = torch.log(s * (out_size - 1) / width), torch.log(s * (out_size - 1) / height)
    return p


class DetailSampler(nn.Module):
    """Gaussian filterbank sampler (or the linear-temporal ablation) on the dense clip."""

    def __init__(self, cfg: SamplerConfig, mean, std, layout: str):
        super().__init__()
        self.cfg = cfg
        self.mean, self.std = tuple(mean), tuple(std)
        self.layout = layout

    def forward(self, frames: torch.Tensor, num_frames: torch.Tensor, raw: RawSampling,
                backend: str = "auto") -> torch.Tensor:
        out = filterbank_sample(frames, num_frames, raw, self.cfg.size, mean=self.mean, std=self.std,
                                temporal=self.cfg.temporal, layout=self.layout, backend=backend,
                                sigma=self.cfg.sigma)
        if self.training and self.cfg.grad_normalize and out.requires_grad:
            out = normalize_grad(out)
        return out
