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


def map_size(size: int, stage: str | None) -> int:
    """Side of the synopsis map the locator reads: the last (stride-32) map when `stage` is None,
    else an X3D stage's (stem and every stage halve the side, rounding up)."""
    if stage is None:
        return -(-size // 32)
    for _ in range(1 + ("res2", "res3", "res4", "res5").index(stage) + 1):
        size = -(-size // 2)
    return size


class SynopsisNet(nn.Module):
    """Backbone + per-frame classifier averaged over time (TSN consensus).

    `map_stage` names the stage whose output is the locator's map (None: the last map)."""

    def __init__(self, cfg: SynopsisConfig, num_classes: int, map_stage: str | None = None):
        super().__init__()
        self.cfg = cfg
        self.map_stage = map_stage
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
        kept: dict[str, torch.Tensor] = {}

        def keep(name: str, y: torch.Tensor) -> torch.Tensor:
            if name == self.map_stage:
                kept["map"] = y
            return y

        fmap, pooled = run_backbone(self.backbone, x, keep if self.map_stage else None)  # pooled [B, T', E]
        fmap = kept.get("map", fmap)
        g = self.context_dropout(pooled.mean(1))
        logits = self.fc(self.dropout(pooled)).mean(1)
        return SynopsisOutput(logits, fmap.detach(), g)
