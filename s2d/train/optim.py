"""Optimiser, gradient clipping and learning-rate schedule (supplement §3, and AdamW).

SGD with momentum (the paper's) or AdamW; parameter groups by learning-rate ratio (name
prefixes, e.g. the locator at 0.1× as the official SAMPLER_LR_RATIO) and by weight decay (none
on biases and normalisation layers); gradient-norm clipping, optionally apart per name prefix;
per-step cosine decay after an optional linear warm-up, over the whole run or per stage.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

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


def build_optimizer(model: nn.Module, cfg: OptimSection, lr: float) -> torch.optim.Optimizer:
    """`cfg.name` ("sgd" or "adamw") over `param_groups`, at peak learning rate `lr` (already
    scaled for the batch). AdamW's weight decay is decoupled: `lr · weight_decay · w` per step."""
    groups = param_groups(model, cfg, lr)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


def clip_gradients(model: nn.Module, clip: float | None, groups: dict[str, float] | None = None) -> torch.Tensor:
    """Clip gradient norms in place; returns the total norm before clipping.

    Parameters under a prefix of `groups` are clipped to that group's norm on their own, the rest
    together to `clip` (None: not clipped). A part whose gradient is orders of magnitude larger
    (the locator's, normalised per video) would otherwise shrink everyone's update to nothing.
    """
    parts: dict[str, list[torch.Tensor]] = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            prefix, _ = _match(name, groups or {})
            parts.setdefault(prefix, []).append(p)
    norms = []
    for prefix, params in parts.items():
        limit = clip if prefix == "default" else (groups or {})[prefix]
        norms.append(torch.nn.utils.clip_grad_norm_(params, limit if limit is not None else math.inf))
    if not norms:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))


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


class Restarted:
    """`WarmupCosine` schedules one after another: segment i lasts `lengths[i]` steps (a plain
    object of numbers, like `WarmupCosine`)."""

    def __init__(self, lengths: Sequence[int], warmups: Sequence[int], start: float = 0.01, floor: float = 0.0):
        self.lengths, self.warmups = [int(n) for n in lengths], [int(w) for w in warmups]
        self.start, self.floor = float(start), float(floor)

    def __call__(self, step: int) -> float:
        for length, warmup in zip(self.lengths, self.warmups):
            if step < length:
                return WarmupCosine(length, warmup, self.start, self.floor)(step)
            step -= length
        return self.floor


def warmup_steps(cfg: OptimSection, total: int, steps_per_epoch: int) -> int:
    """Warm-up length of a schedule of `total` steps: `warmup_epochs` or `warmup_fraction` of it
    (at least one step when the fraction is set)."""
    if cfg.warmup_fraction:
        return min(total, max(1, int(cfg.warmup_fraction * total)))
    return min(total, round(cfg.warmup_epochs * steps_per_epoch))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimSection, steps_per_epoch: int,
                    epochs: int | Sequence[int]) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step `WarmupCosine` over `epochs · steps_per_epoch` steps (stepped after every update).

    `epochs` may list the stages' epochs; with `cfg.restart_per_stage` each stage then gets a
    schedule of its own.
    """
    stages = [epochs] if isinstance(epochs, int) else [e for e in epochs if e > 0]
    lengths = [e * steps_per_epoch for e in stages] if cfg.restart_per_stage else [sum(stages) * steps_per_epoch]
    warmups = [warmup_steps(cfg, n, steps_per_epoch) for n in lengths]
    if len(lengths) == 1:
        schedule = WarmupCosine(lengths[0], warmups[0], cfg.warmup_start_factor, cfg.min_lr_ratio)
    else:
        schedule = Restarted(lengths, warmups, cfg.warmup_start_factor, cfg.min_lr_ratio)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
