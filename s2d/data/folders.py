"""Class-folder datasets, the layout most people keep videos in: `ROOT/<class>/<video>` (videos at any
depth below their class folder), classes the sorted sub-folder names.

`scan_class_folders` finds the classes and videos (also for `prepare_list`); `VideoFolderDataset`
reads one split of them: a seeded, per-class split of one folder into train and val when no
separate val folder is given, or the whole of a folder whose classes are named by the model.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from s2d.data.dataset import VideoDataset, load_classes
from s2d.io import VIDEO_EXTENSIONS, ClipSpec
from s2d.io.walk import walk_files

#: The splits `VideoFolderDataset` cuts from one folder; any other split name reads a whole folder.
HELD_OUT_SPLITS = ("train", "val")


@dataclass
class ClassFolders:
    """What `scan_class_folders` found: class names (sorted), `(path relative to root, label)` of every
    video, and the files that are not videos."""

    root: Path
    classes: list[str]
    videos: list[tuple[str, int]]
    ignored: list[str] = field(default_factory=list)

    def per_class(self) -> dict[str, int]:
        counts = {name: 0 for name in self.classes}
        for _, label in self.videos:
            counts[self.classes[label]] += 1
        return counts


def not_utf8(name: str) -> bool:
    """Whether a file name read from disk holds bytes that are not UTF-8 (kept as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def bad_class_name(name: str) -> bool:
    """Names that cannot be written one a line (classes.txt, a config's labels) or read back."""
    return (name != name.strip() or not name or name.startswith("#") or not_utf8(name)
            or any(c in name for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"))


def scan_class_folders(root: str | os.PathLike, extensions: Sequence[str] = VIDEO_EXTENSIONS, *,
                       exclude: Path | None = None) -> ClassFolders:
    """Classes (`root`'s sub-folders, hidden ones and `exclude` left out) and their videos, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder (expected ROOT/<class>/<video> class folders)")
    suffixes = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    excluded = exclude.resolve() if exclude is not None else None

    def is_class(d: Path) -> bool:
        if not d.is_dir() or d.name.startswith("."):
            return False
        return d.resolve() != excluded or any(os.path.splitext(f)[1].lower() in suffixes
                                              for f in walk_files(str(d), None, hidden=False))

    classes = sorted(d.name for d in root.iterdir() if is_class(d))
    bad = [name for name in classes if bad_class_name(name)]
    if bad:
        raise ValueError(f"{root}: class folder name(s) {', '.join(repr(n) for n in bad)} cannot be written one a "
                         "line as class names (blank, surrounding spaces, a line break, bytes that are not UTF-8, "
                         "or a leading '#', which list files read as a comment); rename the folder(s)")
    videos: list[tuple[str, int]] = []
    ignored: list[str] = []
    root_stat = root.stat()
    read = {(root_stat.st_dev, root_stat.st_ino)}  # shared: a link to ROOT or to another class is not read again
    for label, name in enumerate(classes):  # links followed once (a loop ends); an unreadable folder is an error
        for path in walk_files(str(root / name), None, hidden=False, read=read):
            rel = Path(path).relative_to(root).as_posix()
            (videos.append((rel, label)) if os.path.splitext(path)[1].lower() in suffixes else ignored.append(rel))
    ignored.extend(sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith(".")))
    return ClassFolders(root, classes, videos, ignored)


def held_out(videos: Sequence[tuple[str, int]], fraction: float, seed: int) -> set[str]:
    """The videos of a seeded per-class val split: `round(fraction · n)` of each class's n videos, at
    least one and at most n − 1 (none of a class with a single video), drawn with `random.Random(seed)`
    from the sorted list."""
    by_class: dict[int, list[str]] = {}
    for rel, label in sorted(videos):
        by_class.setdefault(label, []).append(rel)
    rng = random.Random(seed)
    chosen: set[str] = set()
    for label in sorted(by_class):
        rels = by_class[label]
        count = min(len(rels) - 1, max(1, round(fraction * len(rels))))
        chosen.update(rng.sample(rels, count) if count > 0 else [])
    return chosen


class VideoFolderDataset(VideoDataset):
    """One split of class folders, `ROOT/<class>/<video>`.

    - `split="train"` or `"val"` without `val_root`: a seeded per-class split of `root`
      (`val_fraction` of each class's videos held out, `seed`), so train and val never share a video;
    - `split="train"` with `val_root`: all of `root`; `split="val"` with `val_root`: all of `val_root`;
    - any other split (e.g. `"test"`): all of `root`.

    The class index is the position in `classes` (names; by default the sorted folders of `root`,
    or of the train folder for a val folder). A folder class missing from `classes` is an error
    naming it, a class folder without videos too (in the training split); unreadable videos follow
    `on_error` like every `VideoDataset` (skipped and counted in training, recorded in evaluation).
    """

    def __init__(self, root: str | os.PathLike, spec: ClipSpec, *, split: str = "train",
                 val_root: str | os.PathLike | None = None, val_fraction: float = 0.1, seed: int = 0,
                 classes: Sequence[str] | str | os.PathLike | None = None,
                 extensions: Sequence[str] = VIDEO_EXTENSIONS, **kwargs: Any) -> None:
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
        if split == "val" and val_root is None and val_fraction == 0:
            raise ValueError("the val split needs val_root (a folder of the same classes) or val_fraction > 0")
        folder = Path(val_root if split == "val" and val_root is not None else root)
        found = scan_class_folders(folder, extensions)
        if not found.classes:
            raise ValueError(f"{folder}: no class folders (expected {folder}/<class>/<video>)")
        names = load_classes(classes) if classes is not None else found.classes
        index = {name: i for i, name in enumerate(names)}
        unknown = [name for name in found.classes if name not in index]
        if unknown:
            raise ValueError(f"{folder}: class folder(s) {', '.join(map(repr, unknown[:5]))} are not among the "
                             f"{len(names)} classes of the model/training folder ({', '.join(names[:5])}"
                             f"{', ...' if len(names) > 5 else ''})")
        empty = [name for name, n in found.per_class().items() if n == 0]
        if empty and split == "train":
            raise ValueError(f"{folder}: class folder(s) {', '.join(map(repr, empty))} hold no videos "
                             f"(extensions {', '.join(extensions)}); add videos or remove the folder(s)")
        videos = found.videos
        if split in HELD_OUT_SPLITS and val_root is None and val_fraction > 0:
            val = held_out(videos, val_fraction, seed)
            videos = [v for v in videos if (v[0] in val) == (split == "val")]
        samples = [(folder / rel, index[found.classes[label]]) for rel, label in videos]
        super().__init__(samples, spec, classes=list(names), **kwargs)
        self.root, self.split = str(folder), split
        #: The training split's folders are the classes (a model trained on them takes their names).
        self.defines_classes = split == "train" and classes is None
