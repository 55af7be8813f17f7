"""Checks of a run's data against its model before any training: labels the classifier can hold.

A label at or past the model's class count only fails inside the loss, after the data loaded and
the first steps ran; `check_labels` finds it from what a dataset knows without reading a clip (its
`(path, label)` samples, or its class list), and `check_batch_labels` catches the rest per batch.
"""
from __future__ import annotations

from typing import Any

import torch

from s2d.train.errors import TrainConfigError

FIX = "set model.overrides.num_classes (or use data whose labels fit the model)"


def label_bound(dataset: Any) -> tuple[int, str] | None:
    """(largest label `dataset` may give, where that is known from), or None when it cannot tell
    without reading samples. Wrappers (`Subset`, procedural clips) are looked through."""
    for _ in range(8):  # a few wrapper levels at most
        samples = getattr(dataset, "samples", None)
        if isinstance(samples, list) and samples:  # `VideoDataset`s: (path, label) pairs
            try:
                top = max(int(label) for _, label in samples)
            except (TypeError, ValueError):
                top = None
            if top is not None:
                where = getattr(dataset, "list_file", None) or getattr(dataset, "root", None)
                return top, f"its samples{f' in {where}' if where else ''}"
        classes = getattr(dataset, "classes", None)
        if isinstance(classes, (list, tuple)) and classes:
            return len(classes) - 1, f"its {len(classes)} classes"
        inner = getattr(dataset, "source", None) or getattr(dataset, "dataset", None)
        if inner is None:
            return None
        dataset = inner
    return None


def check_labels(dataset: Any, num_classes: int, what: str, fix: str = FIX) -> None:
    """Refuse `dataset` (described as `what`, e.g. "data kind 'list' (train split)") when it has
    labels past the model's `num_classes`; `fix` says what to do."""
    found = label_bound(dataset)
    if found is not None and found[0] >= num_classes:
        top, where = found
        raise TrainConfigError(f"{what} has labels up to {top} ({where}), but the model has num_classes="
                               f"{num_classes} (labels 0..{num_classes - 1}); {fix}")


def check_batch_labels(labels: torch.Tensor, num_classes: int) -> None:
    """A training batch's labels (on the CPU) must lie in 0..num_classes-1."""
    if labels.numel() == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise ValueError(f"training samples need labels; got label {low} (an unlabelled split?)")
    if high >= num_classes:
        raise TrainConfigError(f"a training batch holds label {high}, but the model has num_classes={num_classes} "
                               f"(labels 0..{num_classes - 1}); {FIX}")
