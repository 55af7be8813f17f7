"""Detail net (DNet): the heavy backbone on V̂, with context fused into chosen stages and the classifier."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from s2d.backbones import build_backbone, run_backbone
from s2d.config import DetailConfig, FusionConfig
from s2d.fusion import StageFusion
from s2d_kernels.context import ContextTerms


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

    def context_weights(self) -> tuple[list[torch.Tensor], torch.Tensor | None, torch.Tensor | None]:
        """What `s2d_kernels.context.context_terms` needs: the fusion weights (in `self.fusion`
        order) and, when the classifier takes `[m ; s]`, its weight and bias."""
        stages = [f.weight for f in self.fusion.values()]
        if not self.fusion_cfg.classifier:
            return stages, None, None
        return stages, self.fc.weight, self.fc.bias

    def forward(self, volume: torch.Tensor, m: torch.Tensor | None, s: torch.Tensor | None,
                backend: str = "auto", terms: ContextTerms | None = None) -> torch.Tensor:
        """`volume`: `[B, T_d, 3, S, S]` (TSM) or `[B, 3, T_d, S, S]` (X3D) → logits `[B, K]`.

        Context from `m` and `s` (the official concatenations, fused per `backend`), or from
        `terms` (built with `context_weights`): per-video biases of the fusion GEMMs and of the
        classifier, so neither `[x ; m]` nor `[feature ; m ; s]` is ever materialised.
        """
        layout = self.backbone.layout
        x = volume.reshape(-1, *volume.shape[2:]) if layout == "frames" else volume
        stage_bias = dict(zip(self.fusion.keys(), terms.stage_bias)) if terms is not None else {}

        def fuse(name: str, x: torch.Tensor) -> torch.Tensor:
            if name not in self.fusion:
                return x
            return self.fusion[name](x, m, layout, backend, bias=stage_bias.get(name))

        _, pooled = run_backbone(self.backbone, x, fuse if len(self.fusion) else None)  # [B, T', E]
        feats = self.dropout(pooled)
        if not self.fusion_cfg.classifier:
            return self.fc(feats).mean(1)
        if terms is not None:
            E = feats.shape[2]
            per_frame = F.linear(feats, self.fc.weight[:, :E])  # the [m ; s] columns and bias: per video
            return per_frame.mean(1) + terms.classifier_bias.to(per_frame.dtype)
        T = feats.shape[1]
        ctx = torch.cat([m, s.to(m.dtype)], 1)[:, None].expand(-1, T, -1)  # each video its own s
        feats = torch.cat([feats, ctx.to(feats.dtype)], 2)
        return self.fc(feats).mean(1)
