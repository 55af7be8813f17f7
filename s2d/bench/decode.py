"""Decode benchmark: clips/s of cutting each model's dense clip out of a video file.

The bench encodes its own synthetic video with PyAV into a temporary directory (H.264 when the
FFmpeg build has libx264, MPEG-4 Part 2 otherwise): 10 s at 30 fps, 456×256 (a 256-pixel short
side, as Kinetics / SSv2 videos are usually stored) in full mode; shorter and smaller in quick
and tiny modes. Frames hold moving gradients and blocks plus noise, so the codec has real work.
Each distinct dense clip (`dense_frames` uniform frames, short side resized to
`dense_size · 256/224`, centre crop `dense_size`) is read with `s2d.io.read_clip` through every
available decoder (decord, PyAV, torchcodec).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from s2d.bench.context import Bench, short_reason
from s2d.bench.models import TINY_OVERRIDES, VARIANTS
from s2d.bench.timing import Candidate, time_interleaved

SECTION = "decode"


@dataclass(frozen=True)
class VideoShape:
    frames: int
    width: int
    height: int
    fps: int = 30

    def label(self) -> str:
        return f"{self.frames} frames, {self.width}×{self.height}, {self.fps} fps"


VIDEO_SHAPES = {
    "full": VideoShape(300, 456, 256),
    "quick": VideoShape(90, 456, 256),
    "tiny": VideoShape(24, 128, 96),
}

#: (encoder, file suffix, options) tried in order.
ENCODERS = (
    ("libx264", ".mp4", {"preset": "veryfast", "crf": "23", "g": "60"}),
    ("mpeg4", ".mp4", {"qscale": "4", "g": "60"}),
)


def synthetic_frame(i: int, shape: VideoShape, noise: np.ndarray) -> np.ndarray:
    """Frame `i` (RGB uint8 `[H, W, 3]`): a drifting colour gradient, a moving block, fixed noise."""
    h, w = shape.height, shape.width
    y, x = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[..., 0] = (x * 255 // max(w - 1, 1) + 3 * i) % 256
    img[..., 1] = (y * 255 // max(h - 1, 1) + 5 * i) % 256
    img[..., 2] = ((x + y) // 4 + 7 * i) % 256
    side = max(4, h // 4)
    x0 = (i * 7) % max(1, w - side)
    y0 = (i * 3) % max(1, h - side)
    img[y0:y0 + side, x0:x0 + side] = 255 - img[y0:y0 + side, x0:x0 + side]
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def encode_video(directory: Path, shape: VideoShape) -> tuple[Path, str]:
    """Write the synthetic video into `directory`; returns its path and the encoder used."""
    import av

    last_error: Exception | None = None
    rng = np.random.default_rng(0)
    noise = rng.integers(-12, 13, size=(shape.height, shape.width, 3), dtype=np.int16)
    for encoder, suffix, options in ENCODERS:
        path = directory / f"synthetic-{encoder}{suffix}"
        try:
            with av.open(str(path), "w") as container:
                stream = container.add_stream(encoder, rate=Fraction(shape.fps, 1))
                stream.width, stream.height, stream.pix_fmt = shape.width, shape.height, "yuv420p"
                stream.options = dict(options)
                for i in range(shape.frames):
                    frame = av.VideoFrame.from_ndarray(synthetic_frame(i, shape, noise), format="rgb24")
                    container.mux(stream.encode(frame))
                container.mux(stream.encode())  # flush the encoder
            return path, encoder
        except Exception as err:  # encoder missing from this FFmpeg build: try the next one
            last_error = err
            path.unlink(missing_ok=True)
    raise RuntimeError(f"no usable video encoder ({short_reason(last_error) if last_error else 'none tried'})")


def run(bench: Bench) -> None:
    """Encode the synthetic video, then time `read_clip` per dense-clip spec and decoder."""
    try:
        from s2d.io import ClipSpec, decord_available, read_clip, torchcodec_available
    except Exception as err:
        bench.skip("decode/*", SECTION, f"s2d.io unavailable: {short_reason(err)}")
        return
    from s2d.hub.registry import get_config

    tiny = bench.mode == "tiny"
    specs: dict[tuple[int, int], list[str]] = {}
    for variant in VARIANTS:
        if variant.overrides or variant.optimize:
            continue  # ablations and optimised copies share their base model's dense clip
        c = get_config(variant.model, **(TINY_OVERRIDES.get(variant.model, {}) if tiny else {}))
        specs.setdefault((c.dense_frames, c.dense_size), []).append(variant.key)
    backends = ["pyav"] + (["decord"] if decord_available() else []) + \
        (["torchcodec"] if torchcodec_available() else [])
    if "decord" not in backends:
        bench.skip("decode/*/decord", SECTION, "decord is not installed")
    if "torchcodec" not in backends:
        bench.skip("decode/*/torchcodec", SECTION, "torchcodec is not installed, or cannot load FFmpeg's shared "
                                                   "libraries or this torch")
    shape = VIDEO_SHAPES[bench.mode]
    with tempfile.TemporaryDirectory(prefix="s2d-bench-") as tmp:
        try:
            path, encoder = encode_video(Path(tmp), shape)
        except Exception as err:
            bench.skip("decode/*", SECTION, f"could not encode the synthetic video: {short_reason(err)}")
            return
        video = f"{shape.label()}, {encoder}"
        bench.shapes["decode"] = video
        for (frames, size), models in specs.items():
            short = max(size, round(size * 256 / 224))
            spec = ClipSpec(num_frames=frames, short_side=short, crop_size=size)
            bench.log(f"decode {frames}x{size}: {', '.join(backends)}")
            cands = {b: Candidate([lambda b=b: read_clip(path, spec, backend=b)]) for b in backends}
            results = time_interleaved(cands, "cpu", bench.settings.decode)
            for backend in backends:
                result = results[backend]
                if isinstance(result, BaseException):
                    bench.skip(f"decode/{frames}x{size}/{backend}/*", SECTION, short_reason(result))
                    continue
                timing = result[0]
                base = f"decode/{frames}x{size}/{backend}"
                group = f"{frames}×{size}² clip ({', '.join(models)})"
                common = dict(backend=backend, video=video, clip=f"{frames}×{size}² (short side {short})")
                bench.add(f"{base}/latency", SECTION, group, f"{backend}: per clip", "latency", 0.0, "ms",
                          better="lower", timing=timing, scale=1e3, **common)
                row = bench.add(f"{base}/clips_per_s", SECTION, group, f"{backend}: clips/s", "throughput",
                                1.0 / timing.median_s, "clips/s", better="higher", n=timing.n, **common)
                row["p20"], row["p80"] = 1.0 / timing.p80_s, 1.0 / timing.p20_s
