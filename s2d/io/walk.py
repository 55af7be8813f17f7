"""Finding video files in folders without being fooled by the file system.

Links to folders are followed, but each folder is read once however many links lead to it (by
device and inode), so a link loop ends; each file is listed once however many paths reach it;
a folder that cannot be read is reported, never skipped in silence.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator, Sequence

#: `(folder, reason)` of every folder a walk could not read.
WalkErrors = list[tuple[str, str]]


def file_identity(path: str) -> tuple[int, int] | str:
    """What makes two paths one file: the device and inode they lead to, or the normalised absolute
    path when nothing can be reached there (a missing file, reported later by the reader)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return os.path.normpath(os.path.abspath(path))
    return (st.st_dev, st.st_ino)


def unique_files(paths: Iterable[str]) -> list[str]:
    """`paths` without the ones that lead to a file listed before (through links, `..`, hard links)."""
    seen: set[tuple[int, int] | str] = set()
    unique = []
    for path in paths:
        key = file_identity(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _is_folder(entry: os.DirEntry) -> bool:
    """Whether a folder entry is, or links to, a folder (a dangling or looping link is not)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _cannot_read(folder: str, err: OSError, errors: WalkErrors | None) -> None:
    reason = err.strerror or str(err)
    if errors is None:
        raise ValueError(f"{folder}: cannot be read ({reason})") from None
    errors.append((folder, reason))


def walk_files(folder: str, extensions: Sequence[str] | None, errors: WalkErrors | None = None, *,
               hidden: bool = True, read: set[tuple[int, int]] | None = None) -> Iterator[str]:
    """Paths under `folder` whose names end in one of `extensions` (any case): a folder's own files
    (sorted) before its sub-folders' (sorted, depth first), as `os.walk` lists them.

    Links to folders are followed once: a folder already read (same device and inode) is not read
    again. A folder that cannot be read is appended to `errors` as `(folder, reason)` and the walk
    goes on; with `errors=None` it raises `ValueError` naming the folder. `extensions=None` lists
    every file; `hidden=False` leaves out files and folders whose names start with a dot. Walks that
    share a `read` set (the (device, inode) of folders already read) never read a folder twice.
    """
    wanted = tuple(e.lower() for e in extensions) if extensions is not None else ("",)
    read = set() if read is None else read
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            st = os.stat(current)
            if (st.st_dev, st.st_ino) in read:
                continue
            read.add((st.st_dev, st.st_ino))
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as err:
            _cannot_read(current, err, errors)
            continue
        folders = []
        for entry in entries:
            if not hidden and entry.name.startswith("."):
                continue
            if _is_folder(entry):
                folders.append(entry.path)
            elif entry.name.lower().endswith(wanted):
                yield entry.path
        pending.extend(reversed(folders))  # the first sub-folder is read next
