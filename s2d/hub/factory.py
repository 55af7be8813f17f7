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
from typing import Any

import torch
from torch import nn

from s2d.hub._index import ZooEntry, load_index
from s2d.hub._sources import WeightsSource, attach, known_names, locate, resolve, zoo_dir
from s2d.hub.builder import build_model
from s2d.hub.errors import (ChecksumError, ConfigFileError, CorruptWeightsError, HubError, NoWeightsError,
                            UnknownModelError, WeightsMismatchError, WeightsUnavailableError, ZooError)
from s2d.hub.registry import MODELS, get_config
from s2d.hub.weights import WEIGHTS_NAME

__all__ = ["load", "create", "resolve", "zoo_dir", "known_names", "zoo_status", "WeightsSource", "ZooError",
           "UnknownModelError", "NoWeightsError", "WeightsUnavailableError", "HubError", "ChecksumError",
           "CorruptWeightsError", "ConfigFileError", "WeightsMismatchError"]


def load(name_or_path: str | os.PathLike, *, pretrained: bool = True, revision: str | None = None,
         device: str | torch.device | None = None, strict: bool = True) -> nn.Module:
    """A model by zoo name, `hf-hub:org/repo[@rev]` or local folder, in eval mode on `device`.

    `pretrained=False` builds the architecture only (random init) from the same config.
    `revision` overrides the zoo index's pinned revision (no checksum is known for other
    revisions). `strict=False` loads what fits and warns about the rest; keep it True unless you
    are deliberately loading a partial checkpoint. Raises a `ZooError` subclass on any failure.
    """
    located = locate(name_or_path, pretrained=pretrained, revision=revision)
    return attach(build_model(located.config), located, strict=strict, device=device)


def create(name: str, pretrained: bool = False, **overrides: Any) -> nn.Module:
    """Build a named variant (`s2d.list_models()`), random init, with config `overrides` (see
    `s2d.get_config`). `pretrained=True` loads its published weights instead (see `load`)."""
    if pretrained:
        if overrides:
            raise ValueError("overrides change the architecture; they cannot be combined with pretrained=True")
        return load(name)
    return build_model(get_config(name, **overrides))


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
