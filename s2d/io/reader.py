"""`read_clip` and `probe`: pick a decoder, check the file and its header, then decode.

`backend="auto"` uses decord when it is installed, else torchcodec when it can decode here
(decord has no wheels for Python >= 3.12), and PyAV when neither can read the file, so a
damaged file still yields the frames that really decode. A header whose frame count cannot be
true goes to PyAV only: decord sizes its index by that count and aborts the process on a lie.
"""
from __future__ import annotations

import os
import random
from typing import Literal

import torch

import s2d.io.limits as limits
from s2d.io.decord_decoder import DecordFailed, decord_available, open_reader
from s2d.io.decord_decoder import read_frames as decord_read_frames
from s2d.io.limits import DEFAULT_TIMEOUT_S, Deadline, VideoError, check_file, too_many_frames
from s2d.io.pyav_decoder import decoded_frames, frame_count, header_lie, open_container
from s2d.io.pyav_decoder import read_frames as pyav_read_frames
from s2d.io.pyav_decoder import read_header
from s2d.io.spec import Clip, ClipSpec, VideoInfo, crop
from s2d.io.torchcodec_decoder import TorchCodecFailed
from s2d.io.torchcodec_decoder import read_frames as torchcodec_read_frames
from s2d.io.torchcodec_decoder import torchcodec_available

Backend = Literal["auto", "decord", "torchcodec", "pyav"]
BACKENDS = ("auto", "decord", "torchcodec", "pyav")


def _resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(repr(b) for b in BACKENDS)}, got {backend!r}")
    if backend == "decord" and not decord_available():
        raise ImportError("backend='decord' needs the decord package (pip install decord)")
    if backend == "torchcodec" and not torchcodec_available():
        raise ImportError("backend='torchcodec' needs the torchcodec package built for this torch (pip install "
                          "torchcodec) and FFmpeg's shared libraries (e.g. apt install ffmpeg)")
    if backend == "auto":
        return "decord" if decord_available() else "torchcodec" if torchcodec_available() else "pyav"
    return backend


def _limits(max_pixels: int | None, max_frames: int | None) -> tuple[int, int]:
    """The pixel and frame caps of one read, the module defaults where None."""
    return (limits.DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels),
            limits.DEFAULT_MAX_FRAMES if max_frames is None else int(max_frames))


