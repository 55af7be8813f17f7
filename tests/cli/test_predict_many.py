"""predict_many and `python -m s2d predict --output`: collections, workers, bad files, resume."""
import csv
import json
import os

import pytest
import torch

import s2d
import s2d.inference.batch_predict as batch_predict
from s2d.cli import main
from s2d.inference.batch_predict import find_videos, predict_many
from s2d.inference.predict import predict
from s2d.inference.results import ResultsFile

#: Tiny X3D networks: the same code paths as the zoo models at a fraction of the cost.
TINY_X3D = {"s2dnet-x3d-k400": dict(dense_frames=8, dense_size=64, synopsis={"arch": "x3d_tiny", "frames": 4, "size": 32},
                                    sampler={"frames": 4, "size": 32}, detail={"arch": "x3d_tiny"}),
            "x3d-m": dict(dense_frames=8, dense_size=64, arch="x3d_tiny", frames=4, size=32)}


@pytest.fixture(scope="module")
def tiny(tiny_overrides):
    """`tiny(name)`: a small eval-mode model of the named variant (tiny X3D nets where listed above)."""

    def make(name: str = "s2dnet-x3d-k400") -> torch.nn.Module:
        torch.manual_seed(0)
        return s2d.create(name, **TINY_X3D.get(name) or tiny_overrides(name)).eval()

    return make


@pytest.fixture(scope="module")
def collection(tmp_path_factory, videos):
    """Five good videos of different lengths (two in a sub-folder), one text file named .mp4 and
    one truncated download."""
    root = tmp_path_factory.mktemp("collection")
    (root / "b").mkdir()
    good = [videos.write_video(root / f"v{i}.mp4", num_frames=8 + 3 * i, width=80, height=64) for i in range(3)]
    good += [videos.write_video(root / "b" / f"w{i}.MP4", num_frames=14 + i, width=64, height=80) for i in range(2)]
    videos.write_not_video(root / "b" / "not-a-video.mp4")
    videos.truncate(good[2], root / "cut.mp4", keep=0.05)
    (root / "notes.md").write_text("not a video extension: not collected")
    return root


def _probs(pred):
    return dict(pred.labels)


def test_find_videos_folders_lists_and_duplicates(collection, tmp_path):
    found = find_videos([collection])
    names = [os.path.relpath(p, collection) for p in found]
    # a folder's own files (sorted) before its sub-folders'; extensions in any case
    assert names == ["cut.mp4", "v0.mp4", "v1.mp4", "v2.mp4", "b/not-a-video.mp4", "b/w0.MP4", "b/w1.MP4"]
    assert find_videos([collection]) == found  # a stable order
    listing = tmp_path / "videos.txt"
    listing.write_text(f"# a dataset list\n{collection / 'v1.mp4'} 3\n\n{collection / 'b' / 'w0.MP4'} 40 7\n"
                       "relative.mp4\n")
    listed = find_videos([listing, collection / "v1.mp4"])
    assert listed == [str(collection / "v1.mp4"), str(collection / "b" / "w0.MP4"), str(tmp_path / "relative.mp4")]


def test_mixed_good_and_bad_files_under_workers(collection, tiny):
    videos = find_videos([collection]) + [str(collection / "missing.mp4")]
    preds = list(predict_many(tiny(), videos, batch_size=2, workers=2, topk=3))
    assert [p.path for p in preds] == videos  # one prediction per video, in input order
    errors = {os.path.basename(p.path): p.error for p in preds if p.error}
    assert set(errors) == {"cut.mp4", "not-a-video.mp4", "missing.mp4"}
    assert "file not found" in errors["missing.mp4"] and "not a readable video" in errors["not-a-video.mp4"]
    for p in preds:
        assert (p.labels == []) == (p.error is not None)
        if p.error is None:
            assert len(p.labels) == 3 and p.num_frames > 0 and p.sampling is not None
            json.dumps(p.to_dict())


