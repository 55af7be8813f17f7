"""`torchrun ... -m s2d predict ... --output FILE` over real gloo process groups on CPU: every video
recorded exactly once, in input order, with the labels and features of a single-process run; the
videos shared dynamically (a rank held back on purpose takes no more than its first claim); a rank
killed with SIGKILL, then a rerun with another world size that keeps what was recorded and redoes
the rest."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import s2d
from s2d.cli import main
from s2d.inference.distributed import CLAIM_BATCHES, HOLD_ENV, part_path
from s2d.inference.features import read_features
from s2d.inference.results import ResultsFile, path_key

ROOT = Path(__file__).resolve().parents[2]
TINY = {"num_classes": 4, "labels": None, "topk": 2, "dense_frames": 8, "dense_size": 48,
        "synopsis": {"arch": "x3d_tiny", "frames": 4, "size": 32}, "detail": {"arch": "x3d_tiny"},
        "sampler": {"frames": 4, "size": 24}}
#: Per run: no decoding workers and batches of one, so a claim is `CLAIM_BATCHES` videos.
OPTIONS = ["--workers", "0", "--batch-size", "1", "--topk", "2"]
CHUNK = CLAIM_BATCHES


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("model") / "tiny"
    torch.manual_seed(0)
    s2d.create("s2dnet-x3d-k400", **TINY).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def collection(tmp_path_factory, videos) -> Path:
    """Eight tiny videos (two stems repeated in a sub-folder) and one that is not a video."""
    root = tmp_path_factory.mktemp("collection")
    (root / "sub").mkdir()
    for i in range(8):
        folder = root / "sub" if i >= 6 else root
        videos.write_video(folder / f"c{i % 6}.mp4", num_frames=6 + i, width=48, height=40)
    videos.write_not_video(root / "broken.mp4")
    return root


@pytest.fixture(scope="module")
def reference(tmp_path_factory, model_dir, collection):
    """The single-process run: its records and features folder."""
    out = tmp_path_factory.mktemp("reference")
    code = main(["predict", str(collection), "--model", model_dir, "--output", str(out / "r.jsonl"),
                 "--features", str(out / "features"), *OPTIONS])
    assert code == 1  # the broken video
    return read(out / "r.jsonl"), out / "features"


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def launch(ranks: int, model_dir: str, collection: Path, out: Path, *extra: str, hold: int | None = None):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT), env_path()]))
    env.pop(HOLD_ENV, None)
    if hold is not None:
        env[HOLD_ENV] = str(hold)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
               "-m", "s2d", "predict", str(collection), "--model", model_dir, "--output", str(out), *OPTIONS, *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=out.parent)


def env_path() -> str:
    return os.environ.get("PYTHONPATH", "")


def finish(process: subprocess.Popen, timeout: float = 240) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    return output


def same_labels(records: list[dict], expected: list[dict]) -> None:
    assert [r["path"] for r in records] == [r["path"] for r in expected]
    for got, want in zip(records, expected):
        assert got["error"] == want["error"] and got["num_frames"] == want["num_frames"]
        assert [x["label"] for x in got["labels"]] == [x["label"] for x in want["labels"]]
        assert [x["prob"] for x in got["labels"]] == pytest.approx([x["prob"] for x in want["labels"]], abs=2e-6)


def same_features(folder: Path, expected: Path) -> None:
    names = sorted(os.listdir(expected))
    assert sorted(os.listdir(folder)) == names and len(names) == 8  # one per readable video, repeated stems included
    for name in names:
        got, meta = read_features(folder / name)
        want, want_meta = read_features(expected / name)
        assert meta == want_meta and got.keys() == want.keys() == {"synopsis", "detail"}
        for key in want:
            torch.testing.assert_close(got[key], want[key], atol=1e-5, rtol=1e-5)


def test_ranks_share_the_videos_dynamically_and_record_each_once_in_input_order(tmp_path, model_dir, collection,
                                                                              reference):
    """Rank 1 holds its first claim until rank 0 has claimed everything else: the whole set is still done,
    rank 1 recording no more than that one claim (a static split would give it half)."""
    expected, expected_features = reference
    out = tmp_path / "results.jsonl"
    output = finish(launch(2, model_dir, collection, out, "--features", str(tmp_path / "features"), hold=1))
    match = re.search(r"(\d+) videos recorded by 2 rank\(s\) \(per rank: (\d+), (\d+); (\d+) failed\)", output)
    assert match, output
    total, first, second, failed = map(int, match.groups())
    assert total == first + second == 9 and failed == 1 and second <= CHUNK, output
    records = read(out)
    assert len({path_key(r["path"]) for r in records}) == len(records) == 9
    assert [r["error"] is not None for r in records].count(True) == 1  # the broken video, recorded once
    same_labels(records, expected)
    same_features(tmp_path / "features", expected_features)
    assert not list(tmp_path.glob(".results.jsonl.*")), "part files and locks are removed after the merge"


def pid_of(lock: Path) -> int | None:
    """The pid written in an `OutputLock` file ("pid N on host"), once it is there."""
    try:
        found = re.match(r"pid (\d+)", lock.read_text())
    except FileNotFoundError:
        return None
    return int(found.group(1)) if found else None


def kill_rank_1_mid_run(tmp_path: Path, model_dir: str, collection: Path) -> Path:
    """A 2-rank run whose rank 1 is killed (SIGKILL) while it holds claimed videos, once rank 0 has
    recorded some: returns the output path (with part files, not yet merged)."""
    out = tmp_path / "results.jsonl"
    process = launch(2, model_dir, collection, out, hold=1)
    part0, lock1 = part_path(out, 0), part_path(out, 1).with_name(f".{part_path(out, 1).name}.lock")
    try:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and process.poll() is None:
            pid = pid_of(lock1)
            if pid is not None and part0.exists() and part0.read_bytes().count(b"\n") >= 1:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        output = finish(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0, output
    assert not out.exists() and part0.exists(), output  # stopped before the merge; rank 0's records kept
    assert not ResultsFile(part_path(out, 1), topk=2).records  # rank 1 recorded nothing of what it claimed
    return out


def test_a_killed_rank_is_redone_by_a_rerun_in_one_process(tmp_path, model_dir, collection, reference, capfd):
    expected, _ = reference
    out = kill_rank_1_mid_run(tmp_path, model_dir, collection)
    done = ResultsFile(part_path(out, 0), topk=2).records
    kept, broken_done = len(done), any(r["error"] for r in done)
    capfd.readouterr()
    code = main(["predict", str(collection), "--model", model_dir, "--output", str(out), *OPTIONS])
    assert code == (0 if broken_done else 1)  # 1: the broken video failed in this run
    err = capfd.readouterr().err
    assert f"{kept} of 9 videos already recorded, skipped" in err and kept >= 1
    records = read(out)
    assert len({path_key(r["path"]) for r in records}) == len(records) == 9
    same_labels(records, expected)
    assert not list(tmp_path.glob(".results.jsonl.*"))
    assert main(["predict", str(collection), "--model", model_dir, "--output", str(out), *OPTIONS]) == 0
    assert read(out) == records  # nothing left to do, nothing written twice


@pytest.mark.slow
def test_a_killed_rank_is_redone_by_a_rerun_with_three_ranks(tmp_path, model_dir, collection, reference):
    expected, _ = reference
    out = kill_rank_1_mid_run(tmp_path, model_dir, collection)
    output = finish(launch(3, model_dir, collection, out))
    assert "of 9 videos already recorded, skipped" in output, output
    records = read(out)
    assert len({path_key(r["path"]) for r in records}) == len(records) == 9
    same_labels(records, expected)
    assert not list(tmp_path.glob(".results.jsonl.*"))


def test_the_python_api_in_one_process_merges_what_a_dead_run_left(tmp_path, model_dir, collection, reference):
    """`Session` with `predict_many` (a world of one): a part file of a dead run (out of order, one record also
    in the output) is merged first, only the rest is predicted, and the output ends in input order, each once."""
    from s2d.inference.batch_predict import find_videos, predict_many
    from s2d.inference.distributed import Session

    expected, _ = reference
    videos = find_videos([collection])
    model = s2d.load(model_dir).eval()
    identity = expected[0]["model"]
    out = tmp_path / "results.jsonl"
    ResultsFile(out, topk=2, model=identity).append([expected[3]])
    ResultsFile(part_path(out, 4), topk=2, model=identity).append([expected[6], expected[3], expected[1]])
    session = Session.join("cpu")
    try:
        pending = session.start(out, topk=2, model=identity, videos=videos)
        assert pending == [r["path"] for i, r in enumerate(expected) if i not in (1, 3, 6)]
        assert not part_path(out, 4).exists() and len(read(out)) == 3  # merged before anything else
        for pred in predict_many(model, session.claims(), topk=2, workers=0, part_size=session.chunk):
            session.record([pred.to_dict()])
        assert session.finish(videos) == (set(), 0)
    finally:
        session.close()
    records = read(out)
    same_labels(records, expected)
    assert not list(tmp_path.glob(".results.jsonl.*"))
