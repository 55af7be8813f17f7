"""Reading clips from raw video files.

`read_clip` turns one video file into a fixed-size clip: a uint8 tensor `[T, H, W, 3]` of RGB
frames, resized so the short side has a given length and cropped to a square. Two decoders are
supported: decord (fast random access through `VideoReader.get_batch`) and PyAV (sequential
decoding, always installed). With `backend="auto"` decord is used when it is installed and can
read the file, and PyAV takes over otherwise, so a damaged file still yields the frames that
really decode.

Every problem caused by the input file itself (missing, not a video, no frames, damaged beyond
use, too large, too slow to decode) raises `VideoError`, whose message names the file and the
reason, so training code can catch exactly one exception type.
"""
from __future__ import annotations

import errno
import math
import os
import random
import re
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Sequence, TypeVar

import av
import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "VideoError",
    "ClipSpec",
    "Clip",
    "VideoInfo",
    "read_clip",
    "probe",
    "clip_indices",
    "decord_available",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_TIMEOUT_S",
    "VIDEO_EXTENSIONS",
]

#: Frames larger than this many pixels (width * height) are refused before decoding.
DEFAULT_MAX_PIXELS = 8192 * 8192
#: Videos with more frames than this are refused; it bounds the work a bogus file can cause.
DEFAULT_MAX_FRAMES = 500_000
#: Wall-clock limit, in seconds, on opening and decoding one video.
DEFAULT_TIMEOUT_S = 120.0
#: File extensions treated as videos when scanning folders.
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")

Backend = Literal["auto", "decord", "pyav"]
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


