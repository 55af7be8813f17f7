"""Pooled features for downstream work: opt-in (default outputs unchanged), the same for any batch size
and worker count, written one safetensors file per video with its sampling metadata, under names that
never collide and never replace another video's or model's file."""
from __future__ import annotations

import json
import os

import pytest
import torch

import s2d
from s2d.inference import features
from s2d.inference.batch_predict import predict_many

TINY = {"num_classes": 4, "labels": None, "topk": 2, "dense_frames": 8, "dense_size": 48,
        "synopsis": {"arch": "x3d_tiny", "frames": 4, "size": 32}, "detail": {"arch": "x3d_tiny"},
        "sampler": {"frames": 4, "size": 24}}
TINY_BASELINE = {"num_classes": 4, "labels": None, "dense_frames": 8, "dense_size": 64, "arch": "x3d_tiny",
                 "frames": 4, "size": 32}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return s2d.create("s2dnet-x3d-k400", **TINY).eval()


@pytest.fixture(scope="module")
def clips(tmp_path_factory, videos) -> list[str]:
    root = tmp_path_factory.mktemp("clips")
    (root / "again").mkdir()
    paths = [videos.write_video(root / f"c{i}.mp4", num_frames=6 + i, width=48, height=40) for i in range(4)]
    paths.append(videos.write_video(root / "again" / "c0.mp4", num_frames=13, width=40, height=48))  # a stem again
    return [str(p) for p in paths]


@pytest.fixture(scope="module")
def preds(model, clips) -> list:
    """Predictions of `clips` with features, one video a batch, decoded here."""
    return list(predict_many(model, clips, batch_size=1, workers=0, features=True))


def test_features_are_opt_in_and_leave_the_outputs_bit_identical(model):
    frames = torch.randint(0, 256, (3, 8, 3, 48, 48), dtype=torch.uint8)
    n = torch.tensor([8, 5, 3])
    with torch.no_grad():
        plain, rich = model(frames, n), model(frames, n, return_features=True)
    assert plain.synopsis_features is None and plain.detail_features is None
    for key in ("logits", "snet_logits", "topk", "topk_vector"):
        assert torch.equal(getattr(plain, key), getattr(rich, key)), key
    assert rich.synopsis_features.shape == (3, model.synopsis.backbone.embed_dim)
    assert rich.detail_features.shape == (3, model.detail.backbone.embed_dim)
    torch.manual_seed(0)
    baseline = s2d.create("x3d-m", **TINY_BASELINE).eval()
    frames = torch.randint(0, 256, (2, 8, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        plain, rich = baseline(frames), baseline(frames, return_features=True)
    assert plain.features is None and torch.equal(plain.logits, rich.logits)
    assert rich.features.shape == (2, baseline.backbone.embed_dim)
    assert features.supports_features(model) and features.supports_features(baseline)
    assert not features.supports_features(torch.nn.Identity())


def test_features_do_not_depend_on_batch_size_or_workers(model, clips, preds):
    reference = {p.path: p for p in preds}
    assert all(p.features.keys() == {"synopsis", "detail"} for p in preds)
    batched = list(predict_many(model, clips, batch_size=3, workers=1, features=True))
    assert [p.path for p in batched] == clips
    for pred in batched:
        for key, value in reference[pred.path].features.items():
            torch.testing.assert_close(pred.features[key], value, atol=1e-5, rtol=1e-5)
    assert "features" not in preds[0].to_dict()  # records stay as they were
    assert all(p.features is None for p in predict_many(model, clips[:2], workers=0))  # only when asked


def test_feature_files_have_unique_names_and_the_window_as_metadata(model, clips, preds, tmp_path):
    names = [features.features_name(p) for p in clips]
    assert len(set(names)) == len(names) and names[0].startswith("c0-") and names[-1].startswith("c0-")
    assert features.features_name(clips[0]) == features.features_name(os.path.relpath(clips[0]))  # by the path key
    odd = os.fsdecode(b"/videos/\xff bad\nname.mp4")
    assert features.features_name(odd).endswith(".safetensors") and "\n" not in features.features_name(odd)
    assert len(features.features_name("/v/" + "x" * 300 + ".mp4")) < 100
    written = [features.write_features(tmp_path, p, model="tiny", config=model.config) for p in preds]
    assert sorted(os.listdir(tmp_path)) == sorted(names)
    tensors, meta = features.read_features(written[1])
    torch.testing.assert_close(tensors["detail"], preds[1].features["detail"], atol=0, rtol=0)
    assert meta["path"] == os.path.abspath(clips[1]) and meta["model"] == "tiny" and meta["format"] == "s2d-features/1"
    assert (meta["num_frames"], meta["dense_frames"], meta["synopsis_frames"], meta["detail_frames"]) == ("7", "8",
                                                                                                         "4", "4")
    assert json.loads(meta["sampling"])["stride_t"] == pytest.approx(preds[1].sampling["stride_t"])
    features.write_features(tmp_path, preds[1], model="tiny", config=model.config)  # the same video again: replaced
    assert features.check_features(tmp_path, clips, "tiny") is None


def test_a_file_of_another_video_or_model_is_never_replaced(model, clips, preds, tmp_path):
    pred, other = preds[:2]
    path = features.write_features(tmp_path, pred, model="tiny", config=model.config)
    before = path.read_bytes()
    with pytest.raises(features.FeaturesConflictError, match="not of 'other"):
        features.write_features(tmp_path, pred, model="other", config=model.config)
    assert "holds features of model 'tiny'" in features.check_features(tmp_path, clips[:1], "other")
    planted = tmp_path / features.features_name(clips[1])
    os.link(path, planted)  # a file of that name holding another video's features
    assert "holds the features of" in features.check_features(tmp_path, clips[:2], "tiny")
    with pytest.raises(features.FeaturesConflictError, match="choose another --features folder"):
        features.write_features(tmp_path, other, model="tiny", config=model.config)
    assert path.read_bytes() == before == planted.read_bytes()
    (tmp_path / "file").write_text("x")
    assert "exists and is not a folder" in features.check_features(tmp_path / "file", clips, "tiny")
    assert "has no pooled features" in features.check_features(tmp_path, clips, "tiny", torch.nn.Identity())
