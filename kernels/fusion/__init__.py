"""Context fusion `ReLU(W·[x ; m])` without materialising the broadcast concat.

Backends: "reference" (the official broadcast concat), "torch" (split weight, conv + per-video
bias), "triton" (`triton_fusion.py`: one GEMM with the bias + ReLU epilogue, imported on use).
`context_fusion_split` is the same GEMM taking the per-video term precomputed (the model computes
all of them at once with `s2d_kernels.context.context_terms`).

A 1×1×1 conv on `[x ; m]` equals `W_x·x + W_m·m`: the context part is one small GEMV per video,
added as a per-video bias. Weights stay in the official layout (one `[C, C+M, 1, 1, 1]` tensor),
split at run time, so official checkpoints load unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from s2d_kernels.backend import resolve_backend
from s2d_kernels.fusion.reference import context_fusion_concat

__all__ = ["context_fusion", "context_fusion_concat", "context_fusion_split", "context_bias"]


def context_bias(m: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-video context term `W_m·m` `[B, C]` from the official `[C, C+M, 1, 1, 1]` weight."""
    M = m.shape[1]
    return m.to(weight.dtype) @ weight[:, -M:, 0, 0, 0].t()


def context_fusion(x: torch.Tensor, m: torch.Tensor, weight: torch.Tensor, *, layout: str = "bcthw",
                   backend: str = "auto") -> torch.Tensor:
    """Fuse the context vector `m` `[B, M]` into features `x`.

    `layout` "bcthw": `x` `[B, C, T, h, w]` (X3D); "frames": `x` `[B*T, C, h, w]`, frames of a
    video contiguous (TSM). Returns the same layout.
    """
    _check_layout(layout)
    C, M = x.shape[1], m.shape[1]
    if weight.shape[:2] != (C, C + M):
        raise ValueError(f"fusion weight {tuple(weight.shape)} does not match features with {C} channels "
                         f"and a {M}-d context")
    backend = resolve_backend(backend, x.device)
    B = m.shape[0]
    if backend == "reference":
        if layout == "bcthw":
            return context_fusion_concat(x, m, weight)
        T = x.shape[0] // B
        x5 = x.view(B, T, C, *x.shape[2:]).transpose(1, 2)
        return context_fusion_concat(x5, m, weight).transpose(1, 2).reshape(x.shape)
    return context_fusion_split(x, context_bias(m, weight), weight, layout=layout, backend=backend)


def context_fusion_split(x: torch.Tensor, bias: torch.Tensor, weight: torch.Tensor, *, layout: str = "bcthw",
                         backend: str = "auto") -> torch.Tensor:
    """`ReLU(W_x·x + bias[video])`: the fusion GEMM with its per-video context term given.

    `bias` `[B, C]` is `W_m·m` computed elsewhere (`context_bias`, or all stages at once by
    `s2d_kernels.context.context_terms`); `weight` is the official `[C, C+M, 1, 1, 1]` tensor, of
    which only the x-columns are read. Layouts as `context_fusion`. Without m there is no concat to
    materialise, so "reference" runs the torch form.
    """
    _check_layout(layout)
    C, B = x.shape[1], bias.shape[0]
    if weight.shape[0] != C or weight.shape[1] < C or bias.dim() != 2 or bias.shape[1] != C:
        raise ValueError(f"fusion weight {tuple(weight.shape)} and bias {tuple(bias.shape)} do not match "
                         f"features with {C} channels")
    if (x.shape[0] % B) if layout == "frames" else (x.shape[0] != B):
        raise ValueError(f"features {tuple(x.shape)} ({layout}) do not hold the {B} videos of the bias")
    backend = resolve_backend(backend, x.device)
    if backend == "triton":
        from s2d_kernels.fusion.triton_fusion import context_fusion_triton

        return context_fusion_triton(x, weight[:, :C, 0, 0, 0], bias, layout=layout)
    wx = weight[:, :C]
    if layout == "bcthw":
        y = F.conv3d(x, wx) + bias[:, :, None, None, None]
    else:
        T = x.shape[0] // B
        y = F.conv2d(x, wx[..., 0]).view(B, T, C, *x.shape[2:]) + bias[:, None, :, None, None]
        y = y.view(x.shape)
    return F.relu(y)


def _check_layout(layout: str) -> None:
    if layout not in ("bcthw", "frames"):
        raise ValueError(f"layout must be 'bcthw' or 'frames', got {layout!r}")
