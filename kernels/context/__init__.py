"""Per-video context path: top-k → s → m, and the detail classifier on `[feature ; m ; s]`.

Two public functions, each with `backend=`: `synopsis_context` (the synopsis logits and pooled
features → top-k indices, s and m) and `context_classifier` (per-frame detail features → logits).
"reference" (`reference.py`) materialises the concatenations as the official code does; "torch"
and "triton" (`gathered.py`: small per-video work, the same torch code on every device) gather
the k weight columns that a k-sparse s selects instead of K-wide matmuls. The per-pixel fusion of
m into detail-net stages is `s2d_kernels.fusion.context_fusion`.
"""
from __future__ import annotations

import torch

from s2d_kernels.backend import resolve_backend
from s2d_kernels.context.gathered import context_classifier_gathered, synopsis_context_gathered, topk_select
from s2d_kernels.context.reference import context_classifier_reference, synopsis_context_reference, topk_vector

__all__ = ["context_classifier", "synopsis_context", "topk_select", "topk_vector"]


def synopsis_context(logits: torch.Tensor, g: torch.Tensor, k: int, fc_weight: torch.Tensor,
                     fc_bias: torch.Tensor | None, *, scheme: str = "hard",
                     backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k indices `[B, k]`, s `[B, K]` and the context vector `m = ReLU(W·[s ; g] + b)` `[B, M]`.

    Args:
        logits: synopsis logits `[B, K]`; g: pooled synopsis features `[B, F]`.
        k: how many top classes enter s; scheme: "hard" (k-hot) or "soft" (masked softmax).
        fc_weight, fc_bias: the context encoder, `[M, K + F]` (s columns first) and `[M]`.
        backend: "reference" (the K-wide matmul on `[s ; g]`) or a fast one (k gathered columns).
    """
    K = logits.shape[1]
    if fc_weight.shape[1] != K + g.shape[1]:
        raise ValueError(f"context fc weight {tuple(fc_weight.shape)} does not take [s ; g] of width {K + g.shape[1]}")
    if resolve_backend(backend, logits.device) == "reference":
        return synopsis_context_reference(logits, g, k, fc_weight, fc_bias, scheme)
    return synopsis_context_gathered(logits, g, k, fc_weight, fc_bias, scheme)


def context_classifier(feats: torch.Tensor, m: torch.Tensor, s: torch.Tensor, topk: torch.Tensor,
                       weight: torch.Tensor, bias: torch.Tensor | None, *, backend: str = "auto") -> torch.Tensor:
    """Logits `[B, K]` of the classifier on `[feature ; m ; s]` per frame, averaged over time.

    `feats` `[B, T', E]`; `m`, `s`, `topk` from `synopsis_context`; `weight` `[K, E + M + K]`.
    "reference" concatenates per frame; the fast backends add `W_m·m + W_s·s + b` once per video.
    """
    E, M, K = feats.shape[2], m.shape[1], s.shape[1]
    if weight.shape[1] != E + M + K:
        raise ValueError(f"classifier weight {tuple(weight.shape)} does not take [feature ; m ; s] of width "
                         f"{E} + {M} + {K}")
    if resolve_backend(backend, feats.device) == "reference":
        return context_classifier_reference(feats, m, s, weight, bias)
    return context_classifier_gathered(feats, m, s, topk, weight, bias)
