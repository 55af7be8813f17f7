"""Model configuration: plain, JSON-serialisable dataclasses validated on construction.

An `S2DConfig` describes a whole S2DNet (synopsis, locator, sampler, fusion, detail, classes);
a `BaselineConfig` a single-network video classifier on uniformly sampled frames (TSM, X3D), the
comparisons of the paper. Both round-trip through `to_dict` / `from_dict` (and JSON) exactly.
Every size, count and width is bounded (`s2d.models.limits`) before anything is allocated.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from s2d.models.backbones import ARCHS, TSM_ARCHS
from s2d.models.labels import available_label_sets, load_labels
from s2d.models.limits import (MAX_CLASSES, MAX_LOCATOR_HIDDEN, MAX_RESIZE_RATIO, MAX_VIEW_FRAMES, MAX_VIEW_SIZE,
                               MAX_WIDTH, ConfigError, check_dense_clip, check_locator_size)
from s2d.models.limits import check_range as _check_range
from s2d.models.limits import check_shift_div
from s2d.models.limits import require as _require

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)

#: Stages a fusion can follow, per backbone family (the paper's res2..res5).
FUSION_STAGES = ("res2", "res3", "res4", "res5")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_value(value: Any, kind: str) -> bool:
    """Whether `value` fits the (string) annotation `kind` of a config field."""
    kind = kind.strip()
    if "|" in kind:  # a union: any member fits
        return any(_check_value(value, member) for member in kind.split("|"))
    if kind == "None":
        return value is None
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return _is_number(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind.startswith("tuple[") and kind.endswith("]"):
        parts = [p.strip() for p in kind[len("tuple["):-1].split(",")]
        if not isinstance(value, (tuple, list)):
            return False
        if parts[-1] == "...":
            return all(_check_value(v, parts[0]) for v in value)
        return len(value) == len(parts) and all(_check_value(v, k) for v, k in zip(value, parts))
    return True  # sub-configs: checked by their own class


def _describe(kind: str) -> str:
    kind = kind.strip()
    if "|" in kind:
        return " or ".join(_describe(member) for member in kind.split("|"))
    if kind == "None":
        return "null"
    if kind.startswith("tuple["):
        parts = [p.strip() for p in kind[len("tuple["):-1].split(",")]
        plural = {"int": "integers", "float": "finite numbers", "str": "strings"}.get(parts[0], parts[0])
        return f"a list of {plural}" if parts[-1] == "..." else f"a list of {len(parts)} {plural}"
    return {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "a string"}.get(kind, kind)


def _check_types(config: Any, prefix: str = "") -> None:
    """`ConfigError` naming the key when a field's value is not of its declared type (JSON gives
    `16.5` for an int, `"abc"` for a list of numbers; the model would fail later and obscurely)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        _require(_check_value(value, kind), f"{prefix}{f.name} must be {_describe(kind)}, got {value!r}")


@dataclass(frozen=True)
class SynopsisConfig:
    """Synopsis net: `frames` uniformly sampled frames resized to `size` (nearest), a light backbone."""

    arch: str = "tsm_mobilenet_v2"
    frames: int = 8
    size: int = 144
    dropout: float = 0.5  # before the synopsis classifier
    context_dropout: float = 0.5  # on the pooled feature g fed to the context vector
    shift_div: int = 8

    def validate(self) -> None:
        _check_types(self, "synopsis.")
        _require(self.arch in ARCHS, f"synopsis.arch {self.arch!r} is not one of {ARCHS}")
        _require(self.frames >= 1, f"synopsis.frames must be >= 1, got {self.frames}")
        _require(self.size >= 32, f"synopsis.size must be >= 32, got {self.size}")
        _check_range("synopsis.frames", self.frames, 1, MAX_VIEW_FRAMES)
        _check_range("synopsis.size", self.size, 32, MAX_VIEW_SIZE)
        check_shift_div("synopsis.shift_div", self.shift_div, self.arch)
        _require(0 <= self.dropout < 1 and 0 <= self.context_dropout < 1, "synopsis dropouts must lie in [0, 1)")


