"""The annotated video of a windowed run: an H.264 mp4 (PyAV) of the input, each frame showing the label of
its window with its probability and the region the detail net sampled.

`AnnotatedVideo` is fed the decoded frames (`add_frame`) and the windows in order (`add_window`) as they
come, and encodes each frame once its window is known: the window whose centre lies nearest the frame
(`s2d.inference.timeline.boundary`, the rule segments use), so it holds the frames of about one window,
never the video. Frames keep their presentation times, so the mp4 has the input's frame count and rate
(a variable rate included). The region drawn is that of the detail frame sampled nearest in time,
mapped from the model's clip (resized, centre-cropped) back onto the frame. The file is written to a
temporary beside the target and renamed into place when complete (`s2d.io.files`).
"""
from __future__ import annotations

import contextlib
import os
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from s2d.inference.timeline import Scored, boundary
from s2d.io.files import default_mode, fsync_dir, temp_path
from s2d.io.pyav_decoder import rgb24, rotation_of
from s2d.io.spec import KEEP_RATIO, ClipSpec, resized_size, upright

__all__ = ["AnnotatedVideo", "ClipGeometry", "input_format"]

BOX = (255, 64, 64)
TEXT = (255, 255, 255)
SHADE = (0, 0, 0)


class ClipGeometry:
    """Maps points of the model's clip (resized to `spec.short_side`, centre-cropped to `spec.crop_size`, as
    `s2d.io.spec` cuts it from an upright `height × width` frame) back to that frame's pixels."""

    def __init__(self, height: int, width: int, spec: ClipSpec) -> None:
        self.ox = (width - KEEP_RATIO * height) // 2 if width > KEEP_RATIO * height else 0
        self.oy = (height - KEEP_RATIO * width) // 2 if height > KEEP_RATIO * width else 0
        self.uw, self.uh = width - 2 * self.ox, height - 2 * self.oy  # the usable part (`usable_part`)
        rh, rw = resized_size(self.uh, self.uw, spec.short_side)
        self.rh, self.rw = rh, rw
        self.top, self.left = (rh - spec.crop_size) // 2, (rw - spec.crop_size) // 2

    def to_frame(self, x: float, y: float) -> tuple[float, float]:
        """Clip pixel (x, y) → frame pixel (pixel centres at integers in both)."""
        fx = (x + self.left + 0.5) * self.uw / self.rw - 0.5 + self.ox
        fy = (y + self.top + 0.5) * self.uh / self.rh - 0.5 + self.oy
        return fx, fy


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


