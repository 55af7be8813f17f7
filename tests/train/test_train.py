"""Training and evaluation (`s2d.train`, `python -m s2d train/eval`) on a tiny model and tiny data.

The model is an S2DNet of X3D-tiny backbones on 8×48² clips (4 classes); the data are random
uint8 clips held in memory (`RandomClips`, also importable by subprocesses as
`test_train:RandomClips`). Runs that must be separate processes (SIGTERM, torchrun) go through
the real command line.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

import s2d
import s2d.cli as cli
from s2d.train import (TrainConfig, TrainConfigError, build_dataset, evaluate, load_config, register_dataset, train,
                       unregister_dataset)
from s2d.train.checkpoint import STATE_NAME, latest_checkpoint, load_state
from s2d.train.optim import WarmupCosine, build_optimizer, build_scheduler

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parents[1]

TINY = dict(num_classes=4, labels=None, topk=2, dense_frames=8, dense_size=48,
            synopsis={"arch": "x3d_tiny", "frames": 4, "size": 32}, detail={"arch": "x3d_tiny"},
            sampler={"frames": 4, "size": 24})
# Without dropout a forward pass is a function of the weights and the batch alone.
NO_DROPOUT = {"synopsis": {"dropout": 0.0, "context_dropout": 0.0}, "detail": {"dropout": 0.0}}


def tiny_model(**extra) -> torch.nn.Module:
    overrides = {**TINY, **extra}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(TINY.get(key), dict):
            overrides[key] = {**TINY[key], **value}
    return s2d.create("s2dnet-x3d-k400", **overrides)


class RandomClips(Dataset):
    """`size` random 8×48² uint8 clips with labels `i % 4` and 4..8 valid frames.

    Each access rolls the clip by a random 0/1 pixel, drawn from torch's global generator, so
    the trainer's per-sample seeding is exercised the way a random crop would (`jitter=False`
    turns it off). Sample `bad`
    (when given) is an unreadable video (`num_frames` 0 and an error), as `on_error="record"`
    datasets return. Views: view v of a sample shifts its frames by v in time.
    """

    def __init__(self, split: str = "train", size: int = 8, seed: int = 0, bad: int | None = None,
                 jitter: bool = True):
        g = torch.Generator().manual_seed(2 * seed + (split == "train"))
        self.frames = torch.randint(0, 256, (size, 8, 48, 48, 3), dtype=torch.uint8, generator=g)
        self.num = torch.randint(4, 9, (size,), generator=g)
        self.bad, self.jitter = bad, jitter

    def __len__(self) -> int:
        return self.frames.shape[0]

    def __getitem__(self, i: int) -> dict:
        return self.get_view(i, 0, 1)

    def get_view(self, i: int, view: int, num_views: int) -> dict:
        if i == self.bad:
            return {"frames": torch.zeros(8, 48, 48, 3, dtype=torch.uint8), "num_frames": 0, "label": i % 4,
                    "index": i, "path": f"clip{i}", "error": "cannot decode"}
        shift = int(torch.randint(0, 2, ()).item()) if self.jitter else 0
        frames = self.frames[i].roll(shift, 1).roll(view, 0)
        return {"frames": frames, "num_frames": int(self.num[i]), "label": i % 4, "index": i, "path": f"clip{i}",
                "error": None}


@pytest.fixture(autouse=True, scope="module")
def _tiny_kind():
    register_dataset("tiny-clips", lambda split, model_config, **args: RandomClips(split=split, **args),
                     overwrite=True)
    yield
    unregister_dataset("tiny-clips")


def tiny_config(out_dir: Path, *, kind: str = "tiny-clips", train_size: int = 8, val_size: int | None = None,
                stage1: int = 1, stage2: int = 1, batch: int = 4, **top) -> dict:
    return {
        "model": {"name": "s2dnet-x3d-k400", "overrides": dict(TINY)},
        "data": {"kind": kind, "train": {"size": train_size},
                 "val": None if val_size is None else {"size": val_size}, "workers": 0},
        "stages": {"stage1_epochs": stage1, "stage2_epochs": stage2},
        "optim": {"lr": 0.02, "ref_batch": batch},
        "batch_size": batch, "out_dir": str(out_dir), "log_every": 1, "progress": False, **top,
    }


def step_losses(out_dir: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if r["kind"] == "step"]


def weights(out_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out_dir / "model.safetensors"))


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"  # two runs share the 2 cores; the same setting for every run compared
    return env


# -- configuration ---------------------------------------------------------------------------------

def test_config_round_trips_through_json_and_takes_dotted_overrides(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(tiny_config(tmp_path / "run", val_size=4)))
    cfg = load_config(path, ["optim.lr=0.01", "data.root=/x", "model.overrides.sampler.size=48",
                             "data.val.size=3", "amp=bf16", "optim.clip_grad=null", "optim.lr_ratios.detail=0.5"])
    assert cfg.optim.lr == 0.01 and cfg.data.root == "/x" and cfg.amp == "bf16" and cfg.optim.clip_grad is None
    assert cfg.model.overrides["sampler"] == {"frames": 4, "size": 48}
    assert cfg.optim.lr_ratios == {"locator": 0.1, "detail": 0.5}
    assert cfg.data.split_args("val") == {"root": "/x", "size": 3}
    again = TrainConfig.from_json(cfg.to_json())
    assert again == cfg and again.to_dict() == cfg.to_dict()


@pytest.mark.parametrize("override,message", [
    ("optim.lrr=0.1", "did you mean 'lr'"),
    ("optimizer.lr=0.1", "did you mean 'optim'"),
    ("batch_size=sixty", "batch_size must be a integer"),
    ("optim.momentum=true", "optim.momentum must be a number"),
    ("amp=fp8", "amp must be 'none', 'bf16' or 'fp16'"),
    ("stages.stage1_epochs=-1", "epoch counts must be >= 0"),
    ("data.kind=kinetic", "did you mean 'kinetics'"),
    ("model.name=s2dnet-x3d-k4", "unknown model"),
    ("model.overrides.topk=9", "topk must lie in"),
    ("batch_size", "not of the form key=value"),
    ("batch_size.x=1", "has no sub-keys"),
])
def test_config_errors_name_the_key(tmp_path, override, message):
    with pytest.raises(TrainConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(tiny_config(tmp_path), [override])


def test_recipes_are_valid_configs():
    from s2d.train.recipes import RECIPES

    for name in RECIPES:
        cfg = load_config(name)
        if cfg.data.kind == "synth":  # the synthetic benchmark's recipe and its quick form
            assert cfg.model.name == "s2dnet-x3d-synth" and cfg.optim.name == "adamw"
            continue
        if name == "finetune":  # the model is model.init's, the classes the folder's
            assert cfg.model.name is None and cfg.data.kind == "folder" and cfg.stages.stage1_epochs == 0
            continue
        assert cfg.model.name == name and cfg.batch_size == 64 and cfg.optim.momentum == 0.9
    k400 = load_config("s2dnet-x3d-k400")
    assert (k400.stages.stage1_epochs, k400.stages.stage2_epochs, k400.optim.lr) == (50, 100, 0.005)


def test_param_groups_lr_ratios_weight_decay_and_schedule():
    model = tiny_model()
    cfg = load_config(tiny_config(Path("unused"))).optim
    opt = build_optimizer(model, cfg, lr=0.1)
    groups = {g["name"]: g for g in opt.param_groups}
    assert set(groups) == {"default/decay", "default/no_decay", "locator/decay", "locator/no_decay"}
    assert groups["locator/decay"]["lr"] == pytest.approx(0.01) and groups["default/decay"]["lr"] == 0.1
    named = {id(p): n for n, p in model.named_parameters()}
    no_decay = [named[id(p)] for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]]
    assert all(n.endswith("bias") or ".norm" in n or "bn" in n or model.get_parameter(n).ndim == 1 for n in no_decay)
    assert "locator.conv_bn.weight" in no_decay and "locator.fc1.bias" in no_decay
    assert groups["default/decay"]["weight_decay"] == pytest.approx(1e-3)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    # Warm-up then cosine to the floor; the scheduler applies it per step to every group's ratio.
    f = WarmupCosine(total=10, warmup=2, start=0.1, floor=0.0)
    assert [round(f(s), 6) for s in (0, 1, 2)] == [0.1, 0.55, 1.0]
    assert f(6) == pytest.approx(0.5) and f(10) == pytest.approx(0.0)
    sched = build_scheduler(opt, cfg, steps_per_epoch=5, epochs=2)
    for _ in range(5):
        opt.step()
        sched.step()
    assert groups["default/decay"]["lr"] == pytest.approx(0.05) and groups["locator/decay"]["lr"] == pytest.approx(0.005)


# -- training -------------------------------------------------------------------------------------------

def test_smoke_two_stages_writes_a_loadable_checkpoint_and_logs(tmp_path):
    out = tmp_path / "run"
    result = train(tiny_config(out, val_size=5, optim={"lr": 0.02, "ref_batch": 8, "warmup_epochs": 0.5}))
    assert not result.interrupted and (result.epochs, result.step) == (2, 4)
    for name in ("config.json", "model.safetensors", "checkpoints/step-000000004/trainer_state.pt",
                 "train_config.json", "metrics.jsonl",
                 "steps.csv", "epochs.csv", "best/model.safetensors"):
        assert (out / name).is_file(), name
    # The folder loads like a zoo model and holds the trained weights.
    loaded = s2d.load(str(out))
    assert loaded.config == tiny_model().config
    assert all(torch.equal(v, weights(out)[k]) for k, v in loaded.state_dict().items())
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-000000004"]  # older steps removed
    state = load_state(latest_checkpoint(out) / STATE_NAME)  # weights_only=True
    assert (state["epoch"], state["epoch_step"], state["step"]) == (2, 0, 4)
    assert set(state["rng"][0]) >= {"torch", "numpy_keys", "python_state"}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["stage"] for r in steps] == [1, 1, 2, 2] and [r["stage"] for r in epochs] == [1, 2]
    # Linear scaling: lr 0.02 for a batch of 8 is 0.01 for 4; warm-up of one step from 1%.
    assert steps[0]["lr"] == pytest.approx(0.01 * 0.01) and steps[1]["lr"] == pytest.approx(0.01)
    for r in steps:
        assert math.isfinite(r["loss"]) and 0 <= r["dnet_top1"] <= r["dnet_top5"] <= 100
        assert r["snet_top5"] is not None and r["stride_t"] > 0 and r["grad_norm"] > 0
    # Stage 1 samples the centre crop: no spatial zoom, the centre of the frame.
    assert steps[0]["centre_x"] == pytest.approx(23.5) and steps[0]["stride_x"] == pytest.approx(1.0)
    assert epochs[-1]["val_samples"] == 5 and epochs[-1]["val_dnet_top1"] is not None
    assert (out / "steps.csv").read_text().splitlines()[0].startswith("kind,epoch,stage,step")
    assert len((out / "epochs.csv").read_text().splitlines()) == 3
    # Evaluating the output folder through the command line gives the last validation numbers.
    from contextlib import redirect_stdout
    from io import StringIO

    buf = StringIO()
    with redirect_stdout(buf):
        assert cli.main(["eval", "--model", str(out), "--data", "tiny-clips", "size=5", "--workers", "0",
                         "--batch-size", "2", "--json", "--device", "cpu"]) == 0
    metrics = json.loads(buf.getvalue())
    assert metrics["samples"] == 5 and metrics["dnet_top1"] == epochs[-1]["val_dnet_top1"]
    # A second run into the same folder must not overwrite it silently.
    with pytest.raises(TrainConfigError, match="already holds a checkpoint"):
        train(tiny_config(out))


def test_stage1_freezes_the_locator_and_trains_the_rest(tmp_path):
    out = tmp_path / "stage1"
    train(tiny_config(out, stage1=1, stage2=0))
    torch.manual_seed(0)  # the trainer builds its model after seeding with config.seed = 0
    initial = tiny_model().state_dict()
    trained = weights(out)
    locator = [k for k in initial if k.startswith("locator.")]
    assert locator and all(torch.equal(initial[k], trained[k]) for k in locator)
    others = [k for k in initial if not k.startswith("locator.") and initial[k].is_floating_point()]
    changed = [k for k in others if not torch.equal(initial[k], trained[k])]
    assert len(changed) > 0.8 * len(others)
    assert any(k.startswith("synopsis.") for k in changed) and any(k.startswith("detail.") for k in changed)


def _logged_step(line: str) -> int:
    try:
        return json.loads(line)["step"]
    except ValueError:  # a line still being written
        return -1


def _wait_for_step(out: Path, step: int, proc: subprocess.Popen, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training exited early:\n{proc.stderr.read()}")
        log = out / "metrics.jsonl"
        if log.exists() and any(_logged_step(line) >= step for line in log.read_text().splitlines()):
            return
        time.sleep(0.01)
    raise AssertionError(f"step {step} was not logged within {timeout} s")


def test_resume_after_sigterm_gives_the_losses_of_an_uninterrupted_run(tmp_path):
    """SIGTERM in epoch 2 (stage 2): the run finishes its step, saves a mid-epoch checkpoint and
    exits 143; `--resume` continues from that batch. Dropout, the per-sample random roll, one
    DataLoader worker process and the optimizer state are all in play, so equal losses and
    weights mean the restored state is complete."""
    cfg = tiny_config(tmp_path / "unused", train_size=12, stage1=1, stage2=1,
                      data={"kind": "test_train:RandomClips", "train": {"size": 12}, "val": None, "workers": 1})
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    base = [sys.executable, "-m", "s2d", "train", str(path), "--allow-code"]
    clean, cut = tmp_path / "clean", tmp_path / "cut"
    env = subprocess_env()
    proc = subprocess.Popen(base + ["--out-dir", str(cut)], env=env, stderr=subprocess.PIPE, text=True)
    reference = subprocess.Popen(base + ["--out-dir", str(clean)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_step(cut, 4, proc)  # the first step of epoch 2 (3 steps per epoch)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 143, err  # not 0: a scheduler must not read it as finished
        assert "stopped by SIGTERM" in err
        state = load_state(latest_checkpoint(cut) / STATE_NAME)
        assert state["epoch"] == 1 and 0 < state["epoch_step"] < 3, "the checkpoint is not mid-epoch"
        interrupted_at = state["step"]
        _, ref_err = reference.communicate(timeout=300)
        assert reference.returncode == 0, ref_err
    finally:
        for p in (proc, reference):
            if p.poll() is None:
                p.kill()
    resumed = subprocess.run(base + ["--out-dir", str(cut), "--resume"], env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"(step {interrupted_at})" in resumed.stderr
    expected, got = step_losses(clean), step_losses(cut)
    assert [s for s, _ in got] == list(range(1, 7)) == [s for s, _ in expected]
    assert [loss for _, loss in got] == pytest.approx([loss for _, loss in expected], abs=1e-6, rel=0)
    a, b = weights(clean), weights(cut)
    assert all(torch.allclose(a[k].double(), b[k].double(), atol=1e-6, rtol=0) for k in a)


# A training process that SIGKILLs itself at a named point of `save_checkpoint` (the fault-injection
# hook), as a crash or an OOM killer would: nothing after that point runs, no cleanup either.
KILLER = """
import os, signal, sys
import s2d.train.checkpoint as checkpoint
point, step = sys.argv[1], int(sys.argv[2])

