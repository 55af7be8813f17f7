"""Your videos, your classes: the class-folder data kind and the `finetune` recipe.

The folder kind's splits (seeded, per class, disjoint; a separate val folder; other splits read
everything) and its errors; `model.name`/`model.init`/`model.freeze`; and the whole flow on a tiny
folder: fine-tune `s2dnet-x3d-synth` onto three new classes, then evaluate and predict, the model
naming the folders' classes everywhere.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

import s2d
import s2d.cli as cli
from s2d.data import SkippedVideoWarning, VideoFolderDataset, scan_class_folders
from s2d.io import ClipSpec
from s2d.train import TrainConfigError, load_config

SPEC = ClipSpec(num_frames=4, short_side=32, crop_size=32)
CLASSES = ["applause", "bow", "wave"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, videos) -> Path:
    """ROOT/<class>/ with 5, 4 and 3 tiny videos (one in a sub-folder), and a stray text file."""
    root = tmp_path_factory.mktemp("folder") / "videos"
    for name, count in zip(CLASSES, (5, 4, 3)):
        for i in range(count):
            sub = root / name / ("takes" if i == 0 else "")
            sub.mkdir(parents=True, exist_ok=True)
            videos.write_video(sub / f"{name}_{i}.mp4", num_frames=12, width=64, height=48)
    (root / "notes.txt").write_text("not a video\n")
    return root


def _paths(ds: VideoFolderDataset) -> set[str]:
    return {Path(p).name for p, _ in ds.samples}


def test_scan_finds_classes_and_videos(folder):
    found = scan_class_folders(folder)
    assert found.classes == CLASSES and found.per_class() == {"applause": 5, "bow": 4, "wave": 3}
    assert "applause/takes/applause_0.mp4" in [rel for rel, _ in found.videos] and found.ignored == ["notes.txt"]


def test_seeded_per_class_split(folder):
    train = VideoFolderDataset(folder, SPEC, split="train", val_fraction=0.3, seed=1)
    val = VideoFolderDataset(folder, SPEC, split="val", val_fraction=0.3, seed=1)
    assert not _paths(train) & _paths(val) and len(train) + len(val) == 12
    assert sorted({label for _, label in val.samples}) == [0, 1, 2]  # every class held out at least once
    assert train.classes == CLASSES and train.defines_classes and not val.defines_classes
    again = VideoFolderDataset(folder, SPEC, split="val", val_fraction=0.3, seed=1)
    assert _paths(again) == _paths(val)
    others = [_paths(VideoFolderDataset(folder, SPEC, split="val", val_fraction=0.3, seed=s)) for s in range(2, 8)]
    assert any(o != _paths(val) for o in others)
    assert len(VideoFolderDataset(folder, SPEC, split="test")) == 12  # other splits: the whole folder


def test_val_folder_and_its_errors(folder, tmp_path, videos):
    val_root = tmp_path / "val"
    (val_root / "wave").mkdir(parents=True)
    videos.write_video(val_root / "wave" / "w.mp4", num_frames=12, width=64, height=48)
    train = VideoFolderDataset(folder, SPEC, split="train", val_root=val_root)
    val = VideoFolderDataset(folder, SPEC, split="val", val_root=val_root, classes=train.classes)
    assert len(train) == 12 and val.samples == [(str(val_root / "wave" / "w.mp4"), 2)]
    (val_root / "juggle").mkdir()
    videos.write_video(val_root / "juggle" / "j.mp4", num_frames=12, width=64, height=48)
    with pytest.raises(ValueError, match="'juggle' are not among the 3 classes"):
        VideoFolderDataset(folder, SPEC, split="val", val_root=val_root, classes=train.classes)
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "b").mkdir()
    videos.write_video(empty / "a" / "x.mp4", num_frames=12, width=64, height=48)
    with pytest.raises(ValueError, match="'b' hold no videos"):
        VideoFolderDataset(empty, SPEC, split="train")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        VideoFolderDataset(tmp_path / "missing", SPEC)
    with pytest.raises(ValueError, match="val_root .* or val_fraction > 0"):
        VideoFolderDataset(folder, SPEC, split="val", val_fraction=0.0)


def test_unreadable_video_is_skipped_and_counted(tmp_path, videos):
    root = tmp_path / "v"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        videos.write_video(root / name / "ok.mp4", num_frames=12, width=64, height=48)
    videos.write_not_video(root / "a" / "broken.mp4")
    ds = VideoFolderDataset(root, SPEC, split="test", on_error="skip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = [ds[i] for i in range(len(ds))]
    assert ds.skipped == 1 and any(issubclass(w.category, SkippedVideoWarning) for w in caught)
    assert all(s["num_frames"] > 0 for s in samples)


def test_model_section_rules():
    cfg = load_config("finetune", ["model.init=s2dnet-x3d-synth", "data.root=/x", "model.freeze=synopsis, locator"])
    assert cfg.model.name is None and cfg.model.freeze == ["synopsis", "locator"]
    from s2d.train.model import run_config

    with pytest.raises(TrainConfigError, match="model.init must name the model"):
        run_config(load_config("finetune", ["data.root=/x"]).model)


def test_finetune_flow_end_to_end(folder, tmp_path, capsys):
    """prepare nothing, fine-tune onto the folder's classes, evaluate, predict: the names travel."""
    out = tmp_path / "run"
    pretrained = s2d.load("s2dnet-x3d-synth")
    assert cli.main(["train", "finetune", "model.init=s2dnet-x3d-synth", f"data.root={folder}", f"out_dir={out}",
                     "data.args.val_fraction=0.25", "stages.stage2_epochs=1", "batch_size=3", "data.workers=0",
                     "model.freeze=synopsis", "progress=false"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["labels"] == CLASSES and config["num_classes"] == 3 and config["topk"] == 3
    tuned = s2d.load(out)
    assert tuned.labels == tuple(CLASSES)
    before, after = pretrained.state_dict(), tuned.state_dict()
    frozen = [k for k in after if k.startswith("synopsis.") and not k.startswith("synopsis.fc")]
    assert frozen and all(torch.equal(after[k], before[k]) for k in frozen)  # frozen: weights and BN stats
    assert not torch.equal(after["detail.backbone.net.blocks.0.conv.conv_t.weight"],
                           before["detail.backbone.net.blocks.0.conv.conv_t.weight"])
    capsys.readouterr()
    assert cli.main(["eval", "--model", str(out), "--data", "folder", f"root={folder}", "--split", "test",
                     "--workers", "0"]) == 0
    assert "run on 12 videos" in capsys.readouterr().out
    results = tmp_path / "results.jsonl"
    assert cli.main(["predict", str(folder / "wave"), "--model", str(out), "--output", str(results),
                     "--workers", "0"]) == 0
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(records) == 3 and all(r["labels"][0]["label"] in CLASSES for r in records)


def test_backbone_checkpoint_converts_as_the_run_starts(folder, tmp_path):
    """`model.init=pytorchvideo:FILE`: one command converts the backbone and fine-tunes on the folder."""
    torch.manual_seed(0)
    source = s2d.create("x3d-m", arch="x3d_tiny").backbone.net  # pytorchvideo's X3D key layout
    ckpt = tmp_path / "x3d_tiny.pyth"
    torch.save({"model_state": source.state_dict()}, ckpt)
    arch = json.dumps({"arch": "x3d_tiny", "frames": 4, "size": 32, "dense_frames": 4, "dense_size": 32})
    out = tmp_path / "run"
    assert cli.main(["train", "finetune", "model.name=x3d-m", f"model.overrides={arch}",
                     f"model.init=pytorchvideo:{ckpt}", f"data.root={folder}", f"out_dir={out}", "model.freeze=[]",
                     "optim.lr=1e-12", "stages.stage2_epochs=1", "batch_size=3", "data.workers=0",
                     "progress=false"]) == 0
    tuned = s2d.load(out)
    assert tuned.labels == tuple(CLASSES) and tuned.fc.out_features == 3
    for key, value in source.state_dict().items():
        if "running" not in key and "num_batches" not in key:  # BatchNorm statistics move in training
            torch.testing.assert_close(tuned.backbone.net.state_dict()[key], value, rtol=0, atol=1e-6, msg=key)
    assert cli.main(["train", "finetune", f"model.init=pytorchvideo:{ckpt}", f"data.root={folder}",
                     f"out_dir={tmp_path / 'no-name'}"]) == 2  # a weights file holds no architecture
