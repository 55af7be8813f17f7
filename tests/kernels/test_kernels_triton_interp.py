"""Triton kernels under the CPU interpreter against the torch reference, forward and backward.

These tests need `TRITON_INTERPRET=1` in the environment before Triton is imported, so they skip in
an ordinary pytest process; `tests/kernels/test_kernels_triton.py` runs this file in a subprocess with the
variable set (and fails if anything here fails or skips), so the default `pytest` run covers it:

    TRITON_INTERPRET=1 python -m pytest tests/kernels/test_kernels_triton_interp.py
"""
import os

import pytest
import torch

pytestmark = pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1",
                                reason="needs TRITON_INTERPRET=1 set before triton is imported "
                                       "(run by tests/kernels/test_kernels_triton.py in a subprocess)")

from s2d_kernels.sampler import RawSampling, filterbank_sample, filterbank_sample_dense, normalize_frames  # noqa: E402
from s2d_kernels.testing import assert_close_scaled, make_case  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# (batch, T, H, W, T_d, S, spread, lengths). Kept small: every Triton op is a numpy call here.
CASES = {
    "minimal": (1, 1, 1, 1, 2, 2, 1.0, None),
    "odd": (3, 5, 13, 11, 3, 5, 1.0, [5, 4, 1]),
    "multi_tile": (1, 3, 35, 37, 2, 17, 1.0, None),  # S > 16 and H, W > 32: several tiles and chunks
    "off_frame": (2, 5, 14, 18, 2, 6, 4.0, [5, 3]),
    "T_below_Td": (2, 2, 9, 10, 5, 4, 1.0, [2, 1]),
    "one_frame_videos": (2, 4, 8, 9, 3, 4, 1.5, [1, 4]),
    "narrow": (2, 4, 5, 7, 2, 3, 2.0, [4, 2]),
}
SLOW_CASES = {
    "paper_reduced": (1, 16, 40, 40, 2, 24, 1.0, None),
    "non_pow2_multi_tile": (2, 6, 37, 45, 2, 19, 1.0, [6, 4]),
}


def _dense(case, frames, raw, temporal="gaussian", layout="btchw", sigma=1.0):
    x = normalize_frames(frames, MEAN, STD) if frames.dtype == torch.uint8 else frames.float()
    out = filterbank_sample_dense(x, case.num_frames, RawSampling(*raw), case.out_size, temporal, sigma)
    return out.transpose(1, 2) if layout == "bcthw" else out


def _triton(case, frames, raw, temporal="gaussian", layout="btchw", sigma=1.0):
    return filterbank_sample(frames, case.num_frames, RawSampling(*raw), case.out_size, mean=MEAN, std=STD,
                             temporal=temporal, layout=layout, backend="triton", sigma=sigma)


def _check(case, temporal="gaussian", layout="btchw", frames_grad=True, sigma=1.0):
    frames_t = case.frames.clone().requires_grad_(frames_grad and case.frames.is_floating_point())
    frames_r = case.frames.clone().requires_grad_(frames_t.requires_grad)
    raw_t, raw_r = case.raw(True), case.raw(True)
    out = _triton(case, frames_t, raw_t, temporal, layout, sigma)
    ref = _dense(case, frames_r, raw_r, temporal, layout, sigma)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert_close_scaled(out, ref, 1e-5, "forward")
    grad_out = torch.randn(ref.shape, generator=torch.Generator().manual_seed(3))
    inputs_t = raw_t + ([frames_t] if frames_t.requires_grad else [])
    inputs_r = raw_r + ([frames_r] if frames_r.requires_grad else [])
    got = torch.autograd.grad(out, inputs_t, grad_out, allow_unused=True)
    want = torch.autograd.grad(ref, inputs_r, grad_out, allow_unused=True)
    for name, a, b in zip(["dt", "delta_t", "dx", "dy", "delta_x", "delta_y", "frames"], got, want):
        if b is None:
            assert a is None or float(a.abs().max()) == 0.0
            continue
        assert_close_scaled(a, b.to(a.dtype), 1e-5 if a.dtype == torch.float32 else 1e-2, f"grad {name}",
                            atol=1e-6)


@pytest.mark.parametrize("name", list(CASES) + [pytest.param(k, marks=pytest.mark.slow) for k in SLOW_CASES])
def test_sampler_matches_reference(name):
    B, T, H, W, Td, S, spread, lengths = {**CASES, **SLOW_CASES}[name]
    _check(make_case(B, T, H, W, Td, S, spread=spread, lengths=lengths, seed=len(name)))


@pytest.mark.parametrize("layout", ["bcthw", pytest.param("btchw", marks=pytest.mark.slow)])
def test_sampler_uint8_fused_normalisation(layout):
    _check(make_case(2, 6, 21, 17, 3, 7, dtype=torch.uint8, spread=1.5, lengths=[6, 2]), layout=layout)


@pytest.mark.parametrize("name", ["T_below_Td", pytest.param("odd", marks=pytest.mark.slow),
                                  pytest.param("one_frame_videos", marks=pytest.mark.slow)])
def test_sampler_linear_temporal(name):
    B, T, H, W, Td, S, spread, lengths = CASES[name]
    _check(make_case(B, T, H, W, Td, S, spread=spread, lengths=lengths, seed=11), temporal="linear")


