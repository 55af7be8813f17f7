"""Pretrained models: `s2d.load(name_or_path)`, `s2d.create(name)` and the zoo's status.

`load` accepts a zoo name, `hf-hub:org/repo[@revision]` or a local folder (see `s2d.hub._sources`
for how each is found and checked), builds the architecture its config describes
(`s2d.hub.builder`) and loads the weights strictly. Failures raise a `ZooError` subclass
(`s2d.hub.errors`) whose message says what to run. The returned model is in eval mode, on
`device`, with its label names (`model.labels`) and `model.weights_source` (where the weights
came from: name, repo, revision, sha256, file).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import nn

from s2d.hub._index import ZooEntry, load_index
from s2d.hub._sources import WeightsSource, attach, known_names, locate, resolve, zoo_dir
from s2d.hub.builder import build_model
from s2d.hub.errors import (ChecksumError, ConfigFileError, CorruptWeightsError, HubError, NoWeightsError,
                            UnknownModelError, WeightsMismatchError, WeightsUnavailableError, ZooError)
from s2d.hub.registry import MODELS, get_config
from s2d.hub.weights import WEIGHTS_NAME
from s2d.models.labels import class_names

if TYPE_CHECKING:
    from s2d.models.config import BaselineConfig, S2DConfig

__all__ = ["load", "create", "resolve", "zoo_dir", "known_names", "zoo_status", "WeightsSource", "ZooError",
           "UnknownModelError", "NoWeightsError", "WeightsUnavailableError", "HubError", "ChecksumError",
           "CorruptWeightsError", "ConfigFileError", "WeightsMismatchError"]


def load(name_or_path: str | os.PathLike, *, pretrained: bool = True, revision: str | None = None,
         device: str | torch.device | None = None, strict: bool = True, num_classes: int | None = None,
         labels: str | Sequence[str] | None = None) -> nn.Module:
    """A model by zoo name, `hf-hub:org/repo[@rev]` or local folder, in eval mode on `device`.

    `pretrained=False` builds the architecture only (random init) from the same config.
    `revision` overrides the zoo index's pinned revision (no checksum is known for other
    revisions). `strict=False` loads what fits and warns about the rest; keep it True unless you
    are deliberately loading a partial checkpoint. Raises a `ZooError` subclass on any failure.

    `num_classes` / `labels` (class names, or a shipped list's name; either gives the count) put
    the model onto other classes: every weight that fits loads strictly, the class-dependent ones
    are re-initialised (`s2d.hub.transfer`; named in a log line and in
    `model.weights_source.reinitialised`), and anything else that does not fit is still an error.
    """
    located = locate(name_or_path, pretrained=pretrained, revision=revision)
    trained_for = None
    if num_classes is not None or labels is not None:
        trained_for, located.config = located.config, with_classes(located.config, num_classes, labels)
    return attach(build_model(located.config), located, strict=strict, device=device, trained_for=trained_for)


def with_classes(config: S2DConfig | BaselineConfig, num_classes: int | None,
                 labels: str | Sequence[str] | None) -> S2DConfig | BaselineConfig:
    """`config` for other classes: `num_classes`, else the count of `labels`; `labels` replace the
    old class names (which name other classes); the top-k shrinks to the class count if it must."""
    if labels is not None and not isinstance(labels, str):
        labels = list(labels)
    if num_classes is None:
        num_classes = len(class_names(labels))
    changes: dict[str, Any] = {"num_classes": num_classes, "labels": labels}
    if getattr(config, "topk", 0) > num_classes:  # the synopsis cannot guess more classes than there are
        changes["topk"] = num_classes
    return config.replace(**changes)


def create(name: str, pretrained: bool = False, *, num_classes: int | None = None,
           labels: str | Sequence[str] | None = None, **overrides: Any) -> nn.Module:
    """Build a named variant (`s2d.list_models()`), random init, with config `overrides` (see
    `s2d.get_config`). `pretrained=True` loads its published weights instead (see `load`), onto
    other classes with `num_classes` / `labels`; other overrides change the architecture and cannot
    be combined with it."""
    if pretrained:
        if overrides:
            raise ValueError(f"overrides {sorted(overrides)} change the architecture; they cannot be combined with "
                             f"pretrained=True (num_classes= and labels= can)")
        return load(name, num_classes=num_classes, labels=labels)
    config = get_config(name, **overrides)
    if num_classes is not None or labels is not None:
        config = with_classes(config, num_classes, labels)
    return build_model(config)


@dataclass
class ZooStatus:
    """One row of `python -m s2d zoo list`."""

    name: str
    kind: str  # "s2dnet" or "baseline"
    published: ZooEntry | None  # index entry
    local: bool  # zoo/<name>/model.safetensors exists
    cached: bool  # the pinned weights are in the Hugging Face cache


def zoo_status() -> list[ZooStatus]:
    """Publication and local availability of every known model (no network access)."""
    from huggingface_hub import try_to_load_from_cache

    index = load_index()
    rows = []
    for name in known_names():
        entry = index.get(name)
        cached = False
        if entry is not None and not entry.bundled:
            hit = try_to_load_from_cache(entry.repo_id, WEIGHTS_NAME, revision=entry.revision)
            cached = isinstance(hit, str)
        kind = MODELS[name].kind if name in MODELS else "?"
        rows.append(ZooStatus(name, kind, entry, (zoo_dir() / name / WEIGHTS_NAME).is_file(), cached))
    return rows
