"""Fast pure-torch path of the Gaussian filterbank sampler (what `backend="torch"` runs on CPU).

The dense reference multiplies by full `[S, H]` and `[S, W]` filterbanks although every Gaussian
row (σ² = 1) has only ~13 taps that matter: a tap 6σ away weighs exp(-18) ≈ 1.5e-8 of the peak.
This path keeps the temporal contraction first, over the pixels the spatial bands read (the
entry point in `banded_op.py` crops the clip to them), and changes only how each step is computed; its spatial steps run height then width (the reference applies width then
height: the same product, summed in another order, so results agree to float32 rounding):

- time: a small GEMM with the dense `F_t` `[T_d, T]`. T is tiny and the GEMM is bound by reading
  the clip once, so banding time would save nothing here; the linear-temporal ablation (whose
  spatial filters are Gaussian too) therefore takes exactly this route, at the same cost;
- height, then width: banded row combinations (`embedding_bag` with per-tap weights), 13 taps per
  output row instead of H or W, so their cost follows the output size;
- uint8 clips are converted to float one work unit at a time and never normalised as a whole:
  `Σ F·(a·x + b) = (a·F)·x + b·ΣF`, so the forward folds the per-channel affine into the temporal
  GEMM (filterbank `[a·F_t | b·ΣF_t]` against the raw values plus a constant row of ones in the
  conversion buffer), and the GEMM's output is already normalised: no pass over the output, and no
  response-to-a-constant ("mass") tensor. The backward applies the affine to the gradients
  (`_mass_backward` for its `b·ΣF` part).

The work runs in units of (a few videos, one colour channel) whose intermediates stay small
(cache-resident, and reused by the allocator instead of being page-faulted in afresh); the
backward recomputes a unit's intermediates rather than keeping them alive.

Bands come from `s2d_kernels.sampler.bands` (13 taps per row, placed so that band sums equal the
dense row sums). Weights below the smallest normal float (far tails of `F_t`) are flushed to
zero: they change no float32 sum, and subnormal operands would slow the GEMM several times over.

Gradients: the fused contraction is one custom op (`s2d::banded_sample`, registered in `banded_op.py`)
with a registered backward op returning gradients for `F_t` and the band weights (and for float
frames); autograd carries them on through the band weights and the tanh/exp scaling to the six
raw parameters.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from s2d_kernels.sampler.bands import flush_subnormal
from s2d_kernels.sampler.params import volume_shape

__all__ = ["UNIT_BYTES", "banded_backward", "banded_forward"]

#: Largest intermediate of one work unit, in bytes: small enough to stay in cache and below the
#: size from which the C allocator maps fresh (page-faulting) memory for every request.
UNIT_BYTES = 8 << 20


class _Bands:
    """Band structure of one spatial axis, and its adjoint, per output frame.

    `start` `[N, R]`, `weight` `[N, R, K]` (values only), `size` input positions; `rel`
    `[N, R, K]` are the positions each output row reads. The adjoint lists, for every input
    position, the output rows whose band covers it, as variable-length bags (CSR: entries sorted
    by position, `t_offsets` per position): the backward applies it as one more banded
    combination, with exactly as many taps as the forward and no padding.
    """

    def __init__(self, start: torch.Tensor, weight: torch.Tensor, size: int):
        N, R, K = weight.shape
        self.size, self.rows, self.taps = size, R, K
        self.weight = weight
        self.rel = start.unsqueeze(-1) + torch.arange(K, device=start.device)
        self.t_rows = self.t_weight = self.t_offsets = None

    def _build_adjoint(self) -> None:
        N, R, K = self.weight.shape
        size = self.size
        dev = self.rel.device
        start = self.rel[..., 0]
        # Starts are non-decreasing along R (increasing grid; floor and clamp keep the order), so
        # the rows covering position p form the range [lo, hi): lo = #{r: start_r + K-1 < p},
        # hi = #{r: start_r <= p}. Entries of malformed (NaN) grids get weight 0 below.
        pos = torch.arange(size, device=dev).expand(N, size).contiguous()
        lo = torch.searchsorted(start + (K - 1), pos, side="left").reshape(-1)
        hi = torch.searchsorted(start.contiguous(), pos, side="right").reshape(-1)
        counts = (hi - lo).clamp_min(0)
        offsets = torch.cumsum(counts, 0) - counts
        bag = torch.repeat_interleave(torch.arange(N * size, device=dev), counts)  # bag of each entry
        r = (lo[bag] + torch.arange(bag.numel(), device=dev) - offsets[bag]).clamp_(0, R - 1)
        row = torch.div(bag, size, rounding_mode="floor") * R + r  # output row (n, r) of each entry
        tap = bag % size - start.reshape(-1)[row]
        ok = (tap >= 0) & (tap < K)
        self.t_rows = row
        self.t_weight = self.weight.reshape(-1)[row * K + tap.clamp(0, K - 1)] * ok
        self.t_offsets = torch.cat([offsets, counts.sum().view(1)]).tolist()

    def index(self, n0: int, n1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows read (into a `[(n1-n0)·size, D]` table) and weights for output frames n0..n1."""
        off = (torch.arange(n1 - n0, device=self.rel.device) * self.size).view(-1, 1, 1)
        return (self.rel[n0:n1] + off).view(-1, self.taps), self.weight[n0:n1].reshape(-1, self.taps)

    def adjoint(self, n0: int, n1: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Adjoint bags for input positions of frames n0..n1: rows (into a `[(n1-n0)·R, D]`
        gradient), per-bag offsets and weights, for `embedding_bag` with offsets."""
        if self.t_rows is None:
            self._build_adjoint()
        offs = self.t_offsets
        e0, e1 = offs[n0 * self.size], offs[n1 * self.size]
        bag_offsets = torch.tensor(offs[n0 * self.size:n1 * self.size], device=self.rel.device) - e0
        return self.t_rows[e0:e1] - n0 * self.rows, bag_offsets, self.t_weight[e0:e1]


def _combine(index: torch.Tensor, weight: torch.Tensor, table: torch.Tensor,
             offsets: torch.Tensor | None = None) -> torch.Tensor:
    """`out[r] = Σ_m weight[r, m] · table[index[r, m]]`: one banded contraction over table rows.

    With `offsets`, `index` and `weight` are flat and bag r is `offsets[r]:offsets[r+1]`.
    """
    return F.embedding_bag(index, table, offsets=offsets, per_sample_weights=weight, mode="sum")


def _tap_grad(grad: torch.Tensor, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`g[r, m] = <grad[r], table[index[r, m]]>`: gradient of `_combine` w.r.t. its weights.

    This is embedding_bag's native per-sample-weight gradient (a dot product per tap).
    """
    bags, K = index.shape
    offsets = torch.arange(0, bags * K, K, device=index.device)
    offset2bag = torch.arange(bags, device=index.device).repeat_interleave(K)
    g = torch.ops.aten._embedding_bag_per_sample_weights_backward(
        grad, table, index.reshape(-1), offsets, offset2bag, 0, -1)
    return g.view(bags, K)


def _video_chunks(frames: torch.Tensor, out_frames: int, out_size: int) -> list[tuple[int, int]]:
    """Split the batch into runs of videos whose per-channel intermediates fit `UNIT_BYTES`."""
    B, T, _, H, W = frames.shape
    converted = frames.dtype not in (torch.float32, torch.float64)  # needs a float copy of the clip
    per_video = 4 * max(out_frames * H * W, T * H * W if converted else 0, out_frames * out_size * max(H, W))
    step = max(1, min(B, UNIT_BYTES // max(per_video, 1)))
    return [(b, min(b + step, B)) for b in range(0, B, step)]


class _Sampler:
    """Shared state of one call: inputs, bands and per-unit helpers used by forward and backward.

    `fold_affine` (the forward of a uint8 clip): the temporal GEMM returns normalised frames, its
    filterbank per channel c being `[scale_c·F_t | shift_c·ΣF_t]` against the converted values and
    a constant row of ones (the buffer's last row, written once).
    """

    def __init__(self, frames, ft, by: _Bands, bx: _Bands, scale, shift, layout: str, dtype,
                 fold_affine: bool = False):
        self.frames, self.ft, self.by, self.bx = frames, ft, by, bx
        self.scale, self.shift, self.layout, self.dtype = scale, shift, layout, dtype
        B, T, C, H, W = frames.shape
        self.shape = (B, T, C, H, W)
        self.T_d, self.S = ft.shape[1], by.rows
        self.fold = fold_affine and scale is not None
        self.chunks = _video_chunks(frames, self.T_d, self.S)
        step = self.chunks[0][1] - self.chunks[0][0]
        dev = frames.device
        # Scratch reused by every unit: the converted frames (when not read in place) and the
        # temporally reduced frames.
        self.xbuf = None
        if frames.dtype != dtype:
            self.xbuf = torch.empty(step, T + int(self.fold), H * W, dtype=dtype, device=dev)
        if self.fold:
            self.xbuf[:, T] = 1.0
            rt = ft.sum(-1, keepdim=True)
            # Scaling can push tail weights below the normal range again (subnormal operands slow
            # the GEMM many times over): flush them once more.
            self.ft_affine = [flush_subnormal(torch.cat([ft * scale[c], rt * shift[c]], -1)) for c in range(C)]
        self.xt = torch.empty(step, self.T_d, H * W, dtype=dtype, device=dev)

    def clip(self, b0: int, b1: int, c: int) -> torch.Tensor:
        """Channel c of videos b0..b1 as a `[b, T, H*W]` GEMM operand (in place when possible;
        with the folded affine, the converted values followed by the row of ones)."""
        B, T, C, H, W = self.shape
        xc = self.frames[b0:b1, :, c]
        if self.xbuf is None:
            return xc.reshape(b1 - b0, T, H * W)
        buf = self.xbuf[: b1 - b0]
        buf[:, :T].view(b1 - b0, T, H, W).copy_(xc)
        return buf

    def reduce(self, b0: int, b1: int, c: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Temporal then height contraction of a unit.

        Returns the clip operand `[b, T, H*W]` (`[b, T+1, H*W]` with the folded affine), `xt`
        `[n·H, W]` and `y` `[n·S, W]`.
        """
        W = self.shape[-1]
        x = self.clip(b0, b1, c)
        ft = self.ft_affine[c][b0:b1] if self.fold else self.ft[b0:b1]
        xt = torch.bmm(ft, x, out=self.xt[: b1 - b0]).view(-1, W)
        iy, wy = self.by.index(b0 * self.T_d, b1 * self.T_d)
        return x, xt, _combine(iy, wy, xt)

    def out_view(self, out: torch.Tensor, b0: int, b1: int, c: int) -> torch.Tensor:
        """The `[b, T_d, S_i, S_k]` block of `out` (either layout) holding videos b0..b1, channel c."""
        return out[b0:b1, :, c] if self.layout == "btchw" else out[b0:b1, c]


def banded_forward(ft: torch.Tensor, wy: torch.Tensor, wx: torch.Tensor, frames: torch.Tensor,
                   sy: torch.Tensor, sx: torch.Tensor, scale: torch.Tensor | None, shift: torch.Tensor | None,
                   layout: str) -> torch.Tensor:
    """V̂ from `F_t` `[B, T_d, T]`, band weights `[N, S, K]` and starts `[N, S]`, in `layout`,
    with the uint8 normalisation `(scale, shift)`, when given, folded into the temporal GEMM.

    Not differentiable by itself: it runs inside the custom op `s2d::banded_sample`, whose
    registered backward is `banded_backward` (see `banded_op.py`).
    """
    dtype = ft.dtype
    B, T, C, H, W = frames.shape
    T_d, S = ft.shape[1], sy.shape[1]
    st = _Sampler(frames, ft, _Bands(sy, wy, H), _Bands(sx, wx, W), scale, shift, layout, dtype, fold_affine=True)
    out = torch.empty(volume_shape(B, T_d, C, S, layout), dtype=dtype, device=frames.device)
    for b0, b1 in st.chunks:
        n0, n1 = b0 * T_d, b1 * T_d
        ix, wxs = st.bx.index(n0, n1)
        for c in range(C):
            _, _, y = st.reduce(b0, b1, c)
            yt = y.view(-1, S, W).transpose(1, 2).reshape(-1, S)  # width positions as rows
            z = _combine(ix, wxs, yt).view(b1 - b0, T_d, S, S).transpose(-1, -2)  # [b, T_d, S_i, S_k]
            st.out_view(out, b0, b1, c).copy_(z)
    return out


def banded_backward(grad: torch.Tensor, ft: torch.Tensor, wy: torch.Tensor, wx: torch.Tensor,
                    frames: torch.Tensor, sy: torch.Tensor, sx: torch.Tensor, scale: torch.Tensor | None,
                    shift: torch.Tensor | None, layout: str, need_x: bool):
    """Gradients of `banded_forward` w.r.t. `F_t`, the band weights and (if `need_x`) the frames.

    Each unit's temporal and height contractions are recomputed; the adjoint bands are applied
    as banded combinations and the tap gradients taken as per-tap dot products. Returns
    `(g_ft, g_wy, g_wx, g_frames)`, `g_frames` empty when not asked for.
    """
    dtype = ft.dtype
    B, T, C, H, W = frames.shape
    T_d, S = ft.shape[1], sy.shape[1]
    N = B * T_d
    st = _Sampler(frames, ft, _Bands(sy, wy, H), _Bands(sx, wx, W), scale, shift, layout, dtype)
    g_ft = torch.zeros_like(ft)
    g_wy = torch.zeros_like(wy)
    g_wx = torch.zeros_like(wx)
    g_x = torch.empty(frames.shape if need_x else (0,), dtype=frames.dtype, device=frames.device)
    grad = grad.to(dtype)
    g_mass = torch.zeros(B, T_d, S, S, dtype=dtype, device=grad.device) if scale is not None else None
    for b0, b1 in st.chunks:
        n0, n1 = b0 * T_d, b1 * T_d
        ix, _ = st.bx.index(n0, n1)
        tix, tox, twx = st.bx.adjoint(n0, n1)
        iy, _ = st.by.index(n0, n1)
        tiy, toy, twy = st.by.adjoint(n0, n1)
        for c in range(C):
            gz = st.out_view(grad, b0, b1, c)  # [b, T_d, S_i, S_k]
            if scale is not None:
                g_mass[b0:b1].add_(gz, alpha=float(shift[c]))
                gz = gz * scale[c]
            gz = gz.transpose(-1, -2).reshape(-1, S)  # rows (n, k), as the width step wrote them
            x, xt, y = st.reduce(b0, b1, c)
            yt = y.view(-1, S, W).transpose(1, 2).reshape(-1, S)
            g_wx[n0:n1] += _tap_grad(gz, yt, ix).view(n1 - n0, S, -1)
            g_y = _combine(tix, twx, gz, tox).view(-1, W, S).transpose(1, 2).reshape(-1, W)
            g_wy[n0:n1] += _tap_grad(g_y, xt, iy).view(n1 - n0, S, -1)
            g_xt = _combine(tiy, twy, g_y, toy).view(b1 - b0, T_d, H * W)
            g_ft[b0:b1] += torch.bmm(x, g_xt.transpose(1, 2)).transpose(1, 2)  # X·G_xtᵀ: the fast layout
            if need_x:
                g_x[b0:b1, :, c] = torch.bmm(ft[b0:b1].transpose(1, 2), g_xt).view(b1 - b0, T, H, W)
    if g_mass is not None:
        _mass_backward(ft, wy, wx, g_mass.view(N, S, S), g_ft, g_wy, g_wx)
    return g_ft, g_wy, g_wx, g_x


def _mass_backward(ft, wy, wx, g_mass, g_ft, g_wy, g_wx) -> None:
    """Add the gradient of the mass `Σ_t F_t · Σ F_y · Σ F_x` `[N, S, S]` (the response to a
    constant clip, 1 unless a row was clamped, which carries the mean/std shift of uint8 input),
    given `g_mass`, to the input gradients in place."""
    rt, ry, rx = ft.sum(-1).view(-1), wy.sum(-1), wx.sum(-1)
    g_rt = torch.einsum("nik,ni,nk->n", g_mass, ry, rx)
    g_ry = rt.view(-1, 1) * torch.einsum("nik,nk->ni", g_mass, rx)
    g_rx = rt.view(-1, 1) * torch.einsum("nik,ni->nk", g_mass, ry)
    g_ft += g_rt.view(ft.shape[:2]).unsqueeze(-1)
    g_wy += g_ry.unsqueeze(-1)
    g_wx += g_rx.unsqueeze(-1)
