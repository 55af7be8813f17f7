"""s2d_kernels: the compute kernels of S2DNet, each beside its pure-torch reference.

Sub-packages, one per op, all of the same shape: `reference.py` (the official algebra), the fast
paths beside it, their `torch.library` registrations beside them (`*_op.py`: fake impls,
autograd, FLOP formulas), and one public function in `__init__.py` taking
`backend="auto" | "torch" | "triton" | "reference"` (see `s2d_kernels.backend`; `S2D_BACKEND`
overrides "auto") that dispatches once:

- `s2d_kernels.sampler.filterbank_sample`: the Gaussian filterbank detail sampler (and its
  linear-temporal ablation): dense reference, banded torch path, Triton kernels; every path
  builds its filter rows with `sampler.bands`;
- `s2d_kernels.fusion.context_fusion`: context fusion `ReLU(W · [x ; m])` computed as
  `ReLU(W_x·x + W_m·m)` (torch, and a Triton GEMM with the bias + ReLU epilogue);
- `s2d_kernels.context.synopsis_context` / `context_classifier`: the per-video context path
  (top-k → s → m, and the classifier on `[feature ; m ; s]`), gathering k weight columns instead
  of K-wide matmuls (small per-video work: "triton" runs the same torch code).

`s2d_kernels.aot` compiles the Triton kernels for sm_80/sm_90 without a GPU (`python -m s2d.bench
--only kernels,sampler` times the paths). Importing this package never needs a GPU or Triton.
"""
from s2d_kernels.backend import BACKENDS, resolve_backend
from s2d_kernels.context import context_classifier, synopsis_context
from s2d_kernels.fusion import context_fusion
from s2d_kernels.sampler import RawSampling, filterbank_sample

__all__ = ["BACKENDS", "resolve_backend", "RawSampling", "filterbank_sample", "context_fusion",
           "synopsis_context", "context_classifier"]
