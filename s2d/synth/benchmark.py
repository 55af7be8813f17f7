"""A synthetic benchmark that only a synopsis-to-detail model can solve cheaply.

Each clip (16 frames of 128×128 by default) shows a small square object, one of four colours, over
a cluttered, noisy background: a smooth grey-ish field, static grey-ish squares and per-pixel
sensor noise. The object travels 4 px per frame in a random direction, pauses for a random half to
three quarters of the clip, and while it pauses its interior carries a *glyph*: a fine periodic
texture that names one of four members of the colour's group. The class is `colour × glyph` (16
classes, `s2d/models/label_lists/synth16.txt`).

- **Coarse evidence** (the colour) is plain at synopsis resolution: the object is 24 px on a
  128 px frame with a 4 px solid border, 6 px after the synopsis' nearest resize to 32 px.
- **Fine evidence** (the glyph) lives in the 16 px interior, only while the glyph is shown, and
  only at frequencies a reduced view cannot carry (below). The pause happens within `spread`
  (24) px of the frame centre, so a detail window must be placed per clip: a centred 32-sample
  window holds the whole glyph for 12% of the clips at a 1-px stride, 26% at 1.3 px and 52% at
  1.6 px, and only a stride of 2 px or more (two samples per glyph period, where the bars alias
  away) holds nearly all of them.

Why the glyph cannot leak through nearest-neighbour downscaling
----------------------------------------------------------------
Every glyph is a 4×4 tile repeated with period `GLYPH_PERIOD` = 4 px, and every tile holds the
same 16 colours: four colours A, B, C, D, four times each (a Hadamard set around mid-grey,
A = μ+u+v, B = μ+u−v, C = μ−u+v, D = μ−u−v, u a luminance step and v a red-green step). A
glyph differs from another only in *where* the colours sit, i.e. only at spatial frequencies of
1/4 cycle per pixel and above; its mean (μ) and its lower-frequency content (none) are the same.
A view that keeps every 4th pixel (the synopsis at 32 px, or a baseline detail net at 32 px:
`F.interpolate(..., mode="nearest")` of a 128 px frame reads pixels 0, 4, 8, ...) samples with a
Nyquist limit of 1/8 cycle per pixel, half the glyph's lowest frequency. With the sampling
stride a multiple of the period, every sample of the glyph lands on the same tile position, so
the reduced frame shows a flat square of one of A, B, C, D. The tile's phase is uniformly
random per clip, so that colour is uniformly distributed whatever the glyph. The glyph is only
shown while the object stands still, so every reduced frame of a clip hits the same tile
position: no combination of frames carries the glyph either. (`s2d.synth.views.no_leak_check`
verifies exactly this by enumerating all 16 phases.) The guarantee needs `resolution / reduced
size` to be a multiple of 4, as 128 → 32 is. A network on such frames can name the colour (the coarse group)
and nothing more: chance among the four glyphs, 25% top-1 at best.

Why the full-resolution clip does carry it
------------------------------------------
Within the tile, the four colours form 2×2-pixel blocks: each block is a 1-pixel checker of two
colours (period 2), and the four blocks pair the colours so that the block means draw bars of
period 4. The official S2DNet detail sampler filters with a Gaussian of σ = 1 pixel, which keeps
about 29% of a period-4 wave and 1.4% of a period-2 wave; `sampler.sigma = 0.5` keeps 73% and 29%.
At a sampling stride below 2 px (more than two samples per period) the detail volume shows the
bars: horizontal or vertical, in luminance (u) or in red-green (v), the four glyphs. A network
reading raw full-resolution pixels sees them directly. Note the flip side: the sampler's initial whole-frame view, a stride of 128/31 ≈ 4.13 px,
is as blind to the glyphs as the 32-px views above (`bench/synthetic/run.py` explains how the
training deals with it).

Tasks
-----
The generator serves more than one task (`s2d.synth.tasks`): `task="benchmark"` (default) is the
one above; `task="transfer"` groups the colours in two and shows new glyphs, diagonal bars, on
clips of its own. A task only picks each clip's colour, glyph and class; the proof above holds
for any glyph whose tile holds A, B, C, D four times each, as all of them do.

Determinism and splits
----------------------
Clip `index` of `split` under `seed` is drawn from its own NumPy generator seeded with
`(seed, split id, index)` (and the task's stream words), so it is the same bytes on every call and
every machine, and splits never share a stream. Labels are exactly balanced: every block of 16
consecutive indices holds each (colour, glyph) pair once (in a seeded order), so each benchmark class once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from s2d.io.files import atomic_write, atomic_write_text
from s2d.synth.appearance import COLOURS, GLYPH_NAMES, GLYPH_PERIOD, OBJECT_RGB, OBJECTS, glyph_tile
from s2d.synth.tasks import BENCHMARK, Task, get_task

__all__ = ["CLASSES", "COLOURS", "DIRECTIONS", "GLYPHS", "GLYPH_PERIOD", "LABEL_LIST", "OBJECTS", "SPLITS",
           "ClipParams", "SyntheticDetailDataset", "clip_label", "glyph_tile", "render_clip", "sample_params",
           "write_label_list", "write_video"]

#: Fine classes of the benchmark: the glyph's bars (orientation × colour axis), glyph ids 0-3.
GLYPHS: tuple[str, ...] = GLYPH_NAMES[:4]
#: Class `object * len(GLYPHS) + glyph`, named "<object> / <glyph>" (coarse classes: OBJECTS).
CLASSES: tuple[str, ...] = BENCHMARK.classes
#: The shipped label list with these names (`s2d/models/label_lists/synth16.txt`).
LABEL_LIST = "synth16"
SPLITS = {"train": 0, "val": 1, "test": 2}

OBJECT_SIZE = 24  # object side in pixels
BORDER = 4  # solid border in the object's colour; the glyph fills the 16×16 interior
MARGIN = 2  # the object stays this far from the frame edges

DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))  # (dx, dy): right, left, down, up


@dataclass(frozen=True)
class ClipParams:
    """Every random choice behind one clip (what `render_clip` draws from)."""

    label: int
    kind: int  # the object's colour: index into OBJECTS (the benchmark's coarse class)
    glyph: int  # glyph id (`glyph_tile`): 0-3 index GLYPHS, 4-7 are the transfer task's
    direction: int  # index into DIRECTIONS (not part of the label)
    x0: int  # object's top-left corner in frame 0
    y0: int
    speed: int  # pixels per frame along the direction, a multiple of GLYPH_PERIOD
    phase: tuple[int, int]  # (x, y) offset of the glyph tile inside the object, 0..3 each
    glyph_start: int  # first frame showing the glyph
    glyph_frames: int  # how many frames show it
    background: tuple[tuple[float, ...], ...]  # coarse grid of the low-frequency background, [g*g][3]
    distractors: tuple[tuple[int, int, int, int, int, int], ...]  # (x, y, size, r, g, b), static squares
    noise_std: float
    noise_seed: int  # seeds the per-pixel noise
    task: str = "benchmark"  # the task (`s2d.synth.tasks`) that drew these choices and names the label

    def steps_taken(self, t: int) -> int:
        """Frames of movement before frame `t`: the object pauses while it shows the glyph."""
        paused = min(max(t - self.glyph_start, 0), self.glyph_frames)
        return t - paused

    def position(self, t: int) -> tuple[int, int]:
        """Object's top-left corner at frame `t`."""
        dx, dy = DIRECTIONS[self.direction]
        moved = self.speed * self.steps_taken(t)
        return self.x0 + dx * moved, self.y0 + dy * moved

    def glyph_visible(self, t: int) -> bool:
        return self.glyph_start <= t < self.glyph_start + self.glyph_frames

    def box(self, t: int) -> tuple[int, int, int, int]:
        """The object's box `(x0, y0, x1, y1)` (exclusive ends) at frame `t`."""
        x, y = self.position(t)
        return x, y, x + OBJECT_SIZE, y + OBJECT_SIZE

    def glyph_centre(self) -> tuple[float, float]:
        """Centre `(x, y)` in pixels of the glyph area while it shows (pixel centres at integers)."""
        x, y = self.position(self.glyph_start)
        return x + (OBJECT_SIZE - 1) / 2, y + (OBJECT_SIZE - 1) / 2