@dataclass(frozen=True)
class LocatorConfig:
    """Location & scale module f_θ: 1×1×1 conv (ReLU, BN) → MLP → four linear heads."""

    hidden: int = 4  # channels of the 1×1×1 conv (the released config allocates 4; README, Numerics)
    mlp: tuple[int, int] = (1024, 512)
    head_init_factor: float = 0.01  # kaiming_uniform a = sqrt(6/f - 1): bound 0.1/sqrt(fan_in)
    #: Which synopsis map the locator reads: None is the backbone's last map (the official design),
    #: a stage name ("res2".."res5") an earlier, finer one, for synopsis inputs so small that the last
    #: map has no spatial extent left (README, Numerics: options that depart from the official code).
    feature_stage: str | None = None
    #: How the spatial centres learn: "pathwise" through the sampler (the paper's), or "smoothed":
    #: from loss differences of windows shifted ±`smooth_px` (training only; see `s2d.models.smoothing`).
    gradient: str = "pathwise"
    smooth_px: float = 4.0
    #: A fixed spatial stride (px) instead of the predicted one (None: predicted, the paper's).
    #: With a fixed-width filter, zooming out keeps fine detail readable as aliased patterns, so a
    #: learned zoom can trade placement for coverage; a fixed zoom leaves placement the only lever.
    fixed_stride_px: float | None = None

    def validate(self) -> None:
        _check_types(self, "locator.")
        _check_range("locator.hidden", self.hidden, 1, MAX_LOCATOR_HIDDEN)
        for d in self.mlp:
            _check_range("locator.mlp", d, 1, MAX_WIDTH)
        _require(self.fixed_stride_px is None or self.fixed_stride_px > 0,
                 f"locator.fixed_stride_px must be null or > 0, got {self.fixed_stride_px}")
        _require(self.gradient in ("pathwise", "smoothed"),
                 f"locator.gradient must be 'pathwise' or 'smoothed', got {self.gradient!r}")
        _require(self.smooth_px > 0, f"locator.smooth_px must be > 0, got {self.smooth_px}")
        _require(self.feature_stage is None or self.feature_stage in FUSION_STAGES,
                 f"locator.feature_stage must be null or one of {FUSION_STAGES}, got {self.feature_stage!r}")
        _require(len(self.mlp) == 2 and all(d >= 1 for d in self.mlp), "locator.mlp must be two sizes >= 1")
        _require(0 < self.head_init_factor <= 1, "locator.head_init_factor must lie in (0, 1]")


@dataclass(frozen=True)
class SamplerConfig:
    """Detail sampler: `frames` × `size`² detail volume from the dense clip."""

    frames: int = 12
    size: int = 144
    temporal: str = "gaussian"  # or "linear" (interpolation ablation)
    grad_normalize: bool = True  # rescale V̂'s gradient towards f_θ into (-1, 1) per video (training)
    #: Width (px) of the spatial Gaussian rows, in (0, 1]. 1.0 is the official σ² = 1; a narrower
    #: filter keeps more of the finest detail at strides near 1 px (README, Numerics).
    sigma: float = 1.0

    def validate(self) -> None:
        _check_types(self, "sampler.")
        _require(self.frames >= 2, f"sampler.frames must be >= 2 (the stride divides by T_d - 1), got {self.frames}")
        _require(self.size >= 2, f"sampler.size must be >= 2, got {self.size}")
        _require(0 < self.sigma <= 1, f"sampler.sigma must lie in (0, 1] (pixels), got {self.sigma}")
        _check_range("sampler.frames", self.frames, 2, MAX_VIEW_FRAMES)
        _check_range("sampler.size", self.size, 2, MAX_VIEW_SIZE)
        _require(self.temporal in ("gaussian", "linear"),
                 f"sampler.temporal must be 'gaussian' or 'linear', got {self.temporal!r}")


@dataclass(frozen=True)
class FusionConfig:
    """Where the context vector m enters the detail net (supplement Table 2: d0 is the default)."""

    stages: tuple[str, ...] = ("res3", "res4")
    classifier: bool = True  # classifier on [feature ; m ; s] rather than on the feature alone
    context_dim: int = 256

    def validate(self) -> None:
        _check_types(self, "fusion.")
        for s in self.stages:
            _require(s in FUSION_STAGES, f"fusion stage {s!r} is not one of {FUSION_STAGES}")
        _require(len(set(self.stages)) == len(self.stages), f"fusion stages repeat: {self.stages}")
        _check_range("fusion.context_dim", self.context_dim, 1, MAX_WIDTH)


#: The ablations of supplement Table 2, as fusion configs.
FUSION_ABLATIONS = {
    "d0": FusionConfig(("res3", "res4"), True),
    "d1": FusionConfig(("res3", "res4"), False),
    "d2": FusionConfig((), True),
    "d3": FusionConfig(("res4",), True),
    "d4": FusionConfig(("res2", "res3", "res4"), True),
}


@dataclass(frozen=True)
class DetailConfig:
    """Detail net backbone run on the sampled volume V̂."""

    arch: str = "tsm_resnet50"
    dropout: float = 0.5
    shift_div: int = 8

    def validate(self) -> None:
        _check_types(self, "detail.")
        _require(self.arch in ARCHS, f"detail.arch {self.arch!r} is not one of {ARCHS}")
        _require(self.arch != "tsm_mobilenet_v2", "detail.arch must be a staged backbone (ResNet or X3D)")
        _require(0 <= self.dropout < 1, "detail.dropout must lie in [0, 1)")
        check_shift_div("detail.shift_div", self.shift_div, self.arch)


