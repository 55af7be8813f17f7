"""Evaluation: top-1/top-5 of the detail net (the prediction) and the synopsis net, multi-clip.

The result does not depend on the evaluation batch size or on how many ranks share the work:
the model runs in eval mode (per-sample computation), every sample's softmax is collected with
its index, predictions from all ranks are gathered and sorted by index (each sample counted
exactly once, no sampler padding), views are averaged in view order, and accuracy is counted
over samples, never averaged over batches. (Floating-point kernels may round the last bits of a
probability differently for different batch shapes; the metrics are counts and do not move.)
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from s2d.train.datasets import get_view, supports_views
from s2d.train.distributed import DistEnv, all_gather_objects, gather_rows
from s2d.train.loader import EVAL_EPOCH, collate_samples, model_inputs, seeded
from s2d.train.metrics import topk_correct
from s2d.train.signals import ignore_stop_signals


@dataclass
class EvalResult:
    """Accuracies in percent over the labelled, readable samples, and the per-sample predictions.

    `indices` are dataset positions (sorted), `probs` the detail net's softmax averaged over the
    views, `snet_probs` the synopsis net's (None for single-network models). `failed` lists
    `(index, path, reason)` of samples that could not be read (left out of the metrics);
    `unlabelled` counts samples with label -1 (also left out).
    """

    samples: int
    dnet_top1: float | None
    dnet_top5: float | None
    snet_top1: float | None
    snet_top5: float | None
    clips: int = 1
    unlabelled: int = 0
    failed: list[tuple[int, str, str]] = field(default_factory=list)
    indices: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    snet_probs: torch.Tensor | None = None

    def metrics(self) -> dict[str, Any]:
        """The summary numbers (JSON-serialisable)."""
        return {"samples": self.samples, "dnet_top1": self.dnet_top1, "dnet_top5": self.dnet_top5,
                "snet_top1": self.snet_top1, "snet_top5": self.snet_top5, "clips": self.clips,
                "unlabelled": self.unlabelled, "failed": len(self.failed)}


class _ViewItems(Dataset):
    """Item `i` is view `i % clips` of sample `i // clips`; its `index` field becomes `i`."""

    def __init__(self, dataset: Dataset, clips: int, seed: int):
        self.dataset, self.clips, self.seed = dataset, clips, seed

    def __len__(self) -> int:
        return len(self.dataset) * self.clips

    def __getitem__(self, item: int) -> dict[str, Any]:
        with seeded(self.seed, EVAL_EPOCH, item):
            sample = get_view(self.dataset, item // self.clips, item % self.clips, self.clips)
        return {**sample, "index": item}


def _env_for(device: torch.device) -> DistEnv:
    if dist.is_available() and dist.is_initialized():
        backend = dist.get_backend()
        return DistEnv(dist.get_rank(), dist.get_world_size(), 0, device, backend, False)
    return DistEnv(0, 1, 0, device)


def _autocast(device: torch.device, amp: str):
    if device.type != "cuda" or amp == "none":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 8, clips: int = 1, *,
             device: torch.device | str | None = None, workers: int = 0, amp: str = "none",
             env: DistEnv | None = None, seed: int = 0, progress: bool = False,
             should_stop: Callable[[], bool] | None = None) -> EvalResult | None:
    """Top-1/top-5 of `model` on `dataset`, averaging the softmax over `clips` temporal views.

    `batch_size` is per rank. Under torch.distributed (an initialised process group, or `env`)
    every rank evaluates a disjoint share and all ranks return the same, complete result.
    `amp` ("bf16"/"fp16") applies autocast on CUDA. The model's train/eval mode is restored.
    `should_stop` (a collective under DDP) is asked after every batch, as often on every rank;
    when it says so the pass ends early and returns None (a training run stopped by a signal).
    """
    if batch_size < 1 or clips < 1:
        raise ValueError(f"batch_size and clips must be >= 1, got {batch_size} and {clips}")
    if clips > 1 and not supports_views(dataset):
        raise ValueError(f"{type(dataset).__name__} offers no temporal views; use clips=1")
    num_classes = _num_classes(model)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    env = env or _env_for(device)
    items = _ViewItems(dataset, clips, seed)
    share = list(range(env.rank, len(items), env.world_size))
    loader = DataLoader(items, batch_size=batch_size, sampler=share, num_workers=workers,
                        collate_fn=collate_samples, pin_memory=device.type == "cuda",
                        worker_init_fn=ignore_stop_signals if workers else None)
    # Rank 0 holds the largest share: every rank asks `should_stop` as many times as it has batches.
    rounds = math.ceil(math.ceil(len(items) / env.world_size) / batch_size)
    stopped = False
    was_training = model.training
    model.eval()
    ids, labels, probs, snet_probs = [], [], [], []
    failed: list[tuple[int, str, str]] = []
    bar = None
    if progress and env.is_main:
        from tqdm import tqdm

        bar = tqdm(total=len(loader), desc="eval", unit="batch", leave=False)
    try:
        with torch.inference_mode():
            for batch in loader:
                ok = [i for i, err in enumerate(batch["errors"]) if err is None]
                for i, err in enumerate(batch["errors"]):
                    if err is not None:
                        failed.append((int(batch["indices"][i]) // clips, batch["paths"][i], err))
                if ok:
                    if len(ok) < len(batch["errors"]):
                        from s2d.data import drop_failed

                        batch = drop_failed(batch)
                    frames, num_frames, _ = model_inputs(batch, device)
                    with _autocast(device, amp):
                        out = model(frames, num_frames)
                    ids.append(batch["indices"])
                    labels.append(batch["labels"])
                    probs.append(out.logits.float().softmax(-1).cpu())
                    if hasattr(out, "snet_logits"):
                        snet_probs.append(out.snet_logits.float().softmax(-1).cpu())
                if bar is not None:
                    bar.update(1)
                rounds -= 1
                if should_stop is not None and should_stop():
                    stopped = True
                    break
            while should_stop is not None and not stopped and rounds > 0:
                rounds -= 1
                stopped = should_stop()
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
    if stopped:
        return None
    rows = {"ids": _cat(ids, (0,), torch.long), "labels": _cat(labels, (0,), torch.long),
            "probs": _cat(probs, (0, num_classes), torch.float32)}
    # Decided from the config, not from this rank's outputs, so every rank gathers the same keys.
    if getattr(getattr(model, "config", None), "kind", None) == "s2dnet":
        rows["snet"] = _cat(snet_probs, (0, num_classes), torch.float32)
    rows = gather_rows(env, rows)
    failed = sorted({f for part in all_gather_objects(env, failed) for f in part})
    return _summarise(rows, clips, failed)


def _num_classes(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "num_classes"):
        raise TypeError(f"evaluate needs an s2d model (with .config.num_classes), got {type(model).__name__}")
    return int(config.num_classes)


def _cat(parts: list[torch.Tensor], empty: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.cat(parts) if parts else torch.zeros(empty, dtype=dtype)


def _average_views(ids: torch.Tensor, values: torch.Tensor, clips: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample mean over the views present, in view order (ids sorted); returns (samples, means)."""
    samples = ids // clips
    if clips == 1:
        return samples, values
    unique, counts = torch.unique_consecutive(samples, return_counts=True)
    if bool((counts == clips).all()):
        return unique, values.view(len(unique), clips, -1).mean(1)
    means = torch.stack([chunk.mean(0) for chunk in values.split(counts.tolist())])
    return unique, means


