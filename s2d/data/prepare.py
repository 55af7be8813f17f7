"""`prepare_list`: a `path label` list (and `classes.txt`) for a folder of class sub-folders,
leaving out the videos that do not decode (`python -m s2d data prepare`)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from s2d.io import DEFAULT_TIMEOUT_S, VIDEO_EXTENSIONS, VideoError, probe


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
