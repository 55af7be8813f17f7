"""Windows of a video stream read once from a pipe: `predict - --window` (stdin) and `predict_windows(model, file)`."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.videos import write_mpegts

import s2d
from s2d.cli import main
from s2d.inference.windows import predict_windows

SYNTH = "s2dnet-x3d-synth"
PLAN = ["--window", "16f", "--hop", "8f"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    return write_mpegts(tmp_path_factory.mktemp("stream") / "cam.ts")


@pytest.fixture(scope="module")
def piped(stream, tmp_path_factory) -> Path:
    """The records of `predict - --output` fed `stream` on stdin, in a process of its own."""
    out = tmp_path_factory.mktemp("piped") / "r.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(stream, "rb") as stdin:
        argv = [sys.executable, "-m", "s2d", "predict", "-", "--model", SYNTH, *PLAN, "--output", str(out)]
        done = subprocess.run(argv, stdin=stdin, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return out


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def bounds(rows: list[dict]) -> list[tuple]:
    return [(r["window"], r["start_frame"], r["end_frame"], r["start_s"], r["end_s"], r["final"],
             [x["label"] for x in r["labels"]]) for r in rows]


def test_stdin_records_match_the_file(piped, stream, tmp_path):
    assert main(["predict", str(stream), "--model", SYNTH, *PLAN, "--output", str(tmp_path / "f.jsonl")]) == 0
    from_pipe, from_file = records(piped), records(tmp_path / "f.jsonl")
    assert {r["path"] for r in from_pipe} == {"<stdin>"}
    assert len(from_pipe) == 2 and bounds(from_pipe) == bounds(from_file)
    assert [r["start_frame"] for r in from_pipe] == [0, 8] and from_pipe[-1]["final"] is True


def test_stdin_usage_errors(piped, stream, tmp_path, capsys):
    for argv, message in [(["-"], "reading stdin needs --window"),
                          (["-", str(stream), *PLAN], "'-' (a video stream on stdin) must be the only input"),
                          (["-", *PLAN, "--vis", str(tmp_path / "a.mp4")], "--vis cannot re-read stdin"),
                          (["-", *PLAN, "--output", str(piped)], "a stream cannot be resumed")]:
        assert main(["predict", *argv, "--model", SYNTH]) == 2, argv
        assert message in capsys.readouterr().err
    assert not (tmp_path / "a.mp4").exists()


def test_predict_windows_reads_a_file_object(stream):
    model = s2d.load(SYNTH).eval()
    with open(stream, "rb") as handle:
        from_object = list(predict_windows(model, handle, window="16f", hop="8f"))
    from_path = list(predict_windows(model, stream, window="16f", hop="8f"))
    assert [p.path for p in from_object] == [str(stream)] * 2  # the file object's name
    assert [(p.window, p.start_frame, p.end_frame, p.final, p.labels[0][0]) for p in from_object] == \
        [(p.window, p.start_frame, p.end_frame, p.final, p.labels[0][0]) for p in from_path]
    bad = list(predict_windows(model, io.BytesIO(b"not a video" * 100), window="16f"))
    assert len(bad) == 1 and bad[0].window is None and bad[0].path == "<stream>"
    assert "not a readable video stream" in bad[0].error
