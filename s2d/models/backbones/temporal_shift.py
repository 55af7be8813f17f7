"""Temporal shift (TSM, Lin et al. 2019) as a wrapper around a 2D conv.

Input is `[B*T, C, H, W]` with the frames of each video contiguous. Channels `[0, fold)` take the
next frame's values (t+1), channels `[fold, 2·fold)` the previous frame's (t-1), with zeros at the
clip ends; the rest pass through. `fold = C // shift_div`. The wrapped conv keeps its parameters
under `.net`, the key layout of the TSM and S2DNet checkpoints.
"""
from __future__ import annotations

import torch
from torch import nn


def temporal_shift(x: torch.Tensor, num_segments: int, shift_div: int = 8) -> torch.Tensor:
    """Shift a fraction of channels one step forward and backward in time."""
    nt, c, h, w = x.shape
    if nt % num_segments:
        raise ValueError(f"temporal shift: {nt} frames is not a multiple of num_segments={num_segments}")
    x = x.view(nt // num_segments, num_segments, c, h, w)
    fold = c // shift_div
    if torch.compiler.is_exporting():
        return _shift_by_concat(x, fold).view(nt, c, h, w)
    # Every element is written once (no zero fill of the whole tensor first): the shift is a
    # memory-bound copy run before each shifted conv, so one pass less counts.
    out = torch.empty_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]  # frame t sees t+1
    out[:, -1, :fold] = 0
    out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]  # frame t sees t-1
    out[:, 0, fold:2 * fold] = 0
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return out.view(nt, c, h, w)


def _shift_by_concat(x: torch.Tensor, fold: int) -> torch.Tensor:
    """The same shift `[B, T, C, H, W]` → `[B, T, C, H, W]` built by concatenation, without writes into
    slices of a buffer: exported graphs (ONNX) carry it as plain slices and concats."""
    zero = torch.zeros_like(x[:, :1, :fold])
    ahead = torch.cat([x[:, 1:, :fold], zero], 1)  # frame t sees t+1
    behind = torch.cat([zero, x[:, :-1, fold:2 * fold]], 1)  # frame t sees t-1
    return torch.cat([ahead, behind, x[:, :, 2 * fold:]], 2)


class TemporalShift(nn.Module):
    """Apply `temporal_shift` to the input of `net`."""

    def __init__(self, net: nn.Module, num_segments: int, shift_div: int = 8):
        super().__init__()
        for key, value in (("num_segments", num_segments), ("shift_div", shift_div)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"temporal shift: {key} must be an integer >= 1, got {value!r}")
        self.net = net
        self.num_segments = num_segments
        self.shift_div = shift_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(temporal_shift(x, self.num_segments, self.shift_div))

    def extra_repr(self) -> str:
        return f"num_segments={self.num_segments}, shift_div={self.shift_div}"
