"""The sampler's `sigma` option (spatial Gaussian width): every path agrees, gradients are right,
and the official width (σ = 1) is what the default computes, bit for bit."""
import pytest
import torch

import s2d
from s2d.models.config import ConfigError
from s2d_kernels.sampler import RawSampling, filterbank_sample, filterbank_sample_dense
from s2d_kernels.sampler.bands import band_rows, filter_band
from s2d_kernels.testing import assert_close_scaled, make_case


def test_rows_have_the_requested_width():
    grid = torch.tensor([[10.0, 20.0]])  # integer centres: the sampled row is symmetric
    for sigma in (0.4, 0.7, 1.0):
        w = filter_band(grid, 40, sigma=sigma)[1]
        pos = torch.arange(40.0)
        mean = (w * pos).sum(-1)
        var = (w * (pos - mean[..., None]) ** 2).sum(-1)
        assert torch.allclose(mean, grid, atol=1e-3)
        # a sampled Gaussian's variance is σ² up to the discretisation (≈ 1/12 px² for narrow rows)
        assert torch.allclose(var, torch.full_like(var, sigma ** 2), atol=0.1), (sigma, var)


def test_default_width_is_the_official_sigma_squared_one():
    grid = torch.linspace(-3.0, 42.0, 37).view(1, 37)
    p = torch.arange(40.0)
    official = torch.exp(-1 * torch.pow(p - grid[..., None], 2) / 2.0)
    official = official / torch.clamp_min(official.sum(-1, keepdim=True), 1e-7)
    assert torch.equal(filter_band(grid, 40)[1], official)
    start, band = band_rows(grid, 40)
    assert torch.equal(band_rows(grid, 40, sigma=1.0)[1], band)


@pytest.mark.parametrize("sigma", [0.35, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_banded_path_matches_the_dense_reference(sigma, dtype):
    case = make_case(2, 6, 23, 19, 4, 9, seed=7, dtype=dtype, lengths=[6, 3])
    kw = dict(mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), sigma=sigma)
    fast = filterbank_sample(case.frames, case.num_frames, case.params, case.out_size, backend="torch", **kw)
    ref = filterbank_sample(case.frames, case.num_frames, case.params, case.out_size, backend="reference", **kw)
    assert torch.isfinite(ref).all()
    assert_close_scaled(fast, ref, 1e-5, f"sigma={sigma}")


@pytest.mark.parametrize("sigma", [0.5, 0.8])
def test_gradients_reach_the_window_through_a_narrow_filter(sigma):
    case = make_case(1, 4, 11, 12, 3, 5, seed=3, dtype=torch.float64)
    raw = case.raw(requires_grad=True, dtype=torch.float64)

    def dense(*r):
        return filterbank_sample_dense(case.frames, case.num_frames, RawSampling(*r), case.out_size, sigma=sigma)

    assert torch.autograd.gradcheck(dense, tuple(raw), eps=1e-6, atol=1e-5)
    raw_b = case.raw(requires_grad=True, dtype=torch.float64)
    out_b = filterbank_sample(case.frames, case.num_frames, RawSampling(*raw_b), case.out_size, backend="torch",
                              sigma=sigma)
    out_r = dense(*raw)
    g = torch.randn_like(out_r)
    got = torch.autograd.grad(out_b, raw_b, g)
    want = torch.autograd.grad(out_r, raw, g)
    for name, a, b in zip(("dt", "delta_t", "dx", "dy", "delta_x", "delta_y"), got, want):
        assert_close_scaled(a, b, 1e-9, name)


@pytest.mark.parametrize("sigma", [0.0, -0.5, 1.5])
def test_widths_the_band_cannot_hold_are_refused(sigma):
    case = make_case(1, 3, 8, 8, 2, 4)
    with pytest.raises(ValueError, match="sigma"):
        filterbank_sample(case.frames, case.num_frames, case.params, case.out_size, backend="torch", sigma=sigma)
    with pytest.raises(ConfigError, match="sampler.sigma"):
        s2d.get_config("s2dnet-x3d-synth", sampler={"sigma": sigma})


def test_model_samples_with_its_configured_width():
    torch.manual_seed(0)
    narrow = s2d.create("s2dnet-x3d-synth", sampler={"sigma": 0.5}).eval()
    official = s2d.create("s2dnet-x3d-synth", sampler={"sigma": 1.0}).eval()
    official.load_state_dict(narrow.state_dict())
    clip = torch.randint(0, 256, (1, 16, 3, 128, 128), dtype=torch.uint8)
    with torch.no_grad():
        a = narrow(clip, return_detail=True).detail
        b = official(clip, return_detail=True).detail
    assert a.shape == b.shape and not torch.allclose(a, b)
    # the narrower filter keeps more of the pixel noise: a larger spread of values
    assert float(a.std()) > float(b.std())
