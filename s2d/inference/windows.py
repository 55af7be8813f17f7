"""Long videos as a timeline: `predict_windows(model, video, window=2.0, hop=1.0)` classifies every window.

A window is a span of the video, in seconds (`2.0`, measured on the frames' presentation times, so a
variable frame rate is timed right) or in frames (`"64f"`); window k covers `[k·hop, k·hop + window)`
from the first frame. The model reads each window as `s2d.io` reads a whole video: its dense clip
spread uniformly over the window's frames (`clip_indices`), short side resized and centre-cropped
by the same code; a window holding fewer frames than the clip (the end of the video, or a video
shorter than one window) repeats its last frame and counts its valid frames. Windows stop at the first
that reaches the video's last frame (the later ones would hold a part of its frames only), so a video
shorter than one window is one window. A hop longer than the window is allowed (a sparse look at long
footage) and leaves gaps no window reads; a window that holds no frame is left out.

The video is decoded once, from start to end, with PyAV. Only the frames of the windows still open are
kept: a window's frame count, and so which of its frames its clip takes, is known only when it closes (at
a variable frame rate, at the video's end), so each frame is kept as decoded and converted to RGB and
resized and cropped (`s2d.io.spec.shrink`, `crop`, as `read_clip` does) only when a clip takes it, which
most frames of a long window never are; past `RAW_BUDGET` bytes of decoded frames the oldest are converted. Memory
follows the window, not the video's length; closed windows go through the model in batches.

The video may also be a binary file object read once, in order (a pipe: `sys.stdin.buffer` fed by
`ffmpeg ... -f mpegts -`): its windows are timed by the stream's timestamps and each is run as it closes.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, BinaryIO

import av
import torch
from torch import nn

from s2d.inference.predict import Prediction, check_topk, default_topk, prediction_from_outputs
from s2d.io.limits import DEFAULT_MAX_PIXELS, Deadline, VideoError, check_file, decoder_reason
from s2d.io.pyav_decoder import decoded_frames, open_container, read_header, rgb24, rotation_of, video_stream
from s2d.io.spec import ClipSpec, clip_indices, crop, shrink
from s2d.models.clip import clip_spec

__all__ = [
    "MAX_WINDOW_FRAMES",
    "WindowClip",
    "WindowPlan",
    "WindowPrediction",
    "parse_span",
    "predict_windows",
    "read_windows",
    "source_name",
]

#: A window may hold at most this many frames (each kept, as decoded or cropped, until the window closes).
MAX_WINDOW_FRAMES = 4096
#: Bytes of frames kept as decoded (YUV, full size) before the oldest are converted at once.
RAW_BUDGET = 256 << 20


def parse_span(text: str | float, name: str = "window") -> tuple[Fraction, str]:
    """A span as `(amount, unit)`: `"2.0"` or `2.0` seconds (> 0), `"64f"` frames (an integer >= 1).
    ValueError names `name` and what is allowed."""
    allowed = f"{name} must be seconds > 0 (e.g. 2.0) or a frame count >= 1 followed by 'f' (e.g. 64f)"
    if isinstance(text, bool):
        raise TypeError(f"{allowed}, got {text!r}")
    raw = str(text).strip()
    if raw.lower().endswith("f"):
        digits = raw[:-1]
        if not digits.isdigit() or int(digits) < 1:
            raise ValueError(f"{allowed}, got {text!r}")
        return Fraction(int(digits)), "frames"
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{allowed}, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{allowed}, got {text!r}")
    return Fraction(raw), "seconds"  # exact as written: 0.1 s is a tenth, not the nearest binary float


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows lie: window k covers positions `[k·hop, k·hop + window)`, positions being frame
    indices (`unit="frames"`) or seconds since the first frame (`unit="seconds"`)."""

    window: Fraction
    hop: Fraction
    unit: str

    @staticmethod
    def parse(window: str | float, hop: str | float | None = None) -> WindowPlan:
        """The plan of `window` and `hop` (see `parse_span`; both in one unit). The default hop is half the
        window (whole frames for frame windows, at least one)."""
        size, unit = parse_span(window, "window")
        if hop is None:
            step = Fraction(max(1, int(size) // 2)) if unit == "frames" else size / 2
        else:
            step, hop_unit = parse_span(hop, "hop")
            if hop_unit != unit:
                raise ValueError(f"window and hop must both be seconds or both frames ('f'), got window {window!r} "
                                 f"and hop {hop!r}")
        return WindowPlan(size, step, unit)

    def containing(self, position: Fraction) -> range:
        """The windows that contain `position` (k with k·hop <= position < k·hop + window)."""
        last = math.floor(position / self.hop)
        first = max(0, math.floor((position - self.window) / self.hop) + 1)
        return range(first, last + 1)

    def deciding(self, position: Fraction) -> int:
        """The window whose centre lies nearest `position` (the earlier on a tie): the one that labels it."""
        x = (position - self.window / 2) / self.hop
        return max(0, math.ceil(x - Fraction(1, 2)))

    def describe(self) -> str:
        unit = "f" if self.unit == "frames" else " s"
        return f"window {_amount(self.window)}{unit}, hop {_amount(self.hop)}{unit}"


def _amount(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


@dataclass
class WindowClip:
    """One window as read: its dense clip (None for a window in `skip`) and what it covered.

    `start_frame`/`end_frame`: the video frames in it, `[start, end)`; `start_s`/`end_s`: the presentation
    time of its first frame and of the frame after its last (for the video's last frame, its time plus one
    frame duration), seconds from the first frame; `indices`: the source frame of each clip slot;
    `final`: the video's last window."""

    index: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    frames: torch.Tensor | None
    num_frames: int
    indices: list[int]
    final: bool = False


@dataclass
class WindowPrediction(Prediction):
    """A `Prediction` of one window (or, with `error` set and `window` None, of a video that cannot be read)."""

    window: int | None = None
    start_s: float = 0.0
    end_s: float = 0.0
    start_frame: int = 0
    end_frame: int = 0
    final: bool = False
    plan: str = ""  # the window and hop (`WindowPlan.describe`)
    skipped: bool = field(default=False, compare=False)  # in `skip`: read, not run through the model

    def to_dict(self) -> dict[str, Any]:
        """The window's record: `Prediction.to_dict()`'s fields and the window's (`skipped` left out)."""
        d = super().to_dict()
        d.pop("skipped")
        d["start_s"], d["end_s"] = round(self.start_s, 6), round(self.end_s, 6)
        return d


class _Times:
    """Presentation times of decoded frames in seconds since the first, as exact fractions: from pts where
    the stream has them (kept non-decreasing), else from the frame index and the stream's rate."""

    def __init__(self, stream: Any) -> None:
        self.base = stream.time_base
        rate = stream.average_rate or stream.guessed_rate
        self.step = Fraction(1) / Fraction(rate) if rate else Fraction(1, 25)
        self.first: int | None = None
        self.last = Fraction(0)

    def of(self, frame: Any, index: int) -> Fraction:
        pts = frame.pts
        if pts is None or self.base is None:
            time = index * self.step
        else:
            if self.first is None:
                self.first = pts
            time = Fraction(pts - self.first) * Fraction(self.base)
        self.last = time = max(time, self.last if index else Fraction(0))
        return time


def source_name(video: str | os.PathLike | BinaryIO) -> str:
    """The name records and errors give `video`: its path, or a file object's name (`"<stdin>"` for
    `sys.stdin.buffer`; `"<stream>"` for one without a name)."""
    if isinstance(video, (str, os.PathLike)):
        return os.fspath(video)
    name = getattr(video, "name", None)
    return name if isinstance(name, str) else "<stream>"


def _open_stream(source: BinaryIO, name: str) -> Any:
    """A binary file object (a pipe) opened with PyAV, its format probed; `VideoError` naming `name` when
    it is not a readable video stream (an mp4 whose index is at its end needs a seekable file)."""
    try:
        return av.open(source, mode="r", format=None, metadata_errors="ignore")
    except av.error.FFmpegError as err:
        raise VideoError(name, f"not a readable video stream ({decoder_reason(err)})") from None
    except (OSError, ValueError, UnicodeError) as err:
        raise VideoError(name, f"cannot open ({err})") from None


def read_windows(path: str | os.PathLike | BinaryIO, spec: ClipSpec, plan: WindowPlan, *,
                 skip: Container[int] = (), on_frame: Callable[[int, float, Any], None] | None = None, max_pixels: int | None = None,
                 max_window_frames: int = MAX_WINDOW_FRAMES, raw_budget: int = RAW_BUDGET) -> Iterator[WindowClip]:
    """The windows of a video, in order, each as the clip `spec` cuts from its frames; decoded once, with
    PyAV, from start to end (`path` may be a binary file object, read once). Windows in `skip` are reported
    (`frames` None) but their frames are not kept.
    `on_frame(index, seconds, av_frame)` sees every decoded frame before any window holding it is yielded.

    Raises `VideoError` naming the file: unreadable, no frame, or a window of more than `max_window_frames`
    frames (memory holds one window)."""
    if spec.sampling != "uniform" or spec.crop != "center":
        raise ValueError(f"windows are read with uniform sampling and a centre crop (clip_spec's), got "
                         f"sampling={spec.sampling!r}, crop={spec.crop!r}")
    source, piped = path, not isinstance(path, (str, os.PathLike))
    path = source_name(source) if piped else os.path.abspath(os.fspath(source))
    deadline = Deadline(path, None)  # a long video takes as long as it takes; each frame is bounded work
    if piped:  # a file object: opened as it is, its format probed from its first bytes
        opened = _open_stream(source, path)  # type: ignore[arg-type]
    else:
        check_file(path)
        opened = open_container(path, deadline)
    with contextlib.ExitStack() as stack:
        container = stack.enter_context(opened)
        read_header(container, path, DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels))
        stream = video_stream(container, path)
        stream.thread_type = "AUTO"  # frame threads: decoding keeps pace with the model
        times = _Times(stream)
        frames = stack.enter_context(contextlib.closing(decoded_frames(container, stream, deadline, sys.maxsize, path)))
        yield from _windows(path, frames, times, spec, plan, skip, on_frame, max_window_frames, raw_budget)


class _Frames:
    """The frames the open windows may still take, by index: kept as decoded, and converted to RGB, resized
    and centre-cropped (`s2d.io.spec.shrink` and `crop`, as `read_clip` does) the first time a clip takes
    one; past `budget` bytes of decoded frames the oldest are converted at once."""

    def __init__(self, spec: ClipSpec, budget: int) -> None:
        self.spec, self.budget = spec, budget
        self.kept: dict[int, Any] = {}  # index -> decoded frame, or the clip's frame once converted
        self.raw: dict[int, int] = {}  # index -> bytes, of the frames still as decoded (oldest first)
        self.bytes = 0

    def add(self, index: int, frame: Any) -> None:
        self.kept[index], self.raw[index] = frame, sum(plane.buffer_size for plane in frame.planes)
        self.bytes += self.raw[index]
        while self.bytes > self.budget:
            self.converted(next(iter(self.raw)))

    def converted(self, index: int) -> torch.Tensor:
        """Frame `index` as a clip holds it, uint8 `[S, S, 3]`."""
        if index in self.raw:
            frame = self.kept[index]
            image = shrink(rgb24(frame), self.spec.short_side, rotation_of(frame))
            self.kept[index] = crop(image[None], self.spec, None)[0]
            self.bytes -= self.raw.pop(index)
        return self.kept[index]

    def drop_before(self, index: int | None) -> None:
        """Forget the frames before `index` (all of them for None)."""
        for i in [i for i in self.kept if index is None or i < index]:
            del self.kept[i]
            self.bytes -= self.raw.pop(i, 0)


def _windows(path: str, frames: Iterator[Any], times: _Times, spec: ClipSpec, plan: WindowPlan,
             skip: Container[int], on_frame: Callable | None, limit: int, raw_budget: int) -> Iterator[WindowClip]:
    """The window bookkeeping of `read_windows` over decoded frames."""
    open_: dict[int, list[int]] = {}  # window -> its frame indices so far
    starts: dict[int, Fraction] = {}  # window -> time of its first frame
    store = _Frames(spec, raw_budget)  # the frames of the open windows that are not skipped
    held: WindowClip | None = None  # closed, yielded once the next closes or the video ends (to mark `final`)
    index, time = -1, Fraction(0)

    def close(k: int, end: int, end_time: Fraction) -> WindowClip:
        members = open_.pop(k)
        slots, distinct = clip_indices(len(members), spec)
        source = [members[s] for s in slots]
        clip = None if k in skip else torch.stack([store.converted(i) for i in source])
        return WindowClip(k, members[0], end, float(starts.pop(k)), float(end_time), clip, distinct, source)

    for index, frame in enumerate(frames):
        time = times.of(frame, index)
        position = Fraction(index) if plan.unit == "frames" else time
        if on_frame is not None:
            on_frame(index, float(time), frame)
        windows = plan.containing(position)
        closing = [k for k in sorted(open_) if k < windows.start]
        for k in closing:
            clip = close(k, index, time)
            if held is not None:
                yield held
            held = clip
        if closing:
            store.drop_before(min((m[0] for k, m in open_.items() if k not in skip), default=None))
        for k in windows:  # positions never decrease: a window closed (or passed empty) does not come back
            if k not in open_:
                open_[k], starts[k] = [], time
            open_[k].append(index)
            if len(open_[k]) > limit:
                raise VideoError(path, f"window {k} holds more than {limit} frames ({plan.describe()}); "
                                       "choose a shorter window")
        if any(k not in skip for k in windows):
            store.add(index, frame)
    if index < 0:
        raise VideoError(path, "no frame could be decoded")
    if open_:  # every window still open holds the last frame: the earliest covers the others, which are left out
        if held is not None:
            yield held
        held = close(min(open_), index + 1, time + times.step)  # the last frame shows one nominal frame time
    if held is not None:
        held.final = True
        yield held


def _prepare(model: nn.Module, device: torch.device, optimize: bool) -> nn.Module:
    if optimize and not getattr(model, "inference_only", False):
        from s2d.inference.optimize import optimize_for_inference

        model = optimize_for_inference(model)
    return model.to(device)


@torch.inference_mode()
def predict_windows(model: nn.Module, video: str | os.PathLike | BinaryIO, *, window: str | float = 2.0,
                    hop: str | float | None = None, topk: int | None = None, batch_size: int = 8,
                    device: str | torch.device | None = None, optimize: bool = True, amp: bool | None = None,
                    skip: Container[int] = (), on_frame: Callable[[int, float, Any], None] | None = None,
                    max_pixels: int | None = None) -> Iterator[WindowPrediction]:
    """Classify every window of `video` (see the module docstring), yielding one `WindowPrediction` per
    window, in order; a video that cannot be read yields one prediction with `error` set and `window` None.

    `window`, `hop`: seconds (`2.0`) or frames (`"64f"`), `WindowPlan.parse`; `topk` labels per window;
    `batch_size` windows per forward pass; `optimize` runs `optimize_for_inference`'s copy; `amp` (default:
    on CUDA) bf16 autocast. Windows in `skip` are read but not run (yielded with `skipped=True`, no labels).
    With `on_frame` (called for every decoded frame), each window is run as soon as it closes, so that a
    consumer holding frames until their window is labelled holds about one window of them. `video` may be a
    binary file object read once (a pipe: `sys.stdin.buffer`): its predictions' `path` is `source_name(video)`
    and each window is run as soon as it closes."""
    topk = default_topk(model.config.num_classes) if topk is None else topk
    check_topk(topk, model.config.num_classes)
    plan = WindowPlan.parse(window, hop)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    amp = device.type == "cuda" if amp is None else bool(amp)
    path = source_name(video)
    live = on_frame is not None or not isinstance(video, (str, os.PathLike))  # each window run as it closes
    was_training = model.training
    net = _prepare(model.eval(), device, optimize)
    spec = clip_spec(net.config)
    pretrained = bool(getattr(model, "pretrained", False))
    pending: list[WindowClip] = []
    described = plan.describe()

    def run() -> Iterator[WindowPrediction]:
        ready = [c for c in pending if c.frames is not None]
        out = None
        if ready:
            x = torch.stack([c.frames for c in ready]).to(device).permute(0, 1, 4, 2, 3)  # [B, T, 3, H, W]
            n = torch.tensor([c.num_frames for c in ready], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext():
                out = net(x, n)
        row = 0
        for c in pending:
            if c.frames is None:
                pred = WindowPrediction([], num_frames=c.num_frames, path=path, pretrained=pretrained, skipped=True)
            else:
                pred = WindowPrediction(**vars(prediction_from_outputs(net, out, row, topk, c.num_frames, path)))
                if pred.sampling is not None:
                    pred.sampling["frames"] = detail_sources(pred.sampling, c.indices, c.num_frames)
                row += 1
            pred.window, pred.start_s, pred.end_s = c.index, c.start_s, c.end_s
            pred.start_frame, pred.end_frame, pred.final, pred.plan = c.start_frame, c.end_frame, c.final, described
            yield pred
        pending.clear()

    try:
        clips = read_windows(video, spec, plan, skip=skip, on_frame=on_frame, max_pixels=max_pixels)
        try:
            for clip in clips:
                pending.append(clip)
                if live or sum(c.frames is not None for c in pending) >= batch_size:
                    yield from run()
        except VideoError as err:
            yield from run()
            yield WindowPrediction([], path=path, error=err.reason, pretrained=pretrained, plan=described)
            return
        yield from run()
    finally:
        model.train(was_training)


def detail_sources(sampling: dict[str, Any], indices: list[int], num_frames: int) -> list[int]:
    """The video frame each detail frame was sampled around: its temporal grid point
    `centre_t + (j − (T_d−1)/2)·stride_t` (clip slots, clamped to the valid ones), through `indices`."""
    count = len(sampling["centre_x"])
    centre, stride = sampling["centre_t"], sampling["stride_t"]
    out = []
    for j in range(count):
        slot = min(max(round(centre + (j - (count - 1) / 2) * stride), 0), num_frames - 1)
        out.append(int(indices[slot]))
    return out
