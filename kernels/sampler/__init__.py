"""Gaussian filterbank detail sampler: public entry point `filterbank_sample`.

Implementations: `reference.py` (dense batched algorithm and the official-style per-video loop),
`banded.py` (the fast pure-torch path: banded spatial filters, fused uint8 normalisation) and
`triton_sampler.py` (Triton forward and backward kernels, imported only when used).
"""
from __future__ import annotations

from typing import Sequence

import torch

from s2d_kernels.backend import resolve_backend
from s2d_kernels.sampler.banded import filterbank_sample_banded
from s2d_kernels.sampler.reference import (
    SamplerParams,
    filterbank_sample_dense,
    filterbank_sample_per_video,
    filterbanks,
    spatial_grid,
    temporal_grid,
)

__all__ = ["SamplerParams", "filterbank_sample", "normalize_frames", "filterbanks", "spatial_grid",
           "temporal_grid", "filterbank_sample_dense", "filterbank_sample_per_video",
           "filterbank_sample_banded"]


def normalize_frames(frames: torch.Tensor, mean: Sequence[float] | None, std: Sequence[float] | None,
                     channel_dim: int = 2) -> torch.Tensor:
    """uint8 frames → float32 `(x/255 - mean)/std`; float frames are returned as they are."""
    if frames.dtype != torch.uint8:
        return frames
    if mean is None or std is None:
        raise ValueError("uint8 frames need the model's mean and std to be normalised")
    shape = [1] * frames.dim()
    shape[channel_dim] = -1
    m = torch.tensor(mean, dtype=torch.float32, device=frames.device).view(shape)
    s = torch.tensor(std, dtype=torch.float32, device=frames.device).view(shape)
    return (frames.to(torch.float32) / 255.0 - m) / s


def filterbank_sample(frames: torch.Tensor, num_frames: torch.Tensor, params: SamplerParams,
                      out_size: int, *, mean: Sequence[float] | None = None,
                      std: Sequence[float] | None = None, temporal: str = "gaussian",
                      layout: str = "btchw", backend: str = "auto", sigma: float = 1.0) -> torch.Tensor:
    """Resample the dense clip into the detail volume V̂.

    Args:
        frames: `[B, T, 3, H, W]` uint8 (normalised here with `mean`/`std`) or float (taken as
            already normalised).
        num_frames: `[B]` valid lengths; frames past them are ignored.
        params: raw locator outputs (`SamplerParams`), `T_d` output frames.
        out_size: output side S.
        temporal: "gaussian" (S2DNet) or "linear" (the interpolation ablation).
        sigma: width in pixels of the spatial Gaussian rows, in (0, 1]; 1 is the official σ² = 1.
        layout: "btchw" → `[B, T_d, 3, S, S]` (TSM), "bcthw" → `[B, 3, T_d, S, S]` (X3D).
        backend: "auto" | "torch" | "triton" | "reference" (see `s2d_kernels.backend`): "torch"
            is the banded pure-torch path, "triton" the Triton kernels, "reference" the dense
            batched algorithm.

    Returns float32 (float64 for a float64 clip on the torch path). Gradients reach the six raw
    parameters and float frames on every backend.
    """
    if layout not in ("btchw", "bcthw"):
        raise ValueError(f"layout must be 'btchw' or 'bcthw', got {layout!r}")
    backend = resolve_backend(backend, frames.device)
    if backend == "torch":
        return filterbank_sample_banded(frames, num_frames, params, out_size, mean=mean, std=std,
                                        temporal=temporal, layout=layout, sigma=sigma)
    if backend == "triton":
        from s2d_kernels.sampler.triton_sampler import filterbank_sample_triton

        return filterbank_sample_triton(frames, num_frames, params, out_size, mean=mean, std=std,
                                        temporal=temporal, layout=layout, sigma=sigma)
    x = normalize_frames(frames, mean, std)
    out = filterbank_sample_dense(x, num_frames, params, out_size, temporal, sigma)
    return out.transpose(1, 2) if layout == "bcthw" else out
