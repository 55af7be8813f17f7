"""The validation pass after an epoch: its metrics, the best model so far, and stopping part-way.

A stop signal during the pass ends it after the current batch. The random streams are then put
back as they were before the pass, so the checkpoint the trainer writes next (at the end of the
epoch's training, validation not yet done) resumes to exactly what an uninterrupted run computes:
the resumed run repeats the whole pass.
"""
from __future__ import annotations

from typing import Any

from s2d.io.files import deferred_signals
from s2d.train.checkpoint import capture_rng, restore_rng, save_model_folder
from s2d.train.evaluate import EvalResult, evaluate


def validate_epoch(run: Any) -> EvalResult | None:
    """Validate a `Trainer` after its epoch `run.epoch` when due (every `data.val_every` epochs and
    after the last), updating its last and best metrics and `out_dir/best`. None when not due, or
    when a stop signal cut the pass short (`run.stop_requested` is then set)."""
    data = run.cfg.data
    last = run.epoch + 1 == run.epochs
    if run.val_set is None or not ((run.epoch + 1) % data.val_every == 0 or last):
        return None
    before = capture_rng(run.device)
    batch = data.val_batch_size or run.local_batch
    result = evaluate(run.model, run.val_set, batch_size=batch, clips=data.val_clips, device=run.device,
                      workers=data.workers, amp=run.cfg.amp, env=run.env, seed=run.cfg.seed,
                      progress=run.cfg.progress, should_stop=run._should_stop)
    if result is None:
        restore_rng(before, run.device)
        return None
    run.last_val = result.metrics()
    if result.dnet_top1 is not None and (run.best is None or result.dnet_top1 > run.best):
        run.best, run.best_epoch = result.dnet_top1, run.epoch + 1
        if run.env.is_main:
            with deferred_signals():  # config.json and model.safetensors of one model, or the old pair
                save_model_folder(run.model, run.out / "best", run.step)
    return result
