"""predict, the visualisation and the `predict` CLI end to end on a tiny model and real files."""
import json

import pytest
import torch
from PIL import Image

import s2d
from s2d.cli import main
from s2d.inference.predict import predict
from s2d.inference.viz import save_visualisation


@pytest.fixture(scope="module")
def video(tmp_path_factory, videos):
    return videos.write_video(tmp_path_factory.mktemp("v") / "clip.mp4", num_frames=12, width=96, height=80)


@pytest.fixture
def tiny(tiny_overrides):
    """`tiny(name)`: a named variant at the tiny input sizes, in eval mode."""
    return lambda name="s2dnet-tsm-sthv2": s2d.create(name, **tiny_overrides(name)).eval()


def test_predict_a_file(video, tiny):
    model = tiny()
    pred = model.predict(video, topk=3)
    assert len(pred.labels) == 3 and all(0 <= p <= 1 for _, p in pred.labels)
    assert pred.labels == sorted(pred.labels, key=lambda x: -x[1])
    assert {n for n, _ in pred.labels} <= set(model.labels)
    assert len(pred.synopsis) == model.config.topk
    assert pred.num_frames == 10 and pred.path == str(video)  # 12-frame video, 10-frame dense clip
    assert len(pred.sampling["centre_x"]) == model.config.sampler.frames
    json.dumps(pred.to_dict())


def test_predict_a_clip_equals_the_forward(tiny):
    model = tiny()
    c = model.config
    clip = torch.randint(0, 256, (c.dense_frames, c.dense_size, c.dense_size, 3), dtype=torch.uint8)
    pred = predict(model, clip, topk=2)
    with torch.no_grad():
        logits = model(clip.permute(0, 3, 1, 2)[None]).logits[0]
    assert pred.labels[0][0] == model.labels[int(logits.argmax())]
    with pytest.raises(ValueError, match=rf"\[T, {c.dense_size}, {c.dense_size}, 3\]"):
        predict(model, clip.permute(0, 3, 1, 2))


def test_baseline_predict(video, tiny):
    pred = tiny("x3d-m").predict(video, topk=2)
    assert len(pred.labels) == 2 and pred.synopsis is None


def test_visualisation_files(video, tmp_path, tiny):
    model = tiny("s2dnet-x3d-k400")
    pred = predict(model, video, keep_detail=True)
    png, gif = save_visualisation(pred, model.config, tmp_path)
    img = Image.open(png)
    assert img.size[0] >= 640 and img.size[1] > 200
    anim = Image.open(gif)
    assert anim.n_frames == model.config.sampler.frames
    assert not list(tmp_path.glob("*.part"))


def test_detail_frames_follow_the_layout_not_the_shape():
    """Three detail frames of a TSM model ([T_d=3, 3, S, S]) are not mistaken for X3D's [3, T_d, S, S]."""
    from s2d.inference.viz import detail_frames

    v = torch.zeros(3, 3, 4, 4)
    v[1, 0] = 1.0  # frame 1, red channel
    mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    tsm = detail_frames(v, "btchw", mean, std)
    assert tsm.shape == (3, 4, 4, 3) and tsm[1, ..., 0].min() == 255 and tsm.sum() == 255 * 16
    x3d = detail_frames(v, "bcthw", mean, std)  # the same tensor read as channel 1, frame 0: green
    assert x3d[0, ..., 1].min() == 255 and x3d.sum() == 255 * 16
    with pytest.raises(ValueError, match="layout"):
        detail_frames(v, "bthwc", mean, std)


def test_cli_continues_past_bad_files(video, tmp_path, capsys, monkeypatch, tiny, videos):
    import s2d.cli.predict as cli_predict
    monkeypatch.setattr(cli_predict, "load_model", lambda name, device, untrained: setattr(m := tiny(name), "pretrained", False) or m)
    bad = videos.write_not_video(tmp_path / "bad.mp4")
    code = main(["predict", str(video), str(bad), str(tmp_path / "missing.mp4"), "--model", "s2dnet-tsm-sthv2",
                 "--untrained", "--json", "--vis", str(tmp_path / "vis")])
    out, err = capsys.readouterr()
    assert code == 1
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 1 and rows[0]["path"] == str(video)
    assert "2 of 3 videos failed" in err and "bad.mp4" in err and "missing.mp4" in err
    assert "untrained" in err
    assert (tmp_path / "vis" / "clip.png").is_file() and (tmp_path / "vis" / "clip.gif").is_file()


def test_cli_unknown_model(capsys):
    assert main(["predict", "x.mp4", "--model", "s2dnet-tsm-sthv3", "--untrained"]) == 2
    assert "s2dnet-tsm-sthv2" in capsys.readouterr().err
