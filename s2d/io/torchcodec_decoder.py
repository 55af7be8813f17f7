"""The torchcodec decoder (optional): PyTorch's maintained FFmpeg decoder, frames straight to tensors.

`pip install torchcodec` brings the Python package but not FFmpeg: it loads the system's FFmpeg
shared libraries (major versions 4 to 8; on Debian and Ubuntu `apt install libavcodec59
libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4 libavutil57` or the distro's
`ffmpeg`). Without them it imports but cannot decode, so `torchcodec_available` checks that the
libraries loaded, not only the import. Its wheel must also match the installed torch.

Frames are indexed by an exact scan of the file (`seek_mode="exact"`), decoded in sorted order a
few at a time (so the decoder walks forward inside a group of pictures instead of seeking for
each frame) and resized at once, so memory follows the clip, not the source resolution. Native
calls run under the read's `Deadline`. When torchcodec cannot handle a file it raises
`TorchCodecFailed`, and `backend="auto"` falls back to PyAV.
"""
from __future__ import annotations

import random
from typing import Any

import torch

from s2d.io.limits import Deadline, run_native
from s2d.io.pyav_decoder import first_frame_rotation
from s2d.io.spec import ClipSpec, frame_plan, shrink

#: Frames decoded per call: a bound on the full-resolution frames held at once.
CHUNK = 8

_DECODER: Any = None
_CHECKED = False


def decoder_class() -> Any:
    """torchcodec's `VideoDecoder`, when the package imports and its FFmpeg libraries load; else None."""
    global _DECODER, _CHECKED
    if not _CHECKED:
        try:
            from torchcodec import _core  # noqa: PLC0415 - optional dependency, imported lazily
            from torchcodec.decoders import VideoDecoder  # noqa: PLC0415

            _core.get_ffmpeg_library_versions()  # raises when no FFmpeg shared libraries could be loaded
        except Exception:  # missing, built for another torch, or FFmpeg absent
            VideoDecoder = None
        _DECODER, _CHECKED = VideoDecoder, True
    return _DECODER


def torchcodec_available() -> bool:
    """Whether torchcodec is installed and can decode (its FFmpeg libraries load with this torch)."""
    return decoder_class() is not None


class TorchCodecFailed(Exception):
    """torchcodec could not handle the file; `backend="auto"` then falls back to PyAV."""


def open_decoder(path: str, deadline: Deadline) -> tuple[Any, int, float]:
    """A torchcodec `VideoDecoder` on `path` (one FFmpeg thread, NHWC frames) with its frame count and fps."""
    cls = decoder_class()

    def open_it() -> tuple[Any, int, float]:
        # One decoding thread: parallelism comes from DataLoader workers, not oversubscription.
        decoder = cls(path, seek_mode="exact", dimension_order="NHWC", num_ffmpeg_threads=1)
        meta = decoder.metadata
        return decoder, int(meta.num_frames or 0), float(meta.average_fps or 0.0)

    return run_native(deadline, open_it, "opening the video with torchcodec", TorchCodecFailed)


def read_frames(path: str, spec: ClipSpec, rng: random.Random | None, deadline: Deadline,
                max_frames: int) -> tuple[torch.Tensor, list[int], int, int, float]:
    """The clip's distinct frames (resized), its indices, distinct count, the video's frame count and fps."""
    decoder, n, fps = open_decoder(path, deadline)
    indices, distinct, unique = frame_plan(path, n, spec, rng, max_frames, TorchCodecFailed, "torchcodec")
    # torchcodec >= 0.11 turns frames upright itself and says so with `metadata.rotation`; older ones do not.
    rotation = 0 if hasattr(decoder.metadata, "rotation") else first_frame_rotation(path, deadline, max_frames)

    def decode() -> torch.Tensor:
        shrunk = []
        for start in range(0, len(unique), CHUNK):
            frames = decoder.get_frames_at(unique[start:start + CHUNK]).data  # uint8 [k, H, W, 3]
            if frames.dim() != 4 or frames.shape[-1] != 3:
                raise TorchCodecFailed(f"torchcodec returned frames of shape {tuple(frames.shape)}")
            shrunk += [shrink(frame.numpy(), spec.short_side, rotation) for frame in frames]
            deadline.check()
        return torch.stack(shrunk)

    batch = run_native(deadline, decode, "decoding with torchcodec", TorchCodecFailed)
    return batch, indices, distinct, n, fps
