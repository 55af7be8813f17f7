"""The zoo index: which named models have published weights, where, and their checksums.

Each entry maps a model name to its Hub repo id, the pinned revision, and the sha256 and size of
its `model.safetensors`. A model without an entry has no published weights yet.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class ZooEntry:
    repo_id: str
    revision: str
    sha256: str
    size: int


def load_index() -> dict[str, ZooEntry]:
    """Read the shipped index (`s2d/zoo_index.json`)."""
    path = resources.files("s2d").joinpath("zoo_index.json")
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {name: ZooEntry(**entry) for name, entry in data.items()}


def has_weights(name: str) -> bool:
    return name in load_index()
