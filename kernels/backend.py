"""Backend selection shared by every op: explicit argument, then `S2D_BACKEND`, then the device."""
from __future__ import annotations

import os

import torch

#: "reference": the dense algorithm exactly as the paper's code computes it (slow, for checks and
#: FLOP counts); "torch": the fast pure-torch path; "auto": the best available for the device.
BACKENDS = ("auto", "torch", "reference")


def resolve_backend(backend: str, device: torch.device) -> str:
    """Return the concrete backend ("torch" or "reference") for a call on `device`."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto":
        backend = os.environ.get("S2D_BACKEND", "auto").strip().lower() or "auto"
        if backend not in BACKENDS:
            raise ValueError(f"S2D_BACKEND={backend!r} is not one of {BACKENDS}")
    if backend == "auto":
        backend = "torch"
    return backend
