"""The phases around the two stages: synopsis and detail pre-training, the locator warm-up.

Before stage 1 (both optional, `TrainConfig.phases`):

- synopsis pre-training: the synopsis net alone as a classifier (its own fc), cross-entropy;
- detail pre-training: the detail net alone with a linear head of its own, on views cut from the
  dense clip by the model's own sampler (stage 1's centre crop, or object-centred windows around
  the samples' `focus`), then handed over (`DetailAlone.hand_over`). From-scratch detail nets
  stand in for the paper's ImageNet-pretrained ones this way.

Between stages 1 and 2: the locator warm-up regresses the locator's raw outputs onto a fixed
view (no labels, no ground truth), so stage 2 starts from the view the detail net was trained
on rather than the whole-frame view, which on fine detail can be too coarse to give any gradient.

Each phase has its own optimiser and schedule and reads its own clips (`phase_dataset`). Under
DDP every rank runs the phases alike on the whole batch (DDP then starts from rank 0's weights).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from s2d.models.backbones import run_backbone
from s2d.models.sampler import centre_crop_params, window_params
from s2d.train.config import OptimSection, TrainConfig
from s2d.train.datasets import phase_dataset
from s2d.train.errors import TrainConfigError
from s2d.train.loader import collate_samples, derive_seed, model_inputs, seeded
from s2d.train.optim import WarmupCosine, build_optimizer, clip_gradients, warmup_steps
from s2d.train.phase_config import DetailPretrainSection, LocatorWarmupSection
from s2d.train.signals import ignore_stop_signals
from s2d_kernels.context import topk_vector

#: Keys that keep the phases' random streams apart from the epochs' and evaluation's.
PHASE_KEYS = {"synopsis_pretrain": 2**31 - 2, "detail_pretrain": 2**31 - 3, "locator_warmup": 2**31 - 4}


class _PhaseItems(Dataset):
    """Sample i of a phase, its random choices seeded from (seed, phase key, i)."""

    def __init__(self, dataset: Dataset, seed: int, key: int):
        self.dataset, self.seed, self.key = dataset, seed, key

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        with seeded(self.seed, self.key, index):
            return self.dataset[index]


def phase_loader(dataset: Dataset, batch: int, seed: int, key: int, workers: int) -> DataLoader:
    """The phase's clips in order, whole batches only."""
    return DataLoader(_PhaseItems(dataset, seed, key), batch_size=batch, shuffle=False, drop_last=True,
                      num_workers=workers, collate_fn=collate_samples,
                      worker_init_fn=ignore_stop_signals if workers else None)


