"""Tests for `s2d.data` datasets, list preparation and the `data` command line."""
from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

import s2d.cli as cli
from s2d.data import (KineticsCSVDataset, PrepareReport, SkippedVideoWarning, SomethingV2Dataset,
                      VideoDataset, VideoListDataset, collate, drop_failed, load_classes,
                      parse_list_line, prepare_list)
from s2d.io import ClipSpec, VideoError

SPEC = ClipSpec(num_frames=4, short_side=24, crop_size=24)


@pytest.fixture(scope="session")
def encode(videos):
    """`encode(path, num_frames=8)`: an index video at `path` (H.264 when this FFmpeg can write it, else MPEG-4)."""
    codec = "h264" if videos.encoder_available("h264") else "mpeg4"

    def write(path: Path, num_frames: int = 8) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return videos.write_video(path, num_frames=num_frames, codec=codec)

    return write


@pytest.fixture(scope="module")
def class_tree(tmp_path_factory: pytest.TempPathFactory, encode, videos) -> Path:
    """root/<class>/<video>: two classes with good videos, one unreadable file, one empty class."""
    root = tmp_path_factory.mktemp("tree")
    encode(root / "jumping" / "a.mp4")
    encode(root / "jumping" / "nested" / "b with space.mp4", num_frames=5)
    encode(root / "running" / "c.mp4", num_frames=12)
    videos.write_not_video(root / "running" / "broken.mp4")
    (root / "running" / "notes.txt").write_text("not a video")
    (root / "sitting").mkdir()
    return root


@pytest.fixture(scope="module")
def mixed_list(tmp_path_factory: pytest.TempPathFactory, encode, videos) -> tuple[Path, list[Path]]:
    """A list of four videos of which index 1 is unreadable."""
    root = tmp_path_factory.mktemp("mixed")
    good = [encode(root / f"v{i}.mp4", num_frames=6 + i) for i in range(3)]
    bad = videos.write_not_video(root / "bad.mp4")
    listing = root / "list.txt"
    listing.write_text("v0.mp4 0\nbad.mp4 1\nv1.mp4 2\nv2.mp4 3\n")
    return listing, [good[0], bad, good[1], good[2]]


# ------------------------------------------------------------------------------------------
# List files and class names


@pytest.mark.parametrize("line,expected", [
    ("a/b.mp4 3", ("a/b.mp4", 3)),
    ("folder with space/clip 1.mp4 7", ("folder with space/clip 1.mp4", 7)),
    ("somevideo 120 5", ("somevideo", 5)),
    ("  x.webm\t2  ", ("x.webm", 2)),
    ("", None),
    ("# comment 1", None),
])
def test_parse_list_line(line: str, expected) -> None:
    assert parse_list_line(line) == expected


def test_parse_list_line_rejects_missing_label() -> None:
    with pytest.raises(ValueError, match="path label"):
        parse_list_line("video.mp4")


