"""s2d_kernels: the compute kernels of S2DNet, each beside its pure-torch reference.

Sub-packages, one per op:

- `s2d_kernels.sampler`: the Gaussian filterbank detail sampler (and its linear-temporal ablation);
- `s2d_kernels.fusion`: context fusion, `ReLU(W · [x ; m])` computed as `ReLU(W_x·x + W_m·m)`.

Every op has one public function taking `backend="auto" | "torch" | "reference"` (the
environment variable `S2D_BACKEND` overrides "auto"). Importing this package never needs a GPU.
"""
from s2d_kernels.backend import BACKENDS, resolve_backend
from s2d_kernels.fusion import context_fusion
from s2d_kernels.sampler import SamplerParams, filterbank_sample

__all__ = ["BACKENDS", "resolve_backend", "SamplerParams", "filterbank_sample", "context_fusion"]