def _glyph_frames_range(frames: int) -> tuple[int, int]:
    """Shortest and longest glyph interval: a half to three quarters of the clip (at least 2 frames)."""
    return max(2, frames // 2), max(2, 3 * frames // 4)


def _check_geometry(frames: int, resolution: int, speed: int) -> None:
    travel = speed * (frames - _glyph_frames_range(frames)[0])  # most frames of movement
    if travel + OBJECT_SIZE + 2 * MARGIN > resolution:
        raise ValueError(f"a {frames}-frame clip at {speed} px/frame needs a frame of at least "
                         f"{travel + OBJECT_SIZE + 2 * MARGIN} px, got resolution={resolution}")


def _cell_for(seed: int, split_id: int, index: int, task: Task) -> int:
    """Exactly balanced designs: block `index // K` is a seeded permutation of the task's K cells
    (for the benchmark a cell is a class)."""
    k = len(task.cells)
    perm = np.random.default_rng([seed, split_id, index // k, 0x1AB31, *task.stream]).permutation(k)
    return int(perm[index % k])


def clip_label(seed: int, split: str, index: int, task: str | Task = "benchmark") -> int:
    """The label of clip `index` of `split` under `seed`, without drawing or rendering the clip."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    if index < 0:
        raise IndexError(f"clip index must be >= 0, got {index}")
    task = get_task(task)
    return task.cells[_cell_for(seed, SPLITS[split], index, task)][2]


def sample_params(seed: int, split: str, index: int, frames: int = 16, resolution: int = 128,
                  noise_std: float = 6.0, num_distractors: int = 3, spread: int = 24,
                  task: str | Task = "benchmark") -> ClipParams:
    """The random choices of clip `index` of `split`, a pure function of its arguments.

    The object pauses (and shows its glyph) at a position drawn uniformly within `spread` pixels
    of the frame centre, the way filmed subjects tend to be framed; its path before and after the
    pause runs in a random direction and may take it anywhere in the frame. `task` picks the colour,
    glyph and class (`s2d.synth.tasks`); every other choice is drawn the same way for every task.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    if index < 0:
        raise IndexError(f"clip index must be >= 0, got {index}")
    split_id = SPLITS[split]
    speed = GLYPH_PERIOD
    _check_geometry(frames, resolution, speed)
    task = get_task(task)
    # the benchmark's stream is () so its seeds, and so its clips' bytes, are what they always were
    rng = np.random.default_rng([seed, split_id, index, *task.stream])
    kind, glyph, label = task.cells[_cell_for(seed, split_id, index, task)]
    direction = int(rng.integers(len(DIRECTIONS)))
    dx, dy = DIRECTIONS[direction]
    short, long = _glyph_frames_range(frames)
    shown = int(rng.integers(short, long + 1))
    start = int(rng.integers(0, frames - shown + 1))
    before = start  # steps of movement before the pause
    after = max(0, frames - 1 - shown - start)  # and after it
    lo, hi = MARGIN, resolution - OBJECT_SIZE - MARGIN  # inclusive range of a corner coordinate
    centre = (resolution - OBJECT_SIZE) // 2

    def pause_at(d: int) -> int:
        """Corner coordinate during the pause: within `spread` of the centre where the path allows."""
        first, last = lo, hi  # the whole path must stay inside the frame
        if d > 0:
            first, last = lo + speed * before, hi - speed * after
        elif d < 0:
            first, last = lo + speed * after, hi - speed * before
        a, b = max(first, centre - spread), min(last, centre + spread)
        if a > b:  # the path does not reach the central box: pause as close to it as possible
            return first if first > centre else last
        return int(rng.integers(a, b + 1))

    px, py = pause_at(dx), pause_at(dy)
    x0, y0 = px - dx * speed * before, py - dy * speed * before
    phase = (int(rng.integers(GLYPH_PERIOD)), int(rng.integers(GLYPH_PERIOD)))
    # low-saturation clutter: grey levels 50..200 with a slight tint, so only the object is vivid
    grey = rng.uniform(50, 200, size=(16, 1))
    grid = tuple(tuple(float(v) for v in row) for row in grey + rng.uniform(-15, 15, size=(16, 3)))
    distractors = []
    for _ in range(num_distractors):
        size = int(rng.integers(10, 21))
        x, y = (int(v) for v in rng.integers(0, resolution - size + 1, size=2))
        # grey-ish, never one of the object colours: the colour alone names the coarse class
        grey = int(rng.integers(40, 216))
        r, g, b = (min(255, max(0, grey + int(v))) for v in rng.integers(-20, 21, size=3))
        distractors.append((x, y, size, r, g, b))
    noise_seed = int(rng.integers(2**63 - 1))
    return ClipParams(label, kind, glyph, direction, x0, y0, speed, phase, start, shown, grid,
                      tuple(distractors), float(noise_std), noise_seed, task.name)


def _background(params: ClipParams, resolution: int) -> np.ndarray:
    """Smooth field: a 4×4 grid of random grey-ish colours, bilinearly interpolated (no fine detail)."""
    grid = np.asarray(params.background, dtype=np.float64).reshape(4, 4, 3)
    pos = np.linspace(0, 3, resolution)
    i0 = np.minimum(pos.astype(np.int64), 2)
    w = pos - i0
    interp = np.zeros((resolution, 4))
    interp[np.arange(resolution), i0] = 1 - w
    interp[np.arange(resolution), i0 + 1] = w
    rows = (interp @ grid.reshape(4, 12)).reshape(resolution, 4, 3)  # [y, j, c]: interpolated down the rows
    return np.ascontiguousarray((rows.transpose(0, 2, 1) @ interp.T).transpose(0, 2, 1))  # then across


def render_clip(params: ClipParams, frames: int = 16, resolution: int = 128) -> np.ndarray:
    """Draw a clip as uint8 `[T, H, W, 3]` (a pure function of `params`)."""
    _check_geometry(frames, resolution, params.speed)
    base = _background(params, resolution)
    for x, y, size, r, g, b in params.distractors:
        base[y:y + size, x:x + size] = (r, g, b)
    inner = OBJECT_SIZE - 2 * BORDER
    tile = glyph_tile(params.glyph)
    px, py = params.phase
    rows = (np.arange(inner) + py) % GLYPH_PERIOD
    cols = (np.arange(inner) + px) % GLYPH_PERIOD
    glyph = COLOURS[tile[rows[:, None], cols[None, :]]]  # [inner, inner, 3]
    video = np.random.default_rng(params.noise_seed).standard_normal(
        (frames, resolution, resolution, 3), dtype=np.float32)
    video *= np.float32(params.noise_std)
    video += base.astype(np.float32)
    for t in range(frames):
        x, y = params.position(t)
        video[t, y:y + OBJECT_SIZE, x:x + OBJECT_SIZE] = OBJECT_RGB[params.kind]
        if params.glyph_visible(t):
            video[t, y + BORDER:y + BORDER + inner, x + BORDER:x + BORDER + inner] = glyph
        # the object is opaque but filmed by the same noisy sensor: its noise is added after drawing
    noise = np.random.default_rng(params.noise_seed + 1).standard_normal(
        (frames, OBJECT_SIZE, OBJECT_SIZE, 3), dtype=np.float32) * np.float32(params.noise_std)
    for t in range(frames):
        x, y = params.position(t)
        video[t, y:y + OBJECT_SIZE, x:x + OBJECT_SIZE] += noise[t]
    np.rint(video, out=video)
    np.clip(video, 0, 255, out=video)
    return video.astype(np.uint8)


class SyntheticDetailDataset(Dataset):
    """Procedural clips of the synopsis-to-detail benchmark (see the module docs), or of another task.

    Samples are the dicts of `s2d.data` datasets (`frames` uint8 `[T, H, W, 3]`, `num_frames`,
    `label`, `index`, `path`, `error`), so `s2d.data.collate` batches them. `path` is a
    description `"synth:<split>/<seed>/<index>"` (`"synth-<task>:..."` for a task other than the
    benchmark; there is no file). Clips are generated on access, deterministically from
    `(seed, split, index)`; `cache=True` keeps them in memory. `task` (`s2d.synth.tasks`):
    "benchmark" (default, 16 classes) or "transfer" (8 classes); `classes` names the task's classes.
    """

    def __init__(self, split: str = "train", size: int = 1024, seed: int = 0, frames: int = 16,
                 resolution: int = 128, noise_std: float = 6.0, num_distractors: int = 3, spread: int = 24,
                 cache: bool = False, task: str | Task = "benchmark") -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        _check_geometry(frames, resolution, GLYPH_PERIOD)
        self.task = get_task(task)
        self.split, self.size, self.seed = split, int(size), int(seed)
        self.frames, self.resolution = int(frames), int(resolution)
        self.noise_std, self.num_distractors, self.spread = float(noise_std), int(num_distractors), int(spread)
        self.classes: list[str] = list(self.task.classes)
        self.cache: dict[int, torch.Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return self.size

    def params(self, index: int) -> ClipParams:
        """The random choices behind sample `index` (ground truth for pictures and tests)."""
        return sample_params(self.seed, self.split, self._index(index), self.frames, self.resolution,
                             self.noise_std, self.num_distractors, self.spread, self.task)

    def _index(self, index: int) -> int:
        if not -self.size <= index < self.size:
            raise IndexError(f"sample index {index} out of range for {self.size} samples")
        return index % self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = self._index(index)
        params = self.params(index)
        frames = self.cache.get(index) if self.cache is not None else None
        if frames is None:
            frames = torch.from_numpy(render_clip(params, self.frames, self.resolution))
            if self.cache is not None:
                self.cache[index] = frames
        scheme = "synth" if self.task.name == "benchmark" else f"synth-{self.task.name}"
        return {"frames": frames, "num_frames": self.frames, "label": params.label, "index": index,
                "path": f"{scheme}:{self.split}/{self.seed}/{index}", "error": None, "focus": params.glyph_centre()}

    def labels(self) -> list[int]:
        """Every sample's label, without rendering any clip."""
        return [clip_label(self.seed, self.split, i, self.task) for i in range(self.size)]


# --------------------------------------------------------------------------------------------
# Files


def write_video(path: str | os.PathLike, frames: torch.Tensor | np.ndarray, fps: int = 8,
                lossless: bool = True) -> Path:
    """Write uint8 `[T, H, W, 3]` RGB frames as an H.264 mp4 with PyAV.

    `lossless=True` (default) encodes RGB losslessly (`libx264rgb`, qp 0) so decoding returns
    the same bytes: the glyphs are one-pixel textures that ordinary 4:2:0 lossy encoding would
    smear. `lossless=False` writes a widely playable yuv420p file instead.
    """
    path = Path(path)
    array = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {array.dtype} {tuple(array.shape)}")
    atomic_write(path, lambda tmp: _encode(tmp, array, fps, lossless))
    return path


def _encode(tmp: str, array: np.ndarray, fps: int, lossless: bool) -> None:
    import av

    with av.open(tmp, mode="w", format="mp4") as container:
        if lossless:
            stream = container.add_stream("libx264rgb", rate=Fraction(fps))
            stream.pix_fmt = "rgb24"
            stream.options = {"qp": "0", "preset": "veryfast"}
        else:
            stream = container.add_stream("libx264", rate=Fraction(fps))
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18", "preset": "veryfast"}
        stream.width, stream.height = array.shape[2], array.shape[1]
        for image in array:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())  # flush the encoder


def write_label_list(path: str | os.PathLike, names: Sequence[str] = CLASSES) -> None:
    """Write the class names, one per line (how `s2d/models/label_lists/synth16.txt` was made)."""
    atomic_write_text(path, "".join(f"{n}\n" for n in names))
