"""`prepare_list`: a `path label` list (and `classes.txt`) for a folder of class sub-folders,
leaving out the videos that do not decode (`python -m s2d data prepare`)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from s2d.data.folders import not_utf8, scan_class_folders
from s2d.io import DEFAULT_TIMEOUT_S, VIDEO_EXTENSIONS, VideoError, probe
from s2d.io.files import atomic_write_text


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
    suffixes = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    out_file = Path(out_file)
    # The list's own folder inside root (ROOT/lists/) is not a class, unless it holds videos: then
    # the list would be written among a class's videos, which is refused below.
    found = scan_class_folders(root, extensions, exclude=out_file.parent)
    classes, entries, ignored = found.classes, found.videos, found.ignored
    _check_outputs(root, out_file, classes, suffixes)

    def failure(rel: str) -> str | None:
        if "\n" in rel or "\r" in rel:
            return "the file name contains a line break"
        if not_utf8(rel):
            return "the file name is not valid UTF-8 (a list file is UTF-8 text); rename it"
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
    # Each file is replaced whole (a temporary beside it, then a rename): an interrupted run leaves
    # the old list or the new one, and never writes through a link planted at the name.
    atomic_write_text(out_file, "".join(f"{rel} {label}\n" for rel, label in listed))
    atomic_write_text(classes_file, "".join(f"{name}\n" for name in classes))
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
