"""A long 720p test video for the windowed benchmark: synthetic-benchmark clips (four classes a minute,
each clip upscaled to 720x720 and centred on a 1280x720 frame), H.264 at 30 fps, written with PyAV.

Usage: python bench/windows/make_video.py OUT.mp4 [MINUTES]
"""
from __future__ import annotations

import sys
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from s2d.synth.benchmark import render_clip, sample_params

FPS, WIDTH, HEIGHT = 30, 1280, 720


def main(path: str, minutes: float = 10.0) -> None:
    clips = []
    for index in range(8):  # each clip shown 15 s (its 16 frames slowed to 30 fps, looped)
        frames = render_clip(sample_params(0, "test", index))
        canvas = np.zeros((len(frames), HEIGHT, WIDTH, 3), np.uint8)
        left = (WIDTH - HEIGHT) // 2
        for t, frame in enumerate(frames):
            canvas[t, :, left:left + HEIGHT] = np.asarray(Image.fromarray(frame).resize((HEIGHT, HEIGHT)))
        clips.append(canvas)
    total = int(minutes * 60 * FPS)
    with av.open(path, mode="w") as out:
        stream = out.add_stream("libx264", rate=Fraction(FPS), options={"preset": "ultrafast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(total):
            clip = clips[(i // (15 * FPS)) % len(clips)]
            out.mux(stream.encode(av.VideoFrame.from_ndarray(clip[(i // 2) % len(clip)], format="rgb24")))
        out.mux(stream.encode(None))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 10.0)
