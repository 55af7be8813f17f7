"""Smoothed locator gradient: the window learns from loss differences, not through the sampler.

The sampler's pathwise gradient with respect to a window's position is the image gradient under
the window weighted by the detail net's sensitivity. On fine periodic detail (a texture of a few
pixels' period) that sum is dominated by the texture's phase, not by how much of the detail is in
view, so it points toward the detail little more often than at random. With
`locator.gradient="smoothed"` the locator instead gets a randomised-smoothing (SPSA) estimate:
per video and step the detail net also classifies the window moved by `+h·Δ` and `-h·Δ`, `Δ` a
random ±1 sign for each of the five window coordinates (temporal centre, log temporal stride, x,
y, log spatial stride), and coordinate i gets `(L(+) − L(−)) / (2·h_i) · Δ_i`: in expectation the
gradient of the loss averaged over moves of about h. Only the classification loss drives it (no
location target), and no gradient reaches the locator through the sampler. Off by default.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from s2d_kernels.sampler import RawSampling, spatial_grid, temporal_grid

#: Steps of the temporal coordinates: the centre in frames, the log-strides (time and space) in nats.
TEMPORAL_STEP = 1.0
LOG_STRIDE_STEP = 0.1


@dataclass
class Window:
    """A window in interpretable units: temporal centre `ct` (frames, `[B]`), log temporal stride
    `lt` (`[B]`), spatial centres `cx`, `cy` (px, `[B, T_d]`) and log spatial strides `lx`, `ly`."""

    ct: torch.Tensor
    lt: torch.Tensor
    cx: torch.Tensor
    cy: torch.Tensor
    lx: torch.Tensor
    ly: torch.Tensor


def window_of(raw: RawSampling, num_frames: torch.Tensor, width: int, height: int, out_size: int) -> Window:
    """`raw` locator outputs in window units (differentiable)."""
    ct, _, _ = temporal_grid(raw.dt, raw.delta_t, num_frames, raw.out_frames)
    cx, _, _ = spatial_grid(raw.dx, raw.delta_x, width, out_size)
    cy, _, _ = spatial_grid(raw.dy, raw.delta_y, height, out_size)
    return Window(ct, raw.delta_t, cx, cy, raw.delta_x, raw.delta_y)


def _inside(centre: torch.Tensor, extent: torch.Tensor | float) -> torch.Tensor:
    """atanh of a centre rescaled by the sampler's half-extent, kept strictly inside the frame."""
    half = (extent - 1) / 2.0
    return torch.atanh(((centre - half) / half).clamp(-0.999, 0.999))


def moved(raw: RawSampling, num_frames: torch.Tensor, signs: torch.Tensor, step_px: float, width: int,
          height: int, out_size: int) -> RawSampling:
    """Raw parameters (detached) of the window moved by `signs` `[B, 5]` (±1) times the steps."""
    with torch.no_grad():
        w = window_of(raw, num_frames, width, height, out_size)
        n = num_frames.to(w.ct.dtype)
        return RawSampling(
            _inside(w.ct + TEMPORAL_STEP * signs[:, 0], n).to(raw.dt.dtype),
            w.lt + LOG_STRIDE_STEP * signs[:, 1],
            _inside(w.cx + step_px * signs[:, 2:3], width).to(raw.dx.dtype),
            _inside(w.cy + step_px * signs[:, 3:4], height).to(raw.dy.dtype),
            w.lx + LOG_STRIDE_STEP * signs[:, 4:5],
            w.ly + LOG_STRIDE_STEP * signs[:, 4:5])


@dataclass
class ShiftProbe:
    """The detail net's logits at the windows moved by `+signs` and `-signs` steps, and the
    locator's own window (carrying its graph) that the estimate is applied to."""

    window: Window
    logits_plus: torch.Tensor
    logits_minus: torch.Tensor
    signs: torch.Tensor  # [B, 5]
    step_px: float


def random_signs(batch: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """`[B, 5]` independent ±1 (Rademacher) perturbation signs."""
    return torch.randint(0, 2, (batch, 5), generator=generator, device=device).float() * 2 - 1


def surrogate_loss(probe: ShiftProbe, target: torch.Tensor) -> torch.Tensor:
    """A term of value 0 whose gradient with respect to the probe's window (carrying the locator's
    graph) is the smoothed estimate, averaged over videos as the cross-entropy is."""
    window = probe.window
    with torch.no_grad():
        diff = (F.cross_entropy(probe.logits_plus.float(), target, reduction="none")
                - F.cross_entropy(probe.logits_minus.float(), target, reduction="none"))
        steps = torch.tensor([TEMPORAL_STEP, LOG_STRIDE_STEP, probe.step_px, probe.step_px, LOG_STRIDE_STEP],
                             device=diff.device)
        g = diff[:, None] / (2 * steps) * probe.signs  # [B, 5]: loss per unit of each coordinate
    spatial = g[:, 2:3] * window.cx + g[:, 3:4] * window.cy + g[:, 4:5] * (window.lx + window.ly) / 2
    term = (g[:, 0] * window.ct + g[:, 1] * window.lt + spatial.mean(1)).mean()
    return term - term.detach()
