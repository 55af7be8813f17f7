"""Context fusion `ReLU(W·[x ; m])`: public entry point `context_fusion(..., backend=)`.

Backends: "reference" (`reference.py`: the official broadcast concat), "torch" (`split.py`: split
weight, conv + per-video bias), "triton" (`triton_fusion.py` + `triton_op.py`: one GEMM with the
bias + ReLU epilogue; both imported on first use, as registering the op imports Triton).

A 1×1×1 conv on `[x ; m]` equals `W_x·x + W_m·m`: the context part is one small GEMV per video,
added as a per-video bias. Weights stay in the official layout (one `[C, C+M, 1, 1, 1]` tensor),
split at run time, so official checkpoints load unchanged.
"""
from __future__ import annotations

import torch

from s2d_kernels.backend import resolve_backend
from s2d_kernels.fusion.reference import context_fusion_concat
from s2d_kernels.fusion.split import context_bias, context_fusion_split

__all__ = ["context_fusion", "context_fusion_concat", "context_fusion_split", "context_bias"]


def context_fusion(x: torch.Tensor, m: torch.Tensor, weight: torch.Tensor, *, layout: str = "bcthw",
                   backend: str = "auto") -> torch.Tensor:
    """Fuse the context vector `m` `[B, M]` into features `x`.

    `layout` "bcthw": `x` `[B, C, T, h, w]` (X3D); "btchw": `x` `[B*T, C, h, w]`, a flattened
    `[B, T, C, h, w]` with each video's frames contiguous (TSM). Returns the same layout.
    """
    if layout not in ("bcthw", "btchw"):
        raise ValueError(f"layout must be 'bcthw' or 'btchw', got {layout!r}")
    C, (B, M) = x.shape[1], m.shape
    if weight.shape[:2] != (C, C + M):
        raise ValueError(f"fusion weight {tuple(weight.shape)} does not match features with {C} channels "
                         f"and a {M}-d context")
    if (x.shape[0] % B) if layout == "btchw" else (x.shape[0] != B):
        raise ValueError(f"features {tuple(x.shape)} ({layout}) do not hold the {B} videos of the context")
    backend = resolve_backend(backend, x.device)
    if backend == "reference":
        if layout == "bcthw":
            return context_fusion_concat(x, m, weight)
        T = x.shape[0] // B
        x5 = x.view(B, T, C, *x.shape[2:]).transpose(1, 2)
        return context_fusion_concat(x5, m, weight).transpose(1, 2).reshape(x.shape)
    bias = context_bias(m, weight)
    if backend == "triton":
        from s2d_kernels.fusion.triton_op import context_fusion_triton

        return context_fusion_triton(x, weight[:, :C, 0, 0, 0], bias, layout=layout)
    return context_fusion_split(x, bias, weight, layout=layout)
