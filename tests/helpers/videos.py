"""Helpers that encode tiny test videos with PyAV.

Every frame of an "index" video is one solid grey level that encodes its frame index
(`index_level(i)`), so a test can tell exactly which source frame landed in each output slot
after lossy compression, resizing and cropping (`decode_indices`). "ramp" videos hold a static
horizontal gradient instead, which lets tests check where a crop was taken.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

#: Grey level of frame i is BASE + STEP * i; 20 frames span 10..238 and survive H.264 / VP9.
BASE = 10
STEP = 12
MAX_INDEX_FRAMES = (255 - BASE) // STEP + 1

#: Frames that still decode from the "overclaim" video (two whole GOPs of the 20 it lists).
OVERCLAIM_DECODABLE = 10

#: Container and stream settings per codec; the GOP is short so seeking decoders cross keyframes.
CODECS: dict[str, dict] = {
    "h264": {"encoder": "libx264", "suffix": ".mp4", "options": {"g": "5", "bf": "2", "crf": "18"}},
    "vp9": {"encoder": "libvpx-vp9", "suffix": ".webm",
            "options": {"g": "5", "crf": "10", "b": "0", "deadline": "realtime", "cpu-used": "8"}},
    "mpeg4": {"encoder": "mpeg4", "suffix": ".avi", "options": {"g": "5", "qscale": "2"}},
    "ffv1": {"encoder": "ffv1", "suffix": ".mkv", "options": {}},
}


def encoder_available(codec: str) -> bool:
    """Whether this PyAV build can encode `codec` (a key of CODECS)."""
    try:
        av.codec.Codec(CODECS[codec]["encoder"], "w")
    except Exception:
        return False
    return True


def require_encoder(codec: str) -> None:
    """Skip the calling test when the encoder for `codec` is missing from this FFmpeg build."""
    if not encoder_available(codec):
        pytest.skip(f"FFmpeg build has no {CODECS[codec]['encoder']} encoder")


def index_level(i: int) -> int:
    """Grey level painted into every pixel of frame `i`."""
    if not 0 <= i < MAX_INDEX_FRAMES:
        raise ValueError(f"frame index {i} cannot be painted (0..{MAX_INDEX_FRAMES - 1})")
    return BASE + STEP * i


def decode_indices(frames: torch.Tensor) -> list[int]:
    """Recover the painted frame index of each frame of a `[T, H, W, 3]` uint8 clip."""
    means = frames.to(torch.float32).mean(dim=(1, 2, 3))
    return [int(round((float(m) - BASE) / STEP)) for m in means]


def _frame_pixels(pattern: str, i: int, width: int, height: int, gray: bool) -> np.ndarray:
    if pattern == "index":
        img = np.full((height, width), index_level(i), dtype=np.uint8)
    elif pattern == "ramp":
        # Static left-to-right gradient from 0 to 255: column x has level 255 * x / (width - 1).
        row = np.linspace(0, 255, width).round().astype(np.uint8)
        img = np.broadcast_to(row, (height, width)).copy()
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    return img if gray else np.repeat(img[:, :, None], 3, axis=2)


def write_video(path: str | Path, *, num_frames: int = 20, width: int = 64, height: int = 48,
                codec: str = "h264", fps: int = 25, pattern: str = "index",
                pix_fmt: str | None = None, faststart: bool = False) -> Path:
    """Encode a test video and return its path.

    `pix_fmt="gray"` writes a single-channel stream; `yuv444p` allows odd frame sizes with H.264.
    `faststart=True` puts the MP4 index before the data, so cutting the file's tail leaves an
    index that promises more frames than the data holds.
    """
    cfg = CODECS[codec]
    path = Path(path)
    gray = pix_fmt == "gray"
    if pix_fmt is None:
        pix_fmt = "yuv420p" if codec != "ffv1" else "yuv444p"
    container_options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=container_options) as out:
        stream = out.add_stream(cfg["encoder"], rate=fps, options=dict(cfg["options"]))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = Fraction(1, fps)
        for i in range(num_frames):
            img = _frame_pixels(pattern, i, width, height, gray)
            frame = av.VideoFrame.from_ndarray(img, format="gray" if gray else "rgb24")
            frame.pts = i
            out.mux(stream.encode(frame.reformat(format=pix_fmt)))
        out.mux(stream.encode(None))  # flush the encoder
    return path



def write_mpegts(path: str | Path, *, num_frames: int = 20, width: int = 64, height: int = 48, fps: int = 10,
                 pattern: str = "index") -> Path:
    """An H.264 stream in MPEG-TS, the container a pipe from ffmpeg carries (`-f mpegts -`)."""
    path = Path(path)
    with av.open(str(path), mode="w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=fps, options={"g": "5", "crf": "18", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(_frame_pixels(pattern, i, width, height, False), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path

def write_zero_frame_video(path: str | Path) -> Path:
    """An AVI whose header declares a video stream that holds not a single frame."""
    path = Path(path)
    with av.open(str(path), mode="w", format="avi") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    return path


def write_audio_only(path: str | Path, seconds: float = 0.2) -> Path:
    """A valid media file (WAV) without any video stream."""
    path = Path(path)
    rate = 8000
    with av.open(str(path), mode="w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        samples = np.zeros((1, int(rate * seconds)), dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))  # flush the encoder
    return path


def write_not_video(path: str | Path) -> Path:
    """A text file wearing a video extension (say, an HTML error page saved by a downloader)."""
    path = Path(path)
    path.write_text("<html><body>404 Not Found</body></html>\n" * 20)
    return path


def truncate(src: str | Path, dst: str | Path, keep: float) -> Path:
    """Copy the first `keep` fraction of `src`'s bytes to `dst` (an interrupted download)."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def cut_after_packets(src: str | Path, dst: str | Path, keep_packets: int) -> Path:
    """Copy `src` up to the byte where its packet number `keep_packets` (decode order) starts.

    On a fast-start MP4 the index (`moov`) sits before the data and still lists every frame,
    so the copy claims more frames than it can deliver.
    """
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        positions = [p.pos for p in container.demux(stream) if p.size]
    if not 0 < keep_packets < len(positions):
        raise ValueError(f"{src}: cannot keep {keep_packets} of {len(positions)} packets")
    dst = Path(dst)
    dst.write_bytes(Path(src).read_bytes()[: positions[keep_packets]])
    return dst