def test_load_classes(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("b\na\n\n")
    (tmp_path / "labels.json").write_text(json.dumps({"Zed": "1", "Alpha": "0"}))
    assert load_classes(tmp_path / "c.txt") == ["b", "a"]
    assert load_classes(str(tmp_path / "labels.json")) == ["Alpha", "Zed"]
    assert load_classes(["x", "y"]) == ["x", "y"]
    with pytest.raises(ValueError, match="without gaps"):
        load_classes({"a": 0, "b": 2})


def test_video_list_dataset(tmp_path: Path, encode, videos) -> None:
    encode(tmp_path / "videos" / "one.mp4", num_frames=8)
    encode(tmp_path / "videos" / "two words.mp4", num_frames=3)
    encode(tmp_path / "videos" / "frames_style.mp4", 6)
    listing = tmp_path / "lists" / "val.txt"
    listing.parent.mkdir()
    listing.write_text("# path label\none.mp4 1\ntwo words.mp4 0\nframes_style 100 2\n")
    (tmp_path / "lists" / "classes.txt").write_text("zero\none\ntwo\n")
    ds = VideoListDataset(listing, tmp_path / "videos", SPEC, on_error="raise")
    assert len(ds) == 3 and ds.classes == ["zero", "one", "two"]
    sample = ds[0]
    assert set(sample) == {"frames", "num_frames", "label", "index", "path", "error"}
    assert sample["frames"].shape == (4, 24, 24, 3) and sample["frames"].dtype == torch.uint8
    assert (sample["num_frames"], sample["label"], sample["index"], sample["error"]) == (4, 1, 0, None)
    assert videos.decode_indices(sample["frames"]) == [0, 2, 4, 7]
    short = ds[1]
    assert short["num_frames"] == 3 and videos.decode_indices(short["frames"]) == [0, 1, 2, 2]
    tsm = ds[-1]  # an extension-less TSM-style entry finds frames_style.mp4
    assert tsm["path"].endswith("frames_style.mp4") and tsm["label"] == 2 and tsm["index"] == 2
    with pytest.raises(IndexError):
        ds[3]


def test_video_list_reports_bad_line(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("a.mp4 1\nb.mp4 label\n")
    with pytest.raises(ValueError, match="list.txt:2"):
        VideoListDataset(listing, tmp_path, SPEC)


# ------------------------------------------------------------------------------------------
# Error policies


def test_on_error_raise(mixed_list) -> None:
    listing, paths = mixed_list
    ds = VideoListDataset(listing, None, SPEC, on_error="raise")
    with pytest.raises(VideoError) as caught:
        ds[1]
    assert caught.value.path == str(paths[1]) and "not a readable video" in caught.value.reason


def test_on_error_skip_returns_next_readable(mixed_list) -> None:
    listing, paths = mixed_list
    ds = VideoListDataset(listing, None, SPEC, on_error="skip")
    with pytest.warns(SkippedVideoWarning) as record:
        sample = ds[1]
    assert sample["path"] == str(paths[2]) and sample["index"] == 2 and sample["label"] == 2
    assert ds.skipped == 1
    message = str(record[0].message)
    assert str(paths[1]) in message and "1 skipped so far" in message
    with pytest.warns(SkippedVideoWarning, match="2 skipped so far"):
        ds[1]


def test_on_error_skip_gives_up(tmp_path: Path, videos) -> None:
    bad = [videos.write_not_video(tmp_path / f"bad{i}.mp4") for i in range(3)]
    ds = VideoDataset([(p, 0) for p in bad], SPEC, on_error="skip", max_skips=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedVideoWarning)
        with pytest.raises(VideoError, match="gives up"):
            ds[0]
    assert ds.skipped == 5


def test_on_error_record(mixed_list) -> None:
    listing, paths = mixed_list
    ds = VideoListDataset(listing, None, SPEC, on_error="record")
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch["frames"].shape == (4, 4, 24, 24, 3) and batch["frames"].dtype == torch.uint8
    assert batch["num_frames"].tolist() == [4, 0, 4, 4]
    assert batch["labels"].tolist() == [0, 1, 2, 3] and batch["labels"].dtype == torch.long
    assert batch["indices"].tolist() == [0, 1, 2, 3]
    assert batch["errors"][1] is not None and batch["errors"].count(None) == 3
    assert not batch["frames"][1].any()
    assert ds.failures == [(str(paths[1]), batch["errors"][1])]
    kept = drop_failed(batch)
    assert kept["frames"].shape[0] == 3 and kept["paths"] == [str(paths[i]) for i in (0, 2, 3)]
    assert kept["labels"].tolist() == [0, 2, 3]


def test_invalid_policy() -> None:
    with pytest.raises(ValueError, match="on_error"):
        VideoDataset([], SPEC, on_error="ignore")


def test_dataloader_workers_skip(mixed_list) -> None:
    listing, paths = mixed_list
    ds = VideoListDataset(listing, None, SPEC, on_error="skip")
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedVideoWarning)
        batches = list(loader)
    seen = [p for b in batches for p in b["paths"]]
    assert len(seen) == 4 and str(paths[1]) not in seen
    assert seen.count(str(paths[2])) == 2  # the unreadable video was replaced by its neighbour
    for b in batches:
        assert b["frames"].dtype == torch.uint8 and b["frames"].shape[1:] == (4, 24, 24, 3)
        assert b["num_frames"].dtype == torch.long and b["labels"].dtype == torch.long
        assert all(err is None for err in b["errors"])
    assert ds.skipped == 0  # counted in the worker's copy, not here


def test_dataloader_workers_record(mixed_list) -> None:
    listing, paths = mixed_list
    ds = VideoListDataset(listing, None, SPEC, on_error="record")
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate)
    failures = [(p, e) for b in loader for p, e in zip(b["paths"], b["errors"]) if e is not None]
    assert len(failures) == 1 and failures[0][0] == str(paths[1])
    assert "not a readable video" in failures[0][1]
    assert ds.failures == []  # each worker recorded into its own copy


