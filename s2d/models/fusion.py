"""Context fusion: the context vector m and its fusion into detail-net stages.

`m = ReLU(Linear([s ; g]))` (s first, as the official code) from the synopsis top-k vector s and
pooled features g (`s2d_kernels.context.synopsis_context`). At each fusion stage the features
are replaced by `ReLU(Conv1×1×1([x ; m]))` (no bias, no residual); the weight keeps the official
`[C, C+M, 1, 1, 1]` layout and is applied by `s2d_kernels.fusion.context_fusion`, in split form
(`W_x·x` plus the per-video `W_m·m`) outside the reference backend.
"""
from __future__ import annotations

import torch
from torch import nn

from s2d_kernels.context import synopsis_context
from s2d_kernels.fusion import context_fusion


class ContextEncoder(nn.Module):
    """Top-k → s → m = ReLU(W·[s ; g] + b)."""

    def __init__(self, num_classes: int, embed_dim: int, context_dim: int):
        super().__init__()
        self.fc = nn.Linear(num_classes + embed_dim, context_dim)

    def forward(self, logits: torch.Tensor, g: torch.Tensor, k: int, scheme: str,
                backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top-k indices `[B, k]`, s `[B, K]` and m `[B, M]` from the synopsis logits and pooled features."""
        return synopsis_context(logits, g, k, self.fc.weight, self.fc.bias, scheme=scheme, backend=backend)


class StageFusion(nn.Module):
    """One fusion point: `x ← ReLU(W_x·x + W_m·m)`, weight in the official conv layout."""

    def __init__(self, channels: int, context_dim: int):
        super().__init__()
        conv = nn.Conv3d(channels + context_dim, channels, kernel_size=1, bias=False)  # default init
        self.weight = conv.weight

    def forward(self, x: torch.Tensor, m: torch.Tensor, layout: str, backend: str = "auto") -> torch.Tensor:
        return context_fusion(x, m, self.weight, layout=layout, backend=backend)
