"""TSM backbones on torchvision models: MobileNetV2 (synopsis) and ResNet-50 (detail).

Shift placement follows TSM and the S2DNet code: in ResNet every bottleneck's first conv
("blockres"); in MobileNetV2 the first 1×1 conv of the 10 inverted residual blocks that have a skip
connection and expansion 6 (features 3, 5, 6, 8, 9, 10, 12, 13, 15, 16). Frames travel as
`[B*T, C, H, W]`; per-frame pooled features are returned for the classifiers (TSN consensus).
"""
from __future__ import annotations

import torch
import torchvision
from torch import nn

from s2d.models.backbones.temporal_shift import TemporalShift

#: ResNet stages in the paper's naming (res2..res5 = torchvision layer1..layer4).
RESNET_STAGES = {"res2": "layer1", "res3": "layer2", "res4": "layer3", "res5": "layer4"}


class TSMResNet50(nn.Module):
    """TSM-ResNet-50: torchvision ResNet-50 without its fc, shifts in every bottleneck."""

    layout = "btchw"
    stage_names = tuple(RESNET_STAGES)

    def __init__(self, num_segments: int, shift_div: int = 8):
        super().__init__()
        net = torchvision.models.resnet50(weights=None)
        for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
            for block in layer:
                block.conv1 = TemporalShift(block.conv1, num_segments, shift_div)
        del net.fc
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.num_segments = num_segments
        self.stage_channels = {"res2": 256, "res3": 512, "res4": 1024, "res5": 2048}
        self.feature_dim = self.embed_dim = 2048

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, RESNET_STAGES[name])(x)

    def forward_head_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`x` `[B*T, 2048, h, w]` → (feature map `[B, 2048, T, h, w]`, per-frame pooled `[B, T, 2048]`)."""
        return _frames_head(x, self.num_segments)


class TSMMobileNetV2(nn.Module):
    """TSM-MobileNetV2: torchvision MobileNetV2 `features` (ReLU6, BN eps 1e-5) with shifts."""

    layout = "btchw"
    stage_names = ("features",)

    def __init__(self, num_segments: int, shift_div: int = 8):
        super().__init__()
        net = torchvision.models.mobilenet_v2(weights=None)
        for block in net.features:
            if isinstance(block, torchvision.models.mobilenetv2.InvertedResidual) and block.use_res_connect \
                    and len(block.conv) == 4:  # expansion != 1: conv[0] is the 1×1 expansion
                block.conv[0][0] = TemporalShift(block.conv[0][0], num_segments, shift_div)
        self.features = net.features
        self.num_segments = num_segments
        self.stage_channels = {"features": 1280}
        self.feature_dim = self.embed_dim = 1280

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _frames_head(x, self.num_segments)


def _frames_head(x: torch.Tensor, num_segments: int) -> tuple[torch.Tensor, torch.Tensor]:
    nt, c, h, w = x.shape
    fmap = x.view(nt // num_segments, num_segments, c, h, w)
    pooled = fmap.mean((3, 4))  # adaptive average pool per frame
    return fmap.transpose(1, 2), pooled
