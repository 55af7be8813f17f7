"""Map-style datasets that decode clips straight from raw video files.

Every dataset yields one dict per sample:

- `frames`: uint8 `[T, H, W, 3]` RGB clip (`ClipSpec.num_frames`, `ClipSpec.crop_size`);
- `num_frames`: int, distinct frames in the clip (the rest repeat the last; 0 marks a sample
  that could not be read under `on_error="record"`);
- `label`: int class index (-1 when the annotation has no label, e.g. a test split);
- `index`: int position of the sample in the dataset;
- `path`: str video file;
- `error`: None, or the reason the video could not be read (`on_error="record"`).

`collate` stacks such samples into a batch dict with `frames [B, T, H, W, 3]` uint8,
`num_frames [B]` long, `labels [B]` long, `indices [B]` long and the lists `paths`, `errors`.

Unreadable videos follow the dataset's `on_error` policy:

- `"raise"`: the `VideoError` propagates;
- `"skip"` (training): the next readable sample is returned instead, and a
  `SkippedVideoWarning` names the file, the reason and a running count;
- `"record"` (evaluation): a placeholder sample (zero frames, `num_frames = 0`, `error` set) is
  returned and `(path, reason)` is appended to `dataset.failures`.

With DataLoader workers every worker holds its own copy of the dataset, so `skipped` and
`failures` count per worker and stay empty in the main process; read failures from the batches
(`batch["errors"]`, `batch["paths"]`) there, and `drop_failed` removes such rows.
"""
from __future__ import annotations

import csv
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch.utils.data import Dataset

from s2d.io import DEFAULT_TIMEOUT_S, VIDEO_EXTENSIONS, ClipSpec, VideoError, probe, read_clip

__all__ = [
    "VideoDataset",
    "VideoListDataset",
    "KineticsCSVDataset",
    "SomethingV2Dataset",
    "SkippedVideoWarning",
    "collate",
    "drop_failed",
    "load_classes",
    "parse_list_line",
    "prepare_list",
    "PrepareReport",
]

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
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            return load_classes(json.loads(text))
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


class _ClassIndex:
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


# --------------------------------------------------------------------------------------------
# Annotation formats