@dataclass
class ClipSpec:
    """How to cut a clip out of a video.

    - `num_frames`: frames per clip (T).
    - `short_side`: the frames' short side is resized to this length, keeping the aspect ratio.
    - `crop_size`: side of the square crop taken after resizing (at most `short_side`).
    - `sampling`: `"uniform"` spreads T frames evenly over the whole video (the synopsis rule);
      `"stride"` takes T frames `stride` apart starting at `start`.
    - `start`: first frame for stride sampling; `None` draws it at random (training).
    - `crop`: `"center"` or `"random"` (the crop offset is drawn at random, training).

    Random choices use the `rng` given to `read_clip` (or Python's global `random` when none is
    given); uniform sampling with a centre crop never draws anything.
    """

    num_frames: int
    short_side: int
    crop_size: int
    sampling: str = "uniform"
    stride: int = 1
    start: int | None = None
    crop: str = "center"

    def __post_init__(self) -> None:
        for name in ("num_frames", "short_side", "crop_size", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ClipSpec.{name} must be a positive integer, got {value!r}")
        if self.crop_size > self.short_side:
            raise ValueError(
                f"ClipSpec.crop_size ({self.crop_size}) cannot exceed short_side ({self.short_side})")
        if self.sampling not in ("uniform", "stride"):
            raise ValueError(f"ClipSpec.sampling must be 'uniform' or 'stride', got {self.sampling!r}")
        if self.crop not in ("center", "random"):
            raise ValueError(f"ClipSpec.crop must be 'center' or 'random', got {self.crop!r}")
        if self.start is not None:
            if self.sampling != "stride":
                raise ValueError("ClipSpec.start only applies to sampling='stride'")
            if isinstance(self.start, bool) or not isinstance(self.start, int) or self.start < 0:
                raise ValueError(f"ClipSpec.start must be a non-negative integer or None, got {self.start!r}")


@dataclass
class Clip:
    """A decoded clip.

    - `frames`: uint8 `[T, H, W, 3]` RGB, T = `spec.num_frames`, H = W = `spec.crop_size`.
    - `num_frames`: distinct frames in the clip (≤ T); the slots after them repeat the last one.
    - `indices`: source frame index of every slot (length T).
    - `source_fps`: the stream's average frame rate (0.0 when the file does not say).
    - `path`: the file read.
    - `video_frames`: frames in the video the indices were drawn from; when the container
      promises more frames than decode, this is the number that really decoded.
    - `backend`: `"decord"` or `"pyav"`, whichever produced the frames.
    """

    frames: torch.Tensor
    num_frames: int
    indices: list[int]
    source_fps: float
    path: str
    video_frames: int = 0
    backend: str = ""


@dataclass
class VideoInfo:
    """What `probe` learns about a video: frame count, frame rate, frame size, backend used."""

    num_frames: int
    fps: float
    width: int
    height: int
    backend: str


def decord_available() -> bool:
    """Whether the optional decord package can be imported."""
    return _decord() is not None


_DECORD: Any = None
_DECORD_CHECKED = False


def _decord() -> Any:
    """The decord module, imported on first use; None when it is not installed or broken."""
    global _DECORD, _DECORD_CHECKED
    if not _DECORD_CHECKED:
        try:
            import decord  # noqa: PLC0415 - optional dependency, imported lazily
        except Exception:  # missing, or a binary that does not load on this platform
            decord = None
        _DECORD, _DECORD_CHECKED = decord, True
    return _DECORD


def clip_indices(video_frames: int, spec: ClipSpec, rng: random.Random | None = None) -> tuple[list[int], int]:
    """Source frame indices for a clip of `spec.num_frames` frames; returns (indices, distinct).

    Uniform sampling follows the model's synopsis sampler: `torch.linspace(0, n-1, T)` truncated
    to integers when the video has n ≥ T frames. Stride sampling takes `start + i * stride`.
    Whenever the video runs out, the last frame is repeated to fill T slots and `distinct`
    counts the frames before the padding.
    """
    n, t = int(video_frames), spec.num_frames
    if n < 1:
        raise ValueError(f"a clip needs at least one video frame, got {n}")
    if spec.sampling == "uniform":
        if n >= t:
            indices = torch.linspace(0, n - 1, t).to(torch.int64).tolist()
            return indices, t
        return list(range(n)) + [n - 1] * (t - n), n
    span = (t - 1) * spec.stride + 1
    if spec.start is not None:
        start = spec.start
        if start >= n:
            raise ValueError(f"start frame {start} lies beyond the video's {n} frames")
    else:
        start = (rng or random).randint(0, max(0, n - span))
    taken = [i for i in range(start, min(n, start + span), spec.stride)]
    return taken + [taken[-1]] * (t - len(taken)), len(taken)


def _resized_size(h: int, w: int, short_side: int) -> tuple[int, int]:
    """Frame size once the short side is `short_side`, keeping the aspect ratio."""
    scale = short_side / min(h, w)
    out_h = short_side if h <= w else max(short_side, int(round(h * scale)))
    out_w = short_side if w < h else max(short_side, int(round(w * scale)))
    return out_h, out_w


def _resize(frames: torch.Tensor, short_side: int) -> torch.Tensor:
    """Resize uint8 `[T, H, W, 3]` frames so the short side is `short_side`.

    Bilinear with antialiasing, computed on uint8 directly (the channels-last permute is a view).
    """
    _, h, w, _ = frames.shape
    out_h, out_w = _resized_size(h, w, short_side)
    if (out_h, out_w) == (h, w):
        return frames
    x = frames.permute(0, 3, 1, 2)  # [T, 3, H, W] in channels-last memory
    x = F.interpolate(x, size=(out_h, out_w), mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1)


def _crop(frames: torch.Tensor, spec: ClipSpec, rng: random.Random | None) -> torch.Tensor:
    """The `spec.crop_size` square crop (centre or random) of resized frames."""
    _, out_h, out_w, _ = frames.shape
    c = spec.crop_size
    if spec.crop == "random":
        source = rng or random
        top, left = source.randint(0, out_h - c), source.randint(0, out_w - c)
    else:
        top, left = (out_h - c) // 2, (out_w - c) // 2
    return frames[:, top:top + c, left:left + c, :].contiguous()


def _shrink(frame: np.ndarray, short_side: int) -> torch.Tensor:
    """One decoded `[H, W, 3]` frame resized at once, so only one full-size frame is ever held."""
    return _resize(torch.from_numpy(np.ascontiguousarray(frame))[None], short_side)[0].contiguous()


# --------------------------------------------------------------------------------------------
# Bounded execution


class _Deadline:
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


# --------------------------------------------------------------------------------------------
# PyAV


@dataclass
class _Header:
    width: int
    height: int
    fps: float
    frames: int  # frame count from the container header, 0 when it does not say


def _check_file(path: str) -> None:
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


def _open_pyav(path: str, deadline: _Deadline) -> Any:
    deadline.check()
    timeout = None if deadline.timeout_s is None else max(deadline.remaining(), 0.001)
    try:
        return av.open(path, mode="r", timeout=timeout, metadata_errors="ignore")
    except av.error.ExitError:  # FFmpeg's interrupt callback fired: the open timed out
        raise VideoError(path, f"opening took longer than the {deadline.timeout_s:g} s limit") from None
    except av.error.FFmpegError as err:
        raise VideoError(path, f"not a readable video ({_reason(err)})") from None
    except (OSError, ValueError, UnicodeError) as err:
        raise VideoError(path, f"cannot open ({err})") from None


#: decord prefixes messages with "[hh:mm:ss] /source/file.cc:123: "; the reader wants the rest.
_DECORD_PREFIX = re.compile(r"\[\d\d:\d\d:\d\d\] \S+:\d+: ")


def _reason(err: BaseException) -> str:
    """A short, single-line reason from a decoder exception."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    text = " ".join(_DECORD_PREFIX.sub("", str(text)).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _video_stream(container: Any, path: str) -> Any:
    fmt = str(getattr(container.format, "name", "") or "")
    if fmt.endswith("_pipe") or fmt == "image2":  # FFmpeg's still-image demuxers
        raise VideoError(path, f"an image ({fmt.removesuffix('_pipe')}), not a video")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        found = f"only {', '.join(kinds)} streams" if kinds else "no streams at all"
        raise VideoError(path, f"no video stream ({found}; truncated or not a video?)")
    return container.streams.video[0]


def _header(container: Any, path: str, max_pixels: int) -> _Header:
    stream = _video_stream(container, path)
    width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    if width <= 0 or height <= 0:
        raise VideoError(path, f"video stream has no valid frame size ({width}x{height})")
    if width * height > max_pixels:
        raise VideoError(path, f"frame size {width}x{height} exceeds the limit of {max_pixels} pixels")
    rate = stream.average_rate or stream.guessed_rate or 0
    return _Header(width, height, float(rate), max(0, int(stream.frames or 0)))


def _count_packets(container: Any, stream: Any, path: str, deadline: _Deadline, max_frames: int) -> int:
    """Count the video packets (one per frame) without decoding them."""
    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size:
                count += 1
                if count > max_frames:
                    raise VideoError(path, f"more than {max_frames} frames (raise max_frames to read it)")
            deadline.check()
    except av.error.ExitError:
        raise _read_timeout(deadline) from None
    except av.error.FFmpegError:
        pass  # a damaged tail: the packets read so far are what the file holds
    return count


def _decoded_frames(container: Any, stream: Any, deadline: _Deadline, max_frames: int, path: str) -> Iterator[Any]:
    """Decoded frames in presentation order, stopping quietly at the first undecodable data."""
    count = 0
    try:
        for packet in container.demux(stream):
            deadline.check()
            for frame in packet.decode():
                count += 1
                if count > max_frames:
                    raise VideoError(path, f"more than {max_frames} frames (raise max_frames to read it)")
                yield frame
    except av.error.ExitError:
        raise _read_timeout(deadline) from None
    except av.error.FFmpegError:
        return  # truncated or corrupt from here on: what decoded so far is the video


def _read_timeout(deadline: _Deadline) -> VideoError:
    """FFmpeg's interrupt callback fired: a read blocked longer than the time budget."""
    return VideoError(deadline.path, f"reading took longer than the {deadline.timeout_s:g} s limit")


def _pyav_frame_count(container: Any, header: _Header, path: str, deadline: _Deadline, max_frames: int) -> int:
    """Header frame count, or the packet count when the header is silent or implausible."""
    if 0 < header.frames <= max_frames:
        return header.frames
    return _count_packets(container, container.streams.video[0], path, deadline, max_frames)


def _pyav_gather(path: str, wanted: Sequence[int], deadline: _Deadline, max_frames: int,
                 short_side: int) -> tuple[dict[int, torch.Tensor], int]:
    """Decode from the start, keeping the `wanted` frames as RGB resized to `short_side`.

    Returns the frames found and the number of frames decoded; decoding stops once the last
    wanted frame is reached, or earlier when the stream ends.
    """
    targets = set(wanted)
    last = max(targets)
    found: dict[int, torch.Tensor] = {}
    decoded = 0
    with _open_pyav(path, deadline) as container:
        stream = _video_stream(container, path)
        with closing(_decoded_frames(container, stream, deadline, max_frames, path)) as frames:
            for index, frame in enumerate(frames):
                decoded = index + 1
                if index in targets:
                    found[index] = _shrink(frame.to_ndarray(format="rgb24"), short_side)
                if index >= last:
                    break
    return found, decoded


def _read_pyav(path: str, spec: ClipSpec, rng: random.Random | None, n: int,
               deadline: _Deadline, max_frames: int) -> tuple[torch.Tensor, list[int], int, int]:
    indices, distinct = _indices_or_error(path, n, spec, rng)
    found, decoded = _pyav_gather(path, indices, deadline, max_frames, spec.short_side)
    if len(found) < len(set(indices)):
        # The container promised more frames than decode: sample again from those that exist.
        n = decoded
        if n == 0:
            raise VideoError(path, "no frame could be decoded")
        indices, distinct = _indices_or_error(path, n, spec, rng)
        found, _ = _pyav_gather(path, indices, deadline, max_frames, spec.short_side)
        if len(found) < len(set(indices)):
            raise VideoError(path, "decoding is not repeatable (frames vanished on a second pass)")
    frames = torch.stack([found[i] for i in sorted(set(indices))])
    return frames, indices, distinct, n


def _indices_or_error(path: str, n: int, spec: ClipSpec, rng: random.Random | None) -> tuple[list[int], int]:
    try:
        return clip_indices(n, spec, rng)
    except ValueError as err:
        raise VideoError(path, str(err)) from None


# --------------------------------------------------------------------------------------------
# decord


class _DecordFailed(Exception):
    """decord could not handle the file; `backend="auto"` then falls back to PyAV."""


def _decord_open(path: str, deadline: _Deadline) -> tuple[Any, int, float]:
    decord = _decord()

    def open_reader() -> tuple[Any, int, float]:
        # One decoding thread: parallelism comes from DataLoader workers, not oversubscription.
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        return reader, len(reader), float(reader.get_avg_fps() or 0.0)

    try:
        return deadline.run(open_reader, "opening the video with decord")
    except VideoError:
        raise
    except Exception as err:  # DECORDError / RuntimeError from the native library
        raise _DecordFailed(_reason(err)) from None


def _read_decord(path: str, spec: ClipSpec, rng: random.Random | None, deadline: _Deadline,
                 max_frames: int) -> tuple[torch.Tensor, list[int], int, int, float]:
    reader, n, fps = _decord_open(path, deadline)
    if n == 0:
        raise _DecordFailed("decord found no frames")
    if n > max_frames:
        raise VideoError(path, f"more than {max_frames} frames (raise max_frames to read it)")
    indices, distinct = _indices_or_error(path, n, spec, rng)
    unique = sorted(set(indices))

    def decode() -> torch.Tensor:
        # Frame by frame, each resized at once: memory follows the clip, not the source resolution.
        shrunk = []
        for i in unique:
            frame = reader.get_batch([i]).asnumpy()
            if frame.ndim != 4 or frame.shape[0] != 1 or frame.shape[-1] != 3:
                raise _DecordFailed(f"decord returned frames of shape {tuple(frame.shape)}")
            shrunk.append(_shrink(frame[0], spec.short_side))
        return torch.stack(shrunk)

    try:
        batch = deadline.run(decode, "decoding with decord")
    except (VideoError, _DecordFailed):
        raise
    except Exception as err:
        raise _DecordFailed(_reason(err)) from None
    return batch, indices, distinct, n, fps


# --------------------------------------------------------------------------------------------
# Public entry points


def _resolve_backend(backend: str) -> str:
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"backend must be 'auto', 'decord' or 'pyav', got {backend!r}")
    if backend == "decord" and _decord() is None:
        raise ImportError("backend='decord' needs the decord package (pip install decord)")
    if backend == "auto":
        return "decord" if _decord() is not None else "pyav"
    return backend


