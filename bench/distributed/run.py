"""`torchrun ... -m s2d predict` on real-size videos: exactly once, labels, kill and resume, throughput.

Encodes 18 synthetic 10 s 456×256 videos (the predict bench's kind), then runs `python -m s2d predict`
over them with `s2dnet-x3d-synth` in one process and under `torchrun --standalone` with 2 and 3
processes (gloo), and checks every run's records against the single-process run: each video once, in
input order, the same labels. Then a 2-process run whose rank 1 is SIGKILLed once rank 0 has recorded
a few videos, followed by a rerun with 3 processes: every video once again. One JSON line per run on
stdout (wall time, the machine's load). Usage: `python bench/distributed/run.py [WORKDIR]`.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from s2d.bench.decode import VideoShape, encode_video

MODEL = "s2dnet-x3d-synth"
COUNT = 18


def videos(folder: Path) -> list[str]:
    """COUNT videos of 10 s, each a different length so that ranks draw unequal work."""
    paths = []
    for i in range(COUNT):
        sub = folder / f"{i:02d}"
        if not sub.exists():
            sub.mkdir(parents=True)
            encode_video(sub, VideoShape(300 - 6 * i, 456, 256))
        paths.extend(str(p) for p in sorted(sub.glob("*.mp4")))
    return paths


def predict(folder: Path, output: Path, procs: int, *, kill_after: int | None = None) -> dict:
    """One run; with `kill_after`, SIGKILL one worker process once the run has recorded that many videos."""
    base = ["predict", str(folder), "--model", MODEL, "--output", str(output), "--workers", "0"]
    if procs == 1:
        argv = [sys.executable, "-m", "s2d", *base]
    else:
        argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
                "-m", "s2d", *base]
    load, start = os.getloadavg()[0], time.perf_counter()
    run = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed = None
    if kill_after is not None:
        while run.poll() is None and killed is None:
            time.sleep(0.5)
            done = sum(len(p.read_text().splitlines()) for p in output.parent.glob(f".{output.name}.part-*"))
            workers = subprocess.run(["pgrep", "-P", str(run.pid)], capture_output=True, text=True).stdout.split()
            if done >= kill_after and len(workers) >= 2:
                killed = int(workers[-1])
                os.kill(killed, signal.SIGKILL)
    _, err = run.communicate()
    wall = time.perf_counter() - start
    return {"procs": procs, "rc": run.returncode, "wall_s": round(wall, 1), "load_at_start": round(load, 2),
            "killed_pid": killed, "stderr_tail": err.strip().splitlines()[-1:] if err.strip() else []}


def records(output: Path) -> list[dict]:
    return [json.loads(line) for line in output.read_text().splitlines()] if output.exists() else []


def check(output: Path, reference: list[dict], order: list[str]) -> dict:
    """Each video once, in input order, with the single-process run's labels."""
    got = records(output)
    paths = [r["path"] for r in got]
    top = {r["path"]: r["labels"][0]["label"] for r in got if r["labels"]}
    want = {r["path"]: r["labels"][0]["label"] for r in reference if r["labels"]}
    return {"records": len(got), "each_once": sorted(paths) == sorted(set(paths)) and set(paths) == set(order),
            "input_order": paths == order, "same_top1": sum(top.get(p) == want[p] for p in want), "of": len(want)}


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="s2d-dist-"))
    folder = work / "videos"
    order = videos(folder)
    one = work / "r1.jsonl"
    result = predict(folder, one, 1)
    reference = records(one)
    order = [r["path"] for r in reference]
    print(json.dumps({"run": "1 process", **result, **check(one, reference, order)}), flush=True)
    for procs in (2, 3):
        out = work / f"r{procs}.jsonl"
        result = predict(folder, out, procs)
        print(json.dumps({"run": f"{procs} processes", **result, **check(out, reference, order)}), flush=True)
    out = work / "killed.jsonl"
    result = predict(folder, out, 2, kill_after=4)
    print(json.dumps({"run": "2 processes, one SIGKILLed", **result}), flush=True)
    result = predict(folder, out, 3)
    print(json.dumps({"run": "rerun with 3 processes", **result, **check(out, reference, order)}), flush=True)


if __name__ == "__main__":
    main()
