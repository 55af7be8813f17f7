"""The Triton fusion GEMM as a `torch.library` custom op, and its entry point `context_fusion_triton`.

`s2d::fusion_gemm` runs the kernel of `triton_fusion.py` (imported inside the op body, so
registering the op never imports Triton) with a fake impl, a torch backward (two GEMMs masked by
the ReLU) and a FLOP formula.
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import register_flop_formula

__all__ = ["context_fusion_triton", "fusion_gemm_op"]

Tensor = torch.Tensor


@torch.library.custom_op("s2d::fusion_gemm", mutates_args=())
def fusion_gemm(x3: Tensor, wx: Tensor, bias: Tensor, frames_per_bias: int, allow_tf32: bool) -> Tensor:
    """`ReLU(wx @ x3[g] + bias[g // frames_per_bias])`, x3 `[G, C, P]` → `[G, C_out, P]`."""
    from s2d_kernels.fusion.triton_fusion import fusion_forward

    return fusion_forward(x3, wx, bias, frames_per_bias, allow_tf32)


@fusion_gemm.register_fake
def _(x3, wx, bias, frames_per_bias, allow_tf32):
    return x3.new_empty(x3.shape[0], wx.shape[0], x3.shape[2])


def _fusion_setup(ctx, inputs, output):
    x3, wx, bias, frames_per_bias, _ = inputs
    ctx.save_for_backward(x3, wx, output)
    ctx.frames_per_bias = frames_per_bias


def _fusion_grad(ctx, grad):
    from s2d_kernels.fusion.triton_fusion import fusion_backward

    x3, wx, y = ctx.saved_tensors
    g_x, g_w, g_b = fusion_backward(grad, x3, wx, y, ctx.frames_per_bias)
    return g_x, g_w, g_b, None, None


fusion_gemm.register_autograd(_fusion_grad, setup_context=_fusion_setup)


@register_flop_formula(torch.ops.s2d.fusion_gemm)
def _fusion_flops(x3, wx, bias, frames_per_bias, allow_tf32, *args, out_shape=None, **kwargs) -> int:
    G, C, P = x3
    return 2 * G * wx[0] * C * P


def fusion_gemm_op(x3: Tensor, wx: Tensor, bias: Tensor, frames_per_bias: int, allow_tf32: bool = False) -> Tensor:
    """Call `s2d::fusion_gemm` (differentiable w.r.t. `x3`, `wx` and `bias`)."""
    return torch.ops.s2d.fusion_gemm(x3, wx, bias, frames_per_bias, allow_tf32)


def context_fusion_triton(x: torch.Tensor, wx: torch.Tensor, bias: torch.Tensor, *, layout: str = "bcthw",
                          allow_tf32: bool = False) -> torch.Tensor:
    """`ReLU(W_x·x + bias[video])` with the Triton kernel.

    `x`: `[B, C, T, h, w]` ("bcthw") or `[B*T, C, h, w]` ("btchw", checked by `context_fusion`);
    `wx` `[C_out, C]`; `bias` `[B, C_out]` (the per-video context term, read as float32). Returns
    `x`'s layout with C_out channels, in `x`'s dtype.
    """
    per = 1 if layout == "bcthw" else x.shape[0] // bias.shape[0]
    x3 = x.reshape(x.shape[0], x.shape[1], -1)
    y = fusion_gemm_op(x3, wx, bias.to(torch.float32), per, allow_tf32)
    return y.view(x.shape[0], wx.shape[0], *x.shape[2:])
