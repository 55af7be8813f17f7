"""Class names: the lists shipped with the package (`s2d/models/label_lists/<name>.txt`, one name per
line), and the names a config's `labels` gives (a shipped list's name, or the names themselves)."""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import resources


def available_label_sets() -> list[str]:
    """Names of the shipped lists, e.g. `kinetics400`, `sthv2`."""
    return sorted(p.name[:-4] for p in resources.files("s2d.models").joinpath("label_lists").iterdir() if p.name.endswith(".txt"))


@lru_cache(maxsize=None)
def load_labels(name: str) -> tuple[str, ...]:
    """Class names of a shipped list, index = class id."""
    if name not in available_label_sets():
        raise KeyError(f"no label list named {name!r}; shipped: {available_label_sets()}")
    text = resources.files("s2d.models").joinpath("label_lists", f"{name}.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


def class_names(labels: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """The class names of a config's `labels`: a shipped list's names, the given names, or None."""
    if labels is None:
        return None
    if isinstance(labels, str):
        return load_labels(labels)
    return tuple(labels)