def die(at, at_step):
    if (at, at_step) == (point, step):
        os.kill(os.getpid(), signal.SIGKILL)

checkpoint.FAULT_HOOK = die
from s2d.cli import main
raise SystemExit(main(sys.argv[3:]))
"""


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory):
    """A clean run of the kill tests' config: 2 epochs × 3 steps, checkpoints at steps 3 and 6."""
    root = tmp_path_factory.mktemp("kill")
    cfg = tiny_config(root / "unused", train_size=12,
                      data={"kind": "test_train:RandomClips", "train": {"size": 12}, "val": None, "workers": 0})
    path = root / "cfg.json"
    path.write_text(json.dumps(cfg))
    (root / "killer.py").write_text(KILLER)
    clean = root / "clean"
    done = subprocess.run([sys.executable, "-m", "s2d", "train", str(path), "--allow-code", "--out-dir", str(clean)],
                          env=subprocess_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return root, clean


@pytest.mark.parametrize("point, step, survivor", [
    ("written", 6, 3),  # step 6 fully written beside step 3, not yet committed: the worst moment
    ("committed", 6, 6),  # step 6 committed, the top-level model still that of step 3
    pytest.param("written", 3, None, marks=pytest.mark.slow),  # the first checkpoint: nothing to keep
    pytest.param("exported", 6, 6, marks=pytest.mark.slow),  # step 3 not yet removed
])
def test_kill_during_a_checkpoint_keeps_the_last_one_and_resumes_to_identical_losses(
        uninterrupted_run, tmp_path, point, step, survivor):
    """SIGKILL inside `save_checkpoint` (the old layout lost the previous weights and could not
    resume after a kill between its two writes): the last complete step stays loadable and
    `--resume` continues to the losses and weights of the uninterrupted run, bit for bit."""
    root, clean = uninterrupted_run
    cut = tmp_path / "cut"
    args = ["train", str(root / "cfg.json"), "--allow-code", "--out-dir", str(cut)]
    killed = subprocess.run([sys.executable, str(root / "killer.py"), point, str(step), *args],
                            env=subprocess_env(), capture_output=True, text=True, timeout=900)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    found = latest_checkpoint(cut)
    if survivor is None:
        assert found is None
    else:
        assert found is not None and load_state(found / STATE_NAME)["step"] == survivor
        assert s2d.load(str(cut)).config == s2d.load(str(clean)).config  # the folder still loads as a model
    resumed = subprocess.run([sys.executable, "-m", "s2d", *args, "--resume"], env=subprocess_env(),
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert step_losses(cut) == step_losses(clean)  # exactly equal floats
    a, b = weights(clean), weights(cut)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [p.name for p in (cut / "checkpoints").iterdir()] == ["step-000000006"]


def test_checkpoint_files_get_the_mode_the_umask_gives(tmp_path):
    from s2d.train.checkpoint import save_checkpoint

    old = os.umask(0o022)
    try:
        folder = save_checkpoint(tmp_path, tiny_model(), {"format": 1, "step": 1})
    finally:
        os.umask(old)
    for path in (folder / "model.safetensors", folder / STATE_NAME, tmp_path / "model.safetensors"):
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_out_dir_holding_a_model_or_a_file_is_refused_not_overwritten(tmp_path):
    model_dir = tmp_path / "zoo_copy"
    model_dir.mkdir()
    (model_dir / "model.safetensors").write_bytes(b"precious")
    with pytest.raises(TrainConfigError, match=r"zoo_copy already holds model.safetensors but no training checkpoint"):
        train(tiny_config(model_dir))
    assert (model_dir / "model.safetensors").read_bytes() == b"precious"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep")
    with pytest.raises(TrainConfigError, match=r"notes.txt is a file, not a folder"):
        train(tiny_config(a_file))
    assert a_file.read_text() == "keep"


def test_corrupt_trainer_state_is_a_clear_error(tmp_path):
    out = tmp_path / "run"
    train(tiny_config(out, stage1=1, stage2=0))
    (latest_checkpoint(out) / STATE_NAME).write_bytes(b"not a torch file")
    from s2d.train.checkpoint import CheckpointMismatchError

    with pytest.raises(CheckpointMismatchError, match=r"trainer_state.pt: cannot be read as an s2d trainer state"):
        train(tiny_config(out, stage1=1, stage2=0, resume=True))


@pytest.mark.timeout(300)
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    """`torchrun --nproc_per_node=2` (gloo, CPU) against one process, global batch 4 both times.

    What is honestly expected to match: with BatchNorm frozen (`bn="frozen"`: eval-mode running
    statistics, so a sample's forward does not depend on the rest of its batch) and dropout off,
    each rank's mean loss over its 2 samples, all-reduced (averaged) by DDP, gives exactly the
    gradient of the mean loss over the 4 samples of the single process; the per-sample seeding
    and the shared (seed, epoch) permutation give both runs the same clips in the same global
    batches. Only the order of floating-point sums differs, so losses and weights agree to
    ~1e-6 over both stages (stage 2 rebuilds the DDP wrapper to include the locator).
    Validation under DDP must count each of the 5 samples (an uneven 3/2 split) exactly once.
    """
    overrides = {**TINY, **{k: {**TINY.get(k, {}), **v} for k, v in NO_DROPOUT.items()}}
    cfg = tiny_config(tmp_path / "unused", val_size=5, bn="frozen",
                      data={"kind": "test_train:RandomClips", "train": {"size": 8}, "val": {"size": 5},
                            "workers": 0})
    cfg["model"]["overrides"] = overrides
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    two, one = tmp_path / "two", tmp_path / "one"
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
              "-m", "s2d", "train", str(path), "--allow-code", "--out-dir", str(two)]
    ddp = subprocess.Popen(launch, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        train(str(path), [f"out_dir={json.dumps(str(one))}"], allow_code=True)
        output, _ = ddp.communicate(timeout=280)
    finally:
        if ddp.poll() is None:
            ddp.kill()
    assert ddp.returncode == 0, output
    assert "over 2 rank(s)" in output
    expected, got = step_losses(one), step_losses(two)
    assert [s for s, _ in got] == [1, 2, 3, 4] == [s for s, _ in expected]
    assert [loss for _, loss in got] == pytest.approx([loss for _, loss in expected], abs=1e-6, rel=0)
    a, b = weights(one), weights(two)
    for k in a:
        assert torch.allclose(a[k].double(), b[k].double(), atol=1e-6, rtol=0), k
    torch.manual_seed(0)
    initial = tiny_model().state_dict()
    assert not all(torch.equal(a[k], initial[k]) for k in a if k.startswith("locator."))  # stage 2 trained θ
    epochs = [json.loads(line) for line in (two / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["kind"] == "epoch"]
    one_epochs = [json.loads(line) for line in (one / "metrics.jsonl").read_text().splitlines()
                  if json.loads(line)["kind"] == "epoch"]
    assert [e["val_samples"] for e in epochs] == [5, 5]
    assert [e["val_dnet_top1"] for e in epochs] == [e["val_dnet_top1"] for e in one_epochs]


# -- evaluation -----------------------------------------------------------------------------------------

def test_eval_is_identical_for_any_batch_size_and_counts_each_sample_once():
    torch.manual_seed(3)
    model = tiny_model()
    data = RandomClips("val", size=7, bad=4, jitter=False)
    results = {bs: evaluate(model, data, batch_size=bs) for bs in (1, 3, 8)}
    ref = results[1]
    assert ref.samples == 6 and [f[0] for f in ref.failed] == [4] and ref.indices.tolist() == [0, 1, 2, 3, 5, 6]
    assert ref.snet_top1 is not None and ref.dnet_top5 >= ref.dnet_top1
    for bs, res in results.items():
        assert res.metrics() == ref.metrics(), bs
        assert torch.equal(res.indices, ref.indices) and torch.equal(res.labels, ref.labels)
        assert torch.equal(res.probs.topk(4).indices, ref.probs.topk(4).indices)
        assert torch.allclose(res.probs, ref.probs, atol=1e-6, rtol=0)
        assert torch.allclose(res.snet_probs, ref.snet_probs, atol=1e-6, rtol=0)
    # Multi-clip: the average of the views' softmax, whatever the batch size.
    two = {bs: evaluate(model, data, batch_size=bs, clips=2) for bs in (1, 3)}
    assert two[1].metrics() == two[3].metrics() and two[1].clips == 2
    assert torch.allclose(two[1].probs, two[3].probs, atol=1e-6, rtol=0)
    model.eval()
    with torch.no_grad():
        sample = [data.get_view(0, v, 2) for v in (0, 1)]
        frames = torch.stack([s["frames"] for s in sample]).permute(0, 1, 4, 2, 3)
        probs = model(frames, torch.tensor([s["num_frames"] for s in sample])).logits.softmax(-1).mean(0)
    assert torch.allclose(two[1].probs[0], probs, atol=1e-6)


def test_eval_restores_training_mode_and_refuses_views_it_cannot_cut():
    model = tiny_model().train()
    evaluate(model, RandomClips("val", size=2), batch_size=2)
    assert model.training

    class NoViews(Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return RandomClips("val", size=1)[0]

    with pytest.raises(ValueError, match="no temporal views"):
        evaluate(model, NoViews(), clips=2)


def test_synthetic_dataset_kind_feeds_the_trainer_and_eval():
    pytest.importorskip("s2d.synth.benchmark")
    data = build_dataset("synthetic", "val", {"size": 3, "frames": 8, "resolution": 48})  # the tiny model's clip
    sample = data[0]
    assert sample["frames"].dtype == torch.uint8 and sample["frames"].shape[-1] == 3
    model = tiny_model(num_classes=16)
    result = evaluate(model, data, batch_size=2)
    assert result.samples == 3 and result.probs.shape == (3, 16)


def test_stride_sampled_video_lists_have_evenly_spread_temporal_views(tmp_path, videos):
    codec = "h264" if videos.encoder_available("h264") else "mpeg4"
    good = videos.write_video(tmp_path / f"a{videos.CODECS[codec]['suffix']}", num_frames=20, codec=codec)
    bad = videos.write_not_video(tmp_path / "b.mp4")
    listing = tmp_path / "val.txt"
    listing.write_text(f"{good.name} 1\n{bad.name} 2\n")
    clip = {"sampling": "stride", "num_frames": 4, "stride": 2, "short_side": 48, "crop_size": 48}
    model = tiny_model(dense_frames=4)  # the clip's length
    data = build_dataset("list", "val", {"list_file": str(listing), "clip": clip}, model.config)
    assert data.on_error == "record"  # evaluation reports unreadable videos instead of skipping them
    from s2d.train.datasets import get_view

    starts = [videos.decode_indices(get_view(data, 0, v, 3)["frames"]) for v in range(3)]
    assert starts == [[0, 2, 4, 6], [6, 8, 10, 12], [13, 15, 17, 19]]  # round(6.5) = 6, last ends at 19
    result = evaluate(model, data, batch_size=2, clips=3)
    assert result.samples == 1 and [(i, Path(p).name) for i, p, _ in result.failed] == [(1, "b.mp4")]
    with pytest.raises(TrainConfigError, match=r"data clip: num_frames=4, crop_size=48 make clips of 4 x 48² but "
                                               r"the model reads 8 x 48²; set model.overrides.dense_frames=4"):
        build_dataset("list", "val", {"list_file": str(listing), "clip": clip}, tiny_model().config)