@pytest.mark.parametrize("name, configs", [("s2dnet-x3d-k400", [(1, 0), (2, 2), (3, 1), (5, 0)]),
                                           ("s2dnet-tsm-sthv2", [(1, 0), (3, 2)])])
def test_same_predictions_for_any_batch_size_and_worker_count(collection, name, configs, tiny):
    model = tiny(name)
    videos = [p for p in find_videos([collection]) if "cut" not in p and "not-a" not in p]
    K = model.config.num_classes
    runs = {(b, w): list(predict_many(model, videos, batch_size=b, workers=w, topk=K))
            for b, w in configs}
    first = runs[(1, 0)]
    for key, preds in runs.items():
        assert [p.path for p in preds] == videos
        for a, b in zip(first, preds):
            assert a.labels[0][0] == b.labels[0][0], key
            pa, pb = _probs(a), _probs(b)
            assert max(abs(pa[n] - pb[n]) for n in pa) < 1e-6, key
            assert a.num_frames == b.num_frames
    # the plain model, one video at a time, agrees with the optimised batched runs
    for video, batched in zip(videos, first):
        single = predict(model, video, topk=K)
        assert single.labels[0][0] == batched.labels[0][0]
        assert max(abs(p - _probs(batched)[n]) for n, p in single.labels) < 1e-5


def test_the_model_passed_in_is_left_as_it_was(collection, tiny):
    model = tiny("x3d-m").train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    list(predict_many(model, find_videos([collection])[:2], workers=0))
    assert model.training and all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def _patch_model(monkeypatch, tiny):
    import s2d.cli.predict as cli_predict

    def load(name, device, untrained):
        model = tiny(name)
        model.pretrained = False
        return model

    monkeypatch.setattr(cli_predict, "load_model", load)


def _interrupt_after(monkeypatch, count, seen):
    """predict_many that records the videos it is given and raises Ctrl-C after `count` predictions."""
    real = predict_many  # the library's, not an earlier patch

    def interrupted(model, videos, **kwargs):
        videos = list(videos)
        seen.append(videos)
        for i, pred in enumerate(real(model, videos, **kwargs)):
            if count is not None and i == count:
                raise KeyboardInterrupt
            yield pred

    monkeypatch.setattr(batch_predict, "predict_many", interrupted)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_resume_after_an_interruption_without_duplicates(collection, tmp_path, monkeypatch, capsys, suffix, tiny):
    _patch_model(monkeypatch, tiny)
    out = tmp_path / f"results{suffix}"
    argv = ["predict", str(collection), "--model", "s2dnet-x3d-k400", "--untrained", "--output", str(out),
            "--workers", "1", "--batch-size", "2", "--topk", "3"]
    seen: list[list[str]] = []
    _interrupt_after(monkeypatch, 3, seen)
    assert main(argv) == 130  # Ctrl-C
    first = ResultsFile(out, topk=3).records
    assert len(first) == 3  # what finished before the interruption is on disk
    _interrupt_after(monkeypatch, None, seen)
    assert main(argv) == 1  # two bad files among the rest
    all_videos = find_videos([collection])
    assert seen[1] == [v for v in all_videos if v not in {r["path"] for r in first}]  # only the rest is redone
    records = ResultsFile(out, topk=3).records
    assert sorted(r["path"] for r in records) == sorted(all_videos)  # each video once
    failed = {os.path.basename(r["path"]) for r in records if r["error"]}
    assert failed == {"cut.mp4", "not-a-video.mp4"}
    capsys.readouterr()
    assert main(argv) == 0  # a third run has nothing left to do
    assert "already recorded" in capsys.readouterr().err
    assert len(seen) == 2 and len(ResultsFile(out, topk=3).records) == len(all_videos)
    if suffix == ".csv":
        rows = list(csv.DictReader(out.open()))
        assert list(rows[0]) == ["path", "error", "num_frames", "label_1", "prob_1", "label_2", "prob_2",
                                 "label_3", "prob_3", "model"]
        assert len(rows) == len(all_videos)
        with pytest.raises(ValueError, match="--topk"):
            ResultsFile(out, topk=5)
    else:
        good = [json.loads(line) for line in out.read_text().splitlines()]
        assert all(len(r["labels"]) == 3 and r["synopsis"] for r in good if not r["error"])


