"""Exact resume: what a checkpoint holds of a training run, and putting a run back from it.

The `Trainer` calls `save_run` after every epoch and on SIGTERM or Ctrl-C, and `restore_run` when
`resume=true` finds a checkpoint; see `s2d.train.checkpoint` for the files.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from s2d.hub.weights import read_weights
from s2d.io.files import deferred_signals
from s2d.train.checkpoint import (FORMAT_VERSION, CheckpointMismatchError, capture_rng, load_checkpoint, restore_rng,
                                  save_checkpoint)
from s2d.train.distributed import all_gather_objects, barrier
from s2d.train.loader import derive_seed
from s2d.train.runtime import seed_all


def save_run(run: Any) -> None:
    """Checkpoint a `Trainer` (every rank calls it; rank 0 writes): its weights, optimiser,
    scheduler, scaler, meters, position in the run and every rank's random streams."""
    rng = all_gather_objects(run.env, capture_rng(run.device))
    if run.env.is_main:
        state = {
            "format": FORMAT_VERSION, "epoch": run.epoch, "epoch_step": run.epoch_step, "step": run.step,
            "steps_per_epoch": run.steps_per_epoch, "global_batch": run.cfg.batch_size,
            "world_size": run.env.world_size, "best": run.best, "best_epoch": run.best_epoch,
            "last_val": json.dumps(run.last_val), "epoch_seconds": run.epoch_seconds, "step_lr": run.step_lr,
            "optimizer": run.optimizer.state_dict(), "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(), "interval": run.interval.state_dict(),
            "epoch_meter": run.epoch_meter.state_dict(), "rng": rng,
        }
        with deferred_signals():  # a stop signal acts once the step is committed and exported
            save_checkpoint(run.out, run.model, state)
    barrier(run.env)


def restore_run(run: Any, checkpoint: Path) -> None:
    """Put a `Trainer` back where `checkpoint` left off; `CheckpointMismatchError` when the model
    config, the global batch or the epoch length differ (the losses would not be the same)."""
    state, weights, saved = load_checkpoint(checkpoint)
    if saved != run.model.config.to_dict():
        changed = sorted(k for k in set(saved) | set(run.model.config.to_dict())
                         if saved.get(k) != run.model.config.to_dict().get(k))
        raise CheckpointMismatchError(f"{run.out} was trained with a different model config "
                                      f"(differs in {changed}); resume with the same model settings")
    for key, ours in (("global_batch", run.cfg.batch_size), ("steps_per_epoch", run.steps_per_epoch)):
        if state[key] != ours:
            raise CheckpointMismatchError(f"cannot resume exactly: the checkpoint has {key}={state[key]}, "
                                          f"this run {ours} (keep the global batch size and the dataset)")
    run.model.load_state_dict(read_weights(weights))
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if run.scaler.is_enabled() and state["scaler"]:
        run.scaler.load_state_dict(state["scaler"])
    run.interval.load_state_dict(state["interval"])
    run.epoch_meter.load_state_dict(state["epoch_meter"])
    run.epoch, run.epoch_step, run.step = state["epoch"], state["epoch_step"], state["step"]
    run.best, run.best_epoch = state["best"], state["best_epoch"]
    run.last_val = json.loads(state["last_val"])
    run.epoch_seconds = state["epoch_seconds"]
    run.step_lr = float(state.get("step_lr", run.step_lr))  # the last update's (an epoch's record shows it)
    rng = state["rng"]
    if len(rng) == run.env.world_size:
        restore_rng(rng[run.env.rank], run.device)
    else:
        run.say(f"the checkpoint was written by {len(rng)} rank(s), this run has {run.env.world_size}: "
                "random streams (dropout) restart from fresh seeds")
        seed_all(derive_seed((run.cfg.seed, 1 + run.env.rank, run.step)))