# ------------------------------------------------------------------------------------------
# Annotation formats


KINETICS_CLASSES = ["abseiling", "air drumming", "passing American football (in game)"]


def test_kinetics_csv(tmp_path: Path, encode, videos) -> None:
    root = tmp_path / "k400"
    encode(root / "abc_000010_000020.mp4", num_frames=8)
    encode(root / "air_drumming" / "-dashid.mp4", num_frames=6)  # {youtube_id}.mp4 in a class folder
    encode(root / "q_x_000001_000011.mp4", num_frames=5)
    csv_file = tmp_path / "val.csv"
    with open(csv_file, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        writer.writerow(["abseiling", "abc", 10, 20, "val"])
        writer.writerow(["air drumming", "-dashid", 3, 13, "val"])
        writer.writerow(["passing American football (in game)", "q_x", 1, 11, "val"])
        writer.writerow(["abseiling", "gone", 0, 10, "val"])
    with pytest.warns(UserWarning, match="1 of 4 listed clips have no video file"):
        ds = KineticsCSVDataset(csv_file, root, SPEC, KINETICS_CLASSES, on_error="raise")
    assert len(ds) == 3 and ds.missing == ["gone_000000_000010"]
    assert [label for _, label in ds.samples] == [0, 1, 2]
    assert ds.classes == KINETICS_CLASSES
    sample = ds[1]
    assert sample["path"].endswith("-dashid.mp4") and sample["label"] == 1
    assert videos.decode_indices(sample["frames"]) == sample_indices(6)


def sample_indices(n: int) -> list[int]:
    return torch.linspace(0, n - 1, SPEC.num_frames).to(torch.int64).tolist()


def test_kinetics_labels_and_unknown_classes(tmp_path: Path, encode) -> None:
    encode(tmp_path / "v1.mp4")
    csv_file = tmp_path / "train.csv"
    csv_file.write_text("label,youtube_id,time_start,time_end,split\n"
                        "Air_Drumming,v1,0,10,train\nunicycling,v1,0,10,train\n")
    with pytest.raises(ValueError, match="unicycling"):
        KineticsCSVDataset(csv_file, tmp_path, SPEC, KINETICS_CLASSES)
    ds = KineticsCSVDataset(csv_file, tmp_path, SPEC, KINETICS_CLASSES, drop_unknown=True)
    assert ds.samples == [(str(tmp_path / "v1.mp4"), 1)] and ds.dropped == 1
    test_csv = tmp_path / "test.csv"
    test_csv.write_text("youtube_id,time_start,time_end,split\nv1,0,10,test\n")
    assert KineticsCSVDataset(test_csv, tmp_path, SPEC, KINETICS_CLASSES).samples[0][1] == -1


def test_something_v2(tmp_path: Path, encode, videos) -> None:
    root = tmp_path / "20bn"
    root.mkdir()
    if videos.encoder_available("vp9"):
        videos.write_video(root / "101.webm", num_frames=8, codec="vp9")
    else:
        encode(root / "101.mp4", num_frames=8)
    encode(root / "202.mp4", num_frames=7)  # converted to MP4: still found
    labels = tmp_path / "something-something-v2-labels.json"
    labels.write_text(json.dumps({"Approaching something with your camera": "0",
                                  "Putting something on a surface": "1"}))
    annotations = tmp_path / "validation.json"
    annotations.write_text(json.dumps([
        {"id": "101", "label": "putting a cup on a table", "template": "Putting [something] on a surface",
         "placeholders": ["a cup"]},
        {"id": "202", "label": "approaching a pen", "template": "Approaching [something] with your camera",
         "placeholders": ["a pen"]},
        {"id": "303", "label": "approaching nothing", "template": "Approaching [something] with your camera"},
    ]))
    ds = SomethingV2Dataset(annotations, root, SPEC, labels, on_error="record")
    assert [label for _, label in ds.samples] == [1, 0, 0]
    assert ds.samples[1][0].endswith("202.mp4") and ds.samples[2][0].endswith("303.webm")
    first = ds[0]
    assert first["label"] == 1 and videos.decode_indices(first["frames"]) == sample_indices(8)
    missing = ds[2]
    assert missing["num_frames"] == 0 and "not found" in missing["error"]
    test_json = tmp_path / "test.json"
    test_json.write_text(json.dumps([{"id": "202"}]))
    assert SomethingV2Dataset(test_json, root, SPEC, labels).samples[0][1] == -1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "1", "template": "Juggling [something]"}]))
    with pytest.raises(ValueError, match="Juggling something"):
        SomethingV2Dataset(bad, root, SPEC, labels)