def _has_video_suffix(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def _resolve(path: str) -> str:
    """`path` itself, or `path` plus the first video extension under which a file exists.

    Frame-folder lists (TSM style) name videos without an extension.
    """
    if os.path.isfile(path) or _has_video_suffix(path):
        return path
    for ext in VIDEO_EXTENSIONS:
        if os.path.isfile(path + ext):
            return path + ext
    return path


def _is_int(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True


def parse_list_line(line: str) -> tuple[str, int] | None:
    """Parse `path label` or `path num_frames label`; None for blank and `#` comment lines.

    The label (and frame count) are the last whitespace-separated integers, so paths may
    contain spaces. The frame count is ignored: clips are sampled from the frames that decode.
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    parts = text.rsplit(None, 2)
    if len(parts) == 3 and _is_int(parts[1]) and _is_int(parts[2]):
        return parts[0], int(parts[2])
    parts = text.rsplit(None, 1)
    if len(parts) == 2 and _is_int(parts[1]):
        return parts[0], int(parts[1])
    raise ValueError(f"expected 'path label' or 'path num_frames label', got {text!r}")


class VideoListDataset(VideoDataset):
    """Videos listed in a text file, one `path label` (or TSM-style `path num_frames label`) a line.

    Relative paths are taken from `root` (default: the list file's folder); a path without an
    extension is completed with the first video extension that exists. When `classes` is not
    given and a `classes.txt` sits beside the list (as `prepare_list` writes), it is loaded.
    Other keyword arguments are those of `VideoDataset`.
    """

    def __init__(self, list_file: str | os.PathLike, root: str | os.PathLike | None, spec: ClipSpec,
                 **kwargs: Any) -> None:
        list_file = Path(list_file)
        base = list_file.parent if root is None else Path(root)
        samples = []
        with open(list_file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                try:
                    parsed = parse_list_line(line)
                except ValueError as err:
                    raise ValueError(f"{list_file}:{number}: {err}") from None
                if parsed is not None:
                    samples.append((_resolve(os.path.join(base, parsed[0])), parsed[1]))
        beside = list_file.parent / "classes.txt"
        if kwargs.get("classes") is None and beside.is_file():
            kwargs["classes"] = beside
        super().__init__(samples, spec, **kwargs)
        self.list_file = str(list_file)
        self.root = str(base)


def _index_videos(root: Path, depth: int = 2) -> dict[str, str]:
    """File stem -> path for the video files in `root` and up to `depth - 1` folder levels below."""
    found: dict[str, str] = {}
    folders = [(root, 1)]
    while folders:
        folder, level = folders.pop(0)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir() and level < depth:
                folders.append((Path(entry.path), level + 1))
            elif _has_video_suffix(entry.name):
                found.setdefault(os.path.splitext(entry.name)[0], entry.path)
    return found


class KineticsCSVDataset(VideoDataset):
    """Kinetics clips from an official CSV (`label,youtube_id,time_start,time_end,split`).

    A clip's file is found under `root` (or one class sub-folder below it) as
    `{youtube_id}_{time_start:06d}_{time_end:06d}.<ext>` (the common download layout) or
    `{youtube_id}.<ext>`. Clips with no file are left out and listed in `self.missing`, since
    some YouTube videos are always gone. Label names map to indices through `classes` (names are
    matched ignoring case, quotes and `_` versus space); `drop_unknown=True` leaves out rows
    whose label is not among `classes` (to train on a subset such as Mini-Kinetics), otherwise
    such a row is an error. CSVs without a label column (test splits) give label -1.
    Other keyword arguments are those of `VideoDataset`.
    """

    def __init__(self, csv_file: str | os.PathLike, root: str | os.PathLike, spec: ClipSpec,
                 classes: ClassesLike, *, drop_unknown: bool = False, **kwargs: Any) -> None:
        names = load_classes(classes)
        lookup = _ClassIndex(names)
        files = _index_videos(Path(root))
        samples: list[tuple[str, int]] = []
        self.missing: list[str] = []
        self.dropped = 0
        with open(csv_file, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            for number, row in enumerate(reader, 2):
                try:
                    youtube_id = row["youtube_id"].strip()
                    start, end = int(float(row["time_start"])), int(float(row["time_end"]))
                except (KeyError, TypeError, ValueError) as err:
                    raise ValueError(f"{csv_file}:{number}: not a Kinetics row ({err!r})") from None
                name = (row.get("label") or "").strip()
                label = lookup.get(name) if name else -1
                if label is None:
                    if drop_unknown:
                        self.dropped += 1
                        continue
                    raise ValueError(f"{csv_file}:{number}: label {name!r} is not among the {len(names)} classes")
                stem = f"{youtube_id}_{start:06d}_{end:06d}"
                path = files.get(stem) or files.get(youtube_id)
                if path is None:
                    self.missing.append(stem)
                    continue
                samples.append((path, label))
        if self.missing:
            warnings.warn(f"{csv_file}: {len(self.missing)} of {len(samples) + len(self.missing)} listed "
                          f"clips have no video file under {root}; they are left out", stacklevel=2)
        super().__init__(samples, spec, classes=names, **kwargs)


class SomethingV2Dataset(VideoDataset):
    """Something-Something V2 from its JSON annotations and the `{id}.webm` video files.

    The class is the annotation's `template` with the `[` `]` brackets removed, mapped to an
    index through `classes` (the official `labels.json` mapping or a list of names, e.g.
    `s2d/labels/sthv2.txt`). Annotations without a template (the test split) give label -1.
    A video missing as `.webm` is looked for under other video extensions. `drop_unknown` is as
    for `KineticsCSVDataset`; other keyword arguments are those of `VideoDataset`.
    """

    def __init__(self, json_file: str | os.PathLike, root: str | os.PathLike, spec: ClipSpec,
                 classes: ClassesLike, *, drop_unknown: bool = False, **kwargs: Any) -> None:
        names = load_classes(classes)
        lookup = _ClassIndex(names)
        with open(json_file, encoding="utf-8") as handle:
            entries = json.load(handle)
        if not isinstance(entries, list):
            raise ValueError(f"{json_file}: expected a JSON list of annotations")
        samples: list[tuple[str, int]] = []
        self.dropped = 0
        for position, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or "id" not in entry:
                raise ValueError(f"{json_file}: annotation {position} has no 'id'")
            template = entry.get("template")
            if template:
                name = str(template).replace("[", "").replace("]", "")
                label = lookup.get(name)
                if label is None:
                    if drop_unknown:
                        self.dropped += 1
                        continue
                    raise ValueError(f"{json_file}: annotation {position} (id {entry['id']}) has class "
                                     f"{name!r}, not among the {len(names)} classes")
            else:
                label = -1
            base = os.path.join(root, str(entry["id"]))
            path = base + ".webm"
            if not os.path.isfile(path):
                path = next((base + ext for ext in VIDEO_EXTENSIONS if os.path.isfile(base + ext)), path)
            samples.append((path, label))
        super().__init__(samples, spec, classes=names, **kwargs)


# --------------------------------------------------------------------------------------------
# Building list files


@dataclass
class PrepareReport:
    """What `prepare_list` found and wrote.

    `unreadable` holds `(path relative to root, reason)` of videos left out of the list,
    `empty_classes` class folders without any video, `ignored` files that are not videos.
    """

    root: str
    list_file: str
    classes_file: str
    classes: list[str]
    videos: int
    per_class: dict[str, int] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    empty_classes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    checked: bool = True

    @property
    def ok(self) -> bool:
        """True when every video found could be listed."""
        return not self.unreadable

    def summary(self) -> str:
        """A human-readable multi-line summary."""
        lines = [
            f"root: {self.root}",
            f"classes: {len(self.classes)} (names in {self.classes_file})",
            f"videos: {self.videos} listed in {self.list_file}"
            + ("" if self.checked else " (not checked for readability)"),
        ]
        if self.empty_classes:
            lines.append(f"empty classes: {len(self.empty_classes)}: {', '.join(self.empty_classes)}")
        if self.ignored:
            lines.append(f"ignored non-video files: {len(self.ignored)}")
        lines.append(f"unreadable: {len(self.unreadable)}")
        lines.extend(f"  {path}: {reason}" for path, reason in self.unreadable)
        return "\n".join(lines)


def _bad_class_name(name: str) -> bool:
    return name != name.strip() or not name or name.startswith("#") or any(c in name for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def _check_outputs(root: Path, out_file: Path, classes: Sequence[str], suffixes: set[str]) -> None:
    """`prepare_list` writes `out_file` and `classes.txt` beside it; refuse when that would replace
    a video or a class list, or put a file among the videos of a class."""
    resolved = out_file.resolve()
    if out_file.name == "classes.txt":
        raise ValueError(f"--out {out_file}: classes.txt is where the class names go; name the list otherwise "
                         "(e.g. train.txt)")
    if resolved.suffix.lower() in suffixes or resolved.suffix.lower() in VIDEO_EXTENSIONS:
        raise ValueError(f"--out {out_file}: a list file cannot have a video extension ({resolved.suffix}); "
                         "use e.g. train.txt")
    if out_file.exists() and not out_file.is_file():
        raise ValueError(f"--out {out_file}: exists and is not a regular file")
    for name in classes:
        folder = (root / name).resolve()
        if resolved.is_relative_to(folder):
            raise ValueError(f"--out {out_file} lies inside the class folder {root / name}; write the list "
                             f"outside the class folders (e.g. {root / 'train.txt'})")


def prepare_list(root: str | os.PathLike, out_file: str | os.PathLike,
                 extensions: Sequence[str] = VIDEO_EXTENSIONS, check: bool = True, *,
                 workers: int = 1, timeout_s: float | None = DEFAULT_TIMEOUT_S,
                 progress: bool = False) -> PrepareReport:
    """Write a `path label` list for a folder of class sub-folders holding videos.

    Classes are the sorted names of `root`'s sub-folders (written one a line to `classes.txt`
    beside `out_file`); videos are the files below each, with paths relative to `root`, so the
    list is read back with `VideoListDataset(out_file, root, spec)`. With `check`, every video is
    decoded once (bounded by `timeout_s`, `workers` at a time) and those that fail are left out
    of the list and reported with the reason.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    suffixes = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    out_file = Path(out_file)
    # The list's own folder inside root (ROOT/lists/) is not a class, unless it holds videos: then
    # the list would be written among a class's videos, which is refused below.
    out_dir = out_file.parent.resolve()

    def is_class(d: Path) -> bool:
        if not d.is_dir() or d.name.startswith("."):
            return False
        return d.resolve() != out_dir or any(os.path.splitext(f)[1].lower() in suffixes
                                             for _, _, files in os.walk(d) for f in files)

    classes = sorted(d.name for d in root.iterdir() if is_class(d))
    _check_outputs(root, out_file, classes, suffixes)
    bad = [name for name in classes if _bad_class_name(name)]
    if bad:
        raise ValueError(f"{root}: class folder name(s) {', '.join(repr(n) for n in bad)} cannot be written one a "
                         "line to classes.txt (blank, surrounding spaces, a line break, or a leading '#', which "
                         "list files read as a comment); rename the folder(s)")
    entries: list[tuple[str, int]] = []
    ignored: list[str] = []
    for label, name in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                rel = Path(dirpath, filename).relative_to(root).as_posix()
                if os.path.splitext(filename)[1].lower() in suffixes:
                    entries.append((rel, label))
                else:
                    ignored.append(rel)
    ignored.extend(sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith(".")))

    def failure(rel: str) -> str | None:
        if "\n" in rel or "\r" in rel:
            return "the file name contains a line break"
        if not check:
            return None
        try:
            probe(root / rel, decode=True, timeout_s=timeout_s)
        except VideoError as err:
            return err.reason
        return None

    rels = [rel for rel, _ in entries]
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            reasons = list(_progress(pool.map(failure, rels), len(rels), progress))
    else:
        reasons = list(_progress(map(failure, rels), len(rels), progress))

    out_file.parent.mkdir(parents=True, exist_ok=True)
    classes_file = out_file.parent / "classes.txt"
    listed = [(rel, label) for (rel, label), reason in zip(entries, reasons) if reason is None]
    out_file.write_text("".join(f"{rel} {label}\n" for rel, label in listed), encoding="utf-8")
    classes_file.write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")
    per_class = {name: 0 for name in classes}
    for _, label in listed:
        per_class[classes[label]] += 1
    present = {label for _, label in entries}
    return PrepareReport(
        root=str(root), list_file=str(out_file), classes_file=str(classes_file), classes=classes,
        videos=len(listed), per_class=per_class,
        unreadable=[(rel, reason) for (rel, _), reason in zip(entries, reasons) if reason is not None],
        empty_classes=[name for i, name in enumerate(classes) if i not in present],
        ignored=ignored, checked=check)


def _progress(items: Iterable[Any], total: int, enabled: bool) -> Iterable[Any]:
    if not enabled:
        return items
    from tqdm import tqdm  # noqa: PLC0415 - only needed for interactive runs

    return tqdm(items, total=total, desc="checking videos", unit="video")
