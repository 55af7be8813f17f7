"""`VideoDataset`: clips decoded from `(path, label)` samples under an `on_error` policy; class
lists; `collate` and `drop_failed` for batches (the sample and batch formats are in `s2d.data`)."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch.utils.data import Dataset

from s2d.io import DEFAULT_TIMEOUT_S, ClipSpec, VideoError, read_clip
from s2d.io.text import loads_json, read_utf8

ON_ERROR = ("skip", "raise", "record")
ClassesLike = Sequence[str] | Mapping[str, int] | str | os.PathLike


class SkippedVideoWarning(UserWarning):
    """An unreadable video was skipped by a dataset with `on_error="skip"`."""


def load_classes(source: ClassesLike) -> list[str]:
    """Class names ordered by index.

    `source` is a sequence of names, a mapping name -> index (such as Something-Something's
    `labels.json`), or a path to a text file with one name per line or a JSON file holding
    either form.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        text = read_utf8(path, what="a class list")
        if path.suffix.lower() == ".json":
            return load_classes(loads_json(text, path, shape="a list of names or a name -> index mapping"))
        return [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(source, Mapping):
        by_index = sorted((int(i), str(name)) for name, i in source.items())
        if [i for i, _ in by_index] != list(range(len(by_index))):
            raise ValueError("class indices must be 0..K-1 without gaps")
        return [name for _, name in by_index]
    return [str(name) for name in source]


def _normalise(name: str) -> str:
    """Lenient class-name key: case, quotes, underscores and spacing do not matter."""
    return " ".join(name.strip().strip('"').replace("_", " ").lower().split())


class ClassIndex:
    """Name -> index lookup: exact match first, then a lenient one."""

    def __init__(self, classes: Sequence[str]) -> None:
        self.exact = {name: i for i, name in enumerate(classes)}
        self.loose: dict[str, int] = {}
        for i, name in enumerate(classes):
            self.loose.setdefault(_normalise(name), i)

    def get(self, name: str) -> int | None:
        found = self.exact.get(name)
        return found if found is not None else self.loose.get(_normalise(name))


class VideoDataset(Dataset):
    """Clips decoded from a list of `(video path, label)` samples.

    `spec` says how clips are cut (see `ClipSpec`); `backend`, `max_pixels` and `timeout_s` are
    passed to `read_clip`. Random choices of the spec (stride start, random crop) draw from
    Python's global `random`, which DataLoader seeds per worker and epoch from torch's seed.
    `on_error` is "skip", "raise" or "record" (see the module docs); "skip" gives up after
    `max_skips` unreadable videos in a row.
    """

    def __init__(self, samples: Iterable[tuple[str | os.PathLike, int]], spec: ClipSpec, *,
                 on_error: str = "skip", classes: ClassesLike | None = None, backend: str = "auto",
                 max_pixels: int | None = None, timeout_s: float | None = DEFAULT_TIMEOUT_S,
                 max_skips: int = 20) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        if max_skips < 1:
            raise ValueError(f"max_skips must be positive, got {max_skips}")
        self.samples: list[tuple[str, int]] = [(os.fspath(p), int(label)) for p, label in samples]
        self.spec = spec
        self.on_error = on_error
        self.classes: list[str] | None = None if classes is None else load_classes(classes)
        self.backend = backend
        self.max_pixels = max_pixels
        self.timeout_s = timeout_s
        self.max_skips = max_skips
        #: Videos skipped by this process (per worker under DataLoader).
        self.skipped = 0
        #: (path, reason) of every video that failed under on_error="record" (per worker).
        self.failures: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.samples)

    def read(self, index: int) -> dict[str, Any]:
        """Decode sample `index`, raising `VideoError` if its video cannot be read."""
        path, label = self.samples[index]
        clip = read_clip(path, self.spec, backend=self.backend, max_pixels=self.max_pixels,
                         timeout_s=self.timeout_s)
        return {"frames": clip.frames, "num_frames": clip.num_frames, "label": label,
                "index": index, "path": path, "error": None}

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample index {index} out of range for {len(self)} samples")
        index %= len(self)
        if self.on_error == "raise":
            return self.read(index)
        if self.on_error == "record":
            try:
                return self.read(index)
            except VideoError as err:
                return self._placeholder(index, err)
        for attempt in range(self.max_skips + 1):
            current = (index + attempt) % len(self)
            try:
                return self.read(current)
            except VideoError as err:
                self.skipped += 1
                warnings.warn(f"skipping unreadable video {err} ({self.skipped} skipped so far in this "
                              f"{'worker' if _in_worker() else 'process'})", SkippedVideoWarning, stacklevel=2)
                last = err
        raise VideoError(last.path, f"{last.reason}; the {self.max_skips + 1} samples from index {index} "
                                    "on are all unreadable, so on_error='skip' gives up")

    def _placeholder(self, index: int, err: VideoError) -> dict[str, Any]:
        path, label = self.samples[index]
        self.failures.append((path, err.reason))
        t, c = self.spec.num_frames, self.spec.crop_size
        return {"frames": torch.zeros(t, c, c, 3, dtype=torch.uint8), "num_frames": 0, "label": label,
                "index": index, "path": path, "error": err.reason}


def _in_worker() -> bool:
    return torch.utils.data.get_worker_info() is not None


def collate(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack dataset samples into a batch (use as the DataLoader's `collate_fn`).

    Returns `frames [B, T, H, W, 3]` uint8, `num_frames [B]` long, `labels [B]` long,
    `indices [B]` long, and lists `paths` and `errors` (None for videos read fine).
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    return {
        "frames": torch.stack([s["frames"] for s in samples]),
        "num_frames": torch.tensor([int(s["num_frames"]) for s in samples], dtype=torch.long),
        "labels": torch.tensor([int(s["label"]) for s in samples], dtype=torch.long),
        "indices": torch.tensor([int(s["index"]) for s in samples], dtype=torch.long),
        "paths": [s["path"] for s in samples],
        "errors": [s["error"] for s in samples],
    }


def drop_failed(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The batch without the rows whose video could not be read (`on_error="record"`)."""
    keep = [i for i, err in enumerate(batch["errors"]) if err is None]
    rows = torch.tensor(keep, dtype=torch.long)
    out: dict[str, Any] = {}
    for key, value in batch.items():
        out[key] = value[rows] if isinstance(value, torch.Tensor) else [value[i] for i in keep]
    return out
