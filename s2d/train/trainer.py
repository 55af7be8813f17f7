"""The training loop: two stages (+ optional phases), DDP, AMP, exact resume, graceful SIGTERM.

`train(config)` runs a `TrainConfig` in this process; under `torchrun` every rank calls it and
they share the work (DistributedDataParallel; gloo on CPU, NCCL on GPU). Per step: the model's
forward on this rank's share of the global batch, `model.loss` (CE(DNet) + 0.1·CE(SNet) for
S2DNet), backward (V̂'s gradient normalised by the model's sampler), gradient clipping, an SGD (or
AdamW) step and a per-step cosine learning rate.

Stages (supplement §3): in stage 1 `model.set_freeze_sampler(True)` freezes the locator θ and
feeds the detail net centre crops of uniform frames; stage 2 trains end to end. The DDP wrapper
is rebuilt at the switch, because DDP only synchronises parameters that require gradients when
it is built. Optional phases (`s2d.train.phases`) pre-train the synopsis and detail nets before
stage 1 of a fresh run and warm the locator up at the start of stage 2.

Checkpoints go to `out_dir` after every epoch (`s2d.train.resume` says what they hold,
`s2d.train.checkpoint` how they are written). SIGTERM (a cluster pre-empting the job, torchrun
shutting down) or Ctrl-C lets the current step (or validation batch) finish on every rank, saves
a checkpoint holding the position in the epoch, and returns with `interrupted=True`; before
training starts it stops at once (`s2d.train.signals`). `resume=true` continues from there with
the same losses an uninterrupted run computes (on GPU that needs `deterministic=true`, since
autotuned kernels are not reproducible).
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from s2d.io.files import atomic_write_text, deferred_signals
from s2d.train.checkpoint import TRAIN_CONFIG_NAME, check_out_dir, latest_checkpoint, settle
from s2d.train.config import TrainConfig, TrainConfigError, load_config
from s2d.train.data_checks import check_batch_labels, check_labels
from s2d.train.datasets import build_dataset, supports_views
from s2d.train.distributed import DistEnv, all_reduce_sum, any_rank, barrier, setup, teardown
from s2d.train.loader import EpochSampler, SeededSamples, collate_samples, derive_seed, model_inputs
from s2d.train.metrics import Meter, MetricsLog, epoch_line, sampling_stats, topk_correct
from s2d.train.model import (build_run_model, data_classes, for_data_classes, freeze, frozen_modules_eval,
                             frozen_prefixes, run_config)
from s2d.train.optim import build_optimizer, build_scheduler, clip_gradients
from s2d.train.phases import pretrain, warm_up_locator
from s2d.train.resume import restore_run, save_run
from s2d.train.runtime import configure_backends, seed_all
from s2d.train.signals import RunInterrupted, StopSignals, ignore_stop_signals, signal_name
from s2d.train.validation import validate_epoch


@dataclass
class TrainResult:
    """How a run ended: epochs completed, global steps, whether a stop signal (`signal`: SIGTERM or
    SIGINT) ended it, and the validation metrics (last and best detail-net top-1, in percent)."""

    out_dir: str
    epochs: int
    step: int
    interrupted: bool
    best_val_dnet_top1: float | None
    last_val: dict[str, Any] | None
    signal: int | None = None


def train(config: TrainConfig | dict[str, Any] | str, overrides: Iterable[str] = (), *,
          allow_code: bool = False) -> TrainResult:
    """Run (or resume) a training run described by a `TrainConfig`, a config dict, a JSON file
    or a recipe name, with dotted `key=value` overrides. `allow_code` lets a `module:attribute`
    data kind be imported (never implied by the config itself). SIGTERM and Ctrl-C stop the run
    in any phase with `interrupted=True` (resumable), not with an exception."""
    if not isinstance(config, TrainConfig):
        config = load_config(config, overrides)
    elif overrides:
        config = load_config(config.to_dict(), overrides)
    else:
        config.validate()
    with StopSignals() as signals:
        try:
            env = setup(config.device)
            try:
                return Trainer(config, env, allow_code=allow_code, signals=signals).run()
            finally:
                teardown(env)
        except RunInterrupted as stop:
            return _stopped_at_once(config, stop.signum)


def _stopped_at_once(config: TrainConfig, signum: int) -> TrainResult:
    """The result (and message) of a run a signal ended where there was nothing unsaved."""
    out = Path(config.out_dir)
    checkpoint = latest_checkpoint(out)
    if os.environ.get("RANK", "0") == "0":
        if checkpoint is None:
            how = "nothing was saved; run the same command again to start"
        else:
            how = f"the last checkpoint in {out} ({checkpoint.name}) stays; continue with --resume"
        print(f"stopped by {signal_name(signum)}: {how}", file=sys.stderr)
    return TrainResult(str(out), 0, 0, True, None, None, signum)


class Trainer:
    """One rank's share of a training run; `run()` trains until done or interrupted."""

    def __init__(self, cfg: TrainConfig, env: DistEnv, *, allow_code: bool = False,
                 signals: StopSignals | None = None):
        self.cfg, self.env = cfg, env
        self.signals = signals or StopSignals()  # without handlers: nothing requests a stop
        self.device = env.device
        self.out = Path(cfg.out_dir)
        configure_backends(cfg, self.device)

        # The architecture, the classes its training data defines (class folders), then the same
        # initial weights on every rank; then different streams per rank (dropout).
        data = cfg.data
        config, located = run_config(cfg.model)
        self.train_set = build_dataset(data.kind, "train", data.split_args("train"), config, allow_code=allow_code)
        config = for_data_classes(config, data_classes(self.train_set))
        self.name = cfg.model.name or cfg.model.init
        seed_all(cfg.seed)
        self.model: nn.Module = build_run_model(cfg.model, config, located)
        self.frozen = frozen_prefixes(self.model, cfg.model.freeze)
        freeze(self.model, self.frozen)
        self.model.to(self.device)
        self.net: nn.Module = self.model  # what the step calls: the model, or its DDP wrapper
        self.staged = callable(getattr(self.model, "set_freeze_sampler", None))
        self.stage: int | None = None
        # With the V̂ gradient normalised per video (supplement §2), every video hands the locator
        # a gradient of fixed size whatever the batch: its gradient is a sum over the batch, not a
        # mean. DDP averages over ranks, which would shrink it by the world size; multiplying it
        # back makes a sharded run equal one process with the same global batch (where the sum
        # runs over the whole batch).
        self.sum_grad_params: list[nn.Parameter] = []
        sampler_cfg = getattr(getattr(self.model, "config", None), "sampler", None)
        if env.distributed and getattr(sampler_cfg, "grad_normalize", False) and hasattr(self.model, "locator"):
            self.sum_grad_params = list(self.model.locator.parameters())

        # Stage lengths given in clips become epochs of this training set.
        self.cfg = cfg = dataclasses.replace(cfg, stages=cfg.stages.in_epochs(len(self.train_set)))
        if not self.staged and cfg.stages.stage1_epochs:
            self.say(f"{self.name} has no detail sampler to freeze: stage 1 trains it as stage 2 does")
        if not self.staged and cfg.phases.locator_warmup.clips:
            raise TrainConfigError(f"phases.locator_warmup: {self.name} has no locator")
        self.val_set = None
        if data.val is not None:
            self.val_set = build_dataset(data.kind, "val", data.split_args("val"), self.model.config,
                                         allow_code=allow_code)
            if data.val_clips > 1 and not supports_views(self.val_set):
                raise TrainConfigError(f"data.val_clips={data.val_clips}, but the validation dataset offers no "
                                       "temporal views (use 1)")
        self.num_classes = int(self.model.config.num_classes)
        for split, dataset in (("train", self.train_set), ("val", self.val_set)):
            if dataset is not None:
                check_labels(dataset, self.num_classes, f"data kind {data.kind!r} ({split} split)")
        if cfg.batch_size % env.world_size:
            raise TrainConfigError(f"batch_size {cfg.batch_size} (global) does not split evenly over "
                                   f"{env.world_size} ranks")
        self.local_batch = cfg.batch_size // env.world_size
        self.items = SeededSamples(self.train_set, cfg.seed)
        self.sampler = EpochSampler(self.items, env.world_size, env.rank, cfg.seed)
        self.steps_per_epoch = len(self.sampler) // self.local_batch
        if self.steps_per_epoch == 0:
            raise TrainConfigError(f"the training set has {len(self.train_set)} samples, fewer than one global "
                                   f"batch of {cfg.batch_size}")
        self.epochs = cfg.stages.epochs

        # Optimisation: the reference learning rate scaled linearly with the global batch.
        self.lr = cfg.optim.lr * cfg.batch_size / cfg.optim.ref_batch
        self.optimizer = build_optimizer(self.model, cfg.optim, self.lr)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, self.steps_per_epoch,
                                         [cfg.stages.stage1_epochs, cfg.stages.stage2_epochs])
        cuda = self.device.type == "cuda"
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp) if cuda else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=cuda and cfg.amp == "fp16")

        # Progress.
        self.epoch = 0  # the epoch in progress (0-based)
        self.epoch_step = 0  # batches of it already consumed
        self.step = 0  # optimizer steps since the start of the run
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.last_val: dict[str, Any] | None = None
        self.interval = Meter(self.device)
        self.epoch_meter = Meter(self.device)
        self.epoch_seconds = 0.0
        self.interval_start = time.perf_counter()
        self.stop_requested = False
        self.step_lr = self._main_lr()
        self.log = MetricsLog(self.out) if env.is_main else None
        seed_all(derive_seed((cfg.seed, 1 + env.rank)))

    # -- messages ---------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        """A message on rank 0's stderr that does not break the progress bar."""
        if self.env.is_main:
            from tqdm import tqdm

            tqdm.write(text, file=sys.stderr)

    # -- the run ----------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Start or resume, train the remaining epochs (or until a stop signal), and report."""
        checkpoint = latest_checkpoint(self.out)
        fresh = checkpoint is None
        if checkpoint is not None:
            if not self.cfg.resume:
                raise TrainConfigError(f"{self.out} already holds a checkpoint ({checkpoint.name}); resume it with "
                                       "--resume (resume=true) or choose another out_dir")
            restore_run(self, checkpoint)
            if self.env.is_main:  # a run killed between commit and export left an older model on top
                with deferred_signals():
                    settle(checkpoint, self.out)
            if self.log is not None:
                self.log.truncate(self.step)
            self.say(f"resumed {self.out} at epoch {self.epoch + 1}, batch {self.epoch_step} "
                     f"of {self.steps_per_epoch} (step {self.step})")
        else:
            check_out_dir(self.out)
            if self.cfg.resume:
                self.say(f"no checkpoint in {self.out}: starting from scratch")
            if self.env.is_main:
                self.out.mkdir(parents=True, exist_ok=True)
                for stale in (self.log.jsonl, *(p for p, _ in self.log.csv.values())):
                    stale.unlink(missing_ok=True)
        if self.env.is_main:
            atomic_write_text(self.out / TRAIN_CONFIG_NAME, self.cfg.to_json())
        barrier(self.env)
        self.say(f"training {self.name}: {self.epochs} epochs ({self.cfg.stages.stage1_epochs} with θ "
                 f"frozen) × {self.steps_per_epoch} steps, global batch {self.cfg.batch_size} over "
                 f"{self.env.world_size} rank(s), peak lr {self.lr:g}, device {self.device}")
        with self.signals.polled():
            if fresh and self.cfg.phases.pretrain_clips:
                offset = self.epochs * len(self.train_set)  # after the clips the epochs read
                info = pretrain(self.model, self.train_set, self.cfg, self.lr, self.device, offset,
                                self._should_stop, self.say)
                if info is None:
                    self.say(f"stopped by {signal_name(self._stop_signal())} during pre-training: nothing was "
                             "saved; run the same command again to start over")
                    return TrainResult(str(self.out), 0, 0, True, None, None, self._stop_signal())
                self._record_phases(info)
            while self.epoch < self.epochs and not self.stop_requested:
                self._run_epoch()
            self._should_stop()  # a signal during the final checkpoint's export
        if not self.stop_requested:
            return TrainResult(str(self.out), self.epoch, self.step, False, self.best, self.last_val)
        name = signal_name(self._stop_signal())
        if self.epoch < self.epochs:
            self.say(f"stopped by {name} at epoch {self.epoch + 1}, batch {self.epoch_step} (step {self.step}); "
                     f"checkpoint saved in {self.out}; continue with --resume")
        else:
            self.say(f"stopped by {name} as the run finished: all {self.epochs} epochs are trained and saved in "
                     f"{self.out} (--resume reports it done)")
        return TrainResult(str(self.out), self.epoch, self.step, True, self.best, self.last_val, self._stop_signal())

    def _should_stop(self) -> bool:
        """Every rank learns whether any rank was asked to stop, so all stop after the same step."""
        self.stop_requested = any_rank(self.env, self.stop_requested or self.signals.requested)
        return self.stop_requested

    def _stop_signal(self) -> int:
        """The signal this rank received (SIGTERM, as torchrun sends, when another rank got it)."""
        return self.signals.signum or signal.SIGTERM

    def _record_phases(self, info: dict[str, Any]) -> None:
        """Keep what the phases did in `out_dir/phases.json`."""
        if self.env.is_main:
            path = self.out / "phases.json"
            done = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            atomic_write_text(path, json.dumps({**done, **info}, indent=2) + "\n")

    def _enter_stage(self, stage: int) -> bool:
        """Switch to `stage` (with the locator warm-up at the start of stage 2); False when
        SIGTERM came during the warm-up (the last checkpoint stays the one to resume from)."""
        if stage == self.stage:
            return True
        if self.staged:
            self.model.set_freeze_sampler(stage == 1)
        freeze(self.model, self.frozen)  # model.freeze holds in every stage
        warmup = self.cfg.phases.locator_warmup
        if (stage == 2 and warmup.clips and self.epoch == self.cfg.stages.stage1_epochs
                and self.epoch_step == 0):
            offset = self.epochs * len(self.train_set) + self.cfg.phases.pretrain_clips
            info = warm_up_locator(self.model, self.train_set, self.cfg, self.lr, self.device, offset,
                                   self._should_stop, self.say)
            if info is None:
                return False
            self._record_phases({"locator_warmup": info})
        if self.env.distributed:
            # DDP registers the parameters that require gradients when it is built: rebuild it so
            # the locator joins the gradient all-reduce in stage 2. The old wrapper must be gone
            # first, or its hooks would reduce the same gradients a second time.
            self.net = self.model
            gc.collect()
            cuda = self.device.type == "cuda"
            self.net = DistributedDataParallel(self.model, device_ids=[self.device.index] if cuda else None,
                                               find_unused_parameters=self.cfg.find_unused_parameters)
        self.stage = stage
        return True

    def _set_train_mode(self) -> None:
        self.model.train()
        frozen_modules_eval(self.model, self.frozen)
        if self.cfg.bn == "frozen":
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _loader(self) -> DataLoader:
        workers = self.cfg.data.workers
        generator = torch.Generator().manual_seed(derive_seed((self.cfg.seed, self.epoch, self.env.rank)))
        return DataLoader(self.items, batch_size=self.local_batch, sampler=self.sampler, drop_last=True,
                          num_workers=workers, collate_fn=collate_samples, pin_memory=self.device.type == "cuda",
                          generator=generator, worker_init_fn=ignore_stop_signals if workers else None)

    def _run_epoch(self) -> None:
        cfg = self.cfg
        if not self._enter_stage(cfg.stages.stage_of(self.epoch)):
            return
        self.sampler.set_epoch(self.epoch)
        self.sampler.start = self.epoch_step * self.local_batch
        self._set_train_mode()
        bar = None
        if cfg.progress and self.env.is_main:
            from tqdm import tqdm

            bar = tqdm(total=self.steps_per_epoch, initial=self.epoch_step, unit="step", leave=False,
                       desc=f"epoch {self.epoch + 1}/{self.epochs} (stage {self.stage})")
        started = time.perf_counter()
        try:
            for batch in self._loader():
                self._train_step(batch)
                self.epoch_step += 1
                self.step += 1
                if self.step % cfg.log_every == 0:
                    record = self._log_step()
                    if bar is not None:
                        bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.3g}", refresh=False)
                if bar is not None:
                    bar.update(1)
                if self._should_stop():
                    self.epoch_seconds += time.perf_counter() - started
                    save_run(self)
                    return
        finally:
            if bar is not None:
                bar.close()
        self.epoch_seconds += time.perf_counter() - started
        val = validate_epoch(self)
        if self.stop_requested:  # validation cut short: the checkpoint's resume repeats it
            save_run(self)
            return
        self._log_epoch(val)
        self.epoch += 1
        self.epoch_step = 0
        self.epoch_meter.reset()
        self.epoch_seconds = 0.0
        save_run(self)
        self._should_stop()

    def _train_step(self, batch: dict[str, Any]) -> None:
        if any(err is not None for err in batch["errors"]):
            raise RuntimeError("a training batch holds unreadable videos (a dataset with on_error='record'); "
                               "train with on_error='skip' or 'raise'")
        check_batch_labels(batch["labels"], self.num_classes)
        frames, num_frames, target = model_inputs(batch, self.device)
        autocast = (torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype is not None
                    else contextlib.nullcontext())
        with autocast:
            out = self.net(frames, num_frames)
            loss = self.model.loss(out, target)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        if self.sum_grad_params:
            for p in self.sum_grad_params:
                if p.grad is not None:
                    p.grad.mul_(self.env.world_size)
        grad_norm = clip_gradients(self.model, self.cfg.optim.clip_grad, self.cfg.optim.clip_grad_groups)
        self.step_lr = self._main_lr()  # the learning rate this update uses (logged with its step)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()

        b = target.shape[0]
        values: dict[str, Any] = {"samples": float(b), "loss": loss.detach().float() * b}
        values["dnet_top1"], values["dnet_top5"] = topk_correct(out.logits.detach(), target)
        if hasattr(out, "snet_logits"):
            values["snet_samples"] = float(b)
            values["snet_top1"], values["snet_top5"] = topk_correct(out.snet_logits.detach(), target)
        if getattr(out, "params", None) is not None:
            values.update(sampling_stats(out.params))
        if self.env.is_main:  # identical on every rank after the all-reduce: count it once
            values["grad_norm"] = grad_norm.detach().float()
            values["steps"] = 1.0
        self.interval.add(values)
        self.epoch_meter.add(values)

    # -- logging ----------------------------------------------------------------------------------
    def _record(self, kind: str, sums: torch.Tensor) -> dict[str, Any]:
        summary = Meter.summary(all_reduce_sum(self.env, sums))
        if summary["loss"] is not None and not math.isfinite(summary["loss"]):
            raise FloatingPointError(f"the training loss became {summary['loss']} at epoch {self.epoch + 1}, "
                                     f"step {self.step}; lower optim.lr or check the data")
        return {"kind": kind, "epoch": self.epoch + 1, "stage": self.stage, "step": self.step,
                "epoch_step": self.epoch_step, "lr": self.step_lr, **summary}

    def _main_lr(self) -> float:
        """Learning rate of the groups without an lr ratio (what `optim.lr` describes)."""
        return next((g["lr"] for g in self.optimizer.param_groups if g["lr_ratio"] == 1.0),
                    self.optimizer.param_groups[0]["lr"])

    def _log_step(self) -> dict[str, Any]:
        record = self._record("step", self.interval.sums)
        now = time.perf_counter()
        record["samples_per_s"] = (self.cfg.log_every * self.cfg.batch_size) / max(now - self.interval_start, 1e-9)
        self.interval_start = now
        self.interval.reset()
        if self.log is not None:
            self.log.write(record)
        return record

    def _log_epoch(self, val: Any) -> None:
        record = self._record("epoch", self.epoch_meter.sums)
        record["seconds"] = self.epoch_seconds
        if val is not None:
            record.update({"val_dnet_top1": val.dnet_top1, "val_dnet_top5": val.dnet_top5,
                           "val_snet_top1": val.snet_top1, "val_snet_top5": val.snet_top5,
                           "val_samples": val.samples, "val_failed": len(val.failed)})
        record["best_val_dnet_top1"] = self.best
        if self.log is not None:
            self.log.write(record)

        self.say(epoch_line(record, self.epochs, val))
