"""What the synthetic clips draw: the object colours and the glyph tiles, shared by every task.

Every glyph is a `[4, 4]` tile of the four colours A, B, C, D (a Hadamard set around mid-grey:
A = μ+u+v, B = μ+u−v, C = μ−u+v, D = μ−u−v, u a luminance step, v a red-green step), each
colour four times: glyphs differ only in where the colours sit, which is what keeps them out of
every view that samples one pixel in 4 (`s2d.synth.benchmark`'s docs prove it). Glyph ids 0-3 are
the benchmark's bars (`GLYPHS`), 4-7 the transfer task's diagonal bars (`s2d.synth.tasks`).
"""
from __future__ import annotations

import numpy as np

__all__ = ["COLOURS", "GLYPH_NAMES", "GLYPH_PERIOD", "GLYPH_SHORT", "OBJECTS", "OBJECT_RGB", "OBJECT_SHORT",
           "glyph_tile"]

#: The object colours (the benchmark's coarse classes), their folder-safe names and RGB values.
OBJECTS: tuple[str, ...] = ("red object", "green object", "blue object", "yellow object")
OBJECT_SHORT: tuple[str, ...] = ("red", "green", "blue", "yellow")
OBJECT_RGB = ((215, 35, 35), (35, 185, 35), (40, 70, 225), (225, 205, 30))

GLYPH_PERIOD = 4  # pixels; the speed and the reduced-view stride are multiples of it

_MID = np.array([128.0, 128.0, 128.0])
_LUMA = np.array([60.0, 60.0, 60.0])  # u: a luminance step
_RED_GREEN = np.array([60.0, -60.0, 0.0])  # v: a red-green step
#: The four glyph colours A, B, C, D (rows), shared by every glyph.
COLOURS = np.stack([_MID + _LUMA + _RED_GREEN, _MID + _LUMA - _RED_GREEN,
                    _MID - _LUMA + _RED_GREEN, _MID - _LUMA - _RED_GREEN])
_A, _B, _C, _D = range(4)

#: Every glyph's name, by glyph id, and its folder-safe short name.
GLYPH_NAMES: tuple[str, ...] = (
    "light-dark horizontal bars", "light-dark vertical bars", "red-green horizontal bars", "red-green vertical bars",
    "light-dark falling diagonal bars", "light-dark rising diagonal bars",
    "red-green falling diagonal bars", "red-green rising diagonal bars")
GLYPH_SHORT: tuple[str, ...] = ("luma-h", "luma-v", "rg-h", "rg-v", "luma-fall", "luma-rise", "rg-fall", "rg-rise")

# The benchmark's bars. Colour pairs of the 2×2 blocks of each tile, as [[top-left, top-right],
# [bottom-left, bottom-right]]: a pair is drawn as a 1-pixel checker, so a block's visible
# (blurred) colour is the pair's mean. (A,B) and (C,D) differ in luminance, (A,C) and (B,D) in red-green.
_BLOCKS = {
    0: (((_A, _B), (_A, _B)), ((_C, _D), (_C, _D))),  # light-dark horizontal bars
    1: (((_A, _B), (_C, _D)), ((_A, _B), (_C, _D))),  # light-dark vertical bars
    2: (((_A, _C), (_A, _C)), ((_B, _D), (_B, _D))),  # red-green horizontal bars
    3: (((_A, _C), (_B, _D)), ((_A, _C), (_B, _D))),  # red-green vertical bars
}
# The transfer task's diagonal bars: the colour at (x, y) is `order[(x + sign * y) % 4]`, so the
# colours run in 1-pixel diagonal lines. With order (A, B, C, D) luminance reads + + − − across
# the lines (period-4 bars, frequency (1/4, ±1/4) cycle/px) and red-green + − + − (a 1-pixel
# checker, as inside the benchmark's blocks); with (A, C, B, D) the two axes swap. Sign +1 gives
# lines x + y = const, rising to the right on screen; −1 gives x − y = const, falling.
_DIAGONALS = {
    4: (-1, (_A, _B, _C, _D)),  # light-dark falling diagonal bars
    5: (+1, (_A, _B, _C, _D)),  # light-dark rising diagonal bars
    6: (-1, (_A, _C, _B, _D)),  # red-green falling diagonal bars
    7: (+1, (_A, _C, _B, _D)),  # red-green rising diagonal bars
}


def glyph_tile(glyph: int) -> np.ndarray:
    """The `[4, 4]` tile of colour indices (0..3 for A..D) of glyph id `glyph`; every tile holds each
    colour four times, which is what makes the glyphs indistinguishable after a stride-4 view."""
    if glyph not in _BLOCKS and glyph not in _DIAGONALS:
        raise ValueError(f"glyph must be a glyph id 0..{len(GLYPH_NAMES) - 1}, got {glyph!r}")
    tile = np.empty((GLYPH_PERIOD, GLYPH_PERIOD), dtype=np.int64)
    for y in range(GLYPH_PERIOD):
        for x in range(GLYPH_PERIOD):
            if glyph in _BLOCKS:
                pair = _BLOCKS[glyph][y // 2][x // 2]
                tile[y, x] = pair[(x + y) % 2]
            else:
                sign, order = _DIAGONALS[glyph]
                tile[y, x] = order[(x + sign * y) % GLYPH_PERIOD]
    return tile
