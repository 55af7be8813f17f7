"""Top-k actions of the synopsis net as the vector s fed to the locator, fusion and classifier."""
from __future__ import annotations

import torch


def topk_vector(logits: torch.Tensor, k: int, scheme: str = "hard") -> tuple[torch.Tensor, torch.Tensor]:
    """Return (indices `[B, k]`, s `[B, K]`).

    Indices come from a descending sort (ties broken as `torch.sort` does, like the official code).
    "hard": s is the k-hot vector; "soft": the softmax of the logits masked to those k classes
    (`exp(x - max)·mask / (Σ + 1e-6)`, the official masked softmax).
    """
    if scheme not in ("hard", "soft"):
        raise ValueError(f"top-k scheme must be 'hard' or 'soft', got {scheme!r}")
    idx = torch.sort(logits, dim=-1, descending=True).indices[:, :k]
    khot = torch.zeros_like(logits, dtype=torch.float32).scatter_(1, idx, 1.0)
    if scheme == "hard":
        return idx, khot.to(logits.dtype)
    x = torch.exp(logits - logits.max(-1, keepdim=True).values) * khot
    return idx, x / (x.sum(-1, keepdim=True) + 1e-6)
