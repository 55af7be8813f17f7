"""s2d: Synopsis-to-Detail Networks for video recognition (Liang et al., ECCV 2022).

    import s2d
    model = s2d.create("s2dnet-tsm-sthv2")        # architecture, random init
    out = model(frames_uint8, num_frames)          # frames [B, T, 3, H, W]

The public names are imported on first use, so `python -m s2d --help` answers without
loading torch.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["BaselineConfig", "ConfigError", "DetailConfig", "FusionConfig", "LocatorConfig", "S2DConfig",
                     "SamplerConfig", "SynopsisConfig", "FUSION_ABLATIONS"], "s2d.models.config"),
    **dict.fromkeys(["S2DNet", "S2DOutput"], "s2d.models.s2dnet"),
    "VideoClassifier": "s2d.models.baseline",
    **dict.fromkeys(["get_config", "list_models"], "s2d.hub.registry"),
    "build_model": "s2d.hub.builder",
    **dict.fromkeys(["create", "load"], "s2d.hub.factory"),
    **dict.fromkeys(["predict_many", "find_videos"], "s2d.inference.batch_predict"),
    "optimize_for_inference": "s2d.inference.optimize",
    "load_exported": "s2d.inference.exported",
    "export_model": "s2d.inference.export",
    "predict_windows": "s2d.inference.windows",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 's2d' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
