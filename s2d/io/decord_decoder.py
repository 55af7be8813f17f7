"""The decord decoder (optional): random access to the wanted frames through `VideoReader`.

decord's native calls cannot be interrupted, so each runs under the read's `Deadline` in a
thread that is abandoned on timeout. When decord cannot handle a file it raises
`DecordFailed`, and `backend="auto"` falls back to PyAV. decord turns frames upright itself
(it applies a 180° display rotation and fails on 90° and 270°, which then go to PyAV).
"""
from __future__ import annotations

import random
from typing import Any

import torch

from s2d.io.limits import Deadline, run_native
from s2d.io.spec import ClipSpec, frame_plan, shrink

_DECORD: Any = None
_DECORD_CHECKED = False


def decord_module() -> Any:
    """The decord module, imported on first use; None when it is not installed or broken."""
    global _DECORD, _DECORD_CHECKED
    if not _DECORD_CHECKED:
        try:
            import decord  # noqa: PLC0415 - optional dependency, imported lazily
        except Exception:  # missing, or a binary that does not load on this platform
            decord = None
        _DECORD, _DECORD_CHECKED = decord, True
    return _DECORD


def decord_available() -> bool:
    """Whether the optional decord package can be imported."""
    return decord_module() is not None


class DecordFailed(Exception):
    """decord could not handle the file; `backend="auto"` then falls back to PyAV."""


def open_reader(path: str, deadline: Deadline) -> tuple[Any, int, float]:
    """A decord `VideoReader` on `path` with its frame count and average frame rate."""
    decord = decord_module()

    def open_it() -> tuple[Any, int, float]:
        # One decoding thread: parallelism comes from DataLoader workers, not oversubscription.
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        return reader, len(reader), float(reader.get_avg_fps() or 0.0)

    return run_native(deadline, open_it, "opening the video with decord", DecordFailed)


def read_frames(path: str, spec: ClipSpec, rng: random.Random | None, deadline: Deadline,
                max_frames: int) -> tuple[torch.Tensor, list[int], int, int, float]:
    """The clip's distinct frames (resized), its indices, distinct count, the video's frame count and fps."""
    reader, n, fps = open_reader(path, deadline)
    indices, distinct, unique = frame_plan(path, n, spec, rng, max_frames, DecordFailed, "decord")

    def decode() -> torch.Tensor:
        # Frame by frame, each resized at once: memory follows the clip, not the source resolution.
        shrunk = []
        for i in unique:
            frame = reader.get_batch([i]).asnumpy()
            if frame.ndim != 4 or frame.shape[0] != 1 or frame.shape[-1] != 3:
                raise DecordFailed(f"decord returned frames of shape {tuple(frame.shape)}")
            shrunk.append(shrink(frame[0], spec.short_side))
        return torch.stack(shrunk)

    batch = run_native(deadline, decode, "decoding with decord", DecordFailed)
    return batch, indices, distinct, n, fps
