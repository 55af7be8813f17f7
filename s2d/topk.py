"""Top-k actions of the synopsis net as the vector s fed to the locator, fusion and classifier."""
from __future__ import annotations

import torch

from s2d_kernels.context.reference import topk_vector_reference


def topk_vector(logits: torch.Tensor, k: int, scheme: str = "hard") -> tuple[torch.Tensor, torch.Tensor]:
    """Return (indices `[B, k]`, s `[B, K]`).

    Indices come from a descending sort (ties broken as `torch.sort` does, like the official code).
    "hard": s is the k-hot vector; "soft": the softmax of the logits masked to those k classes
    (`exp(x - max)·mask / (Σ + 1e-6)`, the official masked softmax). The arithmetic lives beside
    the fused context kernel, `s2d_kernels.context`.
    """
    return topk_vector_reference(logits, k, scheme)
