"""s2d_kernels: the compute kernels of S2DNet, each beside its pure-torch reference.

Sub-packages, one per op:

- `s2d_kernels.sampler`: the Gaussian filterbank detail sampler (and its linear-temporal ablation):
  dense reference and official-style per-video loop (`reference.py`), the fast banded torch path
  (`banded.py`) and the Triton kernels (`triton_sampler.py`);
- `s2d_kernels.fusion`: context fusion, `ReLU(W · [x ; m])` computed as `ReLU(W_x·x + W_m·m)`
  (torch, and a Triton GEMM with the bias + ReLU epilogue in `triton_fusion.py`);
- `s2d_kernels.context`: the per-video context path (top-k → s → m → the context term of every
  fusion stage and of the classifier), gathering k weight columns instead of K-wide matmuls.

Every op has one public function taking `backend="auto" | "torch" | "triton" | "reference"`
(see `s2d_kernels.backend`; `S2D_BACKEND` overrides "auto"). The heavy parts are registered as
`torch.library` custom ops with fake impls, autograd and FLOP formulas (`s2d_kernels.ops`).
`s2d_kernels.aot` compiles the Triton kernels for sm_80/sm_90 without a GPU, and
`python -m s2d_kernels.sampler.bench` times the CPU sampler paths. Importing this package never
needs a GPU or Triton.
"""
from s2d_kernels.backend import BACKENDS, resolve_backend
from s2d_kernels.fusion import context_fusion
from s2d_kernels.sampler import SamplerParams, filterbank_sample

__all__ = ["BACKENDS", "resolve_backend", "SamplerParams", "filterbank_sample", "context_fusion"]
