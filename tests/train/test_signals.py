"""SIGTERM and Ctrl-C in every phase of a real `python -m s2d train` process: building the data,
pre-training, validation (read by a DataLoader worker, the signal sent to the whole process group
as a terminal's Ctrl-C is) and the final checkpoint's export. Each stops with 128 + the signal's
number, one message saying how to continue and no traceback, and the command run again completes.

The data (`BlockingClips`, imported by the subprocess as `test_signals:BlockingClips`) blocks once
at the phase under test, after writing a marker file, until the test has sent its signal.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parents[1]
TINY = dict(num_classes=4, labels=None, topk=2, dense_frames=8, dense_size=48,
            synopsis={"arch": "x3d_tiny", "frames": 4, "size": 32}, detail={"arch": "x3d_tiny"},
            sampler={"frames": 4, "size": 24})


class BlockingClips(Dataset):
    """`size` random 8×48² clips labelled `i % 4` that block the run once at `block`:
    "build-SPLIT" (while the dataset is built), "read-SPLIT" (its first sample read) or "export"
    (the first checkpoint committed, before its export). Blocking writes `marker` and waits for
    `marker.go` (60 s at most); once `marker` exists nothing blocks, so a rerun runs through."""

    def __init__(self, split: str = "train", size: int = 4, block: str = "", marker: str = ""):
        self.split, self.size, self.block, self.marker = split, size, block, Path(marker)
        if block == f"build-{split}":
            self.wait()
        if block == "export" and split == "train":
            import s2d.train.checkpoint as checkpoint

            checkpoint.FAULT_HOOK = lambda point, step: self.wait() if point == "committed" else None

    def wait(self) -> None:
        if self.marker.exists():
            return
        self.marker.touch()
        release = self.marker.with_name(self.marker.name + ".go")
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.01)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        if self.block == f"read-{self.split}":
            self.wait()
        g = torch.Generator().manual_seed(1000 * (self.split == "val") + i)
        frames = torch.randint(0, 256, (8, 48, 48, 3), dtype=torch.uint8, generator=g)
        return {"frames": frames, "num_frames": 8, "label": i % 4, "index": i, "path": f"clip{i}", "error": None}


def run_config(tmp: Path, block: str, workers: int = 0, **top) -> list[str]:
    """The command of a 2-step run (1 epoch of 2 batches, validation on 2 clips) blocking at `block`."""
    cfg = {"model": {"name": "s2dnet-x3d-k400", "overrides": TINY},
           "data": {"kind": "test_signals:BlockingClips", "args": {"block": block, "marker": str(tmp / "marker")},
                    "train": {"size": 4}, "val": {"size": 2}, "workers": workers},
           "stages": {"stage1_epochs": 1, "stage2_epochs": 0}, "optim": {"lr": 0.02, "ref_batch": 2},
           "batch_size": 2, "log_every": 1, "progress": False, **top}
    (tmp / "cfg.json").write_text(json.dumps(cfg))
    return [sys.executable, "-m", "s2d", "train", str(tmp / "cfg.json"), "--allow-code", "--out-dir", str(tmp / "run")]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def interrupt(command: list[str], tmp: Path, signum: int, *, group: bool = False) -> tuple[int, str]:
    """Run `command`, send `signum` once it blocks (to its whole process group with `group`), let it
    go on, and return its exit status and stderr."""
    proc = subprocess.Popen(command, env=environment(), stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (tmp / "marker").exists():
            if proc.poll() is not None:
                raise AssertionError(f"training exited before blocking:\n{proc.stderr.read()}")
            assert time.monotonic() < deadline, "the run never reached the phase under test"
            time.sleep(0.01)
        (os.killpg if group else os.kill)(proc.pid, signum)
        (tmp / "marker.go").touch()
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, err


def records(run: Path, kind: str) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    drop = ("samples_per_s", "seconds")  # timings differ between runs
    return [{k: v for k, v in r.items() if k not in drop} for r in rows if r["kind"] == kind]


@pytest.fixture(scope="module")
def stopped_while_building(tmp_path_factory):
    """SIGTERM while the training data is being built, then the same command again (a clean run)."""
    tmp = tmp_path_factory.mktemp("build")
    command = run_config(tmp, "build-train")
    code, err = interrupt(command, tmp, signal.SIGTERM)
    again = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=600)
    return tmp / "run", code, err, again


def test_sigterm_while_building_the_data_stops_at_once_and_the_same_command_starts_over(stopped_while_building):
    run, code, err, again = stopped_while_building
    assert code == 143, err
    assert "Traceback" not in err
    assert "stopped by SIGTERM: nothing was saved; run the same command again to start" in err
    assert again.returncode == 0, again.stderr
    assert (run / "model.safetensors").is_file() and len(records(run, "epoch")) == 1


def test_ctrl_c_during_validation_saves_and_resumes_to_the_records_of_an_uninterrupted_run(
        stopped_while_building, tmp_path):
    """Ctrl-C to the process group while a DataLoader worker reads the validation clips: the worker
    ignores it, the pass stops after its batch, the epoch's training is saved, exit 130; --resume
    repeats the validation and logs what the uninterrupted run logged."""
    clean = stopped_while_building[0]
    command = run_config(tmp_path, "read-val", workers=1)
    code, err = interrupt(command, tmp_path, signal.SIGINT, group=True)
    assert code == 130, err
    assert "Traceback" not in err and "DataLoader worker" not in err
    assert f"stopped by Ctrl-C (SIGINT) at epoch 1, batch 2 (step 2); checkpoint saved in {tmp_path / 'run'}; " \
           "continue with --resume" in err
    assert records(tmp_path / "run", "epoch") == []  # validation did not finish: no epoch record yet
    resumed = subprocess.run(command + ["--resume"], env=environment(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert records(tmp_path / "run", "epoch") == records(clean, "epoch")
    assert records(tmp_path / "run", "step") == records(clean, "step")


def test_sigterm_during_the_final_export_finishes_it_and_exits_143(tmp_path):
    command = run_config(tmp_path, "export")
    code, err = interrupt(command, tmp_path, signal.SIGTERM)
    assert code == 143, err
    assert "Traceback" not in err
    assert "stopped by SIGTERM as the run finished: all 1 epochs are trained and saved" in err
    import s2d

    s2d.load(str(tmp_path / "run"))  # the export completed: the folder loads as a model
    resumed = subprocess.run(command + ["--resume"], env=environment(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "done: 1 epochs, 2 steps" in resumed.stderr


@pytest.mark.slow
@pytest.mark.parametrize("block, signum, code, message", [
    ("read-train", signal.SIGINT, 130, "stopped by Ctrl-C (SIGINT) during pre-training: nothing was saved"),
    ("build-val", signal.SIGINT, 130, "stopped by Ctrl-C (SIGINT): nothing was saved"),
])
def test_signal_in_pretraining_or_building_validation_data(tmp_path, block, signum, code, message):
    """Pre-training with a DataLoader worker, the whole group signalled; and Ctrl-C while the
    validation data is built: no traceback, nothing half-saved, the same command then completes."""
    command = run_config(tmp_path, block, workers=1, phases={"synopsis_pretrain": {"clips": 4}})
    got, err = interrupt(command, tmp_path, signum, group=True)
    assert got == code, err
    assert message in err and "Traceback" not in err
    again = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
