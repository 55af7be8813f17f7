"""Context fusion in split form, pure torch: `ReLU(W_x·x + W_m·m)` with `W_m·m` a per-video bias.

A 1×1×1 conv on `[x ; m]` equals `W_x·x + W_m·m`: the context part is one small GEMV per video,
added as a per-video bias, so the broadcast concat is never materialised.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["context_bias", "context_fusion_split"]


def context_bias(m: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-video context term `W_m·m` `[B, C]` from the official `[C, C+M, 1, 1, 1]` weight."""
    M = m.shape[1]
    return m.to(weight.dtype) @ weight[:, -M:, 0, 0, 0].t()


def context_fusion_split(x: torch.Tensor, bias: torch.Tensor, weight: torch.Tensor, *,
                         layout: str = "bcthw") -> torch.Tensor:
    """`ReLU(W_x·x + bias[video])`, `bias` `[B, C]` the per-video term (`context_bias`).

    `weight` is the official `[C, C+M, 1, 1, 1]` tensor, of which only the x-columns are read;
    layouts as `context_fusion` (which checks the arguments).
    """
    C, B = x.shape[1], bias.shape[0]
    wx = weight[:, :C]
    if layout == "bcthw":
        y = F.conv3d(x, wx) + bias[:, :, None, None, None]
    else:
        T = x.shape[0] // B
        y = F.conv2d(x, wx[..., 0]).view(B, T, C, *x.shape[2:]) + bias[:, None, :, None, None]
        y = y.view(x.shape)
    return F.relu(y)