class AnnotatedVideo:
    """Writes `path` (an .mp4) from the frames of one video and its windows; see the module docstring.

    `rate`, `time_base`: the input stream's average frame rate and time base (`input_format`);
    `size`: the output's `(width, height)` (default: the input's upright frame size), rounded down to even
    sides as H.264's 4:2:0 needs; `sampler_size`: the detail net's S (the region spans
    `centre ± stride·(S−1)/2`), None to draw no region. The encoder opens on the first frame."""

    def __init__(self, path: str | os.PathLike, rate: Fraction, time_base: Fraction, spec: ClipSpec,
                 sampler_size: int | None, size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.rate, self.time_base = Fraction(rate), Fraction(time_base)
        self.spec, self.sampler_size, self.wanted = spec, sampler_size, size
        self.step = max(1, round(1 / (self.rate * self.time_base)))  # pts per frame, where frames have none
        self.frames: deque[tuple[int, Any]] = deque()  # decoded frames waiting for their window
        self.previous: Scored | None = None
        self.written = 0
        self.first_pts: int | None = None
        self.container: Any = None
        self.tmp = temp_path(self.path, suffix=".mp4")

    def _open(self, height: int, width: int) -> None:
        import av

        out_w, out_h = self.wanted or (width, height)
        self.size = (max(2, out_w - out_w % 2), max(2, out_h - out_h % 2))
        self.scale = (self.size[0] / width, self.size[1] / height)
        self.geometry = ClipGeometry(height, width, self.spec)
        self.font = _font(max(10, self.size[1] // 30))
        self.container = av.open(str(self.tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream("libx264", rate=self.rate)
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = self.time_base
        self.stream.codec_context.time_base = self.time_base
        self.stream.options = {"crf": "20", "preset": "veryfast"}

    def add_frame(self, index: int, frame: Any) -> None:
        """Queue decoded frame `index` (an `av.VideoFrame`) until its window is known."""
        self.frames.append((index, frame))

    def add_window(self, window: Scored) -> None:
        """The next window, in order: the frames nearer an earlier window's centre are encoded now."""
        if self.previous is not None:
            cut, _ = boundary(self.previous, window)
            while self.frames and self.frames[0][0] < cut:
                self._write(*self.frames.popleft(), self.previous)
        self.previous = window

    def finish(self) -> Path:
        """Encode the frames left (the last window's), flush the encoder and move the file into place."""
        try:
            while self.frames:
                self._write(*self.frames.popleft(), self.previous)
            if self.container is None:
                raise ValueError(f"{self.path}: no frame to write")
            self.container.mux(self.stream.encode(None))
            self.container.close()
            default_mode(self.tmp)
            fd = os.open(self.tmp, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self.tmp, self.path)
            fsync_dir(self.path.parent)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop without a file: the temporary is removed, the target left as it was."""
        with contextlib.suppress(Exception):  # a broken encoder must not hide why the run stopped
            if self.container is not None:
                self.container.close()
        self.tmp.unlink(missing_ok=True)

    # -- drawing -------------------------------------------------------------------------------
    def _write(self, index: int, frame: Any, window: Scored | None) -> None:
        import av

        pts = frame.pts
        if pts is None:
            pts = index * self.step
        if self.first_pts is None:
            self.first_pts = pts
        image = upright(rgb24(frame), rotation_of(frame))
        if self.container is None:
            self._open(*image.shape[:2])
        picture = Image.fromarray(np.ascontiguousarray(image))
        if picture.size != self.size:
            picture = picture.resize(self.size, Image.BILINEAR)
        if window is not None:
            self._draw(ImageDraw.Draw(picture), index, window)
        out = av.VideoFrame.from_ndarray(np.asarray(picture), format="rgb24")
        out.pts, out.time_base = pts - self.first_pts, self.time_base
        self.container.mux(self.stream.encode(out))
        self.written += 1

    def _draw(self, draw: ImageDraw.ImageDraw, index: int, window: Scored) -> None:
        label = window.label
        text = f"{label}\n{window.probs[label]:.2f}" if label is not None else "(no label)\n"
        text += f"   window {window.window}: {window.start_s:.1f}-{window.end_s:.1f} s"
        x0, y0, x1, y1 = draw.multiline_textbbox((6, 4), text, font=self.font)
        draw.rectangle([x0 - 4, y0 - 3, x1 + 4, y1 + 3], fill=SHADE)
        draw.multiline_text((6, 4), text, fill=TEXT, font=self.font)
        box = self._box(index, window)
        if box is not None:
            width = max(2, self.size[1] // 240)
            draw.rectangle(box, outline=BOX, width=width)
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            draw.ellipse([cx - 2 * width, cy - 2 * width, cx + 2 * width, cy + 2 * width], fill=BOX)

    def _box(self, index: int, window: Scored) -> list[float] | None:
        """The sampled region of the detail frame nearest frame `index`, in output pixels."""
        s = window.sampling
        if not s or self.sampler_size is None or "frames" not in s:
            return None
        j = min(range(len(s["frames"])), key=lambda i: (abs(s["frames"][i] - index), i))
        reach = (self.sampler_size - 1) / 2
        hx, hy = s["stride_x"][j] * reach, s["stride_y"][j] * reach
        a = self.geometry.to_frame(s["centre_x"][j] - hx, s["centre_y"][j] - hy)
        b = self.geometry.to_frame(s["centre_x"][j] + hx, s["centre_y"][j] + hy)
        sx, sy = self.scale
        return [(a[0] + 0.5) * sx - 0.5, (a[1] + 0.5) * sy - 0.5, (b[0] + 0.5) * sx - 0.5, (b[1] + 0.5) * sy - 0.5]


def input_format(path: str | os.PathLike) -> tuple[Fraction, Fraction]:
    """The average frame rate and time base of the video stream of `path` (for `AnnotatedVideo`)."""
    from s2d.io.limits import Deadline
    from s2d.io.pyav_decoder import open_container, video_stream

    path = os.path.abspath(os.fspath(path))
    with open_container(path, Deadline(path, None)) as container:
        stream = video_stream(container, path)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        return Fraction(rate), Fraction(stream.time_base or Fraction(1, 1000))