def read_clip(path: str | os.PathLike, spec: ClipSpec, *, backend: Backend = "auto",
              rng: random.Random | None = None, max_pixels: int | None = None,
              timeout_s: float | None = DEFAULT_TIMEOUT_S, max_frames: int | None = None) -> Clip:
    """Decode a clip of `spec.num_frames` frames from a video file.

    Frames are picked by `clip_indices`, resized (short side to `spec.short_side`, bilinear with
    antialiasing), cropped to `spec.crop_size` squares and returned as uint8 RGB whatever the
    source pixel format (grayscale included). The same call returns identical bytes; random
    choices (stride start, random crop) come from `rng`, or from Python's global `random` when
    `rng` is None (which DataLoader seeds differently in every worker).

    `backend="auto"` uses decord when installed and falls back to PyAV when decord cannot read
    the file; PyAV decodes sequentially, so reading late frames of long videos is slower.
    `max_pixels` (default `DEFAULT_MAX_PIXELS`) refuses enormous frames before decoding,
    `max_frames` (default `DEFAULT_MAX_FRAMES`) caps the frame count and `timeout_s` bounds the
    wall-clock time of the whole read (None: unbounded).

    Raises `VideoError` naming the file and the reason for any problem with the file itself.
    """
    path = os.path.abspath(os.fspath(path))
    chosen = _resolve_backend(backend)
    max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    max_frames = DEFAULT_MAX_FRAMES if max_frames is None else int(max_frames)
    deadline = _Deadline(path, timeout_s)
    _check_file(path)

    with _open_pyav(path, deadline) as container:  # header checks come before any decoding
        header = _header(container, path, max_pixels)
        pyav_count = None if chosen == "decord" else _pyav_frame_count(container, header, path, deadline, max_frames)

    frames: torch.Tensor | None = None  # the distinct frames, already resized
    decord_error = None
    if chosen == "decord":
        try:
            frames, indices, distinct, n, fps = _read_decord(path, spec, rng, deadline, max_frames)
            used = "decord"
        except _DecordFailed as err:
            if backend == "decord":
                raise VideoError(path, f"decord cannot read it ({err})") from None
            decord_error = str(err)
    if frames is None:
        if pyav_count is None:
            with _open_pyav(path, deadline) as container:
                pyav_count = _pyav_frame_count(container, header, path, deadline, max_frames)
        if pyav_count == 0:
            detail = f" (decord: {decord_error})" if decord_error else ""
            raise VideoError(path, f"the video stream has no frames{detail}")
        frames, indices, distinct, n = _read_pyav(path, spec, rng, pyav_count, deadline, max_frames)
        fps, used = header.fps, "pyav"

    # Expand the distinct decoded frames to the clip's slots (the padding repeats frames).
    unique = sorted(set(indices))
    position = {index: row for row, index in enumerate(unique)}
    tensor = frames[torch.tensor([position[i] for i in indices], dtype=torch.long)]
    deadline.check()
    return Clip(frames=_crop(tensor, spec, rng), num_frames=distinct, indices=list(indices),
                source_fps=float(fps), path=path, video_frames=n, backend=used)


