"""Location & scale module f_θ: where (and how widely) the detail sampler should look.

From the synopsis feature map `[B, C, T_s, s, s]` concatenated with the top-k vector s broadcast
over time and space, a 1×1×1 conv (→ ReLU → BN, ReLU before BN as in the official code), an MLP on
the flattened map, and four bias-free heads predict the raw parameters: temporal offset and
stride per video, spatial offsets and strides per output frame. The spatial heads also see the
raw temporal outputs (`[h ; dt ; δ_t]`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from s2d.models.config import LocatorConfig
from s2d_kernels.sampler import RawSampling


class Locator(nn.Module):
    def __init__(self, cfg: LocatorConfig, feature_dim: int, num_classes: int, map_frames: int,
                 map_size: int, out_frames: int):
        super().__init__()
        self.cfg = cfg
        self.out_frames = out_frames
        h1, h2 = cfg.mlp
        self.conv = nn.Conv3d(feature_dim + num_classes, cfg.hidden, kernel_size=1, bias=True)
        self.conv_bn = nn.BatchNorm3d(cfg.hidden)
        self.fc1 = nn.Linear(cfg.hidden * map_frames * map_size * map_size, h1)
        self.bn1 = nn.BatchNorm1d(h1)
        self.fc2 = nn.Linear(h1, h2)
        self.bn2 = nn.BatchNorm1d(h2)
        self.temporal_offset = nn.Linear(h2, 1, bias=False)
        self.temporal_stride = nn.Linear(h2, 1, bias=False)
        self.spatial_offset = nn.Linear(h2 + 2, 2 * out_frames, bias=False)
        self.spatial_stride = nn.Linear(h2 + 2, 2 * out_frames, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official init: trunk kaiming-uniform (a=√5) with zero biases; heads small so that at the
        start centres ≈ 0 and strides ≈ their defaults (supplement §2)."""
        for m in (self.conv, self.fc1, self.fc2):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5))
            nn.init.zeros_(m.bias)
        a = math.sqrt(6 / self.cfg.head_init_factor - 1)
        for m in (self.temporal_offset, self.temporal_stride, self.spatial_offset, self.spatial_stride):
            nn.init.kaiming_uniform_(m.weight, a=a)

    def forward(self, feature_map: torch.Tensor, s: torch.Tensor) -> RawSampling:
        """`feature_map` `[B, C, T, h, w]`, `s` `[B, K]` → raw `RawSampling`."""
        B, _, T, h, w = feature_map.shape
        ctx = s.to(feature_map.dtype)[:, :, None, None, None].expand(-1, -1, T, h, w)
        x = self.conv_bn(torch.relu(self.conv(torch.cat([feature_map, ctx], 1))))
        x = torch.flatten(x, 1)
        if x.shape[1] != self.fc1.in_features:
            raise ValueError(f"locator expects a {self.fc1.in_features // (self.cfg.hidden)}-cell synopsis map, "
                             f"got {T}x{h}x{w}: the synopsis input size or frame count differs from the config")
        x = torch.relu(self.bn1(self.fc1(x)))
        x = torch.relu(self.bn2(self.fc2(x)))
        dt = self.temporal_offset(x).float()
        delta_t = self.temporal_stride(x).float()
        xs = torch.cat([x, dt.to(x.dtype), delta_t.to(x.dtype)], 1)
        off = self.spatial_offset(xs).float().view(B, self.out_frames, 2)
        stride = self.spatial_stride(xs).float().view(B, self.out_frames, 2)
        return RawSampling(dt[:, 0], delta_t[:, 0], off[..., 0], off[..., 1], stride[..., 0], stride[..., 1])
