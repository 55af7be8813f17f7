"""Reference context fusion: the official broadcast-concat form `ReLU(Conv1x1x1([x ; m]))`."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def context_fusion_concat(x: torch.Tensor, m: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`x` `[B, C, T, h, w]`, `m` `[B, M]`, `weight` `[C, C+M, 1, 1, 1]` → `[B, C, T, h, w]`.

    Materialises the broadcast concat exactly as the official code does (slow, for checks and the
    reference FLOP count).
    """
    B, _, T, h, w = x.shape
    ctx = m[:, :, None, None, None].expand(-1, -1, T, h, w)
    return F.relu(F.conv3d(torch.cat([x, ctx.to(x.dtype)], dim=1), weight))
