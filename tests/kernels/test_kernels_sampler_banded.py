"""The banded pure-torch sampler (backend="torch") against the dense reference, forward and backward."""
import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import s2d_kernels.sampler.banded as banded
import s2d_kernels.sampler.banded_op as banded_op
from s2d_kernels.sampler import RawSampling, filterbank_sample, filterbank_sample_dense, normalize_frames
from s2d_kernels.sampler.banded_op import filterbank_sample_banded
from s2d_kernels.sampler.bands import BAND_TAPS, LINEAR_TAPS, band_rows, filter_band, spatial_bands, temporal_band
from s2d_kernels.testing import assert_close_scaled, make_case

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# (batch, T, H, W, T_d, S, spread, lengths): minimal, odd, non-power-of-two, reduced paper-sized,
# bands off the frame (large spread), T < T_d, 1-frame videos, mixed valid lengths, frames
# narrower than the 13-tap band.
CASES = {
    "minimal": (1, 1, 1, 1, 2, 2, 1.0, None),
    "odd": (3, 7, 13, 11, 3, 5, 1.0, [7, 4, 1]),
    "non_pow2": (2, 10, 30, 22, 6, 9, 1.0, [10, 6]),
    "paper_reduced": (2, 16, 56, 56, 6, 36, 1.0, [16, 11]),
    "off_frame": (2, 9, 20, 26, 4, 7, 4.0, [9, 5]),
    "T_below_Td": (2, 3, 17, 19, 8, 6, 1.0, [3, 2]),
    "one_frame_videos": (3, 5, 16, 14, 4, 5, 1.5, [1, 1, 5]),
    "narrow": (2, 6, 5, 9, 3, 4, 2.0, [6, 3]),
    "wide_upsample": (1, 4, 24, 40, 3, 64, 0.5, None),
}


def _dense(case, frames=None, raw=None, temporal="gaussian", layout="btchw"):
    x = case.frames if frames is None else frames
    if x.dtype == torch.uint8:
        x = normalize_frames(x, MEAN, STD)
    p = case.params if raw is None else RawSampling(*raw)
    out = filterbank_sample_dense(x.float() if x.dtype != torch.float32 and x.dtype != torch.float64 else x,
                                  case.num_frames, p, case.out_size, temporal)
    return out.transpose(1, 2) if layout == "bcthw" else out


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("temporal", ["gaussian", "linear"])
@pytest.mark.parametrize("layout", ["btchw", "bcthw"])
def test_forward_matches_dense(name, temporal, layout):
    B, T, H, W, Td, S, spread, lengths = CASES[name]
    case = make_case(B, T, H, W, Td, S, spread=spread, lengths=lengths, seed=len(name))
    out = filterbank_sample_banded(case.frames, case.num_frames, case.params, S, temporal=temporal, layout=layout)
    assert out.shape == ((B, Td, 3, S, S) if layout == "btchw" else (B, 3, Td, S, S)) and out.is_contiguous()
    assert_close_scaled(out, _dense(case, temporal=temporal, layout=layout), 1e-5, name)


@pytest.mark.parametrize("name", ["odd", "off_frame", "one_frame_videos", "paper_reduced"])
@pytest.mark.parametrize("layout", ["btchw", "bcthw"])
def test_uint8_fused_normalisation(name, layout):
    B, T, H, W, Td, S, spread, lengths = CASES[name]
    case = make_case(B, T, H, W, Td, S, spread=spread, lengths=lengths, dtype=torch.uint8, seed=3)
    out = filterbank_sample_banded(case.frames, case.num_frames, case.params, S, mean=MEAN, std=STD, layout=layout)
    assert_close_scaled(out, _dense(case, layout=layout), 1e-5, name)
    with pytest.raises(ValueError, match="mean and std"):
        filterbank_sample_banded(case.frames, case.num_frames, case.params, S)


