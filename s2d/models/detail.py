"""Detail net (DNet): the heavy backbone on V̂, with context fused into chosen stages and the classifier."""
from __future__ import annotations

import torch
from torch import nn

from s2d.models.backbones import build_backbone, run_backbone
from s2d.models.config import DetailConfig, FusionConfig
from s2d.models.fusion import StageFusion
from s2d_kernels.context import context_classifier


class DetailNet(nn.Module):
    """Classifier per frame on `[dropout(feature) ; m ; s]`, averaged over time (X3D: one "frame")."""

    def __init__(self, cfg: DetailConfig, fusion: FusionConfig, num_classes: int, frames: int):
        super().__init__()
        self.cfg, self.fusion_cfg = cfg, fusion
        self.backbone = build_backbone(cfg.arch, frames, cfg.shift_div)
        missing = [s for s in fusion.stages if s not in self.backbone.stage_names]
        if missing:
            raise ValueError(f"fusion stages {missing} do not exist in {cfg.arch} (stages: {self.backbone.stage_names})")
        self.fusion = nn.ModuleDict({s: StageFusion(self.backbone.stage_channels[s], fusion.context_dim)
                                     for s in sorted(fusion.stages)})
        extra = fusion.context_dim + num_classes if fusion.classifier else 0
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(self.backbone.embed_dim + extra, num_classes)

    def forward(self, volume: torch.Tensor, m: torch.Tensor, s: torch.Tensor, topk: torch.Tensor,
                backend: str = "auto", return_features: bool = False) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """`volume`: `[B, T_d, 3, S, S]` (TSM) or `[B, 3, T_d, S, S]` (X3D) → logits `[B, K]` (with
        `return_features`, also the backbone's features averaged over time, `[B, E]`, before dropout).

        The context (`m`, `s` and the top-k indices from the synopsis) enters the fusion stages
        and, when configured, the classifier, each computed per `backend` (the official
        concatenations on "reference", per-video terms otherwise).
        """
        layout = self.backbone.layout
        x = volume.reshape(-1, *volume.shape[2:]) if layout == "btchw" else volume

        def fuse(name: str, x: torch.Tensor) -> torch.Tensor:
            if name not in self.fusion:
                return x
            return self.fusion[name](x, m, layout, backend)

        _, pooled = run_backbone(self.backbone, x, fuse if len(self.fusion) else None)  # [B, T', E]
        feats = self.dropout(pooled)
        if not self.fusion_cfg.classifier:
            logits = self.fc(feats).mean(1)
        else:
            logits = context_classifier(feats, m, s, topk, self.fc.weight, self.fc.bias, backend=backend)
        return (logits, pooled.mean(1)) if return_features else logits
