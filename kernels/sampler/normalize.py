"""uint8 clip normalisation `(x/255 - mean)/std`, as a whole-clip op and as a per-channel affine."""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["normalize_frames", "uint8_affine"]


def normalize_frames(frames: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None,
                     channel_dim: int = 2) -> torch.Tensor:
    """uint8 frames → float32 `(x/255 - mean)/std`; float frames are returned as they are."""
    if frames.dtype != torch.uint8:
        return frames
    if mean is None or std is None:
        raise ValueError("uint8 frames need the model's mean and std to be normalised")
    shape = [1] * frames.dim()
    shape[channel_dim] = -1
    m = torch.tensor(mean, dtype=torch.float32, device=frames.device).view(shape)
    s = torch.tensor(std, dtype=torch.float32, device=frames.device).view(shape)
    return (frames.to(torch.float32) / 255.0 - m) / s


def uint8_affine(mean: Sequence[float] | None, std: Sequence[float] | None, channels: int,
                 device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel `(scale, shift)` with `(x/255 - mean)/std = scale·x + shift`, float32 `[C]`
    (the fast paths fold it into their first contraction instead of normalising the clip)."""
    if mean is None or std is None:
        raise ValueError("uint8 frames need the model's mean and std to be normalised")
    m = torch.as_tensor(mean, dtype=torch.float32, device=device).reshape(-1)
    s = torch.as_tensor(std, dtype=torch.float32, device=device).reshape(-1)
    if m.numel() != channels or s.numel() != channels:
        raise ValueError(f"mean/std need {channels} entries (one per channel), got {m.numel()} and {s.numel()}")
    return 1.0 / (255.0 * s), -m / s
