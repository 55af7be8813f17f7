"""What a clip is and how it is cut from a video: which frames (`clip_indices`), at what size
(`resize`, `shrink`) and which square (`crop`). No decoding happens here."""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from s2d.io.limits import VideoError, too_many_frames

#: Frames more elongated than this (long side over short side) are cut to their centred part of this
#: shape before resizing: the clip's crop lies inside it, and memory follows the clip, not the width.
KEEP_RATIO = 4

#: File extensions treated as videos when scanning folders.
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")


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
    given); uniform sampling with a centre crop never draws anything. Frames more elongated than
    `KEEP_RATIO`:1 are first cut to their centred part of that shape, so a random crop of such a
    video falls inside that part.
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
    - `backend`: `"decord"`, `"torchcodec"` or `"pyav"`, whichever produced the frames.
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


def file_indices(path: str, video_frames: int, spec: ClipSpec, rng: random.Random | None) -> tuple[list[int], int]:
    """`clip_indices` for the video at `path`, whose problems are `VideoError`s naming it."""
    try:
        return clip_indices(video_frames, spec, rng)
    except ValueError as err:
        raise VideoError(path, str(err)) from None


def frame_plan(path: str, video_frames: int, spec: ClipSpec, rng: random.Random | None, max_frames: int,
               failed: type[Exception], decoder: str) -> tuple[list[int], int, list[int]]:
    """For a random-access decoder: the clip's frame indices, its distinct count and the sorted
    distinct frames to decode, after refusing an empty (`failed`) or too long video."""
    if video_frames == 0:
        raise failed(f"{decoder} found no frames")
    if video_frames > max_frames:
        raise too_many_frames(path, max_frames)
    indices, distinct = file_indices(path, video_frames, spec, rng)
    return indices, distinct, sorted(set(indices))


def resized_size(h: int, w: int, short_side: int) -> tuple[int, int]:
    """Frame size once the short side is `short_side`, keeping the aspect ratio."""
    scale = short_side / min(h, w)
    out_h = short_side if h <= w else max(short_side, int(round(h * scale)))
    out_w = short_side if w < h else max(short_side, int(round(w * scale)))
    return out_h, out_w


def resize(frames: torch.Tensor, short_side: int) -> torch.Tensor:
    """Resize uint8 `[T, H, W, 3]` frames so the short side is `short_side`.

    Bilinear with antialiasing, computed on uint8 directly (the channels-last permute is a view).
    """
    _, h, w, _ = frames.shape
    out_h, out_w = resized_size(h, w, short_side)
    if (out_h, out_w) == (h, w):
        return frames
    x = frames.permute(0, 3, 1, 2)  # [T, 3, H, W] in channels-last memory
    x = F.interpolate(x, size=(out_h, out_w), mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1)


def upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """A `[H, W, 3]` frame turned as its display rotation says (degrees counter-clockwise, as FFmpeg's
    display matrix gives it; multiples of 90), without copying."""
    turns = round(rotation / 90) % 4
    return np.rot90(frame, turns) if turns else frame


def usable_part(frame: np.ndarray) -> np.ndarray:
    """The part of a `[H, W, 3]` frame a clip can use: all of it up to `KEEP_RATIO`:1, else its centred
    part of that shape (a view), so resizing never builds a frame wider than the clip needs."""
    h, w = frame.shape[:2]
    if w > KEEP_RATIO * h:
        left = (w - KEEP_RATIO * h) // 2
        return frame[:, left:left + KEEP_RATIO * h]
    if h > KEEP_RATIO * w:
        top = (h - KEEP_RATIO * w) // 2
        return frame[top:top + KEEP_RATIO * w]
    return frame


def shrink(frame: np.ndarray, short_side: int, rotation: int = 0) -> torch.Tensor:
    """One decoded `[H, W, 3]` frame turned upright (`rotation`), cut to its usable part and resized at
    once, so only one full-size frame is ever held and the resized one is bounded by the clip."""
    part = usable_part(upright(frame, rotation))
    return resize(torch.from_numpy(np.ascontiguousarray(part))[None], short_side)[0].contiguous()


def crop(frames: torch.Tensor, spec: ClipSpec, rng: random.Random | None) -> torch.Tensor:
    """The `spec.crop_size` square crop (centre or random) of resized frames."""
    _, out_h, out_w, _ = frames.shape
    c = spec.crop_size
    if spec.crop == "random":
        source = rng or random
        top, left = source.randint(0, out_h - c), source.randint(0, out_w - c)
    else:
        top, left = (out_h - c) // 2, (out_w - c) // 2
    return frames[:, top:top + c, left:left + c, :].contiguous()
