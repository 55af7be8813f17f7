"""s2d: Synopsis-to-Detail Networks for video recognition (Liang et al., ECCV 2022).

    import s2d
    model = s2d.create("s2dnet-tsm-sthv2")        # architecture, random init
    out = model(frames_uint8, num_frames)          # frames [B, T, 3, H, W]
"""
from s2d.config import (BaselineConfig, ConfigError, DetailConfig, FusionConfig, LocatorConfig, S2DConfig,
                        SamplerConfig, SynopsisConfig, FUSION_ABLATIONS)
from s2d.model import S2DNet, S2DOutput
from s2d.baseline import VideoClassifier
from s2d.registry import build_model, create, get_config, list_models
from s2d.zoo import load

__version__ = "0.1.0"

__all__ = ["BaselineConfig", "ConfigError", "DetailConfig", "FusionConfig", "LocatorConfig", "S2DConfig",
           "SamplerConfig", "SynopsisConfig", "FUSION_ABLATIONS", "S2DNet", "S2DOutput", "VideoClassifier",
           "build_model", "create", "get_config", "list_models", "load", "__version__"]
