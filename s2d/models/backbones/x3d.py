"""X3D video backbone (Feichtenhofer, "X3D: Expanding Architectures for Efficient
Video Recognition", CVPR 2020, https://arxiv.org/abs/2004.04730).

The module tree mirrors the parameter layout of pytorchvideo's ``create_x3d`` so
that its checkpoints load with ``load_state_dict(strict=True)`` and no key
renaming::

    blocks.0            stem: conv.conv_t (1x3x3), conv.conv_xy (5x1x1 depthwise), norm
    blocks.1 .. 4       res2 .. res5: res_blocks.<i>.{branch1_conv, branch1_norm, branch2.*}
    blocks.5            head: pool.{pre_conv, pre_norm, post_conv}, dropout, proj

Unlike pytorchvideo, the head always pools globally (adaptive average over
T, H and W), so any clip length and crop size works; when pytorchvideo's fixed
pooling kernel covers the whole final feature map both give the same result.
The network can be run stage by stage (``forward_stem`` / ``forward_stage`` /
``forward_head_features`` / ``forward_logits``) so callers can insert their own
operations between stages. The blocks are in ``x3d_blocks``, the width and depth
rules and ``X3DSpec`` in ``x3d_spec``.

Parameter counts (400 classes; XS, S and M share one architecture and differ
only in input clip, see ``X3D_INPUT_SPECS``) match pytorchvideo. GMACs are for
one clip at the standard input, convolutions and classifier only (BN excluded):

    ========  ==========  ===========  =====
    variant   params      input (TxS)  GMACs
    ========  ==========  ===========  =====
    x3d_xs     3,794,274    4 x 160     0.60
    x3d_s      3,794,274   13 x 160     1.96
    x3d_m      3,794,274   16 x 224     4.73
    x3d_l      6,153,384   16 x 312    18.37
    x3d_tiny     118,046    4 x 64      0.005
    ========  ==========  ===========  =====
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from s2d.models.backbones.x3d_blocks import Swish, X3DHead, X3DStage, X3DStem
from s2d.models.backbones.x3d_spec import (STAGE_NAMES, X3D_INPUT_SPECS, X3DInputSpec, X3DSpec, round_repeats,
                                           round_width)

__all__ = [
    "STAGE_NAMES",
    "Swish",
    "X3D",
    "X3D_INPUT_SPECS",
    "X3DInputSpec",
    "X3DSpec",
    "build_x3d",
    "round_repeats",
    "round_width",
    "x3d_l",
    "x3d_m",
    "x3d_s",
    "x3d_tiny",
    "x3d_xs",
]


class X3D(nn.Module):
    """X3D network on clips laid out as [B, C, T, H, W]; outputs logits (no softmax).

    Attributes:
        spec: the :class:`X3DSpec` it was built from.
        stage_channels: output channels of each stage, keyed by ``stage_names``.
        feature_dim: channels of the head feature map (C5; 432 for XS/S/M).
        embed_dim: width of the pooled embedding (``head_dim_out``).
    """

    stage_names: tuple[str, ...] = STAGE_NAMES

    def __init__(self, spec: X3DSpec | None = None) -> None:
        super().__init__()
        spec = spec if spec is not None else X3DSpec()
        self.spec = spec
        dims, inner, depths = spec.stage_dims, spec.stage_inner_dims, spec.scaled_depths

        blocks: list[nn.Module] = [X3DStem(spec.in_channels, spec.stem_dim, spec.stem_temporal_kernel)]
        dim_in = spec.stem_dim
        for i in range(len(STAGE_NAMES)):
            blocks.append(X3DStage(depths[i], dim_in, inner[i], dims[i], 2, spec.se_ratio))
            dim_in = dims[i]
        blocks.append(X3DHead(dims[-1], inner[-1], spec.head_dim_out, spec.num_classes, spec.dropout))
        self.blocks = nn.ModuleList(blocks)

        self.stage_channels: dict[str, int] = dict(zip(STAGE_NAMES, dims))
        self.feature_dim: int = inner[-1]
        self.embed_dim: int = spec.head_dim_out
        self.num_classes: int = spec.num_classes
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal (fan-out) convs, unit/zero BN, N(0, 0.01) classifier: the X3D recipe."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    @property
    def stem(self) -> X3DStem:
        """The stem module (``blocks.0``)."""
        return self.blocks[0]  # type: ignore[return-value]

    @property
    def head(self) -> X3DHead:
        """The head module (``blocks.5``)."""
        return self.blocks[len(STAGE_NAMES) + 1]  # type: ignore[return-value]

    def stage(self, name: str | int) -> X3DStage:
        """Return a residual stage by name (``"res2"`` .. ``"res5"``) or index 0..3."""
        idx = self._stage_index(name)
        return self.blocks[idx + 1]  # type: ignore[return-value]

    def _stage_index(self, name: str | int) -> int:
        if isinstance(name, int):
            if not 0 <= name < len(STAGE_NAMES):
                raise IndexError(f"stage index {name} out of range 0..{len(STAGE_NAMES) - 1}")
            return name
        try:
            return STAGE_NAMES.index(name)
        except ValueError:
            raise KeyError(f"unknown stage {name!r}; expected one of {STAGE_NAMES}") from None

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, T, H, W] -> [B, stem_dim, T, H/2, W/2]."""
        return self.blocks[0](x)

    def forward_stage(self, name: str | int, x: torch.Tensor) -> torch.Tensor:
        """Run one residual stage (each halves H and W)."""
        return self.stage(name)(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and all four stages: clip -> res5 output [B, C_res5, T, H/32, W/32]."""
        x = self.forward_stem(x)
        for i in range(len(STAGE_NAMES)):
            x = self.blocks[i + 1](x)
        return x

    def forward_head_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """res5 output -> (feature map [B, feature_dim, T, h, w], pooled embedding [B, embed_dim])."""
        pool = self.head.pool
        fmap = pool.feature_map(x)
        return fmap, pool.embed(fmap)

    def forward_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled embedding -> class logits [B, num_classes] (dropout then linear)."""
        head = self.head
        return head.proj(head.dropout(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip [B, 3, T, H, W] -> logits [B, num_classes]."""
        _, pooled = self.forward_head_features(self.forward_features(x))
        return self.forward_logits(pooled)

    def reset_classifier(self, num_classes: int, dropout: float | None = None) -> None:
        """Replace the final linear layer (e.g. to fine-tune on another label set)."""
        head = self.head
        head.proj = nn.Linear(self.embed_dim, num_classes, bias=True)
        nn.init.normal_(head.proj.weight, std=0.01)
        nn.init.zeros_(head.proj.bias)
        if dropout is not None:
            head.dropout = nn.Dropout(dropout)
        self.num_classes = num_classes
        self.spec = replace(
            self.spec, num_classes=num_classes, dropout=self.spec.dropout if dropout is None else dropout
        )


def build_x3d(spec: X3DSpec) -> X3D:
    """Build an :class:`X3D` from a spec."""
    return X3D(spec)


_BASE_SPECS: dict[str, X3DSpec] = {
    "x3d_xs": X3DSpec(name="x3d_xs", depth_factor=2.2),
    "x3d_s": X3DSpec(name="x3d_s", depth_factor=2.2),
    "x3d_m": X3DSpec(name="x3d_m", depth_factor=2.2),
    "x3d_l": X3DSpec(name="x3d_l", depth_factor=5.0),
    "x3d_tiny": X3DSpec(name="x3d_tiny", width_factor=0.5, depth_factor=0.5, head_dim_out=128),
}


def _make(name: str, num_classes: int, dropout: float, overrides: dict[str, Any]) -> X3D:
    spec = replace(_BASE_SPECS[name], num_classes=num_classes, dropout=dropout, **overrides)
    return X3D(spec)


def x3d_xs(num_classes: int = 400, dropout: float = 0.5, **overrides: Any) -> X3D:
    """X3D-XS (3.79M params at 400 classes); designed for 4x160 clips."""
    return _make("x3d_xs", num_classes, dropout, overrides)


def x3d_s(num_classes: int = 400, dropout: float = 0.5, **overrides: Any) -> X3D:
    """X3D-S (same weights layout as XS/M); designed for 13x160 clips."""
    return _make("x3d_s", num_classes, dropout, overrides)


def x3d_m(num_classes: int = 400, dropout: float = 0.5, **overrides: Any) -> X3D:
    """X3D-M (3.79M params at 400 classes); designed for 16x224 clips."""
    return _make("x3d_m", num_classes, dropout, overrides)


def x3d_l(num_classes: int = 400, dropout: float = 0.5, **overrides: Any) -> X3D:
    """X3D-L (6.15M params at 400 classes, depth factor 5.0); designed for 16x312 clips."""
    return _make("x3d_l", num_classes, dropout, overrides)


def x3d_tiny(num_classes: int = 400, dropout: float = 0.5, **overrides: Any) -> X3D:
    """Width 0.5, depth 0.5, 128-d head: a ~0.1M-param X3D for fast tests, same code path."""
    return _make("x3d_tiny", num_classes, dropout, overrides)
