"""The dense filterbank sampler against an independent float64 per-video implementation."""
import math

import pytest
import torch

from s2d_kernels.sampler import (RawSampling, filterbank_sample, filterbank_sample_dense,
                                 filterbank_sample_per_video)


def slow_sample(frames, num_frames, params, S, temporal="gaussian"):
    """Independent implementation: explicit per-video, per-output-frame loops in float64, written
    from the formulas (not from the batched code)."""
    B, T, C, H, W = frames.shape
    T_d = params.dx.shape[1]
    out = torch.zeros(B, T_d, C, S, S, dtype=torch.float64)
    for b in range(B):
        n = int(num_frames[b])
        x = frames[b, :n].double()
        ct = math.tanh(float(params.dt[b])) * (n - 1) / 2 + (n - 1) / 2
        st = n / (T_d - 1) * math.exp(float(params.delta_t[b]))
        t = torch.arange(n, dtype=torch.float64)
        for j in range(T_d):
            mu = ct + (j - (T_d - 1) / 2) * st
            if temporal == "gaussian":
                ft = torch.exp(-(t - mu) ** 2 / 2)
                ft = ft / max(float(ft.sum()), 1e-7)
            else:
                ft = torch.clamp(1 - (t - mu).abs(), min=0)
            frame = torch.einsum("t,tchw->chw", ft, x)
            rows = []
            for d, delta, size in ((params.dy, params.delta_y, H), (params.dx, params.delta_x, W)):
                c = math.tanh(float(d[b, j])) * (size - 1) / 2 + (size - 1) / 2
                s = size / (S - 1) * math.exp(float(delta[b, j]))
                mu_k = c + (torch.arange(S, dtype=torch.float64) - (S - 1) / 2) * s
                f = torch.exp(-(torch.arange(size, dtype=torch.float64)[None] - mu_k[:, None]) ** 2 / 2)
                rows.append(f / f.sum(1, keepdim=True).clamp_min(1e-7))
            fy, fx = rows
            out[b, j] = torch.einsum("iy,cyx,kx->cik", fy, frame, fx)
    return out


def random_params(B, T_d, scale=1.0, dtype=torch.float32, generator=None):
    def r(*shape):
        return (torch.randn(*shape, generator=generator) * scale).to(dtype)
    return RawSampling(r(B), r(B) * 0.3, r(B, T_d), r(B, T_d), r(B, T_d) * 0.3, r(B, T_d) * 0.3)


@pytest.mark.parametrize("temporal", ["gaussian", "linear"])
@pytest.mark.parametrize("shape", [(2, 7, 3, 11, 13, 4, 5), (3, 5, 3, 20, 9, 6, 8), (1, 1, 3, 6, 6, 2, 2)])
def test_dense_matches_independent_slow_implementation(shape, temporal):
    B, T, C, H, W, T_d, S = shape
    frames = torch.randn(B, T, C, H, W)
    num_frames = torch.randint(1, T + 1, (B,))
    params = random_params(B, T_d)
    ref = slow_sample(frames, num_frames, params, S, temporal)
    out = filterbank_sample_dense(frames, num_frames, params, S, temporal)
    assert out.dtype == torch.float32 and out.shape == (B, T_d, C, S, S)
    torch.testing.assert_close(out.double(), ref, atol=1e-5 * max(1.0, ref.abs().max().item()), rtol=1e-5)


def test_per_video_loop_equals_batched():
    frames = torch.randn(4, 9, 3, 16, 12)
    num_frames = torch.tensor([9, 3, 1, 6])
    params = random_params(4, 5)
    torch.testing.assert_close(filterbank_sample_per_video(frames, num_frames, params, 7),
                               filterbank_sample_dense(frames, num_frames, params, 7), atol=1e-6, rtol=1e-5)


def test_padding_is_ignored():
    """Frames past a video's valid length never influence its output."""
    frames = torch.randn(1, 8, 3, 10, 10)
    params = random_params(1, 4)
    a = filterbank_sample_dense(frames, torch.tensor([5]), params, 6)
    frames[:, 5:] = 1e6
    b = filterbank_sample_dense(frames, torch.tensor([5]), params, 6)
    torch.testing.assert_close(a, b)


def gaussian_blur_1d(x, dim):
    """Blur along `dim` with the normalised σ=1 Gaussian (rows renormalised at the borders)."""
    n = x.shape[dim]
    p = torch.arange(n, dtype=torch.float64)
    f = torch.exp(-(p[:, None] - p[None]) ** 2 / 2)
    f = f / f.sum(1, keepdim=True)
    return torch.movedim(torch.tensordot(f, torch.movedim(x, dim, 0), dims=([1], [0])), 0, dim)


