"""Loading a model onto other classes: `s2d.load(..., num_classes=N, labels=[...])`.

What fits loads unchanged, exactly the class-dependent parameters are re-initialised (classifier
rows fresh; the columns that read the top-k vector set to the old columns' mean, scaled when the
top-k shrinks), anything else that does not fit is an error naming the key, and the class names
belong to the model from then on (config, save/load, predictions, records).
"""
from __future__ import annotations

import json

import pytest
import torch

import s2d
from s2d.hub.errors import WeightsMismatchError
from s2d.models.config import ConfigError

SYNTH = "s2dnet-x3d-synth"
S2D_CLASS_KEYS = ["synopsis.fc.weight", "synopsis.fc.bias", "locator.conv.weight", "context.fc.weight",
                  "detail.fc.weight", "detail.fc.bias"]


@pytest.fixture(scope="module")
def pretrained():
    return s2d.load(SYNTH)


def _names(n: int) -> list[str]:
    return [f"my class {i}" for i in range(n)]


def test_new_classes_load_everything_else_unchanged(pretrained):
    model = s2d.load(SYNTH, labels=_names(5))
    assert model.config.num_classes == 5 and model.labels == tuple(_names(5))
    assert model.weights_source.reinitialised == S2D_CLASS_KEYS and model.weights_source.verified
    old, new = pretrained.state_dict(), model.state_dict()
    assert set(old) == set(new)
    for key in set(new) - set(S2D_CLASS_KEYS):
        torch.testing.assert_close(new[key], old[key], rtol=0, atol=0, msg=key)
    for key in ["synopsis.fc.weight", "detail.fc.weight"]:
        assert new[key].shape[0] == 5
    # the columns that read the top-k vector: the feature columns kept, the class columns their mean
    features = pretrained.locator.conv.in_channels - 16
    conv_old, conv_new = old["locator.conv.weight"], new["locator.conv.weight"]
    torch.testing.assert_close(conv_new[:, :features], conv_old[:, :features], rtol=0, atol=0)
    expected = conv_old[:, features:].mean(1, keepdim=True).expand(-1, 5, -1, -1, -1)
    torch.testing.assert_close(conv_new[:, features:], expected)
    ctx_old, ctx_new = old["context.fc.weight"], new["context.fc.weight"]
    torch.testing.assert_close(ctx_new[:, 5:], ctx_old[:, 16:], rtol=0, atol=0)
    torch.testing.assert_close(ctx_new[:, :5], ctx_old[:, :16].mean(1, keepdim=True).expand(-1, 5))


def _class_blind(model, path):
    """`model` with every class column of the locator and context layers equal, saved to `path`."""
    with torch.no_grad():
        features = model.locator.conv.in_channels - model.config.num_classes
        w = model.locator.conv.weight
        w[:, features:] = w[:, features:features + 1].clone()
        c = model.context.fc.weight
        c[:, :model.config.num_classes] = c[:, :1].clone()
    model.save_pretrained(path)
    return model


@pytest.mark.parametrize("classes", [7, 3])  # 3 < top-5: the top-k shrinks to 3 and the columns scale by 5/3
def test_where_to_look_survives_when_it_did_not_depend_on_the_class(classes, tmp_path):
    """A locator whose class columns are all alike looks where it looked before, for any new classes."""
    torch.manual_seed(0)
    blind = _class_blind(s2d.load(SYNTH), tmp_path / "blind")
    model = s2d.load(tmp_path / "blind", num_classes=classes)
    assert model.config.topk == min(5, classes)
    frames = torch.randint(0, 256, (2, 16, 3, 128, 128), dtype=torch.uint8)
    with torch.no_grad():
        before, after = blind(frames), model(frames)
    torch.testing.assert_close(after.params.centre_x, before.params.centre_x, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(after.params.stride_x, before.params.stride_x, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(after.params.centre_t, before.params.centre_t, rtol=1e-4, atol=1e-4)
    assert after.logits.shape == (2, classes) and torch.isfinite(after.logits).all()


def test_what_does_not_fit_is_still_an_error(tmp_path):
    from s2d.hub.weights import load_file_into

    other = s2d.create(SYNTH, fusion={"context_dim": 24})  # another context width: not a class question
    other.save_pretrained(tmp_path / "other")
    target = s2d.create(SYNTH, num_classes=4)
    with pytest.raises(WeightsMismatchError, match=r"context\.fc\.weight has shape \(24, 144\)"):
        load_file_into(target, tmp_path / "other" / "model.safetensors", trained_for=other.config)
    other = s2d.create(SYNTH, locator={"hidden": 8})  # a class-independent layer of another size
    other.save_pretrained(tmp_path / "narrow")
    with pytest.raises(WeightsMismatchError, match="locator"):
        load_file_into(target, tmp_path / "narrow" / "model.safetensors", trained_for=other.config)


def test_baseline_gets_a_new_classifier(tmp_path):
    torch.manual_seed(0)
    base = s2d.create("x3d-m")
    base.save_pretrained(tmp_path / "x3d")
    model = s2d.load(tmp_path / "x3d", num_classes=3)
    assert model.fc.out_features == 3 and model.weights_source.reinitialised == ["fc.weight", "fc.bias"]
    old, new = base.state_dict(), model.state_dict()
    assert all(torch.equal(new[k], old[k]) for k in new if not k.startswith("fc."))


def test_create_pretrained_with_classes_and_its_refusals():
    model = s2d.create(SYNTH, pretrained=True, num_classes=6)
    assert model.config.num_classes == 6 and model.labels is None and model.weights_source.reinitialised
    assert s2d.create(SYNTH, labels=_names(4)).labels == tuple(_names(4))  # untrained, new names
    with pytest.raises(ValueError, match="pretrained=True"):
        s2d.create(SYNTH, pretrained=True, topk=2)
    with pytest.raises(ConfigError, match="names 2 classes but num_classes is 3"):
        s2d.load(SYNTH, num_classes=3, labels=["a", "b"])
    with pytest.raises(ConfigError, match="distinct"):
        s2d.load(SYNTH, labels=["a", "a"])
    with pytest.raises(ConfigError, match="single lines"):
        s2d.load(SYNTH, labels=["a", "b\nc"])


def test_labels_belong_to_the_model(tmp_path, videos):
    names = ["left turn", "right turn", "u-turn"]
    model = s2d.load(SYNTH, labels=names)
    model.save_pretrained(tmp_path / "mine")
    assert json.loads((tmp_path / "mine" / "config.json").read_text())["labels"] == names
    assert "its own classes" in (tmp_path / "mine" / "README.md").read_text()
    again = s2d.load(tmp_path / "mine")
    assert again.labels == tuple(names) and again.weights_source.reinitialised is None
    clip = videos.write_video(tmp_path / "clip.mp4", num_frames=20, width=160, height=128)
    pred = again.predict(clip)
    assert {n for n, _ in pred.labels} <= set(names)
    assert [r["label"] for r in pred.to_dict()["labels"]] == [n for n, _ in pred.labels]
    record = next(iter(s2d.predict_many(again, [clip]))).to_dict()
    assert {r["label"] for r in record["labels"]} <= set(names)
