"""Gaussian filterbank detail sampler: public entry point `filterbank_sample(..., backend=)`.

Layout of the op (as every op in `s2d_kernels`):

- `params.py`: the raw parameters `RawSampling`, their scaling to grids, input checks;
- `bands.py`: the one builder of filter rows (dense or banded) that every path uses;
- `reference.py`: the dense batched algorithm and the official-style per-video loop;
- `banded.py` + `banded_op.py`: the fast pure-torch path (banded spatial filters, fused uint8
  normalisation), and its custom-op registration with the entry point `filterbank_sample_banded`;
- `triton_sampler.py` + `triton_op.py`: the Triton kernels, and their custom-op registration with
  the entry point `filterbank_sample_triton`;
- `portable.py`: the torch path's values in plain tensor ops, which "torch" runs under
  `torch.export` (graphs for ONNX and other runtimes, which know no custom op).

The `*_op.py` modules are imported on first use: registering FLOP formulas imports
`torch.utils.flop_counter`, which imports Triton where it is installed, and importing this
package never does.
"""
from __future__ import annotations

from typing import Sequence

import torch

from s2d_kernels.backend import resolve_backend
from s2d_kernels.sampler.bands import filter_band
from s2d_kernels.sampler.normalize import normalize_frames
from s2d_kernels.sampler.params import RawSampling, check_layout, spatial_grid, temporal_grid
from s2d_kernels.sampler.reference import filterbank_sample_dense, filterbank_sample_per_video, filterbanks

__all__ = ["RawSampling", "filterbank_sample", "filter_band", "normalize_frames", "filterbanks",
           "spatial_grid", "temporal_grid", "filterbank_sample_dense", "filterbank_sample_per_video"]


def filterbank_sample(frames: torch.Tensor, num_frames: torch.Tensor, params: RawSampling,
                      out_size: int, *, mean: Sequence[float] | None = None,
                      std: Sequence[float] | None = None, temporal: str = "gaussian",
                      layout: str = "btchw", backend: str = "auto", sigma: float = 1.0) -> torch.Tensor:
    """Resample the dense clip into the detail volume V̂.

    Args:
        frames: `[B, T, 3, H, W]` uint8 (normalised here with `mean`/`std`) or float (taken as
            already normalised).
        num_frames: `[B]` valid lengths; frames past them are ignored.
        params: raw locator outputs (`RawSampling`), `T_d` output frames.
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
    backend = resolve_backend(backend, frames.device)
    if backend == "torch" and torch.compiler.is_exporting():
        # a graph for other runtimes: the same values in plain tensor ops, no custom op
        from s2d_kernels.sampler.portable import filterbank_sample_portable

        return filterbank_sample_portable(frames, num_frames, params, out_size, mean=mean, std=std,
                                          temporal=temporal, layout=layout, sigma=sigma)
    if backend == "torch":
        from s2d_kernels.sampler.banded_op import filterbank_sample_banded

        return filterbank_sample_banded(frames, num_frames, params, out_size, mean=mean, std=std,
                                        temporal=temporal, layout=layout, sigma=sigma)
    if backend == "triton":
        from s2d_kernels.sampler.triton_op import filterbank_sample_triton

        return filterbank_sample_triton(frames, num_frames, params, out_size, mean=mean, std=std,
                                        temporal=temporal, layout=layout, sigma=sigma)
    check_layout(layout)
    out = filterbank_sample_dense(normalize_frames(frames, mean, std), num_frames, params, out_size, temporal, sigma)
    return out.transpose(1, 2) if layout == "bcthw" else out
