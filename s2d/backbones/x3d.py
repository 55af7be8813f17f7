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
operations between stages.

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

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping, NamedTuple

import torch
from torch import nn

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

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
STAGE_NAMES: tuple[str, str, str, str] = ("res2", "res3", "res4", "res5")


def round_width(width: float, multiplier: float, min_width: int = 8, divisor: int = 8) -> int:
    """Scale a channel count by ``multiplier`` and round it to a multiple of ``divisor``.

    This is X3D's width rule: round to the nearest multiple, at least ``min_width``,
    and bump up one step if rounding lost more than 10% of the scaled width.
    A falsy multiplier leaves the width unchanged.
    """
    if not multiplier:
        return int(width)
    scaled = width * multiplier
    out = max(min_width, int(scaled + divisor / 2) // divisor * divisor)
    if out < 0.9 * scaled:
        out += divisor
    return int(out)


def round_repeats(repeats: int, multiplier: float) -> int:
    """Scale a block count by ``multiplier``, rounding up (X3D's depth rule)."""
    if not multiplier:
        return repeats
    return int(math.ceil(multiplier * repeats))


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


@dataclass(frozen=True)
class X3DSpec:
    """Architecture hyper-parameters of an X3D network (all fields JSON-serialisable).

    ``width_factor`` scales channels, ``depth_factor`` scales the base stage depths,
    ``bottleneck_factor`` sets the inner (depthwise) width of each bottleneck,
    ``stem_dim_in`` is the unscaled stem width, ``head_dim_out`` the width of the
    pooled embedding, ``se_ratio`` the squeeze-excitation reduction (applied to
    every other block, starting with the first of each stage).
    """

    name: str = "x3d"
    width_factor: float = 2.0
    depth_factor: float = 2.2
    bottleneck_factor: float = 2.25
    stem_dim_in: int = 12
    stem_temporal_kernel: int = 5
    stage_depths: tuple[int, ...] = (1, 2, 5, 3)
    head_dim_out: int = 2048
    se_ratio: float = 0.0625
    in_channels: int = 3
    num_classes: int = 400
    dropout: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage_depths", tuple(int(d) for d in self.stage_depths))
        if len(self.stage_depths) != len(STAGE_NAMES):
            raise ValueError(f"stage_depths needs {len(STAGE_NAMES)} entries, got {self.stage_depths}")
        if self.stem_temporal_kernel % 2 != 1:
            raise ValueError("stem_temporal_kernel must be odd to keep the clip length")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (tuples become lists) suitable for ``json.dumps``."""
        out = asdict(self)
        out["stage_depths"] = list(self.stage_depths)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> X3DSpec:
        """Inverse of :meth:`to_dict`; unknown keys are rejected to catch typos."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown X3DSpec fields: {sorted(unknown)}")
        return cls(**dict(data))

    @property
    def stem_dim(self) -> int:
        """Output channels of the stem."""
        return round_width(self.stem_dim_in, self.width_factor)

    @property
    def stage_dims(self) -> tuple[int, ...]:
        """Output channels of res2 .. res5."""
        base = [self.stem_dim_in]
        for _ in range(len(STAGE_NAMES) - 1):
            base.append(round_width(base[-1], 2.0, divisor=8))
        return tuple(round_width(d, self.width_factor) for d in base)

    @property
    def stage_inner_dims(self) -> tuple[int, ...]:
        """Bottleneck (depthwise conv) channels of res2 .. res5."""
        return tuple(int(self.bottleneck_factor * d) for d in self.stage_dims)

    @property
    def scaled_depths(self) -> tuple[int, ...]:
        """Number of residual blocks in res2 .. res5."""
        return tuple(round_repeats(d, self.depth_factor) for d in self.stage_depths)


class X3DInputSpec(NamedTuple):
    """Clip geometry a variant was designed for: frames, square crop side, frame stride."""

    num_frames: int
    crop_size: int
    sampling_rate: int


X3D_INPUT_SPECS: dict[str, X3DInputSpec] = {
    "x3d_xs": X3DInputSpec(4, 160, 12),
    "x3d_s": X3DInputSpec(13, 160, 6),
    "x3d_m": X3DInputSpec(16, 224, 5),
    "x3d_l": X3DInputSpec(16, 312, 5),
}


class _StemConv(nn.Module):
    """Factorised stem convolution: spatial 1x3x3 (stride 2) then depthwise temporal Kx1x1.

    The attribute names follow pytorchvideo's checkpoints, where they are swapped in
    meaning: ``conv_t`` holds the *spatial* 1x3x3 conv and ``conv_xy`` the *temporal*
    depthwise conv. They are kept as-is so state dicts load without renaming.
    """

    def __init__(self, in_channels: int, out_channels: int, temporal_kernel: int) -> None:
        super().__init__()
        self.conv_t = nn.Conv3d(
            in_channels, out_channels, kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False
        )
        self.conv_xy = nn.Conv3d(
            out_channels,
            out_channels,
            kernel_size=(temporal_kernel, 1, 1),
            padding=(temporal_kernel // 2, 0, 0),
            groups=out_channels,
            bias=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_xy(self.conv_t(x))


class X3DStem(nn.Module):
    """Stem: factorised conv, BN, ReLU; halves H and W, keeps T."""

    def __init__(self, in_channels: int, out_channels: int, temporal_kernel: int = 5) -> None:
        super().__init__()
        self.conv = _StemConv(in_channels, out_channels, temporal_kernel)
        self.norm = _bn(out_channels)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(x)))