@pytest.mark.parametrize("unit_videos", [1, 2, 3])
def test_uint8_folded_normalisation_per_unit(monkeypatch, unit_videos):
    """The uint8 forward folds mean/std into the temporal GEMM of every work unit (one or several
    videos, an uneven last unit, non-contiguous frames): same result as the reference."""
    B, T, H, W, Td, S = 3, 7, 13, 11, 3, 5
    case = make_case(B, T, H, W, Td, S, lengths=[7, 4, 1], spread=1.5, dtype=torch.uint8, seed=4)
    monkeypatch.setattr(banded, "UNIT_BYTES", unit_videos * 4 * T * H * W)  # the float copy of `unit_videos` clips
    assert banded._video_chunks(case.frames, Td, S)[0] == (0, unit_videos)
    frames = case.frames.permute(0, 1, 2, 4, 3).contiguous().permute(0, 1, 2, 4, 3)  # W not innermost
    for x in (case.frames, frames):
        for layout in ("btchw", "bcthw"):
            out = filterbank_sample_banded(x, case.num_frames, case.params, S, mean=MEAN, std=STD, layout=layout)
            assert_close_scaled(out, _dense(case, layout=layout), 1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_inputs_are_read_as_stored(dtype):
    case = make_case(2, 6, 15, 17, 3, 6, dtype=dtype, lengths=[6, 2])
    out = filterbank_sample_banded(case.frames, case.num_frames, case.params, 6)
    assert out.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    ref = filterbank_sample_dense(case.frames.float(), case.num_frames, case.params, 6)
    assert_close_scaled(out, ref, 1e-5)


def _grads(fn, case, raw, frames, grad_out, **kw):
    out = fn(frames, case.num_frames, RawSampling(*raw), case.out_size, **kw)
    inputs = raw + ([frames] if frames.requires_grad else [])
    return torch.autograd.grad(out, inputs, grad_out, allow_unused=True)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("temporal", ["gaussian", "linear"])
def test_backward_matches_autograd_through_dense(name, temporal):
    B, T, H, W, Td, S, spread, lengths = CASES[name]
    case = make_case(B, T, H, W, Td, S, spread=spread, lengths=lengths, seed=7)
    g = torch.Generator().manual_seed(1)
    grad_out = torch.randn(B, Td, 3, S, S, generator=g)
    frames = case.frames.clone().requires_grad_()
    want = _grads(lambda *a: filterbank_sample_dense(*a, temporal=temporal), case, case.raw(True), frames, grad_out)
    got = _grads(lambda *a: filterbank_sample_banded(*a, temporal=temporal), case, case.raw(True),
                 frames, grad_out)
    names = ["dt", "delta_t", "dx", "dy", "delta_x", "delta_y", "frames"]
    for n_, a, b in zip(names, got, want):
        if b is None:  # e.g. linear temporal filter: no gradient path for a quantity the dense path ignores
            assert a is None or float(a.abs().max()) == 0.0
            continue
        assert_close_scaled(a, b, 1e-5, f"{name}: grad {n_}", atol=1e-6)


@pytest.mark.parametrize("layout", ["btchw", "bcthw"])
def test_backward_uint8_and_layouts(layout):
    case = make_case(2, 8, 19, 23, 4, 7, dtype=torch.uint8, spread=2.0, lengths=[8, 3], seed=5)
    shape = (2, 4, 3, 7, 7) if layout == "btchw" else (2, 3, 4, 7, 7)
    grad_out = torch.randn(shape)
    got = _grads(lambda *a: filterbank_sample_banded(*a, mean=MEAN, std=STD, layout=layout), case,
                 case.raw(True), case.frames, grad_out)
    norm = normalize_frames(case.frames, MEAN, STD)

    def dense(x, n, p, S):
        out = filterbank_sample_dense(x, n, p, S)
        return out.transpose(1, 2) if layout == "bcthw" else out
    want = _grads(dense, case, case.raw(True), norm, grad_out)
    for a, b in zip(got, want):
        assert_close_scaled(a, b, 1e-5, atol=1e-6)


def test_gradcheck_float64():
    """Exact derivative check of the hand-written backward (tiny shapes, float64 throughout)."""
    case = make_case(2, 4, 6, 7, 2, 2, dtype=torch.float64, lengths=[4, 2], spread=1.5)
    frames = case.frames.clone().requires_grad_()
    raw = case.raw(True, torch.float64)

    def f(x, *p):
        return filterbank_sample_banded(x, case.num_frames, RawSampling(*p), 2, layout="bcthw")
    assert torch.autograd.gradcheck(lambda *p: f(case.frames, *p), tuple(raw))
    assert torch.autograd.gradcheck(f, (frames, *raw), fast_mode=True)


def test_gradcheck_float64_bands_inside_wide_frames():
    """Frames wider than the band, so the adjoint band structure is exercised by gradcheck."""
    case = make_case(1, 3, 18, 21, 2, 3, dtype=torch.float64, spread=0.7)
    raw = case.raw(True, torch.float64)
    assert torch.autograd.gradcheck(
        lambda *p: filterbank_sample_banded(case.frames, case.num_frames, RawSampling(*p), 3), tuple(raw))


def test_work_units_split_the_batch(monkeypatch):
    """Several videos per unit and an uneven last unit give the same result as one unit."""
    case = make_case(5, 6, 20, 18, 3, 5, lengths=[6, 2, 5, 1, 4])
    grad_out = torch.randn(5, 3, 3, 5, 5)
    whole = _grads(filterbank_sample_banded, case, case.raw(True), case.frames.clone().requires_grad_(), grad_out)
    monkeypatch.setattr(banded, "UNIT_BYTES", 2 * 4 * 3 * 20 * 18)  # two videos' [T_d, H, W] per unit
    assert banded._video_chunks(case.frames, 3, 5) == [(0, 2), (2, 4), (4, 5)]
    split = _grads(filterbank_sample_banded, case, case.raw(True), case.frames.clone().requires_grad_(), grad_out)
    for a, b in zip(split, whole):
        assert_close_scaled(a, b, 1e-6)


def _zoomed_case(dtype=torch.float32):
    """Small windows (stride 0.3 of the full-frame one) near opposite corners of a 48×44 frame,
    and a third in the middle: the videos read disjoint boxes, so each is sampled on its own."""
    case = make_case(3, 6, 48, 44, 3, 5, lengths=[6, 4, 6], dtype=dtype, seed=3)
    p = case.params
    corner = torch.tensor([[-0.7, -0.6, -0.7], [0.7, 0.6, 0.7], [0.0, 0.1, -0.1]], dtype=p.dx.dtype)
    case.params = RawSampling(p.dt, p.delta_t, corner, corner.flip(0), torch.full_like(p.dx, -1.2),
                              torch.full_like(p.dy, -1.2))
    return case


def test_crop_plan_boxes_hold_every_band():
    """Each planned box holds every row/column the bands of its videos read, and no more."""
    case = _zoomed_case()
    sy, wy, sx, wx = spatial_bands(case.params, 48, 44, 5)
    plan = banded_op.crop_plan(sy, sx, wy.shape[-1], wx.shape[-1], 3)
    assert [(b0, b1) for b0, b1, _ in plan] == [(0, 1), (1, 2), (2, 3)]  # disjoint windows
    for b0, b1, (y0, y1, x0, x1) in plan:
        rows, cols = sy.view(3, -1)[b0:b1], sx.view(3, -1)[b0:b1]
        assert (y0, x0) == (int(rows.min()), int(cols.min()))
        assert (y1, x1) == (int(rows.max()) + wy.shape[-1], int(cols.max()) + wx.shape[-1])
        assert (y1 - y0) * (x1 - x0) < 48 * 44 / 2
    # Windows that overlap (the same centres for every video) share one box.
    same = RawSampling(*(t[:1].expand_as(t).contiguous() for t in case.params.as_tuple()))
    sy, wy, sx, wx = spatial_bands(same, 48, 44, 5)
    assert len(banded_op.crop_plan(sy, sx, wy.shape[-1], wx.shape[-1], 3)) == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_cropped_sampling_matches_dense(dtype):
    """Per-video crops leave V̂ and every gradient (raw parameters, float frames) unchanged, and
    the FLOP count follows the boxes read."""
    case = _zoomed_case(dtype)
    grad_out = torch.randn(3, 3, 3, 5, 5, generator=torch.Generator().manual_seed(2))
    kw = {"mean": MEAN, "std": STD} if dtype == torch.uint8 else {}
    frames = case.frames if dtype == torch.uint8 else case.frames.clone().requires_grad_()
    dense_in = normalize_frames(case.frames, MEAN, STD) if dtype == torch.uint8 else frames
    got = _grads(lambda *a: filterbank_sample_banded(*a, **kw), case, case.raw(True), frames, grad_out)
    want = _grads(filterbank_sample_dense, case, case.raw(True), dense_in, grad_out)
    for n_, a, b in zip(["dt", "delta_t", "dx", "dy", "delta_x", "delta_y", "frames"], got, want):
        assert_close_scaled(a, b, 1e-5, f"grad {n_}", atol=1e-6)
    assert_close_scaled(filterbank_sample_banded(case.frames, case.num_frames, case.params, 5, **kw),
                        _dense(case), 1e-5)
    with FlopCounterMode(display=False) as counter:
        filterbank_sample_banded(case.frames, case.num_frames, case.params, 5, **kw)
    whole = 2 * banded_op._banded_macs((3, 3, 6), (9, 5, 13), (3, 6, 3, 48, 44))
    assert 0 < counter.get_total_flops() < whole / 2


def test_non_contiguous_frames():
    case = make_case(2, 5, 12, 14, 3, 5)
    frames = case.frames.permute(0, 1, 2, 4, 3).contiguous().permute(0, 1, 2, 4, 3)  # W not innermost
    assert not frames.is_contiguous()
    out = filterbank_sample_banded(frames, case.num_frames, case.params, 5)
    assert_close_scaled(out, filterbank_sample_dense(case.frames, case.num_frames, case.params, 5), 1e-5)


@pytest.mark.parametrize("size", [1, 5, 13, 40])
def test_band_rows_equal_dense_rows(size):
    """Band weights equal the dense row on the band (incl. the clamp of fading rows), ~0 elsewhere."""
    grid = torch.cat([torch.linspace(-12, size + 12, 301), torch.tensor([-0.5, 6.0, size - 7.0, size + 5.7])])
    dense = filter_band(grid, size)[1]
    start, w = band_rows(grid, size)
    K = w.shape[-1]
    assert K == min(13, size) and int(start.min()) >= 0 and int(start.max()) <= size - K
    scattered = torch.zeros_like(dense).scatter_(1, start[:, None] + torch.arange(K), w)
    assert float((scattered - dense).abs().max()) < 1e-6
    # Every position within 6σ of its centre lies in its band.
    pos = torch.arange(size).float()
    near = (pos[None] - grid[:, None]).abs() <= 6
    inside = (pos[None] >= start[:, None]) & (pos[None] < start[:, None] + K)
    assert bool((inside | ~near).all())


@pytest.mark.parametrize("temporal,taps", [("gaussian", BAND_TAPS), ("linear", LINEAR_TAPS)])
def test_temporal_band_equals_dense_rows(temporal, taps):
    """The band builder clamps temporal bands into each video's valid frames: scattered onto the
    axis, the banded rows equal the dense rows of the reference (valid frames only)."""
    T, T_d = 20, 6
    n = torch.tensor([20, 9, 3, 1])
    g = torch.Generator().manual_seed(0)
    p = RawSampling(torch.randn(4, generator=g) * 2, torch.randn(4, generator=g), *torch.zeros(4, 4, T_d))
    _, dense = temporal_band(n, p, T, temporal)
    start, w = temporal_band(n, p, T, temporal, taps)
    assert dense.shape == (4, T_d, T) and w.shape == (4, T_d, taps)
    assert bool((start + taps <= torch.maximum(n, torch.tensor(taps)).view(-1, 1)).all())
    scattered = torch.zeros_like(dense).scatter_(2, start.long().unsqueeze(-1) + torch.arange(taps), w)
    assert float((scattered - dense).abs().max()) < 1e-6
    assert float(dense[n.view(-1, 1, 1) <= torch.arange(T).view(1, 1, -1).expand(4, T_d, T)].abs().max()) == 0.0


def test_non_finite_grid_matches_dense():
    case = make_case(1, 4, 10, 10, 2, 3)
    raw = case.raw()
    raw[4] = torch.tensor([[200.0, 0.0]])  # exp overflows: an infinite stride
    raw[2] = torch.tensor([[0.0, math.nan]])
    p = RawSampling(*raw)
    out = filterbank_sample_banded(case.frames, case.num_frames, p, 3)
    ref = filterbank_sample_dense(case.frames, case.num_frames, p, 3)
    assert torch.equal(torch.isnan(out), torch.isnan(ref))
    assert_close_scaled(out, ref, 1e-5)


def test_public_dispatch(monkeypatch):
    case = make_case(2, 6, 12, 12, 3, 5, dtype=torch.uint8)
    kw = dict(mean=MEAN, std=STD)
    ref = filterbank_sample(case.frames, case.num_frames, case.params, 5, backend="reference", **kw)
    calls = []
    real = banded_op.filterbank_sample_banded
    monkeypatch.setattr("s2d_kernels.sampler.banded_op.filterbank_sample_banded",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    for backend in ("torch", "auto"):
        out = filterbank_sample(case.frames, case.num_frames, case.params, 5, backend=backend, **kw)
        assert_close_scaled(out, ref, 1e-5)
    assert len(calls) == 2
    monkeypatch.setenv("S2D_BACKEND", "reference")
    filterbank_sample(case.frames, case.num_frames, case.params, 5, backend="auto", **kw)
    assert len(calls) == 2
    monkeypatch.setenv("S2D_BACKEND", "triton")  # a preference: CPU tensors fall back to torch
    filterbank_sample(case.frames, case.num_frames, case.params, 5, backend="auto", **kw)
    assert len(calls) == 3


def test_input_validation():
    case = make_case(2, 4, 8, 8, 3, 4)
    with pytest.raises(ValueError, match="layout"):
        filterbank_sample_banded(case.frames, case.num_frames, case.params, 4, layout="bthwc")
    with pytest.raises(TypeError, match="uint8 or floating"):
        filterbank_sample_banded(case.frames.to(torch.int32), case.num_frames, case.params, 4)
    with pytest.raises(ValueError, match="num_frames"):
        filterbank_sample_banded(case.frames, torch.tensor([0, 4]), case.params, 4)
    with pytest.raises(ValueError, match="temporal"):
        filterbank_sample_banded(case.frames, case.num_frames, case.params, 4, temporal="box")
