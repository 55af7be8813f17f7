"""Synopsis net (SNet): a few low-resolution frames → action logits, a feature map and a pooled g.

Its input is `s2d.models.clip.uniform_view` of the dense clip."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from s2d.models.backbones import build_backbone, run_backbone
from s2d.models.config import SynopsisConfig
from s2d.models.limits import map_size  # noqa: F401  (the locator's map side; defined with the size checks)


@dataclass
class SynopsisOutput:
    logits: torch.Tensor  # [B, K]
    feature_map: torch.Tensor  # [B, C, T', s, s], detached: the locator's input
    pooled: torch.Tensor  # [B, E]: g, after the context dropout in training


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
        if self.backbone.layout == "btchw":
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
