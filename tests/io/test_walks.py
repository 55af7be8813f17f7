"""Collecting videos from folders and streams: link loops end, a file reached twice counts once, an
unreadable folder is reported, one path is one input, and an endless stream yields as it goes."""
from __future__ import annotations

import errno
import itertools
import os
from pathlib import Path

import pytest
import torch

import s2d
import s2d.inference.batch_predict as batch_predict
from s2d.inference.batch_predict import find_videos, predict_many

TINY = dict(dense_frames=8, dense_size=64, synopsis={"arch": "x3d_tiny", "frames": 4, "size": 32},
            sampler={"frames": 4, "size": 32}, detail={"arch": "x3d_tiny"})


def _names(found: list[str], root: Path) -> list[str]:
    return [os.path.relpath(p, root) for p in found]


@pytest.fixture
def linked(tmp_path, videos):
    """a/ holds v.mp4 and three links back to itself or above; b/ holds w.mp4, a link to a/, a link to
    a/v.mp4 and a hard link to it; c links to b."""
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    videos.write_video(root / "a" / "v.mp4", num_frames=4)
    videos.write_video(root / "b" / "w.mp4", num_frames=4)
    for name, target in (("a/self1", "."), ("a/self2", "."), ("a/up", ".."), ("b/to_a", "../a"),
                         ("b/alias.mp4", "../a/v.mp4"), ("c", "b")):
        os.symlink(target, root / name)
    os.link(root / "a" / "v.mp4", root / "b" / "hard.mp4")
    return root


@pytest.mark.timeout(60, method="signal")
def test_link_loops_end_and_each_video_is_listed_once(linked):
    """Two links to their own folder made the walk grow without end; each folder is now read once."""
    assert _names(find_videos([linked]), linked) == ["a/v.mp4", "b/w.mp4"]


@pytest.mark.timeout(60, method="signal")
def test_one_self_link_does_not_repeat_a_video(tmp_path, videos):
    """One link to its own folder listed the folder's video 41 times (until the links ran too deep)."""
    videos.write_video(tmp_path / "v.mp4", num_frames=4)
    os.symlink(".", tmp_path / "again")
    os.symlink("missing.mp4", tmp_path / "broken.mp4")  # still listed: the reader reports it
    assert _names(find_videos([tmp_path]), tmp_path) == ["broken.mp4", "v.mp4"]


def test_a_file_named_through_links_is_kept_once(linked):
    a = linked / "a"
    named = [a / "v.mp4", linked / "b" / "alias.mp4", a / "self1" / "v.mp4", linked / "b" / "hard.mp4",
             linked / "b" / ".." / "a" / "v.mp4", linked / "b" / "w.mp4", linked / "missing.mp4",
             linked / "b" / ".." / "missing.mp4"]
    assert _names(find_videos(named), linked) == ["a/v.mp4", "b/w.mp4", "missing.mp4"]


def _no_read(monkeypatch, folder: Path) -> None:
    """`folder` cannot be listed, as a chmod 000 folder (which root reads anyway)."""
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(folder):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


