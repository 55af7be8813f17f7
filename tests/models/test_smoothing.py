"""`locator.gradient="smoothed"`: the window learns from loss differences (SPSA), never through the sampler."""
import pytest
import torch
import torch.nn.functional as F

import s2d
from s2d.models.smoothing import (LOG_STRIDE_STEP, TEMPORAL_STEP, ShiftProbe, moved, random_signs, surrogate_loss,
                                  window_of)
from s2d_kernels.sampler import RawSampling

W, H, S, T_d = 40, 30, 8, 3


def _raw(batch=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.4  # noqa: E731
    return RawSampling(r(batch), r(batch), r(batch, T_d), r(batch, T_d), r(batch, T_d), r(batch, T_d))


def test_moved_windows_move_by_exactly_the_steps():
    raw, n = _raw(), torch.tensor([16, 12, 9, 16])
    signs = random_signs(4, generator=torch.Generator().manual_seed(1))
    before = window_of(raw, n, W, H, S)
    after = window_of(moved(raw, n, signs, 2.5, W, H, S), n, W, H, S)
    torch.testing.assert_close(after.ct - before.ct, TEMPORAL_STEP * signs[:, 0], atol=1e-4, rtol=0)
    torch.testing.assert_close(after.lt - before.lt, LOG_STRIDE_STEP * signs[:, 1], atol=1e-6, rtol=0)
    torch.testing.assert_close(after.cx - before.cx, 2.5 * signs[:, 2:3].expand(-1, T_d), atol=1e-4, rtol=0)
    torch.testing.assert_close(after.cy - before.cy, 2.5 * signs[:, 3:4].expand(-1, T_d), atol=1e-4, rtol=0)
    torch.testing.assert_close(after.lx - before.lx, LOG_STRIDE_STEP * signs[:, 4:5].expand(-1, T_d), atol=1e-6, rtol=0)


def test_surrogate_is_zero_valued_and_carries_the_finite_difference():
    raw = RawSampling(*(p.requires_grad_(True) for p in _raw(2).as_tuple()))
    window = window_of(raw, torch.tensor([10, 10]), W, H, S)
    signs = torch.tensor([[1.0, -1, 1, -1, 1], [-1.0, 1, 1, 1, -1]])
    target = torch.tensor([0, 1])
    plus = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    minus = torch.tensor([[0.0, 2.0], [0.0, 0.5]])
    term = surrogate_loss(ShiftProbe(window, plus, minus, signs, 3.0), target)
    assert float(term.detach()) == 0.0
    cx = window.cx
    (g,) = torch.autograd.grad(term, cx, retain_graph=True)
    diff = F.cross_entropy(plus, target, reduction="none") - F.cross_entropy(minus, target, reduction="none")
    want = (diff / (2 * 3.0) * signs[:, 2])[:, None].expand(-1, T_d) / T_d / 2  # mean over frames, videos
    torch.testing.assert_close(g, want)


def test_the_estimate_is_the_gradient_of_a_smooth_loss_on_average():
    """SPSA on a known smooth loss of the window: averaged over many sign draws, the estimate is its
    gradient (draws batched as videos; the loss depends on x and the spatial log-stride only, so
    the other coordinates add no variance)."""
    draws = 4000
    one = _raw(1, seed=3)
    raw = RawSampling(*(p.expand(draws, *p.shape[1:]).contiguous() for p in one.as_tuple()))
    n = torch.full((draws,), 12)

    def loss_at(window):  # per video: a bowl around x = 18 px and log-stride 0.2
        return (window.cx.mean(1) - 18.0) ** 2 / 50 + (window.lx.mean(1) - 0.2) ** 2

    leaf = RawSampling(*(p.clone().requires_grad_(True) for p in one.as_tuple()))
    exact = torch.autograd.grad(loss_at(window_of(leaf, n[:1], W, H, S)).sum(), [leaf.dx, leaf.delta_x])
    signs = random_signs(draws, generator=torch.Generator().manual_seed(5))
    lp = loss_at(window_of(moved(raw, n, signs, 0.5, W, H, S), n, W, H, S))
    lm = loss_at(window_of(moved(raw, n, -signs, 0.5, W, H, S), n, W, H, S))
    as_logits = lambda loss: torch.stack([torch.zeros_like(loss), torch.log(torch.expm1(loss))], 1)  # noqa: E731
    probe_leaf = RawSampling(*(p.clone().requires_grad_(True) for p in raw.as_tuple()))
    window = window_of(probe_leaf, n, W, H, S)
    term = surrogate_loss(ShiftProbe(window, as_logits(lp), as_logits(lm), signs, 0.5),
                          torch.zeros(draws, dtype=torch.long))
    g_dx, g_dlx = torch.autograd.grad(term * draws, [probe_leaf.dx, probe_leaf.delta_x])
    est_dx, est_dlx = g_dx.mean(0), g_dlx.mean(0) * 2  # the log-stride estimate is shared by x and y
    assert torch.isfinite(est_dx).all() and torch.isfinite(est_dlx).all()
    torch.testing.assert_close(est_dx, exact[0][0], rtol=0.1, atol=1e-3)
    torch.testing.assert_close(est_dlx, exact[1][0], rtol=0.1, atol=1e-3)


def _models():
    torch.manual_seed(0)
    smoothed = s2d.create("s2dnet-x3d-synth", locator={"gradient": "smoothed", "fixed_stride_px": None})
    pathwise = s2d.create("s2dnet-x3d-synth", locator={"gradient": "pathwise", "fixed_stride_px": None})
    pathwise.load_state_dict(smoothed.state_dict())
    return smoothed, pathwise


def test_no_gradient_reaches_the_locator_through_the_sampler():
    smoothed, _ = _models()
    smoothed.train()
    clip = torch.randint(0, 256, (4, 16, 3, 128, 128), dtype=torch.uint8)
    target = torch.tensor([0, 1, 2, 3])
    out = smoothed(clip)
    assert out.shift_probe is not None
    F.cross_entropy(out.logits, target).backward()  # the plain loss, without the surrogate
    for name, p in smoothed.locator.named_parameters():
        assert p.grad is None or float(p.grad.abs().max()) == 0.0, name
    smoothed.zero_grad()
    out = smoothed(clip)
    smoothed.loss(out, target).backward()
    heads = [smoothed.locator.spatial_offset.weight, smoothed.locator.spatial_stride.weight,
             smoothed.locator.temporal_offset.weight, smoothed.locator.temporal_stride.weight]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and float(p.grad.abs().max()) > 0 for p in heads)


def test_evaluation_is_unchanged_by_the_option():
    smoothed, pathwise = _models()
    clip = torch.randint(0, 256, (2, 16, 3, 128, 128), dtype=torch.uint8)
    with torch.no_grad():
        a, b = smoothed.eval()(clip), pathwise.eval()(clip)
    assert a.shift_probe is None
    assert torch.equal(a.logits, b.logits)


@pytest.mark.parametrize("bad", [{"gradient": "reinforce"}, {"smooth_px": 0.0}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(s2d.ConfigError, match="locator"):
        s2d.get_config("s2dnet-x3d-synth", locator=bad)
