"""Safety around reading untrusted video files: the one error type, size and time limits, file checks.

Every problem caused by the input file itself (missing, not a video, no frames, damaged beyond
use, too large, too slow to decode) raises `VideoError`, whose message names the file and the
reason, so training code can catch exactly one exception type.
"""
from __future__ import annotations

import errno
import math
import os
import re
import threading
import time
from typing import Any, Callable, TypeVar

#: Frames larger than this many pixels (width * height) are refused before decoding.
DEFAULT_MAX_PIXELS = 8192 * 8192
#: Videos with more frames than this are refused; it bounds the work a bogus file can cause.
DEFAULT_MAX_FRAMES = 500_000
#: Wall-clock limit, in seconds, on opening and decoding one video.
DEFAULT_TIMEOUT_S = 120.0
#: Frames whose long side exceeds this many times their short side are refused as absurd.
MAX_ASPECT_RATIO = 4096

_T = TypeVar("_T")


class VideoError(Exception):
    """A video file cannot be read; the message names the file and the reason.

    `path` and `reason` are also kept as attributes. The exception survives pickling (and so
    crossing from a DataLoader worker to the main process) with both intact.
    """

    def __init__(self, path: str | os.PathLike | None, reason: str | None = None) -> None:
        if reason is None:  # rebuilt from a bare message (generic exception re-raising)
            reason, path = str(path), None
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(reason if self.path is None else f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.reason))


def too_many_frames(path: str, max_frames: int) -> VideoError:
    """The error for a video longer than the `max_frames` cap."""
    return VideoError(path, f"more than {max_frames} frames (raise max_frames to read it)")


def check_file(path: str) -> None:
    """`VideoError` unless `path` is a readable, non-empty regular file."""
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise VideoError(path, "symbolic link loop (the link points back to itself)") from None
        if err.errno == errno.EACCES:
            raise VideoError(path, "permission denied") from None
        if os.path.islink(path):
            raise VideoError(path, "broken symbolic link (its target does not exist)") from None
        raise VideoError(path, "file not found") from None
    if not os.path.isfile(path):
        raise VideoError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise VideoError(path, "file is empty")


#: decord prefixes messages with "[hh:mm:ss] /source/file.cc:123: "; the reader wants the rest.
_DECORD_PREFIX = re.compile(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ")


def decoder_reason(err: BaseException) -> str:
    """A short, single-line reason from a decoder exception."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    text = " ".join(_DECORD_PREFIX.sub("", str(text)).split())
    return text if len(text) <= 300 else text[:297] + "..."


class Deadline:
    """Wall-clock budget shared by the steps of one read."""

    def __init__(self, path: str, timeout_s: float | None) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.end = math.inf if timeout_s is None else time.monotonic() + timeout_s

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise VideoError(self.path, f"decoding took longer than the {self.timeout_s:g} s limit")

    def expired(self, what: str) -> VideoError:
        """The error for a blocking step (`what`: "opening", "reading") cut off by the budget."""
        return VideoError(self.path, f"{what} took longer than the {self.timeout_s:g} s limit")

    def run(self, fn: Callable[[], _T], what: str) -> _T:
        """Run a blocking native call; give up with VideoError once the budget is spent.

        The call runs in a daemon thread because a C decoder stuck on a pathological file
        cannot be interrupted; on timeout the thread is abandoned and the caller moves on.
        """
        if self.timeout_s is None:
            return fn()
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                outcome["value"] = fn()
            except BaseException as err:  # handed back to the calling thread below
                outcome["error"] = err

        worker = threading.Thread(target=target, name="s2d-video-decode", daemon=True)
        worker.start()
        worker.join(max(0.0, self.remaining()))
        if worker.is_alive():
            raise VideoError(self.path, f"{what} did not finish within the {self.timeout_s:g} s limit")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]


def run_native(deadline: "Deadline", fn: Callable[[], _T], what: str, failed: type[Exception]) -> _T:
    """`deadline.run(fn, what)` for an optional decoder: any error of its native library (not a
    `VideoError` or `failed` itself) becomes `failed(reason)`, on which `backend="auto"` falls
    back to PyAV."""
    try:
        return deadline.run(fn, what)
    except (VideoError, failed):
        raise
    except Exception as err:
        raise failed(decoder_reason(err)) from None
