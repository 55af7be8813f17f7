"""optimize_for_inference: BatchNorm folded and channels-last weights, same logits, training refused."""
import pytest
import torch
from torch import nn

import s2d
from s2d.inference.optimize import InferenceOnlyError, fold_batchnorm, optimize_for_inference

_BN = nn.modules.batchnorm._BatchNorm

#: TSM (MobileNetV2 + ResNet-50 with temporal shifts) and X3D (3D and depthwise convs) S2DNets, and the baselines.
MODELS = ["s2dnet-tsm-sthv2", "s2dnet-x3d-k400", "tsm-r50", "x3d-m"]


@pytest.fixture
def trained_looking(tiny_overrides):
    """`trained_looking(name)`: a tiny model whose BatchNorms hold non-trivial statistics and affine
    parameters, as after training (at init they are the identity, which would make folding look right
    for free)."""

    def make(name: str) -> nn.Module:
        torch.manual_seed(0)
        model = s2d.create(name, **tiny_overrides(name)).eval()
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, _BN):
                    n = m.num_features
                    m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                    m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                    m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                    m.bias.copy_((torch.rand(n, generator=gen) - 0.5) * 0.4)
        return model

    return make


def clips(model: nn.Module, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    c = model.config
    gen = torch.Generator().manual_seed(2)
    frames = torch.randint(0, 256, (batch, c.dense_frames, 3, c.dense_size, c.dense_size), generator=gen,
                           dtype=torch.uint8)
    num_frames = torch.tensor([c.dense_frames] + [max(1, c.dense_frames // 2)] * (batch - 1))
    return frames, num_frames


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("name", MODELS)
def test_optimised_logits_equal_the_plain_model(name, trained_looking):
    model = trained_looking(name)
    norms = sum(isinstance(m, _BN) for m in model.modules())
    fast = optimize_for_inference(model)
    assert fast.folded_norms == norms > 0
    assert not any(isinstance(m, _BN) for m in fast.modules())
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last)
               for m in fast.modules() if isinstance(m, nn.Conv2d))
    frames, num_frames = clips(model)
    with torch.inference_mode():
        plain, optimised = model(frames, num_frames), fast(frames, num_frames)
    assert relative_error(optimised.logits, plain.logits) < 1e-4
    if hasattr(plain, "snet_logits"):  # S2DNet: the synopsis and where it looked agree as well
        assert relative_error(optimised.snet_logits, plain.snet_logits) < 1e-4
        assert torch.equal(optimised.topk, plain.topk)
        assert torch.allclose(optimised.params.centre_x, plain.params.centre_x, rtol=1e-4, atol=1e-3)


def test_the_original_model_is_untouched_and_still_trains(trained_looking):
    model = trained_looking("s2dnet-tsm-sthv2")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    optimize_for_inference(model)
    after = model.state_dict()
    assert state.keys() == after.keys() and all(torch.equal(state[k], after[k]) for k in state)
    model.train()
    assert model.training and any(isinstance(m, _BN) for m in model.modules())


def test_the_optimised_model_refuses_training_and_saving(tmp_path, trained_looking, tiny_overrides):
    from s2d.hub._hf import save_weights

    fast = trained_looking("x3d-m").optimize_for_inference()
    with pytest.raises(InferenceOnlyError, match="cannot train"):
        fast.train()
    fast.eval()  # staying in eval mode is fine
    with pytest.raises(InferenceOnlyError, match="original"):
        save_weights(fast, tmp_path / "model.safetensors")
    with pytest.raises(InferenceOnlyError):
        s2d.create("s2dnet-tsm-sthv2", **tiny_overrides("s2dnet-tsm-sthv2")).optimize_for_inference().train()


def test_fold_batchnorm_needs_eval_mode(tiny_overrides):
    model = s2d.create("x3d-m", **tiny_overrides("x3d-m"))
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(model.train())


def test_predict_with_the_optimised_model(tmp_path, trained_looking, videos):
    video = videos.write_video(tmp_path / "clip.mp4", num_frames=12, width=96, height=80)
    model = trained_looking("s2dnet-tsm-sthv2")
    plain, fast = model.predict(video, topk=3), model.optimize_for_inference().predict(video, topk=3)
    assert [n for n, _ in plain.labels] == [n for n, _ in fast.labels]
    assert all(abs(p - q) < 1e-4 for (_, p), (_, q) in zip(plain.labels, fast.labels))


@pytest.mark.slow
def test_the_compiled_model_keeps_the_logits(trained_looking):
    """Inductor's one-graph compile of a model with folded, non-trivial norms (tests/models/test_compile.py
    checks graphs and batch sizes)."""
    model = trained_looking("x3d-m")
    fast = optimize_for_inference(model, compile=True)
    frames, num_frames = clips(model)
    with torch.inference_mode():
        assert relative_error(fast(frames, num_frames).logits, model(frames, num_frames).logits) < 1e-4