def read_clip(path: str | os.PathLike, spec: ClipSpec, *, backend: Backend = "auto",
              rng: random.Random | None = None, max_pixels: int | None = None,
              timeout_s: float | None = DEFAULT_TIMEOUT_S, max_frames: int | None = None) -> Clip:
    """Decode a clip of `spec.num_frames` frames from a video file.

    Frames are picked by `clip_indices`, resized (short side to `spec.short_side`, bilinear with
    antialiasing), cropped to `spec.crop_size` squares and returned as uint8 RGB whatever the
    source pixel format (grayscale included), turned upright as the stream's display rotation
    says (phone videos); frames more elongated than 4:1 are first cut to their centred 4:1 part,
    so memory follows the clip, not the source width. The same call returns identical bytes; random
    choices (stride start, random crop) come from `rng`, or from Python's global `random` when
    `rng` is None (which DataLoader seeds differently in every worker).

    `backend="auto"` uses decord when installed (else torchcodec when it can decode here) and
    falls back to PyAV when that decoder cannot read the file; PyAV decodes sequentially, so
    reading late frames of long videos is slower.
    `max_pixels` (default `DEFAULT_MAX_PIXELS`) refuses enormous frames before decoding,
    `max_frames` (default `DEFAULT_MAX_FRAMES`) caps the frame count and `timeout_s` bounds the
    wall-clock time of the whole read (None: unbounded).

    Raises `VideoError` naming the file and the reason for any problem with the file itself.
    """
    path = os.path.abspath(os.fspath(path))
    chosen = _resolve_backend(backend)
    max_pixels, max_frames = _limits(max_pixels, max_frames)
    deadline = Deadline(path, timeout_s)
    check_file(path)

    with open_container(path, deadline) as container:  # header checks come before any decoding
        header = read_header(container, path, max_pixels)
        pyav_count = None if chosen != "pyav" else frame_count(container, header, path, deadline, max_frames)

    frames: torch.Tensor | None = None  # the distinct frames, already resized
    decoder_error = None
    lie = header_lie(header, path, max_frames)
    if chosen != "pyav" and lie is not None:  # never hand a lying header to a decoder that trusts it
        if backend == chosen:
            raise lie
        decoder_error = f"{chosen}: not given the file ({lie.reason})"
    elif chosen != "pyav":
        read_frames = decord_read_frames if chosen == "decord" else torchcodec_read_frames
        try:
            frames, indices, distinct, n, fps = read_frames(path, spec, rng, deadline, max_frames)
            used = chosen
        except (DecordFailed, TorchCodecFailed) as err:
            if backend == chosen:
                raise VideoError(path, f"{chosen} cannot read it ({err})") from None
            decoder_error = f"{chosen}: {err}"
    if frames is None:
        if pyav_count is None:
            with open_container(path, deadline) as container:
                pyav_count = frame_count(container, header, path, deadline, max_frames)
        if pyav_count == 0:
            detail = f" ({decoder_error})" if decoder_error else ""
            raise VideoError(path, f"the video stream has no frames{detail}")
        frames, indices, distinct, n = pyav_read_frames(path, spec, rng, pyav_count, deadline, max_frames)
        fps, used = header.fps, "pyav"

    # Expand the distinct decoded frames to the clip's slots (the padding repeats frames).
    unique = sorted(set(indices))
    position = {index: row for row, index in enumerate(unique)}
    tensor = frames[torch.tensor([position[i] for i in indices], dtype=torch.long)]
    deadline.check()
    return Clip(frames=crop(tensor, spec, rng), num_frames=distinct, indices=list(indices),
                source_fps=float(fps), path=path, video_frames=n, backend=used)


def probe(path: str | os.PathLike, *, backend: Backend = "auto", decode: bool = False,
          max_pixels: int | None = None, timeout_s: float | None = DEFAULT_TIMEOUT_S,
          max_frames: int | None = None) -> VideoInfo:
    """Frame count, frame rate and frame size of a video, checking that it can be read.

    Without `decode` the count comes from the chosen backend's index (decord counts packets,
    PyAV trusts the container header, counting packets when the header is silent; torchcodec
    probes through PyAV), which is cheap.
    With `decode=True` every frame is decoded with PyAV (bounded by `max_frames` and
    `timeout_s`) and the count is the number of frames that really decode, which catches
    truncated and corrupt files; the reported backend is then "pyav".

    Raises `VideoError` naming the file and the reason when it cannot be read.
    """
    path = os.path.abspath(os.fspath(path))
    chosen = _resolve_backend(backend)
    max_pixels, max_frames = _limits(max_pixels, max_frames)
    deadline = Deadline(path, timeout_s)
    check_file(path)
    with open_container(path, deadline) as container:
        header = read_header(container, path, max_pixels)
        if decode:
            stream = container.streams.video[0]
            count = sum(1 for _ in decoded_frames(container, stream, deadline, max_frames, path))
            if count == 0:
                raise VideoError(path, "no frame could be decoded")
            return VideoInfo(count, header.fps, header.width, header.height, "pyav")
        lie = header_lie(header, path, max_frames)
        if chosen == "decord" and lie is not None and backend == "decord":
            raise lie
        if chosen == "decord" and lie is None:
            try:
                _, count, fps = open_reader(path, deadline)
                if count > 0:
                    if count > max_frames:
                        raise too_many_frames(path, max_frames)
                    return VideoInfo(count, fps or header.fps, header.width, header.height, "decord")
                reason = "decord found no frames"
            except DecordFailed as err:
                reason = str(err)
            if backend == "decord":
                raise VideoError(path, f"decord cannot read it ({reason})")
        count = frame_count(container, header, path, deadline, max_frames)
    if count == 0:
        raise VideoError(path, "the video stream has no frames")
    return VideoInfo(count, header.fps, header.width, header.height, "pyav")
