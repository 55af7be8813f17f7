"""Tests for the X3D backbone: checkpoint layout, numerical parity with pytorchvideo,
staged forward and the small test variant."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from s2d.models.backbones.x3d import (STAGE_NAMES, X3D, X3D_INPUT_SPECS, Swish, X3DSpec, build_x3d, round_width, x3d_l,
                                      x3d_m, x3d_s, x3d_tiny, x3d_xs)

KEYS_FILE = Path(__file__).resolve().parents[1] / "data" / "official" / "pytorchvideo-x3d-m-keys.txt"

# Expected parameter counts at 400 classes (same numbers as pytorchvideo's create_x3d).
EXPECTED_PARAMS = {
    "x3d_xs": 3_794_274,
    "x3d_s": 3_794_274,
    "x3d_m": 3_794_274,
    "x3d_l": 6_153_384,
    "x3d_tiny": 118_046,
}
FACTORIES = {"x3d_xs": x3d_xs, "x3d_s": x3d_s, "x3d_m": x3d_m, "x3d_l": x3d_l, "x3d_tiny": x3d_tiny}
# create_x3d keyword arguments giving the same architecture as each factory.
REFERENCE_ARGS = {
    "x3d_xs": {"depth_factor": 2.2},
    "x3d_s": {"depth_factor": 2.2},
    "x3d_m": {"depth_factor": 2.2},
    "x3d_l": {"depth_factor": 5.0},
    "x3d_tiny": {"width_factor": 0.5, "depth_factor": 0.5, "head_dim_out": 128},
}

# Small clip where the final map is 4x2x2, so a pytorchvideo head built for
# (4 frames, 64 px) pools the whole map.
CLIP_T, CLIP_HW, BATCH = 4, 64, 2


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _clip(seed: int = 0, t: int = CLIP_T, h: int = CLIP_HW, w: int = CLIP_HW) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(BATCH, 3, t, h, w, generator=g)


def _randomise(model: nn.Module, seed: int = 0) -> None:
    """Give BN layers and the classifier non-trivial values so parity checks bite."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.05)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.05)


def _reference(name: str, num_classes: int = 400) -> nn.Module:
    x3d_ref = pytest.importorskip("pytorchvideo.models.x3d")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return x3d_ref.create_x3d(
            input_clip_length=CLIP_T,
            input_crop_size=CLIP_HW,
            model_num_class=num_classes,
            dropout_rate=0.0,
            head_activation=None,
            **REFERENCE_ARGS[name],
        )


def _official_keys() -> list[tuple[str, tuple[int, ...]]]:
    entries = []
    for line in KEYS_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, shape = line.split(" ", 1)
        inner = shape.strip()[1:-1].strip()
        entries.append((key, tuple(int(s) for s in inner.split(",")) if inner else ()))
    return entries


def test_x3d_m_state_dict_matches_official_key_list() -> None:
    model = x3d_m(num_classes=400)
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    official = _official_keys()
    assert len(official) == 563
    assert ours == official
    assert _n_params(model) == 3_794_274


@pytest.mark.parametrize("name", list(EXPECTED_PARAMS))
def test_param_counts(name: str) -> None:
    assert _n_params(FACTORIES[name](num_classes=400)) == EXPECTED_PARAMS[name]


def test_architecture_dims() -> None:
    model = x3d_m()
    assert model.stage_names == STAGE_NAMES == ("res2", "res3", "res4", "res5")
    assert model.stage_channels == {"res2": 24, "res3": 48, "res4": 96, "res5": 192}
    assert model.feature_dim == 432
    assert model.embed_dim == 2048
    assert model.spec.scaled_depths == (3, 5, 11, 7)
    assert x3d_l().spec.scaled_depths == (5, 10, 25, 15)
    # X3D width rounding examples (SE widths and stem).
    assert round_width(12, 2.0) == 24
    assert round_width(54, 0.0625) == 8
    assert round_width(432, 0.0625) == 32
    assert round_width(7, 0.0) == 7
    # SE sits on the first, third, ... block of every stage.
    for stage_idx in range(4):
        blocks = model.stage(stage_idx).res_blocks
        for i, block in enumerate(blocks):
            has_se = not isinstance(block.branch2.norm_b[1], nn.Identity)
            assert has_se == (i % 2 == 0)