class SynopsisAlone(nn.Module):
    """The synopsis net of an S2DNet as a classifier of its own (its fc)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.synopsis = model.synopsis
        self._clip = model.synopsis_clip

    def forward(self, frames: torch.Tensor, num_frames: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        return self.synopsis(self._clip(frames, num_frames)).logits


class DetailAlone(nn.Module):
    """The detail net of an S2DNet as a plain classifier, with a linear head of its own, on views
    cut by the model's sampler (`cfg.view`); `hand_over` starts the S2DNet from it."""

    def __init__(self, model: nn.Module, cfg: DetailPretrainSection, seed: int):
        super().__init__()
        self.backbone = model.detail.backbone
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed((seed, PHASE_KEYS["detail_pretrain"])))
            self.fc = nn.Linear(self.backbone.embed_dim, model.config.num_classes)
        self._model = [model]  # not a submodule: only the backbone and the head train here
        self.cfg = cfg
        self.generator = torch.Generator().manual_seed(derive_seed((seed, PHASE_KEYS["detail_pretrain"], 1)))

    def views(self, frames: torch.Tensor, batch: dict[str, Any]) -> Any:
        """Raw sampler parameters of this batch's views."""
        c = self._model[0].config
        B, H, W = frames.shape[0], frames.shape[-2], frames.shape[-1]
        if self.cfg.view == "centre":
            return centre_crop_params(B, c.sampler.frames, W, H, c.sampler.size, frames.device)
        if "focus" not in batch:
            raise TrainConfigError("phases.detail_pretrain.view='focus' needs samples with a 'focus' (x, y) "
                                   "(data kind 'synth'); use view='centre' for this dataset")
        j = self.cfg.jitter_px
        jitter = (torch.rand(B, 2, generator=self.generator) * 2 - 1) * j
        lo, hi = math.log(self.cfg.stride_min), math.log(self.cfg.stride_max)
        stride = torch.exp(lo + (hi - lo) * torch.rand(B, generator=self.generator))
        centre = batch["focus"].float() + jitter
        # a window jittered past the frame's edge is pulled back inside it (window_params' domain)
        cx, cy = centre[:, 0].clamp(0.5, W - 1.5), centre[:, 1].clamp(0.5, H - 1.5)
        device = frames.device
        return window_params(cx.to(device), cy.to(device), stride.to(device), c.sampler.frames, W, H, c.sampler.size)

    def forward(self, frames: torch.Tensor, num_frames: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        volume = self._model[0].sampler(frames, num_frames, self.views(frames, batch))
        _, pooled = run_backbone(self.backbone, volume)
        return self.fc(pooled).mean(1)

    @torch.no_grad()
    def hand_over(self) -> None:
        """The S2DNet classifier's feature columns from this head (its context columns zero), and
        every fusion point the identity on the (non-negative) stage output: the context then
        enters without scrambling the features learned here."""
        detail = self._model[0].detail
        E = self.backbone.embed_dim
        detail.fc.weight.zero_()
        detail.fc.weight[:, :E] = self.fc.weight
        detail.fc.bias.copy_(self.fc.bias)
        for fusion in detail.fusion.values():
            C = fusion.weight.shape[0]
            fusion.weight.zero_()
            fusion.weight[:, :C, 0, 0, 0] = torch.eye(C)


def train_classifier(module: nn.Module, data: DataLoader, optim: OptimSection, lr: float, device: torch.device,
                     should_stop: Callable[[], bool]) -> dict[str, Any] | None:
    """One pass of cross-entropy training over `data` with the run's optimiser kind, a warm-up +
    cosine schedule of its own and the run's gradient clipping. None when asked to stop."""
    opt = build_optimizer(module, optim, lr)
    steps = len(data)
    schedule = WarmupCosine(steps, warmup_steps(optim, steps, steps), optim.warmup_start_factor, optim.min_lr_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    module.train()
    start, last_loss, correct, seen = time.perf_counter(), math.nan, 0, 0
    tail = max(1, steps // 10)  # training accuracy over the last tenth of the pass
    for step, batch in enumerate(data):
        frames, num_frames, target = model_inputs(batch, device)
        logits = module(frames, num_frames, batch)
        loss = F.cross_entropy(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(module, optim.clip_grad, optim.clip_grad_groups)
        opt.step()
        scheduler.step()
        last_loss = float(loss.detach())
        if not math.isfinite(last_loss):
            raise FloatingPointError(f"the pre-training loss became {last_loss}; lower the phase's lr")
        if step >= steps - tail:
            correct += int((logits.detach().argmax(1) == target).sum())
            seen += target.shape[0]
        if should_stop():
            return None
    return {"steps": steps, "clips": steps * data.batch_size, "final_loss": round(last_loss, 4),
            "train_top1_last_tenth": round(100 * correct / max(1, seen), 2),
            "seconds": round(time.perf_counter() - start, 1)}


def locator_warmup(model: nn.Module, data: DataLoader, cfg: LocatorWarmupSection, lr: float, device: torch.device,
                   should_stop: Callable[[], bool]) -> dict[str, Any] | None:
    """Regress the locator's raw outputs (MSE over all six) onto the centre view at
    `cfg.target_stride_px` (stage 1's 1-px centre crop by default), SGD with momentum at a
    constant `lr`. Only the locator trains; the synopsis runs without gradients."""
    c = model.config
    model.set_freeze_sampler(False)
    opt = torch.optim.SGD(model.locator.parameters(), lr=lr, momentum=cfg.momentum)
    model.eval()
    model.locator.train()
    start, loss = time.perf_counter(), torch.zeros(())
    steps = 0
    for batch in data:
        frames, num_frames, _ = model_inputs(batch, device)
        B, H, W = frames.shape[0], frames.shape[-2], frames.shape[-1]
        with torch.no_grad():
            syn = model.synopsis(model.synopsis_clip(frames, num_frames))
            _, s = topk_vector(syn.logits, c.topk, c.topk_scheme)
        raw = model.locator(syn.feature_map, s)
        if cfg.target_stride_px is None:
            target = centre_crop_params(B, c.sampler.frames, W, H, c.sampler.size, device)
        else:
            stride = torch.full((B,), float(cfg.target_stride_px), device=device)
            target = window_params(torch.full((B,), (W - 1) / 2, device=device),
                                 torch.full((B,), (H - 1) / 2, device=device), stride, c.sampler.frames, W, H,
                                 c.sampler.size)
        loss = sum(F.mse_loss(a, b) for a, b in zip(raw.as_tuple(), target.as_tuple()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        if should_stop():
            return None
    return {"steps": steps, "clips": steps * data.batch_size, "final_mse": round(float(loss.detach()), 5),
            "seconds": round(time.perf_counter() - start, 1)}


def pretrain(model: nn.Module, train_set: Dataset, cfg: TrainConfig, lr: float, device: torch.device, offset: int,
             should_stop: Callable[[], bool], say: Callable[[str], None]) -> dict[str, Any] | None:
    """Synopsis then detail pre-training as `cfg.phases` says, on training clips from `offset` on
    (procedural data) or the training set cycled through. Returns what each phase did, or None
    when asked to stop part-way."""
    phases, info = cfg.phases, {}
    todo = [(name, section) for name, section in (("synopsis_pretrain", phases.synopsis_pretrain),
                                                   ("detail_pretrain", phases.detail_pretrain)) if section.clips]
    if todo and not callable(getattr(model, "set_freeze_sampler", None)):
        raise TrainConfigError(f"phases.{todo[0][0]}: {cfg.model.name or cfg.model.init} is not an S2DNet (no synopsis and detail nets)")
    for name, section in todo:
        data = phase_loader(phase_dataset(train_set, offset, section.clips), cfg.batch_size, cfg.seed,
                            PHASE_KEYS[name], cfg.data.workers)
        offset += section.clips
        if len(data) == 0:
            raise TrainConfigError(f"phases.{name}.clips={section.clips} is less than one batch of {cfg.batch_size}")
        module = SynopsisAlone(model) if name == "synopsis_pretrain" else DetailAlone(model, section, cfg.seed)
        module.to(device)
        say(f"{name}: {len(data)} steps of {cfg.batch_size} clips"
            + (f" ({section.view} views)" if name == "detail_pretrain" else ""))
        info[name] = train_classifier(module, data, cfg.optim, section.lr or lr, device, should_stop)
        if info[name] is None:
            return None
        if name == "detail_pretrain":
            module.hand_over()
        say(f"{name}: done, final loss {info[name]['final_loss']}, train top-1 (last tenth) "
            f"{info[name]['train_top1_last_tenth']}%, {info[name]['seconds']:.0f}s")
    return info


def warm_up_locator(model: nn.Module, train_set: Dataset, cfg: TrainConfig, lr: float, device: torch.device,
                    offset: int, should_stop: Callable[[], bool], say: Callable[[str], None]) -> dict[str, Any] | None:
    """The locator warm-up of `cfg.phases.locator_warmup` on training clips from `offset` on;
    None when asked to stop part-way."""
    section = cfg.phases.locator_warmup
    data = phase_loader(phase_dataset(train_set, offset, section.clips), cfg.batch_size, cfg.seed,
                        PHASE_KEYS["locator_warmup"], cfg.data.workers)
    if len(data) == 0:
        raise TrainConfigError(f"phases.locator_warmup.clips={section.clips} is less than one batch of "
                               f"{cfg.batch_size}")
    info = locator_warmup(model, data, section, section.lr or lr, device, should_stop)
    if info is not None:
        say(f"locator_warmup: {info['steps']} steps, final squared error {info['final_mse']}, {info['seconds']:.0f}s")
    return info
