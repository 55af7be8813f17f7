"""The PyAV decoder (always installed): container checks, frame counts, sequential decoding.

PyAV decodes from the start of the stream, so reading late frames of long videos is slower than
with decord, but it reads every format FFmpeg does and stops quietly at damaged data, keeping
the frames that really decode. It also checks the header for the other decoders (`header_lie`)
and turns frames upright as their display rotation says.
"""
from __future__ import annotations

import os
import random
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import av
import torch

from s2d.io.limits import MAX_ASPECT_RATIO, Deadline, VideoError, decoder_reason, too_many_frames
from s2d.io.spec import ClipSpec, file_indices, shrink


@dataclass
class Header:
    """What the container says about its first video stream, and the size of the file saying it."""

    width: int
    height: int
    fps: float
    frames: int  # frame count from the container header, 0 when it does not say
    duration: float = 0.0  # seconds, 0 when the container does not say
    file_size: int = 0

    def claimed_frames(self) -> int:
        """The frames the header promises: its count, or duration x rate when that says more."""
        return max(self.frames, int(min(self.duration * self.fps, 2.0 ** 62)))


def open_container(path: str, deadline: Deadline) -> Any:
    """The file opened with PyAV within the time budget; `VideoError` when it is not a readable video."""
    deadline.check()
    timeout = None if deadline.timeout_s is None else max(deadline.remaining(), 0.001)
    try:
        return av.open(path, mode="r", timeout=timeout, metadata_errors="ignore")
    except av.error.ExitError:  # FFmpeg's interrupt callback fired: the open timed out
        raise deadline.expired("opening") from None
    except av.error.FFmpegError as err:
        raise VideoError(path, f"not a readable video ({decoder_reason(err)})") from None
    except (OSError, ValueError, UnicodeError) as err:
        raise VideoError(path, f"cannot open ({err})") from None


def video_stream(container: Any, path: str) -> Any:
    """The first video stream; `VideoError` for still images and files without one."""
    fmt = str(getattr(container.format, "name", "") or "")
    if fmt.endswith("_pipe") or fmt == "image2":  # FFmpeg's still-image demuxers
        raise VideoError(path, f"an image ({fmt.removesuffix('_pipe')}), not a video")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        found = f"only {', '.join(kinds)} streams" if kinds else "no streams at all"
        raise VideoError(path, f"no video stream ({found}; truncated or not a video?)")
    return container.streams.video[0]


def read_header(container: Any, path: str, max_pixels: int) -> Header:
    """Frame size, rate, count and duration of the video stream, refusing frames over `max_pixels`
    or more elongated than `MAX_ASPECT_RATIO`:1."""
    stream = video_stream(container, path)
    width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    if width <= 0 or height <= 0:
        raise VideoError(path, f"video stream has no valid frame size ({width}x{height})")
    if width * height > max_pixels:
        raise VideoError(path, f"frame size {width}x{height} exceeds the limit of {max_pixels} pixels")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise VideoError(path, f"frame size {width}x{height} is absurdly elongated (at most {MAX_ASPECT_RATIO}:1 "
                               "is allowed)")
    rate = stream.average_rate or stream.guessed_rate or 0
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    else:
        duration = float(container.duration or 0) / av.time_base
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    return Header(width, height, float(rate), max(0, int(stream.frames or 0)), max(0.0, duration), size)


def header_lie(header: Header, path: str, max_frames: int) -> VideoError | None:
    """The error for a header whose frame count cannot be true, None for a plausible one.

    decord sizes its frame index by the header's claim: a 47 KB mp4 whose `stts` box claims 2^31
    frames makes it throw `std::bad_alloc` and abort the process. No frame takes less than a byte,
    so a claim above the file's size is a lie; one above `max_frames` is refused anyway.
    """
    claim = header.claimed_frames()
    if header.file_size and claim > header.file_size:
        return VideoError(path, f"its header claims {claim} frames in a {header.file_size}-byte file (damaged or "
                                "hostile; backend='pyav' reads the frames that really exist)")
    return too_many_frames(path, max_frames) if header.frames > max_frames else None


