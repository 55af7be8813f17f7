"""Reading clips from raw video files.

`read_clip` turns one video file into a fixed-size clip: a uint8 tensor `[T, H, W, 3]` of RGB
frames, resized so the short side has a given length and cropped to a square. Two decoders are
supported: decord (fast random access, optional) and PyAV (sequential decoding, always
installed); `backend="auto"` prefers decord and falls back to PyAV. Every problem caused by the
input file itself raises `VideoError`, whose message names the file and the reason. torchcodec
(PyTorch's FFmpeg decoder) is the third, optional choice, used by "auto" when decord is missing.

Modules, each importing only those above it:

- `limits`: `VideoError`, the size and time limits, file checks;
- `spec`: `ClipSpec`, `Clip`, `VideoInfo`, frame selection (`clip_indices`), resizing and cropping;
- `pyav_decoder`, `decord_decoder`, `torchcodec_decoder`: one decoder each;
- `reader`: `read_clip` and `probe`, which pick the decoder;
- `walk`: finding video files in folders (links followed once, unreadable folders reported);
- `isolate`: calling a decoder in child processes, so that its crash fails one item, not the run.
"""
from __future__ import annotations

from s2d.io.decord_decoder import decord_available
from s2d.io.limits import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT_S, VideoError
from s2d.io.reader import probe, read_clip
from s2d.io.spec import VIDEO_EXTENSIONS, Clip, ClipSpec, VideoInfo, clip_indices
from s2d.io.torchcodec_decoder import torchcodec_available

__all__ = [
    "VideoError",
    "ClipSpec",
    "Clip",
    "VideoInfo",
    "read_clip",
    "probe",
    "clip_indices",
    "decord_available",
    "torchcodec_available",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_TIMEOUT_S",
    "VIDEO_EXTENSIONS",
]
