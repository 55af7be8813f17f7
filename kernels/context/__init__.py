"""Fused per-video context path: top-k → s → m → the context terms of every fusion stage.

The K-wide parts of the official computation multiply a vector that is zero outside k entries
(the k-hot or masked-softmax `s`), so they reduce to gathering k weight columns:
`W_s·s = Σ_r s[idx_r]·W_s[:, idx_r]`. The same holds for the s-columns of the classifier. The
m-parts become per-video biases (`W_m·m`), which the fusion GEMMs and the classifier add instead
of materialising broadcast concatenations. Everything here is small per-video work in torch
(differentiable, any device); the heavy per-pixel part is `s2d_kernels.fusion.context_fusion_split`.
"""
from __future__ import annotations

from typing import Sequence

import torch

from s2d_kernels.context.reference import ContextTerms, context_terms_reference, topk_vector_reference

__all__ = ["ContextTerms", "context_terms", "context_terms_reference", "topk_select", "topk_vector_reference"]


def topk_select(logits: torch.Tensor, k: int, scheme: str = "hard") -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k indices `[B, k]` and their entries of s `[B, k]` (1 for "hard"; the masked softmax
    for "soft"), without building the K-wide vector.

    Indices come from the same descending sort as the reference, so ties resolve identically.
    """
    if scheme not in ("hard", "soft"):
        raise ValueError(f"top-k scheme must be 'hard' or 'soft', got {scheme!r}")
    if not 1 <= k <= logits.shape[-1]:
        raise ValueError(f"k must lie in [1, {logits.shape[-1]}], got {k}")
    idx = torch.sort(logits, dim=-1, descending=True).indices[:, :k]
    if scheme == "hard":
        return idx, torch.ones(idx.shape, dtype=logits.dtype, device=logits.device)
    x = torch.exp(torch.gather(logits, 1, idx) - logits.max(-1, keepdim=True).values)
    return idx, x / (x.sum(-1, keepdim=True) + 1e-6)


def _gather_columns(weight: torch.Tensor, idx: torch.Tensor, vals: torch.Tensor) -> torch.Tensor:
    """`Σ_r vals[b, r] · weight[:, idx[b, r]]` → `[B, out]`: a K-wide matmul with a k-sparse vector."""
    cols = weight.t()[idx]  # [B, k, out]
    return torch.bmm(vals.to(cols.dtype).unsqueeze(1), cols).squeeze(1)


def context_terms(logits: torch.Tensor, g: torch.Tensor, k: int, fc_weight: torch.Tensor,
                  fc_bias: torch.Tensor | None, stage_weights: Sequence[torch.Tensor] = (),
                  classifier_weight: torch.Tensor | None = None, classifier_bias: torch.Tensor | None = None,
                  scheme: str = "hard") -> ContextTerms:
    """The per-video context terms from the synopsis outputs, gathering k columns for every s-part.

    Args:
        logits: synopsis logits `[B, K]`; g: pooled synopsis features `[B, F]`.
        k: how many top classes enter s; scheme: "hard" (k-hot) or "soft" (masked softmax).
        fc_weight, fc_bias: the context encoder, `[M, K + F]` (s columns first) and `[M]`.
        stage_weights: fusion conv weights `[C, C + M, 1, 1, 1]` (m columns last).
        classifier_weight, classifier_bias: the detail classifier `[K, E + M + K]` on
            `[feature ; m ; s]`, and its bias; the returned term is its per-video part plus bias.
    """
    K = logits.shape[1]
    if fc_weight.shape[1] != K + g.shape[1]:
        raise ValueError(f"context fc weight {tuple(fc_weight.shape)} does not take [s ; g] of width {K + g.shape[1]}")
    idx, vals = topk_select(logits, k, scheme)
    s = torch.zeros(logits.shape, dtype=vals.dtype, device=logits.device).scatter(1, idx, vals)
    pre = torch.nn.functional.linear(g, fc_weight[:, K:], fc_bias) + _gather_columns(fc_weight[:, :K], idx, vals)
    m = torch.relu(pre)
    M = m.shape[1]
    stage = [m.to(w.dtype) @ w[:, -M:, 0, 0, 0].t() for w in stage_weights]
    cls = None
    if classifier_weight is not None:
        E = classifier_weight.shape[1] - M - K
        if E < 0:
            raise ValueError(f"classifier weight {tuple(classifier_weight.shape)} is narrower than [m ; s]")
        cls = m @ classifier_weight[:, E:E + M].t() + _gather_columns(classifier_weight[:, E + M:], idx, vals)
        if classifier_bias is not None:
            cls = cls + classifier_bias
    return ContextTerms(idx, s, m, stage, cls)
