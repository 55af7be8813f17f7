"""Triton kernel of context fusion: `ReLU(W_x·x + bias_per_video)` as one GEMM with its epilogue.

The 1×1×1 conv on `[x ; m]` is split as `W_x·x + W_m·m`; the context part `W_m·m` is one small
GEMV per video (computed by torch, `split.context_bias`) and enters this kernel as a per-video bias, so
the broadcast concat is never materialised. One program computes a `BM × BN` tile of
`Y_g = ReLU(W_x · X_g + bias[g // frames_per_bias])` for one feature map g, where X_g is `[C, P]`:
a video `[C, T·h·w]` ("bcthw") or a frame `[C, h·w]` ("btchw", T frames per video).

Accumulation is float32; float32 operands are multiplied in IEEE fp32 (not TF32) unless
`allow_tf32`, 16-bit operands natively. The backward is plain torch (two GEMMs masked by the ReLU).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from s2d_kernels._triton import KernelConfig, TunedKernel
from s2d_kernels.backend import triton_interpreted

__all__ = ["fusion_backward", "fusion_forward", "FUSION"]


@triton.jit
def _fusion_kernel(
    x_ptr, w_ptr, bias_ptr, y_ptr,
    C_out, C_in, P, frames_per_bias,
    sxg, sxc, sxp, swo, swc, sbg, syg, syc, syp,
    IEEE: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
):
    g = tl.program_id(0)
    tile = tl.program_id(1)
    tiles_n = tl.cdiv(P, BN)
    offs_m = (tile // tiles_n) * BM + tl.arange(0, BM)
    offs_p = (tile % tiles_n) * BN + tl.arange(0, BN)
    mm = offs_m < C_out
    mp = offs_p < P
    x_base = x_ptr + g.to(tl.int64) * sxg
    acc = tl.zeros([BM, BN], dtype=tl.float32)
    for k0 in range(0, C_in, BK):
        offs_k = k0 + tl.arange(0, BK)
        mk = offs_k < C_in
        a = tl.load(w_ptr + offs_m[:, None] * swo + offs_k[None, :] * swc, mask=mm[:, None] & mk[None, :], other=0.0)
        b = tl.load(x_base + offs_k[:, None].to(tl.int64) * sxc + offs_p[None, :] * sxp,
                    mask=mk[:, None] & mp[None, :], other=0.0)
        if IEEE:
            acc += tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
        else:
            acc += tl.dot(a, b)
    bias = tl.load(bias_ptr + (g // frames_per_bias).to(tl.int64) * sbg + offs_m, mask=mm, other=0.0)
    acc = tl.maximum(acc + bias.to(tl.float32)[:, None], 0.0)
    y_ptrs = y_ptr + g.to(tl.int64) * syg + offs_m[:, None].to(tl.int64) * syc + offs_p[None, :] * syp
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=mm[:, None] & mp[None, :])


def _configs() -> list[KernelConfig]:
    tiles = [(32, 32, 32, 4, 2), (64, 64, 32, 4, 3), (128, 64, 32, 4, 3), (64, 128, 32, 4, 3), (128, 128, 32, 8, 3)]
    return [KernelConfig({"BM": bm, "BN": bn, "BK": bk}, num_warps=w, num_stages=s) for bm, bn, bk, w, s in tiles]


#: The fusion GEMM and its candidate configurations (first = interpreter's).
FUSION = TunedKernel(_fusion_kernel, _configs(), key=["C_out", "C_in", "P", "IEEE"])


def fusion_forward(x3: torch.Tensor, w: torch.Tensor, bias: torch.Tensor, frames_per_bias: int,
                   allow_tf32: bool = False) -> torch.Tensor:
    """`ReLU(w @ x3[g] + bias[g // frames_per_bias])` for x3 `[G, C, P]` → `[G, C_out, P]`.

    Runs inside the custom op `s2d::fusion_gemm` (registered in `triton_op.py`), whose backward is torch.
    """
    G, C, P = x3.shape
    C_out = w.shape[0]
    w = w.to(x3.dtype)
    y = torch.empty(G, C_out, P, device=x3.device, dtype=x3.dtype)
    # IEEE: float32 products in fp32 (not TF32). The CPU interpreter multiplies 16-bit operands
    # as raw bits, so there they are widened too (same products, fp32 accumulation as on GPU).
    ieee = (x3.dtype == torch.float32 and not allow_tf32) or triton_interpreted()
    grid = lambda meta: (G, triton.cdiv(C_out, meta["BM"]) * triton.cdiv(P, meta["BN"]))  # noqa: E731
    FUSION[grid](x_ptr=x3, w_ptr=w, bias_ptr=bias, y_ptr=y, C_out=C_out, C_in=C, P=P,
                 frames_per_bias=frames_per_bias, sxg=x3.stride(0), sxc=x3.stride(1), sxp=x3.stride(2),
                 swo=w.stride(0), swc=w.stride(1), sbg=bias.stride(0), syg=y.stride(0), syc=y.stride(1),
                 syp=y.stride(2), IEEE=ieee)
    return y


def fusion_backward(grad: torch.Tensor, x3: torch.Tensor, wx: torch.Tensor, y: torch.Tensor,
                    frames_per_bias: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients `(g_x3, g_wx, g_bias)` of `fusion_forward`, through the ReLU mask (torch GEMMs)."""
    gy = torch.where(y > 0, grad, torch.zeros((), dtype=grad.dtype, device=grad.device))  # [G, C_out, P]
    g_x = torch.matmul(wx.to(gy.dtype).t(), gy).to(x3.dtype)
    g_w = torch.einsum("gop,gcp->oc", gy, x3.to(gy.dtype)).to(wx.dtype)
    G = gy.shape[0]
    g_b = gy.float().sum(2).view(G // frames_per_bias, frames_per_bias, -1).sum(1)
    return g_x, g_w, g_b
