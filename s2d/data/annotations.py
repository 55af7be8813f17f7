"""The annotation formats: `path label` lists, Kinetics CSVs and Something-Something V2 JSON,
each a `VideoDataset` over the videos they name."""
from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import s2d.io.text as text_files
from s2d.data.dataset import ClassesLike, ClassIndex, VideoDataset, load_classes
from s2d.io import VIDEO_EXTENSIONS, ClipSpec


def has_video_suffix(path: str) -> bool:
    """Whether `path` ends in one of `VIDEO_EXTENSIONS` (any case)."""
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def _resolve(path: str) -> str:
    """`path` itself, or `path` plus the first video extension under which a file exists.

    Frame-folder lists (TSM style) name videos without an extension.
    """
    if os.path.isfile(path) or has_video_suffix(path):
        return path
    for ext in VIDEO_EXTENSIONS:
        if os.path.isfile(path + ext):
            return path + ext
    return path


def read_utf8(path: str | os.PathLike) -> str:
    """The text of an annotation file, which must be UTF-8 (`ValueError` naming the file, line and byte)."""
    return text_files.read_utf8(path, what="annotation files")


def read_json(path: str | os.PathLike) -> Any:
    """A UTF-8 JSON annotation file; `ValueError` naming the file when it is not valid or nests too deeply."""
    return text_files.read_json(path, what="annotation files", shape="annotations are a list of flat objects")


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
        for number, line in enumerate(io.StringIO(read_utf8(list_file), newline=None), 1):
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
            elif has_video_suffix(entry.name):
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
        lookup = ClassIndex(names)
        files = _index_videos(Path(root))
        samples: list[tuple[str, int]] = []
        self.missing: list[str] = []
        self.dropped = 0
        with io.StringIO(read_utf8(csv_file), newline="") as handle:
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
    `s2d/models/label_lists/sthv2.txt`). Annotations without a template (the test split) give label -1.
    A video missing as `.webm` is looked for under other video extensions. `drop_unknown` is as
    for `KineticsCSVDataset`; other keyword arguments are those of `VideoDataset`.
    """

    def __init__(self, json_file: str | os.PathLike, root: str | os.PathLike, spec: ClipSpec,
                 classes: ClassesLike, *, drop_unknown: bool = False, **kwargs: Any) -> None:
        names = load_classes(classes)
        lookup = ClassIndex(names)
        entries = read_json(json_file)
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
