"""Context fusion: the context vector m and its fusion into detail-net stages.

`m = ReLU(Linear([s ; g]))` (s first, as the official code). At each fusion stage the features
are replaced by `ReLU(Conv1×1×1([x ; m]))` (no bias, no residual); the weight keeps the official
`[C, C+M, 1, 1, 1]` layout and is applied in split form by `s2d_kernels.context_fusion`.

Outside the reference backend the model computes m and every per-video context term at once with
`ContextEncoder.terms` (`s2d_kernels.context.context_terms`: k gathered weight columns instead of
K-wide matmuls on the k-hot s), and the stages take their term as a per-video bias.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from s2d_kernels.context import ContextTerms, context_terms
from s2d_kernels.fusion import context_fusion, context_fusion_split


class ContextEncoder(nn.Module):
    """m = ReLU(W·[s ; g] + b)."""

    def __init__(self, num_classes: int, embed_dim: int, context_dim: int):
        super().__init__()
        self.fc = nn.Linear(num_classes + embed_dim, context_dim)

    def forward(self, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(torch.cat([s.to(g.dtype), g], 1)))

    def terms(self, logits: torch.Tensor, g: torch.Tensor, k: int, scheme: str,
              stage_weights: Sequence[torch.Tensor] = (), classifier_weight: torch.Tensor | None = None,
              classifier_bias: torch.Tensor | None = None) -> ContextTerms:
        """Top-k, s, m and the per-video context terms of the given fusion stages and classifier,
        straight from the synopsis logits `[B, K]` and pooled features `g` (same values as
        `forward` on the k-hot s, without the K-wide matmul)."""
        return context_terms(logits, g, k, self.fc.weight, self.fc.bias, stage_weights, classifier_weight,
                             classifier_bias, scheme=scheme)


class StageFusion(nn.Module):
    """One fusion point: `x ← ReLU(W_x·x + W_m·m)`, weight in the official conv layout."""

    def __init__(self, channels: int, context_dim: int):
        super().__init__()
        conv = nn.Conv3d(channels + context_dim, channels, kernel_size=1, bias=False)  # default init
        self.weight = conv.weight

    def forward(self, x: torch.Tensor, m: torch.Tensor | None, layout: str, backend: str = "auto",
                bias: torch.Tensor | None = None) -> torch.Tensor:
        """Fuse m, or, when `bias` (its precomputed term `W_m·m` `[B, C]`) is given, add that."""
        if bias is not None:
            return context_fusion_split(x, bias, self.weight, layout=layout, backend=backend)
        return context_fusion(x, m, self.weight, layout=layout, backend=backend)