def count_packets(container: Any, stream: Any, path: str, deadline: Deadline, max_frames: int) -> int:
    """Count the video packets (one per frame) without decoding them."""
    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size:
                count += 1
                if count > max_frames:
                    raise too_many_frames(path, max_frames)
            deadline.check()
    except av.error.ExitError:  # FFmpeg's interrupt callback fired: a read blocked past the budget
        raise deadline.expired("reading") from None
    except av.error.FFmpegError:
        pass  # a damaged tail: the packets read so far are what the file holds
    return count


def decoded_frames(container: Any, stream: Any, deadline: Deadline, max_frames: int, path: str) -> Iterator[Any]:
    """Decoded frames in presentation order, stopping quietly at the first undecodable data."""
    count = 0
    try:
        for packet in container.demux(stream):
            deadline.check()
            for frame in packet.decode():
                count += 1
                if count > max_frames:
                    raise too_many_frames(path, max_frames)
                yield frame
    except av.error.ExitError:
        raise deadline.expired("reading") from None
    except av.error.FFmpegError:
        return  # truncated or corrupt from here on: what decoded so far is the video


def frame_count(container: Any, header: Header, path: str, deadline: Deadline, max_frames: int) -> int:
    """Header frame count, or the packet count when the header is silent or implausible."""
    if header.frames > 0 and header_lie(header, path, max_frames) is None:
        return header.frames
    return count_packets(container, container.streams.video[0], path, deadline, max_frames)


def rgb24(frame: Any) -> Any:
    """A decoded frame as an RGB `[H, W, 3]` uint8 array, converted on the calling thread.

    FFmpeg's scaler otherwise runs slice threads (one per core) that can deadlock beside PyTorch's
    thread pools: a DataLoader worker forked after the main process had decoded hung in
    `sws_scale_frame` waiting for slice threads that never ran. Decoding runs one video per worker
    process, so the threads brought nothing there; the pixels are the same."""
    return frame.to_ndarray(format="rgb24", threads=1)


def rotation_of(frame: Any) -> int:
    """The display rotation FFmpeg attaches to a decoded frame (degrees counter-clockwise), 0 if none."""
    try:
        return int(getattr(frame, "rotation", 0) or 0)
    except (TypeError, ValueError):
        return 0


def first_frame_rotation(path: str, deadline: Deadline, max_frames: int) -> int:
    """The display rotation of the video's first decodable frame (0 when none decodes)."""
    with open_container(path, deadline) as container:
        stream = video_stream(container, path)
        with closing(decoded_frames(container, stream, deadline, max_frames, path)) as frames:
            for frame in frames:
                return rotation_of(frame)
    return 0


def gather(path: str, wanted: Sequence[int], deadline: Deadline, max_frames: int,
           short_side: int) -> tuple[dict[int, torch.Tensor], int]:
    """Decode from the start, keeping the `wanted` frames as RGB resized to `short_side`.

    Returns the frames found and the number of frames decoded; decoding stops once the last
    wanted frame is reached, or earlier when the stream ends.
    """
    targets = set(wanted)
    last = max(targets)
    found: dict[int, torch.Tensor] = {}
    decoded = 0
    with open_container(path, deadline) as container:
        stream = video_stream(container, path)
        with closing(decoded_frames(container, stream, deadline, max_frames, path)) as frames:
            for index, frame in enumerate(frames):
                decoded = index + 1
                if index in targets:
                    found[index] = shrink(rgb24(frame), short_side, rotation_of(frame))
                if index >= last:
                    break
    return found, decoded


def read_frames(path: str, spec: ClipSpec, rng: random.Random | None, n: int,
                deadline: Deadline, max_frames: int) -> tuple[torch.Tensor, list[int], int, int]:
    """The clip's distinct frames (resized), its indices, distinct count and the video's frame count."""
    indices, distinct = file_indices(path, n, spec, rng)
    found, decoded = gather(path, indices, deadline, max_frames, spec.short_side)
    if len(found) < len(set(indices)):
        # The container promised more frames than decode: sample again from those that exist.
        n = decoded
        if n == 0:
            raise VideoError(path, "no frame could be decoded")
        indices, distinct = file_indices(path, n, spec, rng)
        found, _ = gather(path, indices, deadline, max_frames, spec.short_side)
        if len(found) < len(set(indices)):
            raise VideoError(path, "decoding is not repeatable (frames vanished on a second pass)")
    frames = torch.stack([found[i] for i in sorted(set(indices))])
    return frames, indices, distinct, n