def test_sampler_linear_integer_centres_keep_the_subgradient():
    """Integer temporal centres: zero-weight neighbours still carry the dense path's subgradient."""
    case = make_case(2, 7, 9, 9, 4, 4, lengths=[7, 4])
    case.params = RawSampling.fixed(2, 4)  # centre (n-1)/2, stride n/(T_d-1): integer grid points
    _check(case, temporal="linear")


def test_sampler_narrow_spatial_filter():
    """`sigma` < 1 (the sampler option): the kernels read the same band weights as the torch path."""
    _check(make_case(2, 6, 21, 17, 3, 7, dtype=torch.uint8, spread=1.0, lengths=[6, 4]), layout="bcthw", sigma=0.5)


@pytest.mark.parametrize("dtype", [torch.float16, pytest.param(torch.bfloat16, marks=pytest.mark.slow)])
def test_sampler_16_bit_frames(dtype):
    case = make_case(2, 5, 16, 18, 3, 6, dtype=dtype, lengths=[5, 3])
    _check(case, layout="bcthw", frames_grad=False)


def test_sampler_non_contiguous_frames_with_grad():
    case = make_case(2, 4, 12, 10, 2, 5, lengths=[4, 3])
    case.frames = case.frames.transpose(3, 4).contiguous().transpose(3, 4)
    _check(case)


@pytest.mark.parametrize("layout,shape", [("bcthw", (2, 19, 3, 5, 7)), ("btchw", (6, 37, 3, 11))])
@pytest.mark.parametrize("c_out", [17, 40])
def test_fusion_matches_reference(layout, shape, c_out):
    from s2d_kernels.fusion import context_fusion

    g = torch.Generator().manual_seed(0)
    C = shape[1]
    x = torch.randn(shape, generator=g).requires_grad_()
    m = torch.randn(2, 9, generator=g).requires_grad_()
    w = (torch.randn(c_out, C + 9, 1, 1, 1, generator=g) / 4).requires_grad_()
    if c_out != C:  # the op maps C → C channels in the model; the kernel handles any C_out
        from s2d_kernels.fusion import context_bias
        from s2d_kernels.fusion.triton_op import context_fusion_triton
        y = context_fusion_triton(x, w[:, :C, 0, 0, 0], context_bias(m, w), layout=layout)
        if layout == "bcthw":
            ref = torch.relu(torch.einsum("oc,bcthw->bothw", w[:, :C, 0, 0, 0], x)
                             + context_bias(m, w)[:, :, None, None, None])
        else:
            xb = x.view(2, 3, C, *shape[2:])
            ref = torch.relu(torch.einsum("oc,btchw->btohw", w[:, :C, 0, 0, 0], xb)
                             + context_bias(m, w)[:, None, :, None, None]).reshape(6, c_out, *shape[2:])
    else:
        y = context_fusion(x, m, w, layout=layout, backend="triton")
        ref = context_fusion(x, m, w, layout=layout, backend="reference")
    assert_close_scaled(y, ref, 1e-5, "forward")
    grad = torch.randn(ref.shape, generator=g)
    for a, b in zip(torch.autograd.grad(y, (x, m, w), grad), torch.autograd.grad(ref, (x, m, w), grad)):
        assert_close_scaled(a, b, 1e-5, "backward")


def test_fusion_bfloat16():
    from s2d_kernels.fusion import context_fusion

    x = torch.randn(2, 32, 2, 3, 3).bfloat16()
    m = torch.randn(2, 8)
    w = torch.randn(32, 40, 1, 1, 1) / 6
    y = context_fusion(x, m, w.bfloat16(), layout="bcthw", backend="triton")
    ref = context_fusion(x.float(), m, w.bfloat16().float(), layout="bcthw", backend="reference")
    assert y.dtype == torch.bfloat16
    assert_close_scaled(y.float(), ref, 2e-2)


def _fuzz(examples: int):
    from hypothesis import HealthCheck, given, settings

    from s2d_kernels.testing import check_sampler_backend, sampler_inputs

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(sampler_inputs(max_side=14, max_frames=5))
    def run(inp):
        check_sampler_backend(inp, "triton")
    run()


def test_fuzz_triton_backend_matches_reference():
    """Random tiny inputs, Triton (interpreted) vs the dense reference, forward and backward."""
    _fuzz(8)


@pytest.mark.slow
def test_fuzz_triton_backend_matches_reference_long():
    _fuzz(150)


def test_triton_ops_opcheck_and_compile_without_graph_breaks():
    """The Triton ops as torch.library custom ops: schema/fake/autograd checks and fullgraph compile."""
    import s2d_kernels.fusion.triton_op  # noqa: F401  (registers s2d::fusion_gemm)

    case = make_case(2, 4, 9, 10, 2, 3, lengths=[4, 2])

    def f(x, n, *p):
        return filterbank_sample(x, n, RawSampling(*p), 3, backend="triton")

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    raw_c, raw_e = case.raw(True), case.raw(True)
    out = compiled(case.frames, case.num_frames, *raw_c)
    ref = f(case.frames, case.num_frames, *raw_e)
    assert_close_scaled(out, ref, 1e-6)
    for a, b in zip(torch.autograd.grad(out.sum(), raw_c), torch.autograd.grad(ref.sum(), raw_e)):
        assert_close_scaled(a, b, 1e-5, atol=1e-6)

    x3, wx, bias = torch.randn(4, 6, 5), torch.randn(7, 6), torch.randn(2, 7)
    torch.library.opcheck(torch.ops.s2d.fusion_gemm.default, (x3.requires_grad_(), wx.requires_grad_(),
                                                            bias.requires_grad_(), 2, False),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))
