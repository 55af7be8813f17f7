"""Custom-op registration: opcheck, torch.compile(fullgraph=True) without graph breaks, FLOP counts."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import s2d_kernels.sampler.banded_op  # noqa: F401  (registers the ops)
from s2d_kernels.fusion import context_fusion
from s2d_kernels.sampler import RawSampling, filterbank_sample
from s2d_kernels.testing import assert_close_scaled, make_case

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _op_inputs(dtype=torch.float32, layout="btchw"):
    from s2d_kernels.sampler.bands import spatial_bands, temporal_band

    case = make_case(2, 5, 11, 13, 3, 4, dtype=dtype, lengths=[5, 3])
    p = RawSampling(*case.raw())
    ft = temporal_band(case.num_frames, p, 5)[1].requires_grad_()
    sy, wy, sx, wx = spatial_bands(p, 11, 13, 4)
    frames = case.frames.requires_grad_(dtype == torch.float32)
    scale = shift = None
    if dtype == torch.uint8:
        scale, shift = torch.tensor([0.02, 0.018, 0.017]), torch.tensor([-2.0, -1.9, -1.8])
    return (ft, wy.detach().requires_grad_(), wx.detach().requires_grad_(), frames, sy, sx, scale, shift, layout)


@pytest.mark.parametrize("dtype,layout", [(torch.float32, "btchw"), (torch.uint8, "bcthw")])
def test_opcheck_banded_sample(dtype, layout):
    torch.library.opcheck(torch.ops.s2d.banded_sample.default, _op_inputs(dtype, layout))


@pytest.mark.parametrize("dtype,layout", [(torch.float32, "btchw"), (torch.uint8, "bcthw")])
def test_compile_fullgraph_has_no_graph_breaks(dtype, layout):
    case = make_case(2, 6, 12, 14, 3, 5, dtype=dtype, lengths=[6, 4])

    def f(x, n, *p):
        return filterbank_sample(x, n, RawSampling(*p), 5, mean=MEAN, std=STD, layout=layout, backend="torch")

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    raw_c, raw_e = case.raw(True), case.raw(True)
    out = compiled(case.frames, case.num_frames, *raw_c)
    ref = f(case.frames, case.num_frames, *raw_e)
    assert_close_scaled(out, ref, 1e-6)
    grad = torch.randn(ref.shape)
    for a, b in zip(torch.autograd.grad(out, raw_c, grad), torch.autograd.grad(ref, raw_e, grad)):
        assert_close_scaled(a, b, 1e-6, atol=1e-7)


def test_compile_fusion_torch_path():
    x, m, w = torch.randn(4, 8, 3, 3), torch.randn(2, 5), torch.randn(8, 13, 1, 1, 1)
    f = torch.compile(lambda *a: context_fusion(*a, layout="btchw", backend="torch"), fullgraph=True,
                      backend="aot_eager")
    assert_close_scaled(f(x, m, w), context_fusion(x, m, w, layout="btchw", backend="reference"), 1e-6)


def test_flop_counter_counts_the_custom_ops():
    B, T, H, W, Td, S = 2, 8, 32, 24, 4, 10
    case = make_case(B, T, H, W, Td, S, lengths=[8, 8])
    raw = case.raw(True)
    with FlopCounterMode(display=False) as fc:
        out = filterbank_sample(case.frames, case.num_frames, RawSampling(*raw), S, backend="torch")
        out.sum().backward()
    counts = {str(k): v for k, v in fc.get_flop_counts()["Global"].items()}
    N, C, K = B * Td, 3, 13
    fwd = 2 * (B * Td * T * C * H * W + N * C * S * K * W + N * C * S * S * K)
    assert counts["s2d.banded_sample"] == fwd
    assert counts["s2d.banded_sample_backward"] > fwd
    # The dense reference counts its own (much larger) matmuls through aten.
    with FlopCounterMode(display=False) as fc_ref:
        filterbank_sample(case.frames, case.num_frames, case.params, S, backend="reference")
    assert fc_ref.get_total_flops() > fwd
