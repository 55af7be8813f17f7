"""Backend selection shared by every op: explicit argument, then `S2D_BACKEND`, then the device.

- "reference": the dense algorithm exactly as the paper's code computes it (slow; for checks and
  FLOP counts);
- "torch": the fast pure-torch path (any device);
- "triton": the Triton kernels (CUDA tensors, or CPU tensors under `TRITON_INTERPRET=1`);
- "auto": Triton for CUDA tensors when Triton is importable, the fast torch path otherwise.

`S2D_BACKEND` replaces "auto" only; it is a preference, so `S2D_BACKEND=triton` still runs the
torch path where Triton cannot run (CPU tensors), whereas an explicit `backend="triton"` raises.
Triton itself is imported lazily: importing s2d_kernels never needs a GPU or a Triton driver.
"""
from __future__ import annotations

import importlib.util
import os

import torch

BACKENDS = ("auto", "torch", "triton", "reference")

#: Whether the `triton` package is installed (looked up once, without importing it).
_TRITON_INSTALLED = importlib.util.find_spec("triton") is not None


def triton_importable() -> bool:
    """Whether the `triton` package is installed."""
    return _TRITON_INSTALLED


def triton_interpreted() -> bool:
    """Whether Triton kernels run in the CPU interpreter (`TRITON_INTERPRET=1`)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip() not in ("", "0")


def triton_usable(device: torch.device) -> bool:
    """Whether the Triton kernels can run on tensors of `device`."""
    if not triton_importable():
        return False
    return torch.device(device).type == "cuda" or triton_interpreted()


def resolve_backend(backend: str, device: torch.device) -> str:
    """Return the concrete backend ("torch", "triton" or "reference") for a call on `device`."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    device = torch.device(device)
    if backend == "auto":
        env = os.environ.get("S2D_BACKEND", "auto").strip().lower() or "auto"
        if env not in BACKENDS:
            raise ValueError(f"S2D_BACKEND={env!r} is not one of {BACKENDS}")
        if env == "triton" and not triton_usable(device):
            env = "torch"
        backend = env
    if backend == "auto":
        backend = "triton" if device.type == "cuda" and triton_usable(device) else "torch"
    if backend == "triton" and not triton_usable(device):
        why = "triton is not installed" if not triton_importable() else (
            f"tensors are on {device.type}; Triton needs CUDA tensors (or TRITON_INTERPRET=1)")
        raise RuntimeError(f"backend='triton' cannot run here: {why}")
    return backend
