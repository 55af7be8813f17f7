"""Named model variants, names → configs: `s2d.get_config(name, **overrides)` and `s2d.list_models(pattern)`.

Each entry is a config (`s2d.create` builds its architecture). Overrides replace top-level
config fields; sub-configs (`synopsis`, `sampler`, ...) may be given as partial dicts, merged
into the named variant's values.
"""
from __future__ import annotations

import difflib
import fnmatch
from typing import Any

from s2d.models.config import (KINETICS_MEAN, KINETICS_STD, BaselineConfig, DetailConfig, FusionConfig, LocatorConfig,
                               S2DConfig, SamplerConfig, SynopsisConfig, config_from_dict)

_TSM_EFFICIENT = dict(
    dense_frames=32, dense_size=224,
    synopsis=SynopsisConfig("tsm_mobilenet_v2", frames=8, size=144),
    sampler=SamplerConfig(frames=12, size=144),
    detail=DetailConfig("tsm_resnet50"),
)

MODELS: dict[str, S2DConfig | BaselineConfig] = {
    # Mini-Kinetics (200 classes): MobileNetV2 16×144 synopsis, ResNet-50 16×112 detail.
    "s2dnet-tsm-minik": S2DConfig(
        num_classes=200, labels="minikinetics200", dense_frames=32, dense_size=224,
        synopsis=SynopsisConfig("tsm_mobilenet_v2", frames=16, size=144),
        sampler=SamplerConfig(frames=16, size=112), detail=DetailConfig("tsm_resnet50")),
    # Something-Something V2 / V1, the efficient variant (supplement Table 3): MN2 8×144 / R50 12×144.
    "s2dnet-tsm-sthv2": S2DConfig(num_classes=174, labels="sthv2", **_TSM_EFFICIENT),
    "s2dnet-tsm-sthv1": S2DConfig(num_classes=174, labels="sthv1", **_TSM_EFFICIENT),
    # Kinetics-400 with X3D: X3D-S synopsis on 8×128 frames, X3D-M detail on a 16×160 volume,
    # from a dense 64-frame 224² clip (Kinetics normalisation, as X3D).
    "s2dnet-x3d-k400": S2DConfig(
        num_classes=400, labels="kinetics400", dense_frames=64, dense_size=224,
        synopsis=SynopsisConfig("x3d_s", frames=8, size=128),
        sampler=SamplerConfig(frames=16, size=160), detail=DetailConfig("x3d_m"),
        mean=KINETICS_MEAN, std=KINETICS_STD),
    # Baselines for comparisons.
    "tsm-r50": BaselineConfig(num_classes=174, labels="sthv2", arch="tsm_resnet50", frames=8, size=224,
                              dense_frames=32, dense_size=224),
    "x3d-m": BaselineConfig(num_classes=400, labels="kinetics400", arch="x3d_m", frames=16, size=224,
                            dense_frames=64, dense_size=224, mean=KINETICS_MEAN, std=KINETICS_STD),
    # The synthetic detail benchmark (s2d.synth, bench/synthetic): tiny X3D synopsis 4×32² and detail
    # 8×32² from 16×128² clips; no dropout and a 16-d context, sized for the tiny nets; videos are
    # read at their pixel scale (the glyphs are defined per pixel). Four documented departures from
    # the official numerics, each measured in bench/synthetic/results.md: the locator reads the
    # synopsis' 4×4 res3 map (its last map is 1×1 at 32²), the sampler's spatial σ is 0.5 px, the
    # window learns from smoothed loss differences (s2d.models.smoothing), and the zoom is fixed at 1.75 px
    # (locator.fixed_stride_px), so placement is the locator's only lever.
    "s2dnet-x3d-synth": S2DConfig(
        num_classes=16, labels="synth16", dense_frames=16, dense_size=128,
        synopsis=SynopsisConfig("x3d_tiny", frames=4, size=32, dropout=0.0, context_dropout=0.0),
        locator=LocatorConfig(hidden=16, mlp=(256, 128), feature_stage="res3", gradient="smoothed", smooth_px=8.0,
                              fixed_stride_px=1.75),
        sampler=SamplerConfig(frames=8, size=32, sigma=0.5),
        fusion=FusionConfig(context_dim=16), detail=DetailConfig("x3d_tiny", dropout=0.0),
        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), resize_ratio=1.0),
}


def list_models(pattern: str | None = None, pretrained: bool | None = None) -> list[str]:
    """Sorted names matching a shell-style `pattern`; `pretrained=True` keeps those with published
    weights, `False` those without (see `s2d.hub.factory`)."""
    names = sorted(MODELS)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    if pretrained is not None:
        from s2d.hub._index import has_weights

        names = [n for n in names if has_weights(n) == pretrained]
    return names


def get_config(name: str, **overrides: Any) -> S2DConfig | BaselineConfig:
    """The config of a named variant with `overrides` applied."""
    if name not in MODELS:
        close = difflib.get_close_matches(name, MODELS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}{hint} (known: {', '.join(sorted(MODELS))})")
    return apply_overrides(MODELS[name], **overrides)


def apply_overrides(config: S2DConfig | BaselineConfig, **overrides: Any) -> S2DConfig | BaselineConfig:
    """`config` with top-level fields replaced; sub-configs given as partial dicts are merged."""
    data = config.to_dict()
    for key, value in overrides.items():
        if hasattr(value, "to_dict"):
            value = value.to_dict()
        elif hasattr(value, "__dataclass_fields__"):
            from dataclasses import asdict
            value = asdict(value)
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return config_from_dict(data)
