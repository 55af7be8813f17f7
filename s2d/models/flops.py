"""Parameter and multiply-accumulate counts, split by component, via `torch.utils.flop_counter`.

GMACs are FlopCounterMode's total / 2 on the dense reference path (the official algorithm:
broadcast-concat fusion, dense filterbank sampler), per video, for the model's dense input.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

#: Components reported for an S2DNet, by top-level module name.
S2D_PARTS = {"synopsis": "synopsis", "locator": "locator", "context": "context", "sampler": "sampler",
             "detail": "detail"}


@dataclass
class Complexity:
    """Parameters and GMACs per video, in total and per component."""

    params: int
    gmacs: float
    params_by_part: dict[str, int] = field(default_factory=dict)
    gmacs_by_part: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"params": self.params, "gmacs": self.gmacs, "params_by_part": self.params_by_part,
                "gmacs_by_part": self.gmacs_by_part}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _dense_input(model: nn.Module, batch: int = 1) -> torch.Tensor:
    c = model.config
    return torch.zeros(batch, c.dense_frames, 3, c.dense_size, c.dense_size, dtype=torch.uint8)


#: Modules registering the FLOP formulas of the custom ops each backend runs.
_OP_MODULES = {"torch": ("s2d_kernels.sampler.banded_op",),
               "triton": ("s2d_kernels.sampler.triton_op", "s2d_kernels.fusion.triton_op")}


def _import_ops(backend: str, device: torch.device) -> None:
    """Register the formulas of `backend`'s custom ops before counting: FlopCounterMode copies the
    registry when it is created, so an op first imported inside it would count as zero."""
    from s2d_kernels.backend import resolve_backend

    for name in _OP_MODULES.get(resolve_backend(backend, device), ()):
        importlib.import_module(name)


def measure(model: nn.Module, frames: torch.Tensor | None = None, backend: str = "reference") -> Complexity:
    """Count parameters and per-video GMACs of one eval forward on `frames` (default: the dense
    input of the model's config, batch 1). S2DNet parts: synopsis, locator, context, sampler,
    detail (fusion reported separately as `fusion`, and included in `detail`)."""
    frames = _dense_input(model) if frames is None else frames
    _import_ops(backend, frames.device)
    was_training = model.training
    old_backend = getattr(model, "backend", None)
    model.eval()
    if old_backend is not None:
        model.backend = backend
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(frames)
    finally:
        model.train(was_training)
        if old_backend is not None:
            model.backend = old_backend
    per_video = 2.0 * frames.shape[0] * 1e9
    counts = counter.get_flop_counts()
    total = sum(counter.get_flop_counts().get("Global", {}).values()) / per_video
    gmacs_by_part: dict[str, float] = {}
    params_by_part: dict[str, int] = {}
    root = type(model).__name__
    for name, module in model.named_children():
        key = f"{root}.{name}"
        gmacs_by_part[name] = sum(counts.get(key, {}).values()) / per_video
        params_by_part[name] = count_params(module)
    fusion_keys = [k for k in counts if k.startswith(f"{root}.detail.fusion.") and k.count(".") == 3]
    if fusion_keys:
        gmacs_by_part["fusion"] = sum(sum(counts[k].values()) for k in fusion_keys) / per_video
        params_by_part["fusion"] = count_params(model.detail.fusion)
    return Complexity(count_params(model), total, params_by_part, gmacs_by_part)