def _check_common(config) -> None:
    """Checks shared by both model configs: field types, class count, clip geometry, normalisation,
    label list."""
    _check_types(config)
    _check_range("num_classes", config.num_classes, 2, MAX_CLASSES)
    _check_range("resize_ratio", config.resize_ratio, 1.0, MAX_RESIZE_RATIO)
    check_dense_clip(config)
    _require(all(s > 0 for s in config.std), f"std must be three positive numbers, got {list(config.std)}")
    _check_label_list(config.labels, config.num_classes)


def _check_label_list(labels: str | tuple[str, ...] | None, num_classes: int) -> None:
    """A shipped label list must exist, and either form must name exactly `num_classes` distinct classes."""
    if labels is None:
        return
    if isinstance(labels, str):
        _require(labels in available_label_sets(),
                 f"labels: unknown label list {labels!r}; shipped: {available_label_sets()} (or give the names)")
        what, count = f"the list {labels!r}", len(load_labels(labels))
    else:
        bad = [n for n in labels if not n.strip() or "\n" in n or n != n.strip()]
        _require(not bad, f"labels: class names must be non-empty single lines without surrounding spaces, "
                          f"got {bad[:3]}")
        repeated = sorted({n for n in labels if labels.count(n) > 1})
        _require(not repeated, f"labels: class names must be distinct, repeated: {repeated[:5]}")
        what, count = "labels", len(labels)
    _require(count == num_classes, f"labels: {what} names {count} classes but num_classes is "
                                   f"{num_classes}; give a matching list or labels null")