# ------------------------------------------------------------------------------------------
# prepare_list and the command line


def test_prepare_list(class_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "lists" / "train.txt"
    report = prepare_list(class_tree, out)
    assert isinstance(report, PrepareReport)
    assert report.classes == ["jumping", "running", "sitting"]
    assert (tmp_path / "lists" / "classes.txt").read_text().split("\n")[:3] == report.classes
    assert out.read_text().splitlines() == [
        "jumping/a.mp4 0", "jumping/nested/b with space.mp4 0", "running/c.mp4 1"]
    assert report.videos == 3 and report.per_class == {"jumping": 2, "running": 1, "sitting": 0}
    assert [p for p, _ in report.unreadable] == ["running/broken.mp4"] and not report.ok
    assert report.empty_classes == ["sitting"] and report.ignored == ["running/notes.txt"]
    assert "running/broken.mp4: not a readable video" in report.summary()
    # The list reads back as a dataset, class names included.
    ds = VideoListDataset(out, class_tree, SPEC, on_error="raise")
    assert ds.classes == report.classes and [ds[i]["label"] for i in range(3)] == [0, 0, 1]


def test_prepare_list_without_check_and_inside_root(class_tree: Path, tmp_path: Path, encode, videos) -> None:
    root = tmp_path / "copy"
    encode(root / "walk" / "x.mp4")
    videos.write_not_video(root / "walk" / "y.mp4")
    report = prepare_list(root, root / "lists" / "all.txt", check=False)
    assert report.ok and report.videos == 2 and not report.checked
    again = prepare_list(root, root / "lists" / "all.txt", check=True, workers=2)
    assert again.classes == ["walk"]  # the list's own folder did not become a class
    assert again.videos == 1 and [p for p, _ in again.unreadable] == ["walk/y.mp4"]


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    # Only the `data` sub-command is under test; other sub-commands live elsewhere.
    monkeypatch.setattr(cli, "COMMANDS", {"data": cli.COMMANDS["data"]})
    return cli.main(args)


def test_cli_prepare(class_tree: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, encode) -> None:
    out = tmp_path / "train.txt"
    status = run_cli(["data", "prepare", str(class_tree), "--out", str(out), "--workers", "2"], monkeypatch)
    printed = capsys.readouterr().out
    assert status == 1
    assert "classes: 3" in printed and "videos: 3 listed" in printed
    assert "unreadable: 1" in printed and "running/broken.mp4" in printed
    assert len(out.read_text().splitlines()) == 3

    status = run_cli(["data", "prepare", str(class_tree), "--out", str(out), "--no-check"], monkeypatch)
    assert status == 0 and "videos: 4 listed" in capsys.readouterr().out

    good = tmp_path / "good"
    encode(good / "a" / "1.mp4")
    assert run_cli(["data", "prepare", str(good), "--out", str(tmp_path / "g.txt")], monkeypatch) == 0
    assert run_cli(["data", "prepare", str(tmp_path / "nowhere"), "--out", str(out)], monkeypatch) == 2
    assert "not a folder" in capsys.readouterr().err
    assert run_cli(["data"], monkeypatch) == 2
