"""S2DNet end to end: exact sizes of the official code, numerics of its parts, batching rules."""
import math
import subprocess
import sys

import pytest
import torch

import s2d
from s2d.models.backbones import temporal_shift
from s2d.models.clip import uniform_indices
from s2d.models.flops import count_params, measure
from s2d.models.sampler import centre_crop_params
from s2d_kernels.context import topk_vector
from s2d_kernels.fusion import context_bias, context_fusion, context_fusion_split
from s2d_kernels.sampler import filterbank_sample_dense, normalize_frames
from s2d_kernels.testing import assert_close_scaled

# -- sizes of the official code ----------------------------------------------------------------

@pytest.mark.parametrize("name,params", [("s2dnet-tsm-sthv2", 29_842_180), ("s2dnet-tsm-sthv1", 29_842_180),
                                         ("s2dnet-tsm-minik", 30_779_324)])
def test_parameter_counts_equal_the_official_code(name, params):
    assert count_params(s2d.create(name)) == params


@pytest.mark.parametrize("name,gmacs,without_fusion", [("s2dnet-tsm-sthv2", 25.44, 22.64), ("s2dnet-tsm-minik", 22.08, None)])
def test_gmacs_on_the_dense_reference_path(name, gmacs, without_fusion):
    c = measure(s2d.create(name))
    assert c.gmacs == pytest.approx(gmacs, rel=0.01)
    parts = c.gmacs_by_part
    assert sum(parts[k] for k in ("synopsis", "locator", "context", "sampler", "detail")) == pytest.approx(c.gmacs, rel=1e-6)
    if without_fusion is not None:
        assert c.gmacs - parts["fusion"] == pytest.approx(without_fusion, rel=0.01)