def corrupt_packets(src: str | Path, dst: str | Path, first_packet: int) -> Path:
    """Copy `src` with every packet from number `first_packet` on (decode order) overwritten
    by seeded random bytes: the container's index is intact but those frames do not decode."""
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        spans = [(p.pos, p.size) for p in container.demux(stream) if p.size]
    data = bytearray(Path(src).read_bytes())
    noise = np.random.default_rng(0)
    for pos, size in spans[first_packet:]:
        data[pos:pos + size] = noise.integers(0, 256, size, dtype=np.uint8).tobytes()
    dst = Path(dst)
    dst.write_bytes(bytes(data))
    return dst


def make_video_set(folder: str | Path) -> dict[str, Path]:
    """Encode the standard set of good and bad test videos into `folder`; name -> path.

    Keys: "h264" (20 frames), "h264_short" (5 frames), "h264_long" (21 frames, fps 30),
    "vp9" (20 frames, when the encoder exists), "ramp", "gray", "odd" (47x33 pixels),
    "truncated" (tail cut, index lost), "overclaim" (index promises 20 frames, only
    OVERCLAIM_DECODABLE decode), "corrupt" (20 frames indexed, packets from the 11th on are noise),
    "webm_cut" (VP9 with its tail cut), "not_video", "audio_only", "zero_frames", "empty".
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # MPEG-4 Part 2 stands in for H.264 in FFmpeg builds without libx264.
    main = "h264" if encoder_available("h264") else "mpeg4"
    v: dict[str, Path] = {}
    v["h264"] = write_video(folder / "h264.mp4", codec=main)
    v["h264_short"] = write_video(folder / "short.mp4", num_frames=5, codec=main)
    v["h264_long"] = write_video(folder / "long.mp4", num_frames=21, fps=30, codec=main)
    if encoder_available("vp9"):
        v["vp9"] = write_video(folder / "vp9.webm", codec="vp9")
        v["webm_cut"] = truncate(v["vp9"], folder / "vp9_cut.webm", 0.5)
    v["ramp"] = write_video(folder / "ramp.mp4", num_frames=3, pattern="ramp", codec=main)
    v["gray"] = write_video(folder / "gray.mkv", codec="ffv1", pix_fmt="gray")
    if main == "h264":
        v["odd"] = write_video(folder / "odd.mp4", width=47, height=33, pix_fmt="yuv444p")
    else:
        v["odd"] = write_video(folder / "odd.mkv", width=47, height=33, codec="ffv1")
    v["truncated"] = truncate(v["h264"], folder / "truncated.mp4", 0.6)
    full = write_video(folder / "faststart.mp4", faststart=True, codec=main)
    v["overclaim"] = cut_after_packets(full, folder / "overclaim.mp4", OVERCLAIM_DECODABLE)
    v["corrupt"] = corrupt_packets(v["h264"], folder / "corrupt.mp4", 10)
    v["not_video"] = write_not_video(folder / "not_video.mp4")
    v["audio_only"] = write_audio_only(folder / "audio.wav")
    v["zero_frames"] = write_zero_frame_video(folder / "zero.avi")
    v["empty"] = folder / "empty.mp4"
    v["empty"].write_bytes(b"")
    return v
