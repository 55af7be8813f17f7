"""X3D's building blocks, named as in pytorchvideo's checkpoints: stem, squeeze-excitation,
Swish, bottleneck, residual block and stage, projected pooling and head."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from s2d.models.backbones.x3d_spec import BN_EPS, BN_MOMENTUM, round_width


def bn3d(channels: int) -> nn.BatchNorm3d:
    """BatchNorm3d with X3D's epsilon and momentum."""
    return nn.BatchNorm3d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


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
        self.norm = bn3d(out_channels)
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
        self.norm_a = bn3d(dim_inner)
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
        self.norm_b = nn.Sequential(bn3d(dim_inner), se)
        self.act_b = Swish()
        self.conv_c = nn.Conv3d(dim_inner, dim_out, kernel_size=1, bias=False)
        self.norm_c = bn3d(dim_out)

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
        self.branch1_norm = bn3d(dim_out) if dim_in != dim_out else None
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
        self.pre_norm = bn3d(dim_inner)
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