def _summarise(rows: dict[str, torch.Tensor], clips: int, failed: list[tuple[int, str, str]]) -> EvalResult:
    order = torch.argsort(rows["ids"], stable=True)
    ids = rows["ids"][order]
    if ids.numel() and bool((ids[1:] == ids[:-1]).any()):
        raise RuntimeError("evaluation saw a sample twice: the shards overlap")
    indices, probs = _average_views(ids, rows["probs"][order], clips)
    _, label_rows = _average_views(ids, rows["labels"][order].view(-1, 1).double(), clips)
    labels = label_rows.view(-1).long()
    snet = _average_views(ids, rows["snet"][order], clips)[1] if "snet" in rows else None
    # A sample with an unreadable view is left out altogether, so every counted sample has all views.
    bad = {f[0] for f in failed}
    keep = torch.tensor([int(i) not in bad for i in indices.tolist()], dtype=torch.bool)
    indices, probs, labels = indices[keep], probs[keep], labels[keep]
    snet = snet[keep] if snet is not None else None
    labelled = labels >= 0
    n = int(labelled.sum())

    def acc(p: torch.Tensor | None) -> tuple[float | None, float | None]:
        if p is None or n == 0:
            return None, None
        c1, c5 = topk_correct(p[labelled], labels[labelled])
        return 100.0 * int(c1) / n, 100.0 * int(c5) / n

    d1, d5 = acc(probs)
    s1, s5 = acc(snet)
    return EvalResult(samples=n, dnet_top1=d1, dnet_top5=d5, snet_top1=s1, snet_top5=s5, clips=clips,
                      unlabelled=int((~labelled).sum()), failed=failed, indices=indices, labels=labels,
                      probs=probs, snet_probs=snet)