class SqueezeExcite3d(nn.Module):
    """Channel squeeze-and-excitation over (T, H, W): x * sigmoid(W2 relu(W1 mean(x)))."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv3d(channels, reduced, kernel_size=1, bias=True),
            nn.ReLU(inplace=True),
            nn.Conv3d(reduced, channels, kernel_size=1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.block(x.mean(dim=(2, 3, 4), keepdim=True))


class _SwishFn(torch.autograd.Function):
    """x * sigmoid(x) that keeps only ``x`` for backward (one saved tensor instead of two)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        sig = torch.sigmoid(x)
        return grad_out * sig * (1.0 + x * (1.0 - sig))


class Swish(nn.Module):
    """Swish / SiLU activation computed as ``x * sigmoid(x)``.

    Evaluated literally rather than with the fused ``F.silu`` so results match
    reference X3D checkpoints bit for bit; the fused kernel rounds differently and,
    with train-mode BN on small batches, the deep stack amplifies that to ~1e-5.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _SwishFn.apply(x)
        return x * torch.sigmoid(x)  # inference / export: plain ops, same values


class X3DBottleneck(nn.Module):
    """1x1x1 expand -> 3x3x3 depthwise (+SE) -> Swish -> 1x1x1 project, each with BN.

    ``norm_b`` is ``Sequential(BN, SE or Identity)`` so SE weights sit at
    ``norm_b.1.block.*`` as in the reference checkpoints.
    """

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, spatial_stride: int, se_ratio: float) -> None:
        super().__init__()
        self.conv_a = nn.Conv3d(dim_in, dim_inner, kernel_size=1, bias=False)
        self.norm_a = _bn(dim_inner)
        self.act_a = nn.ReLU(inplace=True)
        self.conv_b = nn.Conv3d(
            dim_inner,
            dim_inner,
            kernel_size=3,
            stride=(1, spatial_stride, spatial_stride),
            padding=1,
            groups=dim_inner,
            bias=False,
        )
        se: nn.Module = (
            SqueezeExcite3d(dim_inner, round_width(dim_inner, se_ratio)) if se_ratio > 0 else nn.Identity()
        )
        self.norm_b = nn.Sequential(_bn(dim_inner), se)
        self.act_b = Swish()
        self.conv_c = nn.Conv3d(dim_inner, dim_out, kernel_size=1, bias=False)
        self.norm_c = _bn(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class X3DResBlock(nn.Module):
    """Residual block: ReLU(shortcut(x) + bottleneck(x)).

    The shortcut is a strided 1x1x1 conv when the shape changes (plus BN only when
    the channel count changes, as in the reference), else the identity.
    """

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, spatial_stride: int, se_ratio: float) -> None:
        super().__init__()
        needs_proj = dim_in != dim_out or spatial_stride > 1
        self.branch1_conv = (
            nn.Conv3d(dim_in, dim_out, kernel_size=1, stride=(1, spatial_stride, spatial_stride), bias=False)
            if needs_proj
            else None
        )
        self.branch1_norm = _bn(dim_out) if dim_in != dim_out else None
        self.branch2 = X3DBottleneck(dim_in, dim_inner, dim_out, spatial_stride, se_ratio)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.branch1_conv is not None:
            shortcut = self.branch1_conv(x)
            if self.branch1_norm is not None:
                shortcut = self.branch1_norm(shortcut)
        return self.activation(shortcut + self.branch2(x))


class X3DStage(nn.Module):
    """A stack of residual blocks; the first one downsamples H and W by 2."""

    def __init__(
        self, depth: int, dim_in: int, dim_inner: int, dim_out: int, spatial_stride: int, se_ratio: float
    ) -> None:
        super().__init__()
        self.res_blocks = nn.ModuleList(
            X3DResBlock(
                dim_in if i == 0 else dim_out,
                dim_inner,
                dim_out,
                spatial_stride if i == 0 else 1,
                se_ratio if i % 2 == 0 else 0.0,
            )
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        return x


class X3DProjectedPool(nn.Module):
    """Head trunk: 1x1x1 conv+BN+ReLU (feature map), global average, 1x1x1 conv+ReLU (embedding)."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int) -> None:
        super().__init__()
        self.pre_conv = nn.Conv3d(dim_in, dim_inner, kernel_size=1, bias=False)
        self.pre_norm = _bn(dim_inner)
        self.pre_act = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.post_conv = nn.Conv3d(dim_inner, dim_out, kernel_size=1, bias=False)
        self.post_act = nn.ReLU(inplace=True)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """res5 output -> [B, dim_inner, T, h, w] map before pooling."""
        return self.pre_act(self.pre_norm(self.pre_conv(x)))

    def embed(self, fmap: torch.Tensor) -> torch.Tensor:
        """Feature map -> pooled embedding [B, dim_out]."""
        return self.post_act(self.post_conv(self.pool(fmap))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.feature_map(x))


class X3DHead(nn.Module):
    """Projected pooling, dropout and the linear classifier."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.pool = X3DProjectedPool(dim_in, dim_inner, dim_out)
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(dim_out, num_classes, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(self.pool(x)))


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