def test_input_specs() -> None:
    assert {k: (v.num_frames, v.crop_size) for k, v in X3D_INPUT_SPECS.items()} == {
        "x3d_xs": (4, 160),
        "x3d_s": (13, 160),
        "x3d_m": (16, 224),
        "x3d_l": (16, 312),
    }


def test_spec_json_round_trip() -> None:
    spec = x3d_l(num_classes=174, dropout=0.3).spec
    restored = X3DSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert restored == spec
    assert restored.num_classes == 174 and restored.depth_factor == 5.0
    assert build_x3d(restored).state_dict().keys() == x3d_l(num_classes=174).state_dict().keys()
    with pytest.raises(ValueError):
        X3DSpec.from_dict({"widht_factor": 1.0})


def test_factory_overrides() -> None:
    model = x3d_tiny(num_classes=7, dropout=0.0, head_dim_out=64)
    assert model.spec.head_dim_out == 64 and model.embed_dim == 64
    assert model.head.proj.out_features == 7


def _check_parity(ours: X3D, ref: nn.Module) -> None:
    _randomise(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = _clip(1)

    ours.eval()
    ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)

    # Train mode (dropout 0): batch statistics and running-stat updates agree too.
    ours.train()
    ref.train()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)
    ref_state = ref.state_dict()
    for key, value in ours.state_dict().items():
        torch.testing.assert_close(value, ref_state[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.parametrize("name", ["x3d_xs", "x3d_s", "x3d_m", "x3d_tiny"])
def test_matches_pytorchvideo(name: str) -> None:
    _check_parity(FACTORIES[name](num_classes=400, dropout=0.0), _reference(name))


def test_matches_pytorchvideo_l() -> None:
    _check_parity(x3d_l(num_classes=400, dropout=0.0), _reference("x3d_l"))


def test_swish_gradient() -> None:
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Swish(), (x,))
    with torch.no_grad():
        torch.testing.assert_close(Swish()(x), nn.functional.silu(x))


def test_staged_forward_equals_forward() -> None:
    torch.manual_seed(0)
    model = x3d_m(num_classes=10, dropout=0.5).eval()
    _randomise(model)
    x = _clip(2)
    with torch.no_grad():
        y = model.forward_stem(x)
        assert y.shape == (BATCH, 24, CLIP_T, CLIP_HW // 2, CLIP_HW // 2)
        for i, name in enumerate(model.stage_names):
            y = model.forward_stage(name, y)
            side = CLIP_HW // 2 ** (i + 2)
            assert y.shape == (BATCH, model.stage_channels[name], CLIP_T, side, side)
        fmap, pooled = model.forward_head_features(y)
        assert fmap.shape == (BATCH, 432, CLIP_T, 2, 2)
        assert pooled.shape == (BATCH, 2048)
        logits = model.forward_logits(pooled)
        assert logits.shape == (BATCH, 10)
        torch.testing.assert_close(logits, model(x), rtol=0, atol=0)
        # Index-based stage access runs the same modules.
        stem_out = model.forward_stem(x)
        torch.testing.assert_close(model.forward_stage(0, stem_out), model.forward_stage("res2", stem_out))
        # Pooled embedding is the post-conv of the global mean of the feature map.
        manual = torch.relu(model.head.pool.post_conv(fmap.mean(dim=(2, 3, 4), keepdim=True))).flatten(1)
        torch.testing.assert_close(pooled, manual, rtol=1e-5, atol=1e-6)
    with pytest.raises(KeyError):
        model.forward_stage("res6", y)


def test_tiny_any_clip_size_forward_backward() -> None:
    torch.manual_seed(0)
    model = x3d_tiny(num_classes=5).train()
    # Odd sizes: the head pools adaptively over whatever map remains.
    x = _clip(3, t=3, h=72, w=48).requires_grad_(True)
    logits = model(x)
    assert logits.shape == (BATCH, 5)
    fmap, pooled = model.forward_head_features(model.forward_features(x))
    assert fmap.shape[1:] == (model.feature_dim, 3, 3, 2)
    assert pooled.shape == (BATCH, model.embed_dim)
    loss = nn.functional.cross_entropy(logits, torch.tensor([0, 4]))
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_reset_classifier() -> None:
    model = x3d_tiny(num_classes=400)
    model.reset_classifier(174, dropout=0.2)
    assert model.num_classes == 174 and model.spec.num_classes == 174 and model.spec.dropout == 0.2
    assert model.eval()(_clip(4)).shape == (BATCH, 174)
