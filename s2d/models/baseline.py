"""Single-network baselines (TSM, X3D) on uniformly sampled frames, with S2DNet's call interface."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from s2d.models.backbones import build_backbone, run_backbone
from s2d.models.clip import check_clip, uniform_view
from s2d.models.config import BaselineConfig
from s2d.models.labels import class_names
from s2d.models.pretrained import PretrainedMixin


@dataclass
class BaselineOutput:
    logits: torch.Tensor  # [B, K]
    features: torch.Tensor | None = None  # [B, E] backbone features averaged over time, when requested


class VideoClassifier(nn.Module, PretrainedMixin):
    """`frames` uniform frames of the dense clip, resized to `size` (nearest), one backbone,
    a per-frame classifier averaged over time (TSM) or a clip classifier (X3D)."""

    config_kind = "baseline"

    def __init__(self, config: BaselineConfig):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.arch, config.frames, config.shift_div)
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(self.backbone.embed_dim, config.num_classes)
        self.labels: tuple[str, ...] | None = class_names(config.labels)

    def class_axes(self) -> dict[str, tuple[int, int]]:
        """The parameters indexed by class: name → (dim, first index); the classifier's rows."""
        return {"fc.weight": (0, 0), "fc.bias": (0, 0)}

    def forward(self, frames: torch.Tensor, num_frames: torch.Tensor | None = None,
                return_features: bool = False) -> BaselineOutput:
        """Classify the config's dense clips `[B, dense_frames, 3, dense_size, dense_size]` (see `check_clip`);
        `return_features` adds the backbone's pooled features (for downstream work)."""
        c = self.config
        num_frames = check_clip(frames, num_frames, dense=(c.dense_frames, c.dense_size))
        clip = uniform_view(frames, num_frames, c.frames, c.size, c.mean, c.std)
        B, T = clip.shape[:2]
        x = clip.reshape(B * T, *clip.shape[2:]) if self.backbone.layout == "btchw" else clip.transpose(1, 2)
        _, pooled = run_backbone(self.backbone, x)
        return BaselineOutput(self.fc(self.dropout(pooled)).mean(1), pooled.mean(1) if return_features else None)

    def predict(self, video, topk: int | None = None, device=None):
        """Classify a video file or a uint8 clip `[T, H, W, 3]`: see `s2d.inference.predict.predict`."""
        from s2d.inference.predict import predict
        return predict(self, video, topk=topk, device=device)

    def optimize_for_inference(self, **options) -> "VideoClassifier":
        """A faster eval-only copy with the same outputs: see `s2d.inference.optimize.optimize_for_inference`."""
        from s2d.inference.optimize import optimize_for_inference
        return optimize_for_inference(self, **options)

    def train(self, mode: bool = True) -> "VideoClassifier":
        from s2d.inference.optimize import check_trainable

        check_trainable(self, mode)
        return super().train(mode)

    def loss(self, out: BaselineOutput, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(out.logits, target)
