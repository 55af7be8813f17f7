"""The sizes a model config may ask for, checked before anything is allocated.

A typo in a config (`dense_size: 4096`, `locator.mlp: [65536, 65536]`, `num_classes: 1e6`) would
otherwise build weights or read clips of tens of GB before anything fails. Every size, count and
width key has a range, generous for real use (several times the largest published setting), and
the sizes that multiply into one tensor are bounded as a product too. Errors name the key, the
value and the allowed range.
"""
from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A configuration value that cannot describe a valid model."""


def require(cond: bool, msg: str) -> None:
    """`ConfigError(msg)` unless `cond`."""
    if not cond:
        raise ConfigError(msg)


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_range(key: str, value: float, low: float, high: float) -> None:
    """`ConfigError` naming `key`, its value and the range unless `low <= value <= high`."""
    require(low <= value <= high, f"{key} must lie in [{_fmt(low)}, {_fmt(high)}], got {value!r}")


#: Classes: video datasets name at most about a thousand (Kinetics-700). Each class adds a row to three
#: classifiers and a column to the context and locator layers; the detail classifier on [feature ; m ; s]
#: holds (E + M + K)·K weights, about 1.2e8 (0.5 GB) at this bound.
MAX_CLASSES = 10_000
#: The dense clip read per video: the paper uses 32-64 frames at 224²; high-resolution models 448-512².
MAX_DENSE_FRAMES = 512
MAX_DENSE_SIZE = 1024
#: dense_frames × dense_size² per video: 2^27 pixels (e.g. 128 × 1024², 512 × 512²) is 0.4 GB of uint8
#: and 1.6 GB normalised, forty times the official 64 × 224².
MAX_DENSE_PIXELS = 2 ** 27
#: Frames and side of the reduced views (synopsis, detail volume, a baseline's input): 8-16 × 112-224 in
#: the paper.
MAX_VIEW_FRAMES = 256
MAX_VIEW_SIZE = 1024
#: Hidden widths (locator MLP, context vector m): the paper's are 1024, 512 and 256.
MAX_WIDTH = 8192
#: Channels of the locator's 1×1×1 conv: 4 in the official code.
MAX_LOCATOR_HIDDEN = 1024
#: Weights of the locator's first MLP layer, hidden × synopsis.frames × map² × mlp[0]: 1.6e6 in the
#: official Mini-Kinetics model; this bound is 2^26 (256 MB).
MAX_LOCATOR_WEIGHTS = 2 ** 26
MAX_RESIZE_RATIO = 8.0
#: A temporal shift moves `channels // shift_div` channels each way, so `shift_div` must leave at least one
#: channel of the narrowest shifted conv input: MobileNetV2's first shifted block reads 24 channels,
#: ResNet-50's 64. X3D backbones do not shift (the key is kept in range all the same).
SHIFT_CHANNELS = {"tsm_mobilenet_v2": 24, "tsm_resnet50": 64}
MAX_SHIFT_DIV = 64


def map_size(size: int, stage: str | None) -> int:
    """Side of the synopsis map the locator reads: the last (stride-32) map when `stage` is None,
    else an X3D stage's (stem and every stage halve the side, rounding up)."""
    if stage is None:
        return -(-size // 32)
    for _ in range(1 + ("res2", "res3", "res4", "res5").index(stage) + 1):
        size = -(-size // 2)
    return size


def check_shift_div(key: str, shift_div: int, arch: str) -> None:
    """`shift_div` in [2, the narrowest shifted input of `arch`]: both shift directions move at least a channel."""
    check_range(key, shift_div, 2, SHIFT_CHANNELS.get(arch, MAX_SHIFT_DIV))


def check_dense_clip(config: Any) -> None:
    """The dense clip's frames, side and total pixels per video."""
    check_range("dense_frames", config.dense_frames, 1, MAX_DENSE_FRAMES)
    check_range("dense_size", config.dense_size, 2, MAX_DENSE_SIZE)
    pixels = config.dense_frames * config.dense_size ** 2
    require(pixels <= MAX_DENSE_PIXELS,
            f"dense_frames × dense_size² = {config.dense_frames} × {config.dense_size}² = {pixels:,} pixels per video; "
            f"at most {MAX_DENSE_PIXELS:,} (2^27, e.g. 128 frames at 1024² or 512 at 512²)")


def check_locator_size(config: Any) -> None:
    """The locator's first MLP layer reads the whole synopsis map: its weight count multiplies four keys."""
    loc, syn = config.locator, config.synopsis
    side = map_size(syn.size, loc.feature_stage)
    weights = loc.hidden * syn.frames * side * side * loc.mlp[0]
    require(weights <= MAX_LOCATOR_WEIGHTS,
            f"locator.hidden × synopsis.frames × map² × locator.mlp[0] = {loc.hidden} × {syn.frames} × {side}² × "
            f"{loc.mlp[0]} = {weights:,} weights in the locator's first layer; at most {MAX_LOCATOR_WEIGHTS:,} (2^26): "
            f"lower one of these keys (the map side follows synopsis.size)")