def test_gmacs_on_the_banded_path_count_the_box_the_sampler_reads():
    """The CPU path's count includes its sampler op, even when the op's module is first imported
    during the count, and the op reads only the window's box: a zoomed-in window costs less."""
    # A fresh interpreter, so that the op module is first imported while counting.
    script = (
        "import s2d\n"
        "from s2d.models.flops import measure\n"
        "wide = measure(s2d.create('s2dnet-x3d-synth', locator={'fixed_stride_px': 4.0}), backend='torch')\n"
        "narrow = measure(s2d.create('s2dnet-x3d-synth', locator={'fixed_stride_px': 1.3}), backend='torch')\n"
        "print(wide.gmacs_by_part['sampler'], narrow.gmacs_by_part['sampler'])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    wide, narrow = map(float, out.split())
    assert 0 < narrow < 0.5 * wide


# -- parts ---------------------------------------------------------------------------------------

def test_uniform_indices_equal_official_linspace():
    n = torch.arange(1, 300)
    for count in (1, 2, 8, 12, 13, 16):
        ours = uniform_indices(n, count)
        for i, v in enumerate(n.tolist()):
            assert torch.equal(ours[i], torch.linspace(0, v - 1, count).long())


def test_temporal_shift_moves_folds_one_frame():
    x = torch.arange(2 * 3 * 16, dtype=torch.float32).view(6, 16, 1, 1)  # B=2, T=3, C=16 → fold 2
    y = temporal_shift(x, 3, 8).view(2, 3, 16)
    x = x.view(2, 3, 16)
    assert torch.equal(y[:, :-1, :2], x[:, 1:, :2]) and torch.equal(y[:, -1, :2], torch.zeros(2, 2))
    assert torch.equal(y[:, 1:, 2:4], x[:, :-1, 2:4]) and torch.equal(y[:, 0, 2:4], torch.zeros(2, 2))
    assert torch.equal(y[:, :, 4:], x[:, :, 4:])


def test_mobilenet_shift_placement():
    from s2d.models.backbones import TemporalShift
    m = s2d.create("s2dnet-tsm-sthv2").synopsis.backbone
    shifted = sorted(int(name.split(".")[1]) for name, mod in m.named_modules() if isinstance(mod, TemporalShift))
    assert shifted == [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]


def test_resnet_shift_in_every_bottleneck():
    from s2d.models.backbones import TemporalShift
    m = s2d.create("tsm-r50").backbone
    names = [n for n, mod in m.named_modules() if isinstance(mod, TemporalShift)]
    assert len(names) == 16 and all(n.endswith("conv1") for n in names)


def test_topk_hard_and_soft():
    logits = torch.tensor([[0.1, 3.0, 2.0, -1.0, 5.0], [1.0, 0.0, 0.5, 2.0, -3.0]])
    idx, s = topk_vector(logits, 2, "hard")
    assert idx.tolist() == [[4, 1], [3, 0]]
    assert s.tolist() == [[0, 1, 0, 0, 1], [1, 0, 0, 1, 0]]
    _, soft = topk_vector(logits, 2, "soft")
    e = torch.exp(torch.tensor([3.0 - 5.0, 0.0]))
    torch.testing.assert_close(soft[0, [1, 4]], e / (e.sum() + 1e-6))
    assert soft[0, [0, 2, 3]].abs().sum() == 0


@pytest.mark.parametrize("layout", ["bcthw", "btchw"])
def test_fusion_split_form_equals_concat(layout):
    B, T, C, M, h, w = 2, 3, 16, 8, 5, 4
    weight = torch.randn(C, C + M, 1, 1, 1)
    m = torch.randn(B, M)
    x = torch.randn(B, C, T, h, w) if layout == "bcthw" else torch.randn(B * T, C, h, w)
    ref = context_fusion(x, m, weight, layout=layout, backend="reference")
    if layout == "btchw":  # the official code: view (B, T, C, h, w), concat, Conv3d on (B, C+M, T, h, w)
        x5 = x.view(B, T, C, h, w)
        cat = torch.cat([x5, m[:, None, :, None, None].expand(-1, T, -1, h, w)], 2).transpose(1, 2)
        official = torch.relu(torch.nn.functional.conv3d(cat, weight)).transpose(1, 2).reshape(B * T, C, h, w)
        torch.testing.assert_close(ref, official)
    torch.testing.assert_close(context_fusion(x, m, weight, layout=layout, backend="torch"), ref, atol=1e-5, rtol=1e-5)
    split = context_fusion_split(x, context_bias(m, weight), weight, layout=layout)
    torch.testing.assert_close(split, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="does not match"):
        context_fusion(x, m[:, :4], weight, layout=layout)
    with pytest.raises(ValueError, match="videos"):
        context_fusion(x, torch.randn(2 * B + 1, M), weight, layout=layout)
    with pytest.raises(ValueError, match="layout"):
        context_fusion(x, m, weight, layout="frames")  # the former name of "btchw"


# -- whole model ---------------------------------------------------------------------------------

@pytest.fixture
def tiny(tiny_overrides):
    """`tiny(name, **extra)`: a named variant at the tiny input sizes."""
    return lambda name, **extra: s2d.create(name, **{**tiny_overrides(name), **extra})


def clip(model, B=2, dtype=torch.uint8, generator=None):
    c = model.config
    return torch.randint(0, 256, (B, c.dense_frames, 3, c.dense_size, c.dense_size), dtype=torch.uint8,
                         generator=generator)


@pytest.mark.parametrize("name", s2d.list_models())
def test_forward_backward_of_every_named_variant(name, tiny):
    model = tiny(name).train()
    frames = clip(model)
    target = torch.tensor([0, 1])
    out = model(frames, torch.tensor([model.config.dense_frames, 5]))
    assert out.logits.shape == (2, model.config.num_classes)
    loss = model.loss(out, target)
    loss.backward()
    grads = {k: p.grad for k, p in model.named_parameters() if p.requires_grad}
    assert [k for k, g in grads.items() if g is None] == []  # every trainable parameter gets a gradient
    assert [k for k, g in grads.items() if not torch.isfinite(g).all()] == []
    if isinstance(model, s2d.S2DNet):
        # the sampler path is differentiable: f_θ's heads get gradient in stage 2
        assert model.locator.spatial_offset.weight.grad.abs().sum() > 0
        assert model.locator.temporal_stride.weight.grad.abs().sum() > 0
        assert out.params.centre_x.shape == (2, model.config.sampler.frames)
        expected = 2 * model.config.num_classes and model.config.topk
        assert out.topk.shape == (2, expected) and out.topk_vector.sum(1).tolist() == [5.0, 5.0]


@pytest.mark.parametrize("name", ["s2dnet-tsm-sthv2", "s2dnet-x3d-k400"])
def test_variable_length_batch_equals_per_video_runs(name, tiny):
    model = tiny(name).eval()
    frames = clip(model, B=3)
    n = torch.tensor([model.config.dense_frames, 3, 1])
    with torch.no_grad():
        batched = model(frames, n)
        for b in range(3):
            single = model(frames[b:b + 1], n[b:b + 1])
            torch.testing.assert_close(batched.logits[b:b + 1], single.logits, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(batched.snet_logits[b:b + 1], single.snet_logits, atol=1e-4, rtol=1e-4)
            assert torch.equal(batched.topk[b:b + 1], single.topk)


S2DNETS = [n for n in s2d.list_models() if s2d.get_config(n).kind == "s2dnet"]


def hold_sampler(model, backend="reference"):
    """Run the model's detail sampler on one backend whatever `model.backend` says, so that two
    runs differ only in the context path and the fusion."""
    sample = model.sampler.forward

    def held(*args, **kwargs):
        return sample(*args, **{**kwargs, "backend": backend})

    model.sampler.forward = held
    return model


def run(model, frames, n, backend, seed=1):
    model.backend = backend
    torch.manual_seed(seed)  # the same dropout masks on both paths
    return model(frames, n)


@pytest.mark.parametrize("name", S2DNETS)
def test_context_kernel_path_equals_the_reference(name, tiny):
    """The gathered context terms, split fusion and split classifier give the official algebra's
    outputs: end to end in eval mode; in train mode with the sampler held on one backend, as batch
    statistics amplify the banded sampler's rounding differences (≈5e-5 of the logit scale)."""
    model = tiny(name)
    frames = clip(model)
    n = torch.tensor([model.config.dense_frames, 5])
    for train in (False, True):
        if train:
            hold_sampler(model)
        model.train(train)
        with torch.no_grad():
            got, want = run(model, frames, n, "torch"), run(model, frames, n, "reference")
        assert torch.equal(got.snet_logits, want.snet_logits) and torch.equal(got.topk, want.topk)
        assert_close_scaled(got.topk_vector, want.topk_vector, 1e-6, name="s")  # k-hot: equal; soft: rounding
        for a, b in zip(got.params.raw.as_tuple(), want.params.raw.as_tuple()):
            assert_close_scaled(a, b, 1e-5, name="sampling parameters")
        assert_close_scaled(got.logits, want.logits, 1e-5, name=f"logits (train={train})")


@pytest.mark.parametrize("scheme", ["hard", "soft"])
def test_context_kernel_path_gradients_equal_the_reference(scheme, tiny):
    """Gradients of every parameter the context path touches (and of the locator, which sees s),
    with the sampler held on one backend (its own gradients are checked in the kernel tests).

    Eval mode compares at fp32 rounding. In train mode the tiny net's batch statistics make the
    gradients themselves ill-conditioned (a 1e-7 relative change of one bias moves the reference's
    own gradients by ≈5e-3), so there the check is coarse: it catches a missing or misrouted
    gradient, not rounding."""
    model = hold_sampler(tiny("s2dnet-x3d-k400", topk_scheme=scheme))
    frames = clip(model)
    n = torch.tensor([model.config.dense_frames, 5])
    target = torch.tensor([0, 1])
    groups = ("synopsis.", "context.", "detail.fusion.", "detail.fc.", "locator.")
    for train, tol in ((False, 1e-5), (True, 1e-2)):
        model.train(train)
        grads = []
        for backend in ("torch", "reference"):
            model.zero_grad()
            model.loss(run(model, frames, n, backend), target).backward()
            grads.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
        got, want = grads
        assert got.keys() == want.keys()
        checked = [k for k in want if k.startswith(groups[:4] if train else groups)]
        assert any(k.startswith("context.") for k in checked) and any(k.startswith("detail.fusion.") for k in checked)
        for k in checked:
            assert_close_scaled(got[k], want[k], tol, name=f"grad {k} (train={train})")


def test_model_backend_is_resolved_once_for_every_op(monkeypatch, tiny):
    """`model.backend` / `S2D_BACKEND` are resolved once per forward, and the context, sampler,
    fusion and classifier ops all receive that one concrete backend (one path through the model):
    the gathered context path unless it resolves to "reference"."""
    import s2d.models.detail
    import s2d.models.fusion
    import s2d.models.sampler
    import s2d_kernels.context

    seen, gathered = [], []
    for module, name in ((s2d.models.fusion, "synopsis_context"), (s2d.models.fusion, "context_fusion"),
                         (s2d.models.sampler, "filterbank_sample"), (s2d.models.detail, "context_classifier")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, **k: seen.append(k["backend"]) or _real(*a, **k))
    real_gathered = s2d_kernels.context.synopsis_context_gathered
    monkeypatch.setattr(s2d_kernels.context, "synopsis_context_gathered",
                        lambda *a, **k: gathered.append(1) or real_gathered(*a, **k))
    model = tiny("s2dnet-x3d-k400").eval()
    assert len(model.detail.fusion) and model.config.fusion.classifier
    frames = clip(model, B=1)
    with torch.no_grad():
        for backend, env, want in (("auto", None, "torch"), ("torch", "reference", "torch"),
                                   ("reference", None, "reference"), ("auto", "reference", "reference"),
                                   ("auto", "triton", "torch")):
            if env is None:
                monkeypatch.delenv("S2D_BACKEND", raising=False)
            else:
                monkeypatch.setenv("S2D_BACKEND", env)
            seen.clear()
            gathered.clear()
            run(model, frames, None, backend)
            assert set(seen) == {want} and len(seen) == 3 + len(model.detail.fusion), (backend, env, seen)
            assert len(gathered) == (want != "reference"), (backend, env)


def test_padding_frames_do_not_change_the_answer(tiny):
    model = tiny("s2dnet-tsm-sthv2").eval()
    frames = clip(model, B=1)
    n = torch.tensor([4])
    with torch.no_grad():
        a = model(frames, n).logits
        frames[:, 4:] = 255 - frames[:, 4:]
        b = model(frames, n).logits
    torch.testing.assert_close(a, b)


def test_deterministic(tiny):
    model = tiny("s2dnet-tsm-sthv2").eval()
    frames = clip(model)
    with torch.no_grad():
        a, b = model(frames), model(frames)
    assert torch.equal(a.logits, b.logits)


def test_float_input_is_taken_as_normalised(tiny):
    model = tiny("s2dnet-tsm-sthv2").eval()
    frames = clip(model)
    c = model.config
    norm = normalize_frames(frames, c.mean, c.std)
    with torch.no_grad():
        torch.testing.assert_close(model(frames).logits, model(norm).logits, atol=1e-5, rtol=1e-5)


def test_stage1_freezes_the_locator_and_feeds_centre_crops(tiny):
    model = tiny("s2dnet-tsm-sthv2").set_freeze_sampler(True).train()
    assert not model.locator.training and not any(p.requires_grad for p in model.locator.parameters())
    frames = clip(model)
    out = model(frames, return_detail=True)
    model.loss(out, torch.tensor([0, 1])).backward()
    assert all(p.grad is None for p in model.locator.parameters())
    c = model.config
    S, T_d, H = c.sampler.size, c.sampler.frames, c.dense_size
    torch.testing.assert_close(out.params.stride_x, torch.ones(2, T_d))  # 1-pixel stride: a centre crop
    torch.testing.assert_close(out.params.centre_x, torch.full((2, T_d), (H - 1) / 2))
    raw = centre_crop_params(2, T_d, H, H, S)
    expected = filterbank_sample_dense(normalize_frames(frames, c.mean, c.std), torch.tensor([c.dense_frames] * 2), raw, S)
    torch.testing.assert_close(out.detail, expected)
    model.set_freeze_sampler(False).train()
    assert model.locator.training and all(p.requires_grad for p in model.locator.parameters())


def test_gradient_normalisation_rescales_what_reaches_the_locator():
    """Supplement §2: V̂'s gradient is rescaled into [-1, 1] per video before it reaches f_θ."""
    from s2d.models.config import SamplerConfig
    from s2d.models.sampler import DetailSampler
    from s2d_kernels.sampler import RawSampling

    frames = torch.randn(2, 5, 3, 8, 8)
    n = torch.tensor([5, 3])
    raw = [p.requires_grad_(True) for p in (torch.randn(2), torch.randn(2) * 0.1, torch.randn(2, 3),
                                             torch.randn(2, 3), torch.randn(2, 3) * 0.1, torch.randn(2, 3) * 0.1)]
    sampler = DetailSampler(SamplerConfig(frames=3, size=4, grad_normalize=True), (0, 0, 0), (1, 1, 1), "btchw").train()
    upstream = torch.randn(2, 3, 3, 4, 4) * torch.tensor([100.0, 0.01]).view(2, 1, 1, 1, 1)
    got = torch.autograd.grad(sampler(frames, n, RawSampling(*raw)), raw, upstream)
    scaled = upstream / upstream.flatten(1).abs().amax(1).view(2, 1, 1, 1, 1)
    want = torch.autograd.grad(filterbank_sample_dense(frames, n, RawSampling(*raw), 4), raw, scaled)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    sampler.eval()  # off outside training
    got = torch.autograd.grad(sampler(frames, n, RawSampling(*raw)), raw, upstream)
    want = torch.autograd.grad(filterbank_sample_dense(frames, n, RawSampling(*raw), 4), raw, upstream)
    torch.testing.assert_close(got[0], want[0])


def test_sampled_box_is_the_extent_of_the_sample_points():
    """`sampled_box` spans exactly the first and last grid points of `spatial_grid`."""
    from s2d.models.sampler import SamplingWindow, sampled_box
    from s2d_kernels.sampler import RawSampling, spatial_grid

    g = torch.Generator().manual_seed(0)
    raw = RawSampling(torch.randn(2, generator=g), torch.randn(2, generator=g),
                      *(torch.randn(2, 3, generator=g) * 0.5 for _ in range(4)))
    H, W, S = 40, 56, 7
    box = sampled_box(SamplingWindow.from_raw(raw, torch.tensor([9, 5]), H, W, S), S)
    _, _, gx = spatial_grid(raw.dx, raw.delta_x, W, S)
    _, _, gy = spatial_grid(raw.dy, raw.delta_y, H, S)
    torch.testing.assert_close(box, torch.stack([gx[..., 0], gy[..., 0], gx[..., -1], gy[..., -1]], -1))


def test_locator_initialisation_starts_near_the_defaults(tiny):
    model = tiny("s2dnet-tsm-sthv2").eval()
    with torch.no_grad():
        out = model(clip(model))
    raw = out.params.raw
    for t in raw.as_tuple():
        assert t.abs().max() < 1.0  # centres ≈ 0, log-strides ≈ 0 → strides ≈ their defaults
    bound = 0.1 / math.sqrt(model.locator.spatial_offset.in_features)
    assert model.locator.spatial_offset.weight.abs().max() <= bound + 1e-7


def test_bad_clip_shapes_are_named(tiny):
    model = tiny("s2dnet-tsm-sthv2")
    with pytest.raises(ValueError, match=r"\[B, T, 3, H, W\]"):
        model(torch.zeros(1, 10, 72, 72, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="num_frames"):
        model(clip(model), torch.tensor([11, 3]))
    with pytest.raises(TypeError, match="frames must be uint8"):
        model(clip(model).long())


def test_labels_are_attached():
    assert len(s2d.create("s2dnet-tsm-sthv2").labels) == 174
    assert s2d.create("s2dnet-x3d-k400").labels[0] == "abseiling"
