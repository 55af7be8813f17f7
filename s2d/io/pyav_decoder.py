"""The PyAV decoder (always installed): container checks, frame counts, sequential decoding.

PyAV decodes from the start of the stream, so reading late frames of long videos is slower than
with decord, but it reads every format FFmpeg does and stops quietly at damaged data, keeping
the frames that really decode.
"""
from __future__ import annotations

import random
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import av
import torch

from s2d.io.limits import Deadline, VideoError, decoder_reason, too_many_frames
from s2d.io.spec import ClipSpec, file_indices, shrink


@dataclass
class Header:
    """What the container says about its first video stream."""

    width: int
    height: int
    fps: float
    frames: int  # frame count from the container header, 0 when it does not say


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
    """Frame size, rate and count of the video stream, refusing frames over `max_pixels`."""
    stream = video_stream(container, path)
    width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    if width <= 0 or height <= 0:
        raise VideoError(path, f"video stream has no valid frame size ({width}x{height})")
    if width * height > max_pixels:
        raise VideoError(path, f"frame size {width}x{height} exceeds the limit of {max_pixels} pixels")
    rate = stream.average_rate or stream.guessed_rate or 0
    return Header(width, height, float(rate), max(0, int(stream.frames or 0)))


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
    if 0 < header.frames <= max_frames:
        return header.frames
    return count_packets(container, container.streams.video[0], path, deadline, max_frames)


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
                    found[index] = shrink(frame.to_ndarray(format="rgb24"), short_side)
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
