"""X3D's architecture numbers: the width and depth rules, `X3DSpec` (hyper-parameters of one
network) and the clip geometry each variant was designed for (`X3D_INPUT_SPECS`)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, NamedTuple

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
STAGE_NAMES: tuple[str, str, str, str] = ("res2", "res3", "res4", "res5")


def round_width(width: float, multiplier: float, min_width: int = 8, divisor: int = 8) -> int:
    """Scale a channel count by ``multiplier`` and round it to a multiple of ``divisor``.

    This is X3D's width rule: round to the nearest multiple, at least ``min_width``,
    and bump up one step if rounding lost more than 10% of the scaled width.
    A falsy multiplier leaves the width unchanged.
    """
    if not multiplier:
        return int(width)
    scaled = width * multiplier
    out = max(min_width, int(scaled + divisor / 2) // divisor * divisor)
    if out < 0.9 * scaled:
        out += divisor
    return int(out)


def round_repeats(repeats: int, multiplier: float) -> int:
    """Scale a block count by ``multiplier``, rounding up (X3D's depth rule)."""
    if not multiplier:
        return repeats
    return int(math.ceil(multiplier * repeats))


@dataclass(frozen=True)
class X3DSpec:
    """Architecture hyper-parameters of an X3D network (all fields JSON-serialisable).

    ``width_factor`` scales channels, ``depth_factor`` scales the base stage depths,
    ``bottleneck_factor`` sets the inner (depthwise) width of each bottleneck,
    ``stem_dim_in`` is the unscaled stem width, ``head_dim_out`` the width of the
    pooled embedding, ``se_ratio`` the squeeze-excitation reduction (applied to
    every other block, starting with the first of each stage).
    """

    name: str = "x3d"
    width_factor: float = 2.0
    depth_factor: float = 2.2
    bottleneck_factor: float = 2.25
    stem_dim_in: int = 12
    stem_temporal_kernel: int = 5
    stage_depths: tuple[int, ...] = (1, 2, 5, 3)
    head_dim_out: int = 2048
    se_ratio: float = 0.0625
    in_channels: int = 3
    num_classes: int = 400
    dropout: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage_depths", tuple(int(d) for d in self.stage_depths))
        if len(self.stage_depths) != len(STAGE_NAMES):
            raise ValueError(f"stage_depths needs {len(STAGE_NAMES)} entries, got {self.stage_depths}")
        if self.stem_temporal_kernel % 2 != 1:
            raise ValueError("stem_temporal_kernel must be odd to keep the clip length")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (tuples become lists) suitable for ``json.dumps``."""
        out = asdict(self)
        out["stage_depths"] = list(self.stage_depths)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> X3DSpec:
        """Inverse of :meth:`to_dict`; unknown keys are rejected to catch typos."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown X3DSpec fields: {sorted(unknown)}")
        return cls(**dict(data))

    @property
    def stem_dim(self) -> int:
        """Output channels of the stem."""
        return round_width(self.stem_dim_in, self.width_factor)

    @property
    def stage_dims(self) -> tuple[int, ...]:
        """Output channels of res2 .. res5."""
        base = [self.stem_dim_in]
        for _ in range(len(STAGE_NAMES) - 1):
            base.append(round_width(base[-1], 2.0, divisor=8))
        return tuple(round_width(d, self.width_factor) for d in base)

    @property
    def stage_inner_dims(self) -> tuple[int, ...]:
        """Bottleneck (depthwise conv) channels of res2 .. res5."""
        return tuple(int(self.bottleneck_factor * d) for d in self.stage_dims)

    @property
    def scaled_depths(self) -> tuple[int, ...]:
        """Number of residual blocks in res2 .. res5."""
        return tuple(round_repeats(d, self.depth_factor) for d in self.stage_depths)


class X3DInputSpec(NamedTuple):
    """Clip geometry a variant was designed for: frames, square crop side, frame stride."""

    num_frames: int
    crop_size: int
    sampling_rate: int


X3D_INPUT_SPECS: dict[str, X3DInputSpec] = {
    "x3d_xs": X3DInputSpec(4, 160, 12),
    "x3d_s": X3DInputSpec(13, 160, 6),
    "x3d_m": X3DInputSpec(16, 224, 5),
    "x3d_l": X3DInputSpec(16, 312, 5),
}
