"""Writing files the user may care about: never through a planted path, never half-written.

Every file s2d writes goes through `atomic_write`: the content is written to a temporary file
created exclusively (`tempfile.mkstemp`: a random name, `O_EXCL`, so a symlink or file planted
beside the target is never opened) in the target's folder, fsync'ed, then renamed onto the
target (a rename replaces a symlink at the target, it does not follow it). A crash at any
instant leaves the old file or the new one, never a mix.

`OutputLock` keeps two runs from appending to one output at once, and `deferred_signals` lets a
short critical section (an append and its bookkeeping) finish before Ctrl-C or SIGTERM act.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_bytes", "atomic_copy", "temp_path", "temp_folder",
           "fsync_dir", "default_mode", "OutputLock", "OutputBusyError", "deferred_signals"]


def default_mode(path: str | os.PathLike) -> None:
    """Give `path` the mode a plain `open()` would (0o666 minus the umask): temporary files are
    created private (0o600), and writers such as safetensors use private temporaries of their own."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename inside `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Path:
    """A new, empty file beside `path`, created exclusively under a random hidden name (the caller
    renames it into place or removes it)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def temp_folder(path: str | os.PathLike) -> Path:
    """A new, empty folder beside `path`, created exclusively under a random hidden name."""
    path = Path(path)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)` for a fresh temporary file beside `path`, then move it onto `path`.

    The temporary file is exclusive to this call (random name, `O_EXCL`); it reaches the disk
    (fsync) before the rename makes it visible, and gets the mode a plain `open()` would give."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(str(tmp))
        default_mode(tmp)
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """`atomic_write` of `data`."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str, *, errors: str = "strict") -> None:
    """`atomic_write` of a UTF-8 text file (newlines written as given)."""
    atomic_write_bytes(path, text.encode("utf-8", errors=errors))


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy `src`'s content onto `dst` atomically."""
    atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))


class OutputBusyError(RuntimeError):
    """Another process is writing the same output."""


class OutputLock:
    """An exclusive, non-blocking lock on `path` for this process's lifetime (or the `with` block).

    The lock is a hidden file beside `path` (`.NAME.lock`) holding the owner's host and pid, locked
    with `flock`: a process that dies releases it, so a stale file never blocks a later run. A
    second run is refused with `OutputBusyError` naming the owner. The lock file is removed on
    release; a run that opened it just before checks, after locking, that it still is the file
    at that name, and otherwise starts again.
    """

    def __init__(self, path: str | os.PathLike, *, what: str = "output") -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> "OutputLock":
        import fcntl

        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as err:
                if err.errno == errno.ELOOP:
                    raise OutputBusyError(f"{self.lock_path}: is a symbolic link, not the lock file of {self.path}; "
                                          "remove it") from None
                raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise OutputBusyError(f"{self.path}: another run ({owner}) is writing this {self.what}; "
                                      f"wait for it to finish or choose another {self.what}") from None
            try:
                same = os.stat(self.lock_path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the owner removed this file while we waited on it: take the new one
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.lock_path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def deferred_signals(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then act on them as if they came at its end.

    For a short critical section whose effects and bookkeeping must happen together (an append
    and the record of what it appended). Outside the main thread (where handlers cannot be set)
    the block runs unprotected."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, object]] = []
    previous = {}

    def hold(signum: int, frame: object) -> None:
        caught.append((signum, frame))

    for signum in signums:
        previous[signum] = signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum, frame in caught[:1]:
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)