def test_a_record_cut_short_by_a_crash_is_redone(collection, tmp_path, monkeypatch, tiny):
    _patch_model(monkeypatch, tiny)
    out = tmp_path / "results.jsonl"
    videos = [str(collection / "v0.mp4"), str(collection / "v1.mp4")]
    argv = ["predict", *videos, "--model", "s2dnet-x3d-k400", "--untrained", "--output", str(out), "--workers", "0"]
    assert main(argv) == 0
    lines = out.read_text().splitlines()
    out.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # the crash tore the last record
    assert [r["path"] for r in ResultsFile(out).records] == videos[:1]
    assert main(argv) == 0
    assert [json.loads(line)["path"] for line in out.read_text().splitlines()] == videos


def test_retry_failed_replaces_the_failure_record(tmp_path, monkeypatch, tiny, videos):
    _patch_model(monkeypatch, tiny)
    good = videos.write_video(tmp_path / "good.mp4", num_frames=10, width=64, height=64)
    later = videos.write_not_video(tmp_path / "later.mp4")
    out = tmp_path / "results.jsonl"
    argv = ["predict", str(good), str(later), "--model", "x3d-m", "--untrained", "--output", str(out)]
    assert main(argv) == 1
    videos.write_video(later, num_frames=10, width=64, height=64)  # the download was completed since
    assert main(argv) == 0  # recorded failures are kept without --retry-failed
    assert main([*argv, "--retry-failed"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"] for r in records] == [str(good), str(later)] and not any(r["error"] for r in records)


def test_output_errors(tmp_path, capsys):
    assert main(["predict", str(tmp_path), "--model", "x3d-m", "--untrained", "--output", str(tmp_path / "r.txt")]) == 2
    assert "must end in .jsonl or .csv" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "--model", "x3d-m", "--untrained"]) == 2
    assert "no video files" in capsys.readouterr().err
    assert main(["predict", "x.mp4", "--model", "x3d-m", "--retry-failed"]) == 2
    assert "--retry-failed needs --output" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text("{not json}\n")
    assert main(["predict", "x.mp4", "--model", "x3d-m", "--output", str(tmp_path / "bad.jsonl")]) == 2
    assert "bad.jsonl:1: not a JSON record" in capsys.readouterr().err


def test_bf16_autocast_as_on_cuda_and_the_defaults(collection, monkeypatch, tiny):
    """The CUDA path's autocast (bf16), run on the CPU: same videos, probabilities close to fp32."""
    from s2d.inference.batch_predict import default_batch_size, default_workers

    model = tiny()
    videos = find_videos([collection])[1:3]
    plain = list(predict_many(model, videos, workers=0, topk=400))
    mixed = list(predict_many(model, videos, workers=0, topk=400, amp=True))
    for a, b in zip(plain, mixed):
        assert a.path == b.path and b.error is None
        pa = _probs(a)
        assert max(abs(pa[n] - p) for n, p in b.labels) < 0.05
    monkeypatch.setattr(batch_predict, "_cores", lambda: 16)
    assert (default_workers("cpu"), default_batch_size("cpu")) == (8, 1)
    assert (default_workers("cuda"), default_batch_size("cuda")) == (8, 16)


def test_threads_are_shared_with_the_decoders_and_restored(collection, tiny):
    model = tiny("x3d-m")
    before = torch.get_num_threads()
    seen = []
    for _ in predict_many(model, find_videos([collection])[1:3], workers=1, threads=1):
        seen.append(torch.get_num_threads())
    assert seen == [1, 1] and torch.get_num_threads() == before
