"""Config → model: the one place that maps a config to its model class."""
from __future__ import annotations

from torch import nn

from s2d.models.baseline import VideoClassifier
from s2d.models.config import BaselineConfig, S2DConfig
from s2d.models.s2dnet import S2DNet


def build_model(config: S2DConfig | BaselineConfig) -> nn.Module:
    """Instantiate the architecture a config describes (random init)."""
    if isinstance(config, S2DConfig):
        return S2DNet(config)
    return VideoClassifier(config)