def test_identity_case_is_a_gaussian_blur():
    """Zero centres and unit strides (1 frame, 1 pixel) on an S×S input: V̂ is the input blurred
    by the σ=1 Gaussian along t, y and x."""
    T, S = 6, 9
    frames = torch.randn(2, T, 3, S, S, dtype=torch.float64)
    n = torch.tensor([T, T])
    unit_t = math.log((T - 1) / T)  # stride n/(T_d-1)·exp(δ) = 1 frame with T_d = T
    unit_s = math.log((S - 1) / S)  # stride S/(S-1)·exp(δ) = 1 pixel
    z = torch.zeros(2, T, dtype=torch.float64)
    params = RawSampling(torch.zeros(2, dtype=torch.float64), torch.full((2,), unit_t, dtype=torch.float64),
                           z, z.clone(), z + unit_s, z + unit_s)
    out = filterbank_sample_dense(frames, n, params, S)
    expected = gaussian_blur_1d(gaussian_blur_1d(gaussian_blur_1d(frames, 1), 3), 4)
    torch.testing.assert_close(out, expected, atol=1e-10, rtol=1e-10)


def test_far_out_rows_fade_to_zero():
    """The sum clamp is a clamp: a grid point far outside the frame yields ~0, not a renormalised edge."""
    frames = torch.ones(1, 4, 3, 8, 8)
    params = RawSampling.fixed(1, 2)
    params.delta_x = torch.full((1, 2), 4.0)  # stride ~ 8/1·e⁴ pixels: the outer grid points leave the frame
    out = filterbank_sample_dense(frames, torch.tensor([4]), params, 2)
    assert out.abs().max() < 1e-6


@pytest.mark.parametrize("temporal", ["gaussian", "linear"])
def test_gradcheck_all_six_parameter_groups(temporal):
    B, T, H, W, T_d, S = 2, 5, 6, 7, 3, 4
    frames = torch.randn(B, T, 3, H, W, dtype=torch.float64)
    num_frames = torch.tensor([5, 3])
    base = random_params(B, T_d, 0.5, torch.float64)
    if temporal == "linear":  # keep grid points off integer frames, where the hat filter has kinks
        base.dt = base.dt + 0.05

    def fn(*raw):
        return filterbank_sample_dense(frames, num_frames, RawSampling(*raw), S, temporal)

    inputs = tuple(p.clone().requires_grad_(True) for p in base.as_tuple())
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


def test_gradient_reaches_frames():
    frames = torch.randn(1, 4, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    params = random_params(1, 3, 0.5, torch.float64)
    assert torch.autograd.gradcheck(lambda f: filterbank_sample_dense(f, torch.tensor([4]), params, 3), (frames,))


def test_uint8_normalisation_and_layouts():
    frames = torch.randint(0, 256, (2, 6, 3, 10, 10), dtype=torch.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    params = random_params(2, 3)
    n = torch.tensor([6, 4])
    out = filterbank_sample(frames, n, params, 5, mean=mean, std=std, backend="reference")
    norm = (frames.float() / 255 - torch.tensor(mean).view(1, 1, 3, 1, 1)) / torch.tensor(std).view(1, 1, 3, 1, 1)
    torch.testing.assert_close(out, filterbank_sample_dense(norm, n, params, 5))
    x3d = filterbank_sample(frames, n, params, 5, mean=mean, std=std, layout="bcthw", backend="reference")
    torch.testing.assert_close(x3d, out.transpose(1, 2))
    with pytest.raises(ValueError, match="mean and std"):
        filterbank_sample(frames, n, params, 5)


@pytest.mark.parametrize("bad,match", [
    (dict(num_frames=torch.tensor([0, 3])), "num_frames"),
    (dict(num_frames=torch.tensor([3, 9])), "num_frames"),
    (dict(out_size=1), "out_size"),
])
def test_bad_arguments_name_the_problem(bad, match):
    args = dict(frames=torch.randn(2, 4, 3, 5, 5), num_frames=torch.tensor([4, 2]), params=random_params(2, 3), out_size=3)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        filterbank_sample_dense(**args)


def test_parameter_shape_error_names_the_parameter():
    p = random_params(2, 3)
    p.dx = p.dx[:, :2]
    with pytest.raises(ValueError, match="dx"):
        filterbank_sample_dense(torch.randn(2, 4, 3, 5, 5), torch.tensor([4, 4]), p, 3)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 3), T=st.integers(1, 7), H=st.integers(1, 9), W=st.integers(1, 9),
       T_d=st.integers(2, 5), S=st.integers(2, 6), seed=st.integers(0, 2**16),
       temporal=st.sampled_from(["gaussian", "linear"]))
def test_fuzz_dense_against_independent(B, T, H, W, T_d, S, seed, temporal):
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(B, T, 3, H, W, generator=g)
    num_frames = torch.randint(1, T + 1, (B,), generator=g)
    params = random_params(B, T_d, 1.5, generator=g)
    ref = slow_sample(frames, num_frames, params, S, temporal)
    out = filterbank_sample_dense(frames, num_frames, params, S, temporal)
    torch.testing.assert_close(out.double(), ref, atol=1e-5 * max(1.0, ref.abs().max().item()), rtol=1e-4)
