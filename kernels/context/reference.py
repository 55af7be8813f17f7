"""Reference of the per-video context path, written as the official code computes it.

From the synopsis logits `[B, K]` and pooled synopsis features `g` `[B, F]`: top-k by a descending
sort, the k-hot (or masked-softmax) vector `s`, `m = ReLU(W·[s ; g] + b)` with a K-wide matmul on
the concatenation, then the context terms the detail net adds per video: `W_m·m` for every fusion
stage (the m-columns of its `[C, C+M, 1, 1, 1]` conv weight) and `W·[m ; s] + b` for the
classifier (its columns after the `E` feature columns).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass
class ContextTerms:
    """Everything per video the detail net needs from the synopsis.

    `topk` `[B, k]` indices, `s` `[B, K]` (k-hot or soft), `m` `[B, M]`, `stage_bias` one `[B, C]`
    per fusion stage (in the order given), `classifier_bias` `[B, K]` or None.
    """

    topk: torch.Tensor
    s: torch.Tensor
    m: torch.Tensor
    stage_bias: list[torch.Tensor]
    classifier_bias: torch.Tensor | None


def topk_vector_reference(logits: torch.Tensor, k: int, scheme: str = "hard") -> tuple[torch.Tensor, torch.Tensor]:
    """Indices `[B, k]` (descending sort) and s `[B, K]`: k-hot, or the official masked softmax
    `exp(x - max)·mask / (Σ + 1e-6)`."""
    if scheme not in ("hard", "soft"):
        raise ValueError(f"top-k scheme must be 'hard' or 'soft', got {scheme!r}")
    idx = torch.sort(logits, dim=-1, descending=True).indices[:, :k]
    khot = torch.zeros_like(logits, dtype=torch.float32).scatter_(1, idx, 1.0)
    if scheme == "hard":
        return idx, khot.to(logits.dtype)
    x = torch.exp(logits - logits.max(-1, keepdim=True).values) * khot
    return idx, x / (x.sum(-1, keepdim=True) + 1e-6)


def context_terms_reference(logits: torch.Tensor, g: torch.Tensor, k: int, fc_weight: torch.Tensor,
                            fc_bias: torch.Tensor | None, stage_weights: Sequence[torch.Tensor] = (),
                            classifier_weight: torch.Tensor | None = None,
                            classifier_bias: torch.Tensor | None = None, scheme: str = "hard") -> ContextTerms:
    """The context path with the concatenations materialised, as in the official code."""
    idx, s = topk_vector_reference(logits, k, scheme)
    m = torch.relu(torch.nn.functional.linear(torch.cat([s.to(g.dtype), g], 1), fc_weight, fc_bias))
    M = m.shape[1]
    stage = [m.to(w.dtype) @ w[:, -M:, 0, 0, 0].t() for w in stage_weights]
    cls = None
    if classifier_weight is not None:
        E = classifier_weight.shape[1] - M - s.shape[1]
        cls = torch.cat([m, s.to(m.dtype)], 1) @ classifier_weight[:, E:].t()
        if classifier_bias is not None:
            cls = cls + classifier_bias
    return ContextTerms(idx, s, m, stage, cls)
