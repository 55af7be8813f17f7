"""Optimiser and learning-rate schedule of the paper's recipe (supplement §3).

SGD with momentum; parameter groups by learning-rate ratio (name prefixes, e.g. the locator at
0.1× as the official SAMPLER_LR_RATIO) and by weight decay (none on biases and normalisation
layers); per-step cosine decay over the whole run after an optional linear warm-up.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from s2d.train.config import OptimSection

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def _match(name: str, ratios: dict[str, float]) -> tuple[str, float]:
    """(prefix, ratio) of the longest prefix of `ratios` naming `name` or a module above it;
    ("default", 1.0) when none does."""
    best, ratio = "default", 1.0
    for prefix, value in ratios.items():
        if (name == prefix or name.startswith(prefix + ".")) and (best == "default" or len(prefix) > len(best)):
            best, ratio = prefix, float(value)
    return best, ratio


def param_groups(model: nn.Module, cfg: OptimSection, lr: float) -> list[dict[str, Any]]:
    """Parameter groups in a fixed order (so optimizer states reload onto the same groups).

    Each group carries its `lr_ratio` (the scheduler scales `lr · lr_ratio`) and a readable
    `name` such as `"locator/no_decay"`. Every parameter is included, also those frozen for the
    moment (stage 1 freezes the locator; SGD skips parameters without gradients).
    """
    no_decay: set[int] = set()
    if not cfg.decay_bias_and_norm:
        for module in model.modules():
            for pname, p in module.named_parameters(recurse=False):
                if isinstance(module, _NORMS) or pname == "bias" or p.ndim <= 1:
                    no_decay.add(id(p))
    groups: dict[tuple[str, bool], dict[str, Any]] = {}
    for name, p in model.named_parameters():
        prefix, ratio = _match(name, cfg.lr_ratios)
        decay = id(p) not in no_decay
        group = groups.get((prefix, decay))
        if group is None:
            group = groups[(prefix, decay)] = {
                "params": [], "name": f"{prefix}/{'decay' if decay else 'no_decay'}", "lr": lr * ratio,
                "lr_ratio": ratio, "weight_decay": cfg.weight_decay if decay else 0.0}
        group["params"].append(p)
    return list(groups.values())


def build_optimizer(model: nn.Module, cfg: OptimSection, lr: float) -> torch.optim.SGD:
    """SGD over `param_groups`, at peak learning rate `lr` (already scaled for the batch)."""
    return torch.optim.SGD(param_groups(model, cfg, lr), lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


class WarmupCosine:
    """Learning-rate factor of step s: linear from `start` to 1 over `warmup` steps, then a
    cosine from 1 to `floor` at `total` steps. A plain object of numbers, so `LambdaLR` stores
    it in its state dict and the trainer state stays weights-only loadable."""

    def __init__(self, total: int, warmup: int = 0, start: float = 0.01, floor: float = 0.0):
        self.total, self.warmup, self.start, self.floor = int(total), int(warmup), float(start), float(floor)

    def __call__(self, step: int) -> float:
        if self.warmup > 0 and step < self.warmup:
            return self.start + (1.0 - self.start) * step / self.warmup
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimSection, steps_per_epoch: int,
                    epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step `WarmupCosine` over `epochs · steps_per_epoch` steps (stepped after every update)."""
    total = epochs * steps_per_epoch
    warmup = min(total, round(cfg.warmup_epochs * steps_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(total, warmup, cfg.warmup_start_factor,
                                                                     cfg.min_lr_ratio))
