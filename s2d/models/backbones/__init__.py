"""Video backbones behind one small interface used by the synopsis and detail nets.

Every backbone exposes `layout`, in the one vocabulary of the package ("btchw": frames, TSM, as
`[B*T, C, H, W]` with each video's frames contiguous, a flattened `[B, T, C, H, W]`; "bcthw":
`[B, C, T, H, W]`, X3D),
`stage_names`, `stage_channels`, `feature_dim` (channels of the map the locator reads),
`embed_dim` (pooled vector), `forward_stem`, `forward_stage(name, x)` and
`forward_head_features(x) -> (feature map [B, C, T, h, w], pooled [B, T', E])` where T' is the
number of per-frame predictions averaged by the classifier (T for TSM, 1 for X3D).
"""
from __future__ import annotations

import torch
from torch import nn

from s2d.models.backbones.temporal_shift import TemporalShift, temporal_shift
from s2d.models.backbones.tsm import TSMMobileNetV2, TSMResNet50

TSM_ARCHS = ("tsm_mobilenet_v2", "tsm_resnet50")
X3D_ARCHS = ("x3d_xs", "x3d_s", "x3d_m", "x3d_l", "x3d_tiny")
ARCHS = TSM_ARCHS + X3D_ARCHS


class X3DBackbone(nn.Module):
    """X3D trunk (pytorchvideo key layout under `.net`) without its class projection."""

    layout = "bcthw"
    stage_names = ("res2", "res3", "res4", "res5")

    def __init__(self, arch: str):
        super().__init__()
        from s2d.models.backbones import x3d

        net = getattr(x3d, arch)(num_classes=1, dropout=0.0)
        del net.blocks[5].proj  # S2DNet's own classifiers replace the projection
        net.blocks[5].proj = None
        self.net = net
        self.stage_channels = dict(net.stage_channels)
        self.feature_dim = net.feature_dim
        self.embed_dim = net.embed_dim

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_stem(x)

    def forward_stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_stage(name, x)

    def forward_head_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap, pooled = self.net.forward_head_features(x)
        return fmap, pooled[:, None]


def build_backbone(arch: str, num_segments: int, shift_div: int = 8) -> nn.Module:
    """Backbone by name; `num_segments` is the clip length a TSM backbone shifts over."""
    if arch == "tsm_mobilenet_v2":
        return TSMMobileNetV2(num_segments, shift_div)
    if arch == "tsm_resnet50":
        return TSMResNet50(num_segments, shift_div)
    if arch in X3D_ARCHS:
        return X3DBackbone(arch)
    raise ValueError(f"unknown backbone {arch!r}; expected one of {ARCHS}")


def run_backbone(backbone: nn.Module, x: torch.Tensor, after_stage=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run stem → stages → head; `after_stage(name, x)` may replace a stage's output (fusion)."""
    x = backbone.forward_stem(x)
    for name in backbone.stage_names:
        x = backbone.forward_stage(name, x)
        if after_stage is not None:
            x = after_stage(name, x)
    return backbone.forward_head_features(x)


__all__ = ["ARCHS", "TSM_ARCHS", "X3D_ARCHS", "TemporalShift", "temporal_shift", "TSMMobileNetV2",
           "TSMResNet50", "X3DBackbone", "build_backbone", "run_backbone"]
