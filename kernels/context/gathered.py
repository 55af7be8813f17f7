"""Fast context path, pure torch: k gathered weight columns instead of K-wide matmuls.

The K-wide parts of the official computation multiply a vector that is zero outside k entries
(the k-hot or masked-softmax `s`), so they reduce to gathering k weight columns:
`W_s·s = Σ_r s[idx_r]·W_s[:, idx_r]`. The same holds for the s-columns of the classifier, whose
`[m ; s]` part becomes one per-video term added to the per-frame feature logits instead of a
broadcast concatenation. Everything here is small per-video work (differentiable, any device).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["context_classifier_gathered", "synopsis_context_gathered", "topk_select"]


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


def synopsis_context_gathered(logits: torch.Tensor, g: torch.Tensor, k: int, fc_weight: torch.Tensor,
                              fc_bias: torch.Tensor | None,
                              scheme: str = "hard") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(topk, s, m)` with the s-columns of `W·[s ; g]` gathered."""
    K = logits.shape[1]
    idx, vals = topk_select(logits, k, scheme)
    s = torch.zeros(logits.shape, dtype=vals.dtype, device=logits.device).scatter(1, idx, vals)
    m = torch.relu(F.linear(g, fc_weight[:, K:], fc_bias) + _gather_columns(fc_weight[:, :K], idx, vals))
    return idx, s, m


def context_classifier_gathered(feats: torch.Tensor, m: torch.Tensor, s: torch.Tensor, topk: torch.Tensor,
                                weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Logits `[B, K]`: the feature columns per frame, averaged, plus the per-video `[m ; s]` term."""
    E, M = feats.shape[2], m.shape[1]
    term = m @ weight[:, E:E + M].t() + _gather_columns(weight[:, E + M:], topk, s.gather(1, topk))
    if bias is not None:
        term = term + bias
    per_frame = F.linear(feats, weight[:, :E])
    return per_frame.mean(1) + term.to(per_frame.dtype)