def _as_tuples(config: Any, names: tuple[str, ...] = ("mean", "std", "labels")) -> None:
    """JSON lists → tuples for the sequence fields of a frozen config (so configs compare and hash)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, list):
            object.__setattr__(config, name, tuple(value))


def _tuple_fields(cls, data: dict) -> dict:
    out = dict(data)
    for f in dataclasses.fields(cls):
        if f.name in out and isinstance(out[f.name], list):
            out[f.name] = tuple(out[f.name])
    return out


def _sub(cls, value):
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{cls.__name__} expects a mapping, got {type(value).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - names)
    _require(not unknown, f"unknown {cls.__name__} keys: {unknown}")
    return cls(**_tuple_fields(cls, value))


class _JsonMixin:
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples become lists): what `config.json` stores."""
        return json.loads(json.dumps(asdict(self)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """The config of a dict (`config.json`); a key it does not have is named."""
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        _require(not unknown, f"unknown {cls.__name__} keys: {unknown}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))

    def replace(self, **changes):
        """A copy with top-level fields replaced (sub-configs may be given as dicts)."""
        return type(self).from_dict({**self.to_dict(), **{k: (v.to_dict() if hasattr(v, "to_dict") else
                                                                  asdict(v) if dataclasses.is_dataclass(v) else v)
                                                              for k, v in changes.items()}})


@dataclass(frozen=True)
class S2DConfig(_JsonMixin):
    """A complete S2DNet. `dense_frames` × `dense_size`² is the raw clip the model expects."""

    num_classes: int
    dense_frames: int = 32
    dense_size: int = 224
    synopsis: SynopsisConfig = field(default_factory=SynopsisConfig)
    locator: LocatorConfig = field(default_factory=LocatorConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    detail: DetailConfig = field(default_factory=DetailConfig)
    topk: int = 5
    topk_scheme: str = "hard"  # "hard": k-hot vector; "soft": masked softmax on the top k
    snet_loss_weight: float = 0.1
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    #: Class names: a shipped list's name (`s2d/models/label_lists/<name>.txt`) or the names themselves.
    labels: str | tuple[str, ...] | None = None
    #: Reading a video: short side resized to `dense_size · resize_ratio`, then the centre (or a
    #: random) `dense_size`² crop; 256/224 is the usual, 1.0 keeps the pixels' scale.
    resize_ratio: float = 256 / 224
    kind: str = "s2dnet"

    def __post_init__(self):
        for name, cls in (("synopsis", SynopsisConfig), ("locator", LocatorConfig), ("sampler", SamplerConfig),
                          ("fusion", FusionConfig), ("detail", DetailConfig)):
            object.__setattr__(self, name, _sub(cls, getattr(self, name)))
        _as_tuples(self)
        self.validate()

    @property
    def family(self) -> str:
        return "tsm" if self.detail.arch in TSM_ARCHS else "x3d"

    def validate(self) -> None:
        _require(self.kind == "s2dnet", f"S2DConfig.kind must be 's2dnet', got {self.kind!r}")
        _check_common(self)
        _require(self.num_classes >= 2, f"num_classes must be >= 2, got {self.num_classes}")
        _require(1 <= self.topk <= self.num_classes,
                 f"topk must lie in [1, num_classes={self.num_classes}], got {self.topk}")
        _require(self.topk_scheme in ("hard", "soft"), f"topk_scheme must be 'hard' or 'soft', got {self.topk_scheme!r}")
        _require(self.dense_frames >= 1 and self.dense_size >= 2, "dense_frames and dense_size must be positive")
        _require(self.resize_ratio >= 1.0,
                 f"resize_ratio must be >= 1 (short side before the crop), got {self.resize_ratio}")
        _require(len(self.mean) == 3 and len(self.std) == 3 and all(s > 0 for s in self.std),
                 "mean and std must be three values (std > 0)")
        for sub in (self.synopsis, self.locator, self.sampler, self.fusion, self.detail):
            sub.validate()
        from s2d.models.backbones import X3D_ARCHS
        syn_x3d, det_x3d = self.synopsis.arch in X3D_ARCHS, self.detail.arch in X3D_ARCHS
        _require(syn_x3d == det_x3d, f"synopsis ({self.synopsis.arch}) and detail ({self.detail.arch}) must be "
                                     "of one family (TSM or X3D)")
        _require(self.locator.feature_stage is None or syn_x3d,
                 f"locator.feature_stage needs a staged X3D synopsis, got {self.synopsis.arch}")
        check_locator_size(self)


@dataclass(frozen=True)
class BaselineConfig(_JsonMixin):
    """A plain video classifier: `frames` uniform frames at `size`², one backbone (TSM or X3D)."""

    num_classes: int
    arch: str = "tsm_resnet50"
    frames: int = 8
    size: int = 224
    dense_frames: int = 32
    dense_size: int = 224
    dropout: float = 0.5
    shift_div: int = 8
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    labels: str | tuple[str, ...] | None = None  # a shipped list's name or the class names
    resize_ratio: float = 256 / 224  # reading a video: short side = dense_size · resize_ratio, then crop
    kind: str = "baseline"

    def __post_init__(self):
        _as_tuples(self)
        self.validate()

    @property
    def family(self) -> str:
        return "tsm" if self.arch in TSM_ARCHS else "x3d"

    def validate(self) -> None:
        _require(self.kind == "baseline", f"BaselineConfig.kind must be 'baseline', got {self.kind!r}")
        _check_common(self)
        _check_range("frames", self.frames, 1, MAX_VIEW_FRAMES)
        _check_range("size", self.size, 32, MAX_VIEW_SIZE)
        _require(self.resize_ratio >= 1.0,
                 f"resize_ratio must be >= 1 (short side before the crop), got {self.resize_ratio}")
        _require(self.arch in ARCHS, f"arch {self.arch!r} is not one of {ARCHS}")
        _require(self.num_classes >= 2, f"num_classes must be >= 2, got {self.num_classes}")
        _require(self.frames >= 1 and self.size >= 32, "frames must be >= 1 and size >= 32")
        _require(0 <= self.dropout < 1, "dropout must lie in [0, 1)")
        check_shift_div("shift_div", self.shift_div, self.arch)


def config_from_dict(data: dict[str, Any]) -> S2DConfig | BaselineConfig:
    """Rebuild either config from its dict, dispatching on `kind`."""
    kind = data.get("kind", "s2dnet")
    if kind == "s2dnet":
        return S2DConfig.from_dict(data)
    if kind == "baseline":
        return BaselineConfig.from_dict(data)
    raise ConfigError(f"unknown model kind {kind!r} (expected 's2dnet' or 'baseline')")


def missing_keys(data: dict[str, Any]) -> list[str]:
    """Keys a saved config (`config.json`, a dict of `kind`'s config) lacks, dotted for sub-configs.

    A file names every key (`to_dict` writes them all): a missing one would silently take this
    version's default, which may not be what the weights were trained with (normalisation, σ, ...)."""
    cls = BaselineConfig if data.get("kind") == "baseline" else S2DConfig
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in data]
    for f in dataclasses.fields(cls):
        sub, cls_of = data.get(f.name), f.default_factory
        if isinstance(sub, dict) and isinstance(cls_of, type) and dataclasses.is_dataclass(cls_of):
            missing += [f"{f.name}.{g.name}" for g in dataclasses.fields(cls_of) if g.name not in sub]
    return missing
