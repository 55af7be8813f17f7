"""Triton kernels of the Gaussian filterbank sampler: forward and backward.

The band of every filter row (its first position and its weights) is built on the host by
`s2d_kernels.sampler.bands`, as for the torch path (see `triton_op.py`). The kernels compute the
contraction

    V̂[b, j, c, i, k] = Σ_τ wt[n, τ] Σ_m wy[n, i, m] Σ_l wx[n, k, l] I[b, t0+τ, c, sy+m, sx+l]

with n = b·T_d + j. One program computes a `BI × BK` output tile of one output frame, all channels:
it walks the input window that the tile's bands cover (in `BY × BX` chunks, so any stride fits),
reduces each chunk over the temporal band (reading frames as stored: uint8 normalised on load, or
float32/16-bit floats) and applies the two spatial filters as small dense dot products on the
chunk (weights outside a row's band are zero). Only frames and pixels inside bands are read,
accumulation is float32 (dot products in IEEE fp32, not TF32), and the output is written through
strides, so either layout comes out directly.

The temporal band has 13 taps for the Gaussian filter and 3 for the linear ablation (so integer
centres keep the dense path's subgradient from their zero-weight neighbours).

The backward kernel recomputes each chunk's temporal reduction and produces, by atomic adds, the
gradients of the band weights (from which autograd reaches the six raw parameters) and, for float
frames, of the frames. The order of the atomic additions is not fixed, so gradients are
reproducible to float32 rounding, not bitwise. Both kernels run inside the custom ops
`s2d::triton_sample` / `s2d::triton_sample_backward` (registered in `triton_op.py`).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from s2d_kernels._triton import KernelConfig, TunedKernel
from s2d_kernels.sampler.params import volume_shape

__all__ = ["triton_backward", "triton_forward", "FWD", "BWD"]

@triton.jit
def _temporal_chunk(x_ptr, x_off, n, t0, tw_ptr, c, scale, shift, offs_y, offs_x, m2,
                    sxt, sxc, sxh, sxw, KT: tl.constexpr, NORMALIZE: tl.constexpr,
                    BY: tl.constexpr, BX: tl.constexpr):
    """Σ_τ wt[n, τ] · I[t0+τ, c, y, x] on a `BY × BX` chunk (float32; zero-weight taps skipped)."""
    xt = tl.zeros([BY, BX], dtype=tl.float32)
    for tau in range(KT):
        w = tl.load(tw_ptr + n * KT + tau)
        if w != 0.0:
            ptrs = x_ptr + x_off + (t0 + tau).to(tl.int64) * sxt + c * sxc \
                + offs_y[:, None] * sxh + offs_x[None, :] * sxw
            v = tl.load(ptrs, mask=m2, other=0).to(tl.float32)
            if NORMALIZE:
                v = v * scale + shift
            xt += w * v
    return xt


@triton.jit
def _tile(sy_ptr, sx_ptr, n, tile, T_d, S, KY: tl.constexpr, KX: tl.constexpr, BI: tl.constexpr, BK: tl.constexpr):
    """Program `(n, tile)`'s output tile: video b and detail frame j, its row/column offsets and
    masks, their band starts, and the input window the bands cover (bands lie inside the frame)."""
    tiles_k = tl.cdiv(S, BK)
    b = n // T_d
    j = n % T_d
    offs_i = (tile // tiles_k) * BI + tl.arange(0, BI)
    offs_k = (tile % tiles_k) * BK + tl.arange(0, BK)
    mi = offs_i < S
    mk = offs_k < S
    sy = tl.load(sy_ptr + n * S + offs_i, mask=mi, other=0)
    sx = tl.load(sx_ptr + n * S + offs_k, mask=mk, other=0)
    ylo = tl.min(tl.where(mi, sy, 2147483647), axis=0)
    yhi = tl.max(tl.where(mi, sy, 0), axis=0) + KY
    xlo = tl.min(tl.where(mk, sx, 2147483647), axis=0)
    xhi = tl.max(tl.where(mk, sx, 0), axis=0) + KX
    return b, j, offs_i, offs_k, mi, mk, sy, sx, ylo, yhi, xlo, xhi


@triton.jit
def _sampler_fwd_kernel(
    x_ptr, out_ptr, ts_ptr, tw_ptr, sy_ptr, wy_ptr, sx_ptr, wx_ptr, scale_ptr, shift_ptr,
    T_d, C, S,
    sxb, sxt, sxc, sxh, sxw,
    sob, soj, soc, soi, sok,
    KT: tl.constexpr, KY: tl.constexpr, KX: tl.constexpr, NORMALIZE: tl.constexpr,
    BI: tl.constexpr, BK: tl.constexpr, BY: tl.constexpr, BX: tl.constexpr,
):
    n = tl.program_id(0)
    b, j, offs_i, offs_k, mi, mk, sy, sx, ylo, yhi, xlo, xhi = _tile(sy_ptr, sx_ptr, n, tl.program_id(1), T_d, S,
                                                                     KY, KX, BI, BK)
    t0 = tl.load(ts_ptr + n)
    x_off = b.to(tl.int64) * sxb
    o_off = b.to(tl.int64) * sob + j.to(tl.int64) * soj
    for c in range(C):
        scale = 1.0
        shift = 0.0
        if NORMALIZE:
            scale = tl.load(scale_ptr + c)
            shift = tl.load(shift_ptr + c)
        acc = tl.zeros([BI, BK], dtype=tl.float32)
        for y0 in range(ylo, yhi, BY):
            offs_y = y0 + tl.arange(0, BY)
            my = offs_y < yhi
            t1 = tl.zeros([BY, BK], dtype=tl.float32)  # (chunk rows) × (tile columns), width applied
            for x0 in range(xlo, xhi, BX):
                offs_x = x0 + tl.arange(0, BX)
                m2 = my[:, None] & (offs_x < xhi)[None, :]
                xt = _temporal_chunk(x_ptr, x_off, n, t0, tw_ptr, c, scale, shift, offs_y, offs_x, m2,
                                     sxt, sxc, sxh, sxw, KT, NORMALIZE, BY, BX)
                tap_x = offs_x[:, None] - sx[None, :]  # [BX, BK]
                wxt = tl.load(wx_ptr + (n * S + offs_k[None, :]) * KX + tap_x,
                              mask=(tap_x >= 0) & (tap_x < KX) & mk[None, :], other=0.0)
                t1 += tl.dot(xt, wxt, input_precision="ieee")
            tap_y = offs_y[None, :] - sy[:, None]  # [BI, BY]
            wyt = tl.load(wy_ptr + (n * S + offs_i[:, None]) * KY + tap_y,
                          mask=(tap_y >= 0) & (tap_y < KY) & mi[:, None], other=0.0)
            acc += tl.dot(wyt, t1, input_precision="ieee")
        ptrs = out_ptr + o_off + c * soc + offs_i[:, None] * soi + offs_k[None, :] * sok
        tl.store(ptrs, acc, mask=mi[:, None] & mk[None, :])


@triton.jit
def _sampler_bwd_kernel(
    x_ptr, g_ptr, nf_ptr, ts_ptr, tw_ptr, sy_ptr, wy_ptr, sx_ptr, wx_ptr, scale_ptr, shift_ptr,
    gtw_ptr, gwy_ptr, gwx_ptr, gx_ptr,
    T_d, C, S,
    sxb, sxt, sxc, sxh, sxw,
    sgb, sgj, sgc, sgi, sgk,
    KT: tl.constexpr, KY: tl.constexpr, KX: tl.constexpr, NORMALIZE: tl.constexpr,
    NEED_X: tl.constexpr, KT_P2: tl.constexpr,
    BI: tl.constexpr, BK: tl.constexpr, BY: tl.constexpr, BX: tl.constexpr,
):
    n = tl.program_id(0)
    b, j, offs_i, offs_k, mi, mk, sy, sx, ylo, yhi, xlo, xhi = _tile(sy_ptr, sx_ptr, n, tl.program_id(1), T_d, S,
                                                                     KY, KX, BI, BK)
    t0 = tl.load(ts_ptr + n)
    n_valid = tl.load(nf_ptr + b)
    x_off = b.to(tl.int64) * sxb
    g_off = b.to(tl.int64) * sgb + j.to(tl.int64) * sgj
    taus = tl.arange(0, KT_P2)
    g_tw = tl.zeros([KT_P2], dtype=tl.float32)  # this program's share of the temporal-weight gradient
    for c in range(C):
        scale = 1.0
        shift = 0.0
        if NORMALIZE:
            scale = tl.load(scale_ptr + c)
            shift = tl.load(shift_ptr + c)
        g = tl.load(g_ptr + g_off + c * sgc + offs_i[:, None] * sgi + offs_k[None, :] * sgk,
                    mask=mi[:, None] & mk[None, :], other=0.0).to(tl.float32)
        for y0 in range(ylo, yhi, BY):
            offs_y = y0 + tl.arange(0, BY)
            my = offs_y < yhi
            tap_y = offs_y[None, :] - sy[:, None]  # [BI, BY]
            band_y = (tap_y >= 0) & (tap_y < KY) & mi[:, None] & my[None, :]
            wyt = tl.load(wy_ptr + (n * S + offs_i[:, None]) * KY + tap_y, mask=band_y, other=0.0)
            gy = tl.dot(tl.trans(wyt), g, input_precision="ieee")  # F_yᵀ·G on the chunk: [BY, BK]
            t1 = tl.zeros([BY, BK], dtype=tl.float32)
            for x0 in range(xlo, xhi, BX):
                offs_x = x0 + tl.arange(0, BX)
                mx = offs_x < xhi
                m2 = my[:, None] & mx[None, :]
                xt = _temporal_chunk(x_ptr, x_off, n, t0, tw_ptr, c, scale, shift, offs_y, offs_x, m2,
                                     sxt, sxc, sxh, sxw, KT, NORMALIZE, BY, BX)
                tap_x = offs_x[:, None] - sx[None, :]  # [BX, BK]
                band_x = (tap_x >= 0) & (tap_x < KX) & mk[None, :] & mx[:, None]
                wxt = tl.load(wx_ptr + (n * S + offs_k[None, :]) * KX + tap_x, mask=band_x, other=0.0)
                t1 += tl.dot(xt, wxt, input_precision="ieee")
                # ∂/∂F_x[k, x] = Σ_y (F_yᵀG)[y, k] · Xt[y, x], kept on the band only.
                gwx = tl.dot(tl.trans(gy), xt, input_precision="ieee")  # [BK, BX]
                tap_xk = offs_x[None, :] - sx[:, None]  # [BK, BX]
                band_xk = (tap_xk >= 0) & (tap_xk < KX) & mk[:, None] & mx[None, :]
                tl.atomic_add(gwx_ptr + (n * S + offs_k[:, None]) * KX + tap_xk, gwx, mask=band_xk)
                # ∂/∂Xt = F_yᵀ·G·F_x on the chunk, then on to the temporal weights and the frames.
                gxt = tl.dot(gy, tl.trans(wxt), input_precision="ieee")  # [BY, BX]
                for tau in range(KT):
                    t = t0 + tau
                    if t < n_valid:
                        ptrs = x_ptr + x_off + t.to(tl.int64) * sxt + c * sxc \
                            + offs_y[:, None] * sxh + offs_x[None, :] * sxw
                        v = tl.load(ptrs, mask=m2, other=0).to(tl.float32)
                        if NORMALIZE:
                            v = v * scale + shift
                        part = tl.sum(tl.sum(tl.where(m2, gxt * v, 0.0), axis=1), axis=0)
                        g_tw += tl.where(taus == tau, part, 0.0)
                        if NEED_X:
                            w = tl.load(tw_ptr + n * KT + tau)
                            if w != 0.0:
                                gptrs = gx_ptr + x_off + t.to(tl.int64) * sxt + c * sxc \
                                    + offs_y[:, None] * sxh + offs_x[None, :] * sxw
                                tl.atomic_add(gptrs, w * gxt, mask=m2)
            # ∂/∂F_y[i, y] = Σ_k G[i, k] · (Xt·F_xᵀ)[y, k], kept on the band only.
            gwy = tl.dot(g, tl.trans(t1), input_precision="ieee")  # [BI, BY]
            tl.atomic_add(gwy_ptr + (n * S + offs_i[:, None]) * KY + tap_y, gwy, mask=band_y)
    tl.atomic_add(gtw_ptr + n * KT + taus, g_tw, mask=taus < KT)


def _configs() -> list[KernelConfig]:
    """Output tile `BI × BK` and input chunk `BY × BX` candidates; the first is the smallest."""
    tiles = [(16, 16, 32, 32, 2), (32, 32, 32, 32, 4), (32, 32, 64, 64, 4), (64, 64, 64, 64, 8)]
    return [KernelConfig({"BI": bi, "BK": bk, "BY": by, "BX": bx}, num_warps=w, num_stages=2)
            for bi, bk, by, bx, w in tiles]


def _grid(n_out: int, S: int):
    return lambda meta: (n_out, triton.cdiv(S, meta["BI"]) * triton.cdiv(S, meta["BK"]))


#: Forward and backward kernels with their candidate configurations (first = interpreter's).
FWD = TunedKernel(_sampler_fwd_kernel, _configs(), key=["S", "C", "KT", "KY", "KX", "NORMALIZE"])
BWD = TunedKernel(_sampler_bwd_kernel, _configs(), key=["S", "C", "KT", "KY", "KX", "NORMALIZE", "NEED_X"],
                  reset_to_zero=["gtw_ptr", "gwy_ptr", "gwx_ptr", "gx_ptr"])


def triton_forward(tw: torch.Tensor, wy: torch.Tensor, wx: torch.Tensor, frames: torch.Tensor,
                   num_frames: torch.Tensor, ts: torch.Tensor, sy: torch.Tensor, sx: torch.Tensor,
                   scale: torch.Tensor | None, shift: torch.Tensor | None, layout: str) -> torch.Tensor:
    """Launch the forward kernel: band weights (+ starts) and frames → V̂ (float32, `layout`).

    Runs inside the custom op `s2d::triton_sample` (registered in `triton_op.py`), whose registered
    backward is `triton_backward`.
    """
    B, T, C, H, W = frames.shape
    T_d, KT = tw.shape[1], tw.shape[2]
    N, S, KY = wy.shape
    KX = wx.shape[2]
    out = torch.empty(volume_shape(B, T_d, C, S, layout), device=frames.device, dtype=torch.float32)
    so = out.stride()
    so = so if layout == "btchw" else (so[0], so[2], so[1], so[3], so[4])  # (b, j, c, i, k)
    normalize = scale is not None
    xs = frames.stride()
    FWD[_grid(N, S)](
        x_ptr=frames, out_ptr=out, ts_ptr=ts, tw_ptr=tw, sy_ptr=sy, wy_ptr=wy, sx_ptr=sx, wx_ptr=wx,
        scale_ptr=scale if normalize else tw, shift_ptr=shift if normalize else tw,  # tw: never read
        T_d=T_d, C=C, S=S, sxb=xs[0], sxt=xs[1], sxc=xs[2], sxh=xs[3], sxw=xs[4],
        sob=so[0], soj=so[1], soc=so[2], soi=so[3], sok=so[4], KT=KT, KY=KY, KX=KX, NORMALIZE=normalize)
    return out


def triton_backward(grad: torch.Tensor, tw: torch.Tensor, wy: torch.Tensor, wx: torch.Tensor,
                    frames: torch.Tensor, num_frames: torch.Tensor, ts: torch.Tensor, sy: torch.Tensor,
                    sx: torch.Tensor, scale: torch.Tensor | None, shift: torch.Tensor | None, layout: str,
                    need_x: bool):
    """Launch the backward kernel: `(g_tw, g_wy, g_wx, g_frames)`, `g_frames` empty unless `need_x`."""
    B, T, C, H, W = frames.shape
    T_d, KT = tw.shape[1], tw.shape[2]
    N, S, KY = wy.shape
    KX = wx.shape[2]
    normalize = scale is not None
    sg = grad.stride()
    sg = sg if layout == "btchw" else (sg[0], sg[2], sg[1], sg[3], sg[4])
    g_tw = torch.zeros_like(tw)
    g_wy = torch.zeros_like(wy)
    g_wx = torch.zeros_like(wx)
    # Accumulated in float32 with the frames' strides (frames needing a gradient are contiguous).
    g_x = torch.zeros(frames.shape if need_x else (0,), device=frames.device, dtype=torch.float32)
    xs = frames.stride()
    BWD[_grid(N, S)](
        x_ptr=frames, g_ptr=grad, nf_ptr=num_frames, ts_ptr=ts, tw_ptr=tw, sy_ptr=sy, wy_ptr=wy,
        sx_ptr=sx, wx_ptr=wx, scale_ptr=scale if normalize else tw, shift_ptr=shift if normalize else tw,
        gtw_ptr=g_tw, gwy_ptr=g_wy, gwx_ptr=g_wx, gx_ptr=g_x if need_x else g_tw,
        T_d=T_d, C=C, S=S, sxb=xs[0], sxt=xs[1], sxc=xs[2], sxh=xs[3], sxw=xs[4],
        sgb=sg[0], sgj=sg[1], sgc=sg[2], sgi=sg[3], sgk=sg[4],
        KT=KT, KY=KY, KX=KX, NORMALIZE=normalize, NEED_X=need_x, KT_P2=triton.next_power_of_2(KT))
    return g_tw, g_wy, g_wx, g_x.to(frames.dtype)
