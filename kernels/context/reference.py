"""Reference of the per-video context path, written as the official code computes it.

From the synopsis logits `[B, K]` and pooled synopsis features `g` `[B, F]`: top-k by a descending
sort, the k-hot (or masked-softmax) vector `s`, `m = ReLU(W·[s ; g] + b)` with a K-wide matmul on
the concatenation; the detail classifier then runs on the per-frame concatenation
`[feature ; m ; s]`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["context_classifier_reference", "synopsis_context_reference", "topk_vector"]


def topk_vector(logits: torch.Tensor, k: int, scheme: str = "hard") -> tuple[torch.Tensor, torch.Tensor]:
    """Indices `[B, k]` (descending sort, ties broken as `torch.sort` does, like the official code)
    and s `[B, K]`: k-hot ("hard"), or the official masked softmax `exp(x - max)·mask / (Σ + 1e-6)`
    ("soft")."""
    if scheme not in ("hard", "soft"):
        raise ValueError(f"top-k scheme must be 'hard' or 'soft', got {scheme!r}")
    idx = torch.sort(logits, dim=-1, descending=True).indices[:, :k]
    khot = torch.zeros_like(logits, dtype=torch.float32).scatter_(1, idx, 1.0)
    if scheme == "hard":
        return idx, khot.to(logits.dtype)
    x = torch.exp(logits - logits.max(-1, keepdim=True).values) * khot
    return idx, x / (x.sum(-1, keepdim=True) + 1e-6)


def synopsis_context_reference(logits: torch.Tensor, g: torch.Tensor, k: int, fc_weight: torch.Tensor,
                               fc_bias: torch.Tensor | None,
                               scheme: str = "hard") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(topk, s, m)` with `m = ReLU(W·[s ; g] + b)` on the materialised concatenation."""
    idx, s = topk_vector(logits, k, scheme)
    m = torch.relu(F.linear(torch.cat([s.to(g.dtype), g], 1), fc_weight, fc_bias))
    return idx, s, m


def context_classifier_reference(feats: torch.Tensor, m: torch.Tensor, s: torch.Tensor, weight: torch.Tensor,
                                 bias: torch.Tensor | None) -> torch.Tensor:
    """Logits `[B, K]`: the classifier on every frame's `[feature ; m ; s]`, averaged over time."""
    T = feats.shape[1]
    ctx = torch.cat([m, s.to(m.dtype)], 1)[:, None].expand(-1, T, -1)  # each video its own s
    return F.linear(torch.cat([feats, ctx.to(feats.dtype)], 2), weight, bias).mean(1)