@pytest.fixture
def nested(tmp_path, videos):
    for name in ("ok/1.mp4", "shut/2.mp4", "z/3.mp4"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        videos.write_video(tmp_path / name, num_frames=4)
    return tmp_path


def _check_unreadable(root: Path) -> None:
    errors: list[tuple[str, str]] = []
    assert _names(find_videos([root], errors=errors), root) == ["ok/1.mp4", "z/3.mp4"]
    assert errors == [(str(root / "shut"), "Permission denied")]
    with pytest.raises(ValueError, match=r"/shut: cannot be read \(Permission denied\)$"):
        find_videos([root])


def test_an_unreadable_folder_is_reported_not_skipped(nested, monkeypatch):
    _no_read(monkeypatch, nested / "shut")
    _check_unreadable(nested)
    _no_read(monkeypatch, nested)  # the folder named itself
    errors: list[tuple[str, str]] = []
    assert find_videos([nested], errors=errors) == [] and errors == [(str(nested), "Permission denied")]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads a chmod 000 folder anyway")
def test_a_chmod_000_folder_is_reported(nested):
    os.chmod(nested / "shut", 0)
    try:
        _check_unreadable(nested)
    finally:
        os.chmod(nested / "shut", 0o755)


def test_one_path_is_one_input(tmp_path, videos, monkeypatch):
    """A string used to be iterated character by character ("/" then walked the whole disk)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clips").mkdir()
    videos.write_video(tmp_path / "clips" / "v.mp4", num_frames=4)
    for given in ("clips", Path("clips"), ["clips"]):
        assert find_videos(given) == [os.path.join("clips", "v.mp4")]
    assert find_videos("clips/v.mp4") == ["clips/v.mp4"]


# ------------------------------------------------------------------------------------------
# Streams of paths


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return s2d.create("s2dnet-x3d-k400", **TINY).eval()


@pytest.mark.parametrize("workers", [0, 1])
def test_an_endless_stream_yields_as_it_goes(tmp_path, model, workers):
    """predict_many read its whole input before the first prediction: an endless generator never
    yielded. Now it reads a part at a time (the generator below refuses to be read far ahead)."""
    pulled = []

    def endless():
        for i in itertools.count():
            if i > 1000:
                raise AssertionError("the stream was read far ahead of the predictions")
            pulled.append(i)
            yield tmp_path / f"missing{i}.mp4"

    preds = list(itertools.islice(predict_many(model, endless(), workers=workers, batch_size=1), 3))
    assert [os.path.basename(p.path) for p in preds] == ["missing0.mp4", "missing1.mp4", "missing2.mp4"]
    assert all("file not found" in p.error for p in preds)
    assert len(pulled) <= batch_predict.STREAM_BATCHES * max(1, workers)


def test_a_stream_gives_the_predictions_of_a_list(tmp_path, videos, model, monkeypatch):
    paths = [str(videos.write_video(tmp_path / f"v{i}.mp4", num_frames=6 + i, width=64, height=48))
             for i in range(5)]
    paths.insert(2, str(tmp_path / "missing.mp4"))
    whole = list(predict_many(model, paths, batch_size=2, workers=1, topk=3))
    monkeypatch.setattr(batch_predict, "STREAM_BATCHES", 1)  # parts of one batch: several loaders
    streamed = list(predict_many(model, (p for p in paths), batch_size=2, workers=1, topk=3))
    assert [p.path for p in streamed] == [p.path for p in whole] == paths
    for a, b in zip(whole, streamed):
        assert a.error == b.error and [n for n, _ in a.labels] == [n for n, _ in b.labels]
        assert all(abs(x - y) < 1e-6 for (_, x), (_, y) in zip(a.labels, b.labels))
    single = list(predict_many(model, paths[0], workers=0, topk=3))
    assert [p.path for p in single] == paths[:1] and single[0].labels[0][0] == whole[0].labels[0][0]


def test_predict_reports_an_unreadable_folder_and_exits_1(nested, monkeypatch, capsys):
    """The command predicted what it could read and exited 0, silent about the folder it skipped."""
    from s2d.cli import main

    model_dir = nested.parent / f"{nested.name}-model"
    s2d.create("s2dnet-x3d-k400", num_classes=3, labels=None, topk=2, **TINY).save_pretrained(model_dir)
    _no_read(monkeypatch, nested / "shut")
    out = nested.parent / f"{nested.name}-results.jsonl"
    argv = ["predict", str(nested), "--model", str(model_dir), "--workers", "0", "--output", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{nested / 'shut'}: cannot be read (Permission denied); its videos were not predicted" in err
    assert len(out.read_text().splitlines()) == 2  # ok/1.mp4 and z/3.mp4
    assert main(argv) == 1  # a rerun: nothing left to do, the folder still unread
    assert "every video is already recorded" in capsys.readouterr().err


@pytest.mark.timeout(60, method="signal")
def test_class_folders_with_a_link_loop_list_each_video_once(tmp_path, videos):
    from s2d.data.folders import scan_class_folders

    for name in ("a/1.mp4", "b/2.mp4"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        videos.write_video(tmp_path / name, num_frames=4)
    os.symlink(".", tmp_path / "a" / "again")
    os.symlink("..", tmp_path / "b" / "up")
    found = scan_class_folders(tmp_path)
    assert found.classes == ["a", "b"]
    assert sorted(found.videos) == [("a/1.mp4", 0), ("b/2.mp4", 1)]


def test_a_class_list_that_is_not_utf8_is_named(tmp_path):
    from s2d.data.dataset import load_classes

    (tmp_path / "classes.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"classes.txt: not UTF-8 text \(byte 0xe9 at line 1, byte offset 3\); "
                                         r"a class list must be UTF-8"):
        load_classes(tmp_path / "classes.txt")
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ValueError, match=r"deep.json: JSON nested too deeply to read \(a list of names"):
        load_classes(tmp_path / "deep.json")