def probe(path: str | os.PathLike, *, backend: Backend = "auto", decode: bool = False,
          max_pixels: int | None = None, timeout_s: float | None = DEFAULT_TIMEOUT_S,
          max_frames: int | None = None) -> VideoInfo:
    """Frame count, frame rate and frame size of a video, checking that it can be read.

    Without `decode` the count comes from the chosen backend's index (decord counts packets,
    PyAV trusts the container header, counting packets when the header is silent), which is cheap.
    With `decode=True` every frame is decoded with PyAV (bounded by `max_frames` and
    `timeout_s`) and the count is the number of frames that really decode, which catches
    truncated and corrupt files; the reported backend is then "pyav".

    Raises `VideoError` naming the file and the reason when it cannot be read.
    """
    path = os.path.abspath(os.fspath(path))
    chosen = _resolve_backend(backend)
    max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    max_frames = DEFAULT_MAX_FRAMES if max_frames is None else int(max_frames)
    deadline = _Deadline(path, timeout_s)
    _check_file(path)
    with _open_pyav(path, deadline) as container:
        header = _header(container, path, max_pixels)
        if decode:
            stream = container.streams.video[0]
            count = sum(1 for _ in _decoded_frames(container, stream, deadline, max_frames, path))
            if count == 0:
                raise VideoError(path, "no frame could be decoded")
            return VideoInfo(count, header.fps, header.width, header.height, "pyav")
        if chosen == "decord":
            try:
                _, count, fps = _decord_open(path, deadline)
                if count > 0:
                    if count > max_frames:
                        raise VideoError(path, f"more than {max_frames} frames (raise max_frames to read it)")
                    return VideoInfo(count, fps or header.fps, header.width, header.height, "decord")
                reason = "decord found no frames"
            except _DecordFailed as err:
                reason = str(err)
            if backend == "decord":
                raise VideoError(path, f"decord cannot read it ({reason})")
        count = _pyav_frame_count(container, header, path, deadline, max_frames)
    if count == 0:
        raise VideoError(path, "the video stream has no frames")
    return VideoInfo(count, header.fps, header.width, header.height, "pyav")
