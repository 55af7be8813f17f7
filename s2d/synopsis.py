"""Synopsis net (SNet): a few low-resolution frames → action logits, a feature map and a pooled g."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s2d.backbones import build_backbone, run_backbone
from s2d.config import SynopsisConfig


def uniform_indices(num_frames: torch.Tensor, count: int) -> torch.Tensor:
    """`[B, count]` frame indices `linspace(0, n-1, count)` truncated, per video's valid length n.

    Vectorised replica of `torch.linspace`'s float32 arithmetic (step from both ends, meeting
    halfway), so the indices equal the official per-video `linspace(...).long()` bit for bit.
    """
    end = num_frames.to(torch.float32)[:, None] - 1
    if count == 1:
        return torch.zeros_like(end, dtype=torch.long)
    i = torch.arange(count, device=num_frames.device)
    step = end / (count - 1)
    values = torch.where(i < count // 2, step * i.to(torch.float32), end - step * (count - 1 - i).to(torch.float32))
    return values.long()


def uniform_sample(frames: torch.Tensor, num_frames: torch.Tensor, count: int) -> torch.Tensor:
    """Gather `count` uniformly spread frames of each video: `[B, T, ...]` → `[B, count, ...]`."""
    idx = uniform_indices(num_frames, count)
    return torch.gather(frames, 1, idx.view(*idx.shape, *([1] * (frames.dim() - 2))).expand(
        -1, -1, *frames.shape[2:]))


def resize_nearest(x: torch.Tensor, size: int) -> torch.Tensor:
    """`[B, T, C, H, W]` → `[B, T, C, size, size]` with the legacy `nearest` mode (official SNet input)."""
    B, T = x.shape[:2]
    if x.shape[-2:] == (size, size):
        return x
    y = F.interpolate(x.reshape(B * T, *x.shape[2:]), size=size)
    return y.view(B, T, *y.shape[1:])


@dataclass
class SynopsisOutput:
    logits: torch.Tensor  # [B, K]
    feature_map: torch.Tensor  # [B, C, T', s, s], detached: the locator's input
    pooled: torch.Tensor  # [B, E]: g, after the context dropout in training


class SynopsisNet(nn.Module):
    """Backbone + per-frame classifier averaged over time (TSN consensus)."""

    def __init__(self, cfg: SynopsisConfig, num_classes: int):
        super().__init__()
        self.cfg = cfg
        self.backbone = build_backbone(cfg.arch, cfg.frames, cfg.shift_div)
        self.dropout = nn.Dropout(cfg.dropout)
        self.context_dropout = nn.Dropout(cfg.context_dropout)
        self.fc = nn.Linear(self.backbone.embed_dim, num_classes)
        nn.init.normal_(self.fc.weight, 0, 0.001)
        nn.init.zeros_(self.fc.bias)

    def forward(self, clip: torch.Tensor) -> SynopsisOutput:
        """`clip` `[B, T_s, 3, S_s, S_s]` normalised float frames."""
        B, T = clip.shape[:2]
        if self.backbone.layout == "frames":
            x = clip.reshape(B * T, *clip.shape[2:])
        else:
            x = clip.transpose(1, 2)
        fmap, pooled = run_backbone(self.backbone, x)  # pooled [B, T', E]
        g = self.context_dropout(pooled.mean(1))
        logits = self.fc(self.dropout(pooled)).mean(1)
        return SynopsisOutput(logits, fmap.detach(), g)
