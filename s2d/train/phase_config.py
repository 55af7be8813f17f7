"""Configuration of the optional phases that run around the two stages (`s2d.train.phases`).

Lengths are clip counts (0 turns a phase off); each phase reads clips no other phase reads when
the data kind is procedural (see `s2d.train.datasets.phase_dataset`). A phase's `lr` (None: the
run's peak lr) is the peak of its own warm-up + cosine schedule, with the run's optimiser.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from s2d.train.errors import check


def _check_common(name: str, clips: int, lr: float | None) -> None:
    check(clips >= 0, f"phases.{name}.clips must be >= 0")
    check(lr is None or lr > 0, f"phases.{name}.lr must be > 0 or null")


@dataclass
class SynopsisPretrainSection:
    """The synopsis net alone as a classifier (its own fc), cross-entropy, before stage 1."""

    clips: int = 0
    lr: float | None = None

    def validate(self) -> None:
        """Non-negative length, positive lr."""
        _check_common("synopsis_pretrain", self.clips, self.lr)


@dataclass
class DetailPretrainSection:
    """The detail net alone, with a linear head of its own, on views cut by the model's sampler,
    before stage 1; then its head and identity fusion points are handed to the S2DNet.

    `view`: "centre" (stage 1's centre crop) or "focus" (object-centred windows: per clip, the
    sample's `focus` + uniform jitter in ±`jitter_px` for x and y, stride log-uniform in
    [`stride_min`, `stride_max`] px; needs a data kind whose samples carry `focus`).
    """

    clips: int = 0
    lr: float | None = None
    view: str = "centre"
    jitter_px: float = 0.0
    stride_min: float = 1.0
    stride_max: float = 1.0

    def validate(self) -> None:
        """Known view, non-negative jitter, 0 < stride_min <= stride_max."""
        _check_common("detail_pretrain", self.clips, self.lr)
        check(self.view in ("centre", "focus"),
              f"phases.detail_pretrain.view must be 'centre' or 'focus', got {self.view!r}")
        check(self.jitter_px >= 0, "phases.detail_pretrain.jitter_px must be >= 0")
        check(0 < self.stride_min <= self.stride_max,
              "phases.detail_pretrain: need 0 < stride_min <= stride_max")


@dataclass
class LocatorWarmupSection:
    """Between stages 1 and 2: the locator's raw outputs regressed (MSE, SGD with `momentum`, a
    constant `lr`) onto a fixed view: the centre crop at `target_stride_px` (None: stage 1's centre
    crop, 1 px). No labels and no ground truth: stage 2 starts from the view stage 1 trained on."""

    clips: int = 0
    lr: float | None = None
    momentum: float = 0.9
    target_stride_px: float | None = None

    def validate(self) -> None:
        """Non-negative length, positive lr and stride, momentum in [0, 1)."""
        _check_common("locator_warmup", self.clips, self.lr)
        check(0 <= self.momentum < 1, "phases.locator_warmup.momentum must lie in [0, 1)")
        check(self.target_stride_px is None or self.target_stride_px > 0,
              "phases.locator_warmup.target_stride_px must be > 0 or null")


@dataclass
class PhasesSection:
    """Synopsis and detail pre-training (before stage 1), locator warm-up (before stage 2)."""

    synopsis_pretrain: SynopsisPretrainSection = field(default_factory=SynopsisPretrainSection)
    detail_pretrain: DetailPretrainSection = field(default_factory=DetailPretrainSection)
    locator_warmup: LocatorWarmupSection = field(default_factory=LocatorWarmupSection)

    def validate(self) -> None:
        """Each phase's own checks."""
        for section in (self.synopsis_pretrain, self.detail_pretrain, self.locator_warmup):
            section.validate()

    @property
    def pretrain_clips(self) -> int:
        """Clips read before stage 1."""
        return self.synopsis_pretrain.clips + self.detail_pretrain.clips
