"""Synthetic detail benchmark: can a synopsis-to-detail model see what a cheap uniform model cannot?

    python bench/synthetic/run.py            # full run (writes results.json, results.md, the checkpoint)
    python bench/synthetic/run.py --quick    # a few minutes: smoke-test sizes, results under /tmp

Four models on `s2d.synth` clips (16 dense frames at 128², 16 classes = 4 directions × 4 glyphs),
all tiny X3D (`x3d_tiny`) networks, the detail nets at a matched 8-frame input:

(a) SNet only      the synopsis net of (c): 4 frames, nearest-resized to 32² (its own head);
(b) uniform DNet   a plain X3D classifier on 8 uniform frames nearest-resized to 32²;
(c) S2DNet         synopsis 4×32² → top-5 → locator → Gaussian sampler → detail net on 8×32²,
                   trained in the paper's two stages (sampler frozen on centre crops, then end to end);
(d) full-res DNet  the same classifier on 8 uniform frames at the full 128².

Training is one pass over freshly generated clips (the benchmark is procedural, so no clip is
seen twice), SGD with momentum 0.9, cosine learning rate with a linear warm-up, weight decay
1e-3 on weights (not on norms and biases), gradient clipping, loss CE(DNet) + 0.1·CE(SNet) for
S2DNet (`model.loss`). Accuracy is measured on the held-out `test` split, which training never
touches; the design was tuned on the `val` split. `torch.set_num_threads(2)` keeps the run to
two cores.
"""
from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning (read when torch loads OpenMP, so before the import):
# on a CPU shared with other jobs, threads spinning on a descheduled peer made steps up to 50× slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

import s2d
from s2d.data import collate
from s2d.flops import measure
from s2d_kernels.context import topk_vector
from s2d.synth import CLASSES, LABEL_LIST, SyntheticDetailDataset, where_it_looked

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ZOO_NAME = "s2dnet-x3d-synth"
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


@dataclass
class Settings:
    """Everything that decides a run; recorded in results.json."""

    seed: int = 0  # model init and data seeds derive from it
    data_seed: int = 0
    dense_frames: int = 16
    resolution: int = 128
    synopsis_frames: int = 4
    synopsis_size: int = 32
    detail_frames: int = 8
    detail_size: int = 32
    batch: int = 16
    optimizer: str = "adamw"
    lr: float = 0.003
    locator_lr_mult: float = 0.1
    weight_decay: float = 1e-3
    clip_grad: float = 10.0  # gradient-norm clip of the networks
    locator_clip: float = 1.0  # gradient-norm clip of the locator, separately
    warmup: float = 0.05  # fraction of steps
    stage0_clips: int = 4800  # S2DNet stage 0 (synopsis net alone)
    detail_pretrain_clips: int = 19200  # S2DNet stage 0 (detail net alone, on stage 1's centre crops)
    stage1_clips: int = 6400  # S2DNet stage 1 (sampler frozen)
    align_clips: int = 1024  # S2DNet hand-over between stages 1 and 2 (see align_locator)
    stage2_clips: int = 12800  # S2DNet stage 2 (end to end)
    baseline_clips: int = 38400  # each baseline: as many detail-net steps as S2DNet (detail stage 0 + stages 1, 2)
    eval_clips: int = 1024
    eval_split: str = "test"
    dropout: float = 0.0  # every clip is new (no overfitting), and dropout 0.5 stalls these tiny nets
    context_dim: int = 16  # m: the paper's 256 would swamp the tiny detail stages (16, 24 channels) it is fused into
    locator_init: float = 0.01  # LocatorConfig.head_init_factor: spread of the initial sampling
    locator_hidden: int = 16
    locator_mlp: tuple[int, int] = (256, 128)
    threads: int = 2
    models: tuple[str, ...] = ("s2dnet", "uniform", "full")


def s2dnet_overrides(st: Settings) -> dict[str, Any]:
    """The S2DNet architecture of this benchmark as `s2d.create("s2dnet-x3d-k400", **overrides)`."""
    return dict(num_classes=len(CLASSES), labels=LABEL_LIST, dense_frames=st.dense_frames,
                dense_size=st.resolution, mean=MEAN, std=STD, resize_ratio=1.0,
                synopsis={"arch": "x3d_tiny", "frames": st.synopsis_frames, "size": st.synopsis_size,
                          "dropout": st.dropout, "context_dropout": st.dropout},
                detail={"arch": "x3d_tiny", "dropout": st.dropout},
                sampler={"frames": st.detail_frames, "size": st.detail_size},
                fusion={"context_dim": st.context_dim},
                locator={"hidden": st.locator_hidden, "mlp": list(st.locator_mlp),
                         "head_init_factor": st.locator_init})


def baseline_overrides(st: Settings, size: int) -> dict[str, Any]:
    """A plain X3D-tiny classifier on `detail_frames` uniform frames at `size`²."""
    return dict(arch="x3d_tiny", num_classes=len(CLASSES), labels=LABEL_LIST, frames=st.detail_frames, size=size,
                dense_frames=st.dense_frames, dense_size=st.resolution, mean=MEAN, std=STD, dropout=st.dropout)


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory instead of handing it back to the kernel.

    Every training step allocates and frees tens of MB of activations; by default glibc serves
    blocks that large with fresh mmaps and trims the heap, so each step page-faults its memory in
    anew, which on a virtual machine made steps 3-10× slower than their arithmetic. Raising the
    mmap and trim thresholds lets the allocator reuse the same pages. No effect off glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    limit = ctypes.c_int(2**31 - 1)
    libc.mallopt(-3, limit)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, limit)  # M_TRIM_THRESHOLD


# ------------------------------------------------------------------------------------------------
# data


def loader(st: Settings, split: str, start: int, count: int, batch: int) -> DataLoader:
    """Clips `start .. start+count-1` of `split`, rendered in one worker process while the main
    process trains (a disjoint index range per training stage, so no clip is seen twice)."""
    ds = SyntheticDetailDataset(split, start + count, seed=st.data_seed, frames=st.dense_frames,
                                resolution=st.resolution)
    return DataLoader(Subset(ds, range(start, start + count)), batch_size=batch, shuffle=False,
                      collate_fn=collate, num_workers=1, worker_init_fn=_one_thread)


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


def as_model_input(batch: dict[str, Any]) -> torch.Tensor:
    """`collate` gives `[B, T, H, W, 3]`; the models take `[B, T, 3, H, W]`."""
    return batch["frames"].permute(0, 1, 4, 2, 3)


# ------------------------------------------------------------------------------------------------
# training


def param_groups(model: nn.Module, st: Settings) -> list[dict[str, Any]]:
    """Weight decay on conv / linear weights only; the locator at `locator_lr_mult` × the lr."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = (name.startswith("locator."), p.ndim > 1)
        groups.setdefault(key, []).append(p)
    out = []
    for (is_locator, decay), params in groups.items():
        mult = st.locator_lr_mult if is_locator else 1.0
        out.append({"params": params, "lr_mult": mult, "weight_decay": st.weight_decay if decay else 0.0})
    return out


def make_optimizer(groups: list[dict[str, Any]], st: Settings) -> torch.optim.Optimizer:
    """SGD with momentum 0.9 (the paper's), or AdamW (betas 0.9, 0.999; decoupled weight decay)."""
    if st.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=st.lr, momentum=0.9)
    if st.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=st.lr)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {st.optimizer!r}")


def train(model: nn.Module, data: DataLoader, st: Settings, log: Callable[[str], None], tag: str) -> dict[str, Any]:
    """One pass over `data`: SGD (momentum 0.9), linear warm-up then cosine decay, gradient clipping."""
    groups = param_groups(model, st)
    opt = make_optimizer(groups, st)
    steps = len(data)
    warm = max(1, int(st.warmup * steps))
    locator = [p for n, p in model.named_parameters() if n.startswith("locator.") and p.requires_grad]
    nets = [p for n, p in model.named_parameters() if not n.startswith("locator.") and p.requires_grad]
    model.train()
    start = time.perf_counter()
    seen, loss_sum, correct = 0, 0.0, 0
    for step, batch in enumerate(data):
        scale = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
        for g in opt.param_groups:
            g["lr"] = st.lr * g["lr_mult"] * scale
        out = model(as_model_input(batch), batch["num_frames"])
        loss = model.loss(out, batch["labels"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # The locator's gradient arrives normalised per video (supplement §2) and is ~100× the nets'
        # gradient norm: clipped together, it would scale the nets' updates to nothing.
        nn.utils.clip_grad_norm_(nets, st.clip_grad)
        if locator:
            nn.utils.clip_grad_norm_(locator, st.locator_clip)
        opt.step()
        n = batch["labels"].numel()
        seen += n
        loss_sum += float(loss.detach()) * n
        correct += int((out.logits.argmax(1) == batch["labels"]).sum())
        if (step + 1) % max(1, steps // 10) == 0 or step + 1 == steps:
            extra = ""
            if hasattr(out, "params") and not getattr(model, "freeze_sampler", True):
                dataset = data.dataset.dataset
                truth = [dataset.params(int(i)) for i in batch["indices"]]
                where = where_it_looked(out.params, truth, model.config.dense_frames, model.config.sampler.size)
                on = sum(sum(w["on_object"]) for w in where) / sum(len(w["on_object"]) for w in where)
                extra = (f"  stride {float(out.params.stride_x.detach().mean()):.2f}px"
                         f"  on object {100 * on:.0f}%")
            log(f"  [{tag}] step {step + 1}/{steps}  loss {loss_sum / seen:.3f}  train acc {100 * correct / seen:.1f}%"
                f"{extra}  {time.perf_counter() - start:.0f}s")
            seen, loss_sum, correct = 0, 0.0, 0
    return {"steps": steps, "clips": steps * st.batch, "seconds": round(time.perf_counter() - start, 1)}


# ------------------------------------------------------------------------------------------------
# evaluation


def _topk_hits(logits: torch.Tensor, labels: torch.Tensor, k: int) -> int:
    return int((logits.topk(k, 1).indices == labels[:, None]).any(1).sum())


@torch.no_grad()
def evaluate(model: nn.Module, data: DataLoader) -> dict[str, Any]:
    """Top-1 / top-5 in percent; for S2DNet also the synopsis' own accuracy and where it looked."""
    model.eval()
    dataset: SyntheticDetailDataset = data.dataset.dataset
    n = top1 = top5 = s_top1 = s_top5 = 0
    hits: list[bool] = []  # top-1 correctness per clip, in order
    strides, on_object, frames_on_glyph, glyph_hits = [], 0, 0, 0
    for batch in data:
        out = model(as_model_input(batch), batch["num_frames"])
        y = batch["labels"]
        n += y.numel()
        top1 += _topk_hits(out.logits, y, 1)
        hits += (out.logits.argmax(1) == y).tolist()
        top5 += _topk_hits(out.logits, y, 5)
        if hasattr(out, "snet_logits"):
            s_top1 += _topk_hits(out.snet_logits, y, 1)
            s_top5 += _topk_hits(out.snet_logits, y, 5)
            truth = [dataset.params(int(i)) for i in batch["indices"]]
            for clip in where_it_looked(out.params, truth, model.config.dense_frames, model.config.sampler.size):
                strides.extend(clip["stride"])
                on_object += sum(clip["on_object"])
                frames_on_glyph += sum(clip["glyph_shown"])
                glyph_hits += sum(o and g for o, g in zip(clip["on_object"], clip["glyph_shown"]))
    res = {"clips": n, "top1": round(100 * top1 / n, 2), "top5": round(100 * top5 / n, 2),
           "top1_first64": round(100 * sum(hits[:64]) / min(64, n), 2)}
    if strides:
        s = torch.tensor(strides)
        res.update({
            "snet_top1": round(100 * s_top1 / n, 2), "snet_top5": round(100 * s_top5 / n, 2),
            "stride_px_mean": round(float(s.mean()), 3), "stride_px_median": round(float(s.median()), 3),
            "detail_frames_on_object": round(100 * on_object / s.numel(), 2),
            "glyph_frames_seen": round(100 * glyph_hits / max(1, frames_on_glyph), 2),
        })
    return res


def complexity(model: nn.Module) -> dict[str, Any]:
    """Parameters and GMACs per clip (`s2d.flops.measure`: the dense reference sampler)."""
    cx = measure(model)
    return {"params": cx.params, "gmacs": round(cx.gmacs, 6),
            "gmacs_by_part": {k: round(v, 6) for k, v in cx.gmacs_by_part.items()}}


def banded_sampler_gmacs(config) -> float:
    """MACs of the banded sampler (`backend="torch"`/Triton; SPEC §4) per clip, counted by hand:
    the temporal contraction at full resolution, then 13-tap rows for height and width."""
    T, H = config.dense_frames, config.dense_size
    T_d, S = config.sampler.frames, config.sampler.size
    taps = min(13, H)
    return (T_d * T * 3 * H * H + T_d * 3 * S * H * taps + T_d * 3 * S * S * taps) / 1e9


# ------------------------------------------------------------------------------------------------
# the experiment


class SynopsisOnly(nn.Module):
    """The synopsis net of an S2DNet as a classifier of its own (stage 0: synopsis pre-training)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor, num_frames: torch.Tensor):
        return self.model.synopsis(self.model.synopsis_clip(frames, num_frames))

    def loss(self, out, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out.logits, target)


class DetailOnly(nn.Module):
    """The detail net of an S2DNet as a plain classifier on stage 1's centre crops, with a head of
    its own (stage 0: detail-net pre-training, standing in for the paper's pretrained detail nets)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.fc = nn.Linear(model.detail.backbone.embed_dim, model.config.num_classes)

    def forward(self, frames: torch.Tensor, num_frames: torch.Tensor):
        from types import SimpleNamespace

        from s2d.backbones import run_backbone
        from s2d.sampling import centre_crop_params

        c = self.model.config
        raw = centre_crop_params(frames.shape[0], c.sampler.frames, c.dense_size, c.dense_size, c.sampler.size,
                                 frames.device)
        volume = self.model.sampler(frames, num_frames, raw)
        _, pooled = run_backbone(self.model.detail.backbone, volume)
        return SimpleNamespace(logits=self.fc(pooled).mean(1))

    def loss(self, out, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out.logits, target)

    @torch.no_grad()
    def hand_over(self) -> None:
        """Start S2DNet's detail net from what was learned here: the classifier's feature columns
        from this head (the context columns zero), every fusion point the identity on the
        (non-negative) stage output, so the context enters without scrambling learned features."""
        detail = self.model.detail
        E = detail.backbone.embed_dim
        detail.fc.weight.zero_()
        detail.fc.weight[:, :E] = self.fc.weight
        detail.fc.bias.copy_(self.fc.bias)
        for fusion in detail.fusion.values():
            C = fusion.weight.shape[0]
            fusion.weight.zero_()
            fusion.weight[:, :C, 0, 0, 0] = torch.eye(C)


def align_locator(model: nn.Module, data: DataLoader, st: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    """Hand-over from stage 1 to stage 2: regress the locator's raw outputs onto the centre-crop
    parameters stage 1 sampled with, so end-to-end training starts from the view the detail net
    was trained on. Uses no labels and no ground-truth positions, only the synopsis features.

    The paper starts stage 2 from the locator's initial whole-frame view instead. On this
    benchmark that view samples the frame every 128/31 ≈ 4.13 px, next to the 4 px blind spot of
    the glyphs, so the detail net sees no glyph there and the gradient only pushes the view off
    the frame (measured: the stride grew from 4 px to tens or hundreds of px).
    """
    from s2d.sampling import centre_crop_params

    c = model.config
    model.set_freeze_sampler(False)
    opt = torch.optim.SGD(model.locator.parameters(), lr=st.lr, momentum=0.9)
    model.eval()
    model.locator.train()
    start = time.perf_counter()
    for step, batch in enumerate(data):
        frames, n = as_model_input(batch), batch["num_frames"]
        with torch.no_grad():
            syn = model.synopsis(model.synopsis_clip(frames, n))
            _, s = topk_vector(syn.logits, c.topk, c.topk_scheme)
        raw = model.locator(syn.feature_map, s)
        target = centre_crop_params(frames.shape[0], c.sampler.frames, c.dense_size, c.dense_size, c.sampler.size)
        loss = sum(F.mse_loss(a, b) for a, b in zip(raw.as_tuple(), target.as_tuple()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    log(f"  [handover] {step + 1} steps, final squared error {float(loss.detach()):.4f}  {time.perf_counter() - start:.0f}s")
    model.train()
    return {"steps": step + 1, "clips": (step + 1) * st.batch, "seconds": round(time.perf_counter() - start, 1),
            "final_mse": round(float(loss.detach()), 5)}


def run_s2dnet(st: Settings, log, eval_data: DataLoader) -> tuple[nn.Module, dict[str, Any]]:
    torch.manual_seed(st.seed)
    model = s2d.create("s2dnet-x3d-k400", **s2dnet_overrides(st))
    first = 0
    stages = {}
    if st.stage0_clips:
        log(f"S2DNet: stage 0 (synopsis net alone), {st.stage0_clips} clips")
        stages["stage0"] = train(SynopsisOnly(model), loader(st, "train", first, st.stage0_clips, st.batch), st, log,
                                 "s2dnet stage 0")
        first += st.stage0_clips
    if st.detail_pretrain_clips:
        log(f"S2DNet: stage 0 (detail net alone, centre crops), {st.detail_pretrain_clips} clips")
        pre = DetailOnly(model)
        stages["stage0_detail"] = train(pre, loader(st, "train", first, st.detail_pretrain_clips, st.batch), st, log,
                                        "s2dnet stage 0 detail")
        pre.hand_over()
        first += st.detail_pretrain_clips
    log(f"S2DNet: stage 1 (sampler frozen, centre crops), {st.stage1_clips} clips")
    model.set_freeze_sampler(True)
    stages["stage1"] = train(model, loader(st, "train", first, st.stage1_clips, st.batch), st, log, "s2dnet stage 1")
    first += st.stage1_clips
    stage1_eval = evaluate(model, eval_data)
    log(f"  after stage 1 (fixed centre crop): top-1 {stage1_eval['top1']:.2f}  top-5 {stage1_eval['top5']:.2f}")
    if st.align_clips:
        log(f"S2DNet: locator hand-over (fit to stage 1's centre-crop view), {st.align_clips} clips")
        stages["handover"] = align_locator(model, loader(st, "train", first, st.align_clips, st.batch), st, log)
        first += st.align_clips
    log(f"S2DNet: stage 2 (end to end), {st.stage2_clips} clips")
    model.set_freeze_sampler(False)
    stages["stage2"] = train(model, loader(st, "train", first, st.stage2_clips, st.batch), st, log, "s2dnet stage 2")
    result = evaluate(model, eval_data)
    result.update(complexity(model))
    result["gmacs_banded_sampler"] = round(result["gmacs"] - result["gmacs_by_part"]["sampler"]
                                           + banded_sampler_gmacs(model.config), 6)
    result["train"] = {**stages, "seconds": round(sum(v["seconds"] for v in stages.values()), 1)}
    result["centre_crop"] = {k: stage1_eval[k] for k in ("top1", "top5", "snet_top1", "snet_top5")}
    return model, result


def run_baseline(st: Settings, log, eval_data: DataLoader, size: int, tag: str) -> dict[str, Any]:
    torch.manual_seed(st.seed)
    model = s2d.create("x3d-m", **baseline_overrides(st, size))
    log(f"{tag}: {st.detail_frames}×{size}² uniform frames, {st.baseline_clips} clips")
    info = train(model, loader(st, "train", 0, st.baseline_clips, st.batch), st, log, tag)
    result = evaluate(model, eval_data)
    result.update(complexity(model))
    result["train"] = info
    return result


def snet_result(s2d_result: dict[str, Any]) -> dict[str, Any]:
    """(a) is the synopsis of (c) run on its own: its head's accuracy, its share of the compute."""
    return {"top1": s2d_result["snet_top1"], "top5": s2d_result["snet_top5"], "clips": s2d_result["clips"],
            "params": None, "gmacs": s2d_result["gmacs_by_part"]["synopsis"],
            "note": "the synopsis net of the S2DNet run (trained jointly with it), evaluated alone"}


def save_checkpoint(model: nn.Module, result: dict[str, Any], st: Settings, folder: Path, log) -> None:
    """`model.safetensors` + `config.json` (`save_pretrained`), plus `eval.json` for the model card."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    evaluation = {"dataset": "s2d.synth (synthetic detail benchmark)",
                  "split": f"{st.eval_split}, data seed {st.data_seed}, first {result['clips']} clips",
                  "top1": result["top1"], "top5": result["top5"], "views": "1 clip × 1 crop",
                  "videos": result["clips"], "log": "bench/synthetic/results.md"}
    (folder / "eval.json").write_text(json.dumps(evaluation, indent=2) + "\n", encoding="utf-8")
    register_bundled(ZOO_NAME, folder / "model.safetensors")
    log(f"saved {folder} ({(folder / 'model.safetensors').stat().st_size:,} bytes) and its zoo index entry")


def register_bundled(name: str, weights: Path) -> None:
    """Record `weights` in s2d/zoo_index.json as bundled with the source tree (no Hub repo), so
    `s2d.load(name)` verifies the file's sha256 and size."""
    import hashlib

    from s2d.zoo_index import ZooEntry, index_path

    path = index_path()
    index = json.loads(path.read_text(encoding="utf-8") or "{}") if path.is_file() else {}
    entry = ZooEntry(None, None, hashlib.sha256(weights.read_bytes()).hexdigest(), weights.stat().st_size)
    index[name] = entry.to_dict()
    path.write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n", encoding="utf-8")


RECIPE_NOTES = [
    "## Recipe, and where it departs from the paper's",
    "",
    "- Data: every training step draws fresh clips of the `train` split (one pass, nothing repeats); "
    "accuracy is on the `test` split. The benchmark's design and the recipe were tuned on `val` and on "
    "training accuracy; one rehearsal of the S2DNet run with exactly these settings (no checkpoint written) "
    "was also scored on `test` (46.97% top-1, against 46.39% here: the runs differ only by thread "
    "scheduling) and nothing was changed after it.",
    "- S2DNet stages: 0. the synopsis net alone, then the detail net alone as a plain classifier on "
    "stage 1's centre crops (the paper starts from pretrained nets; from scratch, with the context "
    "shortcut to the colour open, the detail net stayed at the colour-only 25% through 400-step stage-1 "
    "runs), its "
    "head copied into the S2DNet classifier's feature columns and every fusion point started as the "
    "identity; 1. sampler frozen, detail net on centre crops (`set_freeze_sampler(True)`), loss "
    "`model.loss` = CE(DNet) + 0.1·CE(SNet); hand-over: the locator is regressed, without labels, "
    "onto the centre-crop view of stage 1; 2. end to end, same loss.",
    "- Why the hand-over: the paper starts stage 2 from the locator's initial whole-frame view. Here "
    "that view samples every 128/31 ≈ 4.13 px, next to the glyphs' 4 px blind spot, so the detail net "
    "sees no glyph and the only gradient on the view is to get rid of it: in our runs from that "
    "start the stride grew to tens and hundreds of pixels (the view left the frame). The V̂ gradient "
    "normalisation (supplement §2) is on; its output is ~100× the networks' gradient norm, so the "
    "locator is clipped separately (norm 1) and runs at 0.1× the learning rate.",
    "- Optimiser: AdamW (lr 3e-3, weight decay 1e-3, cosine with 5% linear warm-up, gradient-norm "
    "clip 10), the same for every model. SGD with momentum 0.9 (the paper's, for pretrained nets) "
    "did not get these from-scratch tiny nets past chance on the glyphs within the budget (oracle "
    "glyph crops, 768 steps, lr 0.05 and 0.2: 25%), AdamW did (78%).",
    "- Sizes for tiny nets: dropout 0 (0.5 kept the 128-d X3D-tiny heads at chance for hundreds of "
    "steps), context vector m of 16 dims (the paper's 256 is sized for 1024-channel ResNet stages; "
    "fused into X3D-tiny's 16- and 24-channel stages it drowned the visual features), locator conv "
    "16 channels and MLP 256-128 (the synopsis map is 1×1 at 32² input).",
    "- Time: the train-time column is wall clock while the runs shared the two cores with each other "
    "(S2DNet alongside the full-resolution run). Re-run afterwards with the cores to itself (same "
    "settings, no checkpoint written), the S2DNet recipe took 14.0 min of training (stage 0: 1.3 min "
    "synopsis, 5.1 min detail; stage 1: 2.2 min; hand-over 0.3 min; stage 2: 5.1 min) and reproduced "
    "the checkpoint's figures exactly (46.39% top-1, same stride and coverage statistics).",
    "- CPU: two threads, `OMP_WAIT_POLICY=PASSIVE`, glibc kept from returning freed memory, denormals "
    "flushed: on the shared 2-core machine these turned 3-15 s steps into 0.2-0.8 s ones.",
]


def _row(label: str, inp: str, r: dict[str, Any], full: dict[str, Any], time_note: str | None = None) -> str:
    ratio = f"{r['gmacs'] / full['gmacs']:.3f}" if full.get("gmacs") and r.get("gmacs") else "-"
    gmacs = f"{r['gmacs']:.4f}" if r.get("gmacs") is not None else "-"
    params = f"{r['params']:,}" if r.get("params") else "(in c)"
    info = r.get("train", {})
    secs = time_note or (f"{info['seconds'] / 60:.1f} min" if info.get("seconds") else "-")
    return f"| {label} | {inp} | {r['top1']:.2f} | {r['top5']:.2f} | {gmacs} | {ratio} | {params} | {secs} |"


def table(results: dict[str, Any]) -> str:
    """The comparison table of results.md."""
    m = results["models"]
    full = m.get("full", {})
    st = results["settings"]
    syn, det = f"{st['synopsis_frames']}×{st['synopsis_size']}²", f"{st['detail_frames']}×{st['detail_size']}²"
    out = ["| model | input | top-1 | top-5 | GMACs | GMACs / (d) | params | train time |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    if "snet" in m:
        out.append(_row("(a) SNet only", f"{syn} nearest", m["snet"], full, "(in c)"))
    if "uniform" in m:
        out.append(_row("(b) uniform DNet", f"{det} nearest", m["uniform"], full))
    if "s2dnet" in m:
        s = m["s2dnet"]
        out.append(_row("(c) S2DNet", f"{syn} + {det} sampled", s, full))
        if "centre_crop" in s:
            cc = {**s["centre_crop"], "gmacs": s["gmacs"]}
            out.append(_row("(c') S2DNet after stage 1: fixed centre crop", f"{syn} + {det} centre", cc, full, "(in c)"))
    if "full" in m:
        out.append(_row("(d) full-res DNet", f"{st['detail_frames']}×{st['resolution']}²", full, full))
    return "\n".join(out)


def goals(results: dict[str, Any]) -> list[str]:
    """The benchmark's three targets, checked against the figures."""
    m = results["models"]
    if not {"s2dnet", "uniform", "full"} <= set(m):
        return []
    s, u, f = m["s2dnet"], m["uniform"], m["full"]
    ratio, banded = s["gmacs"] / f["gmacs"], s["gmacs_banded_sampler"] / f["gmacs"]
    nets = (s["gmacs"] - s["gmacs_by_part"]["sampler"]) / f["gmacs"]
    mark = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    return ["## Goals", "",
            f"- S2DNet ≥ uniform DNet + 30 points top-1: {s['top1'] - u['top1']:+.2f} points, "
            f"{mark(s['top1'] - u['top1'] >= 30)}.",
            f"- S2DNet within 10 points of the full-resolution DNet: {s['top1'] - f['top1']:+.2f} points, "
            f"{mark(f['top1'] - s['top1'] <= 10)}.",
            f"- S2DNet at ≤ 1/4 of the full-resolution DNet's GMACs: {ratio:.3f} counted on the dense reference "
            f"sampler ({mark(ratio <= 0.25)}), {banded:.3f} with the banded sampler's count "
            f"({mark(banded <= 0.25)}); the networks alone (synopsis, locator, context, detail) take {nets:.3f}. "
            "The sampler's temporal contraction runs at full resolution and costs 3·T·T_d MACs per dense pixel "
            "whatever the detail net, while X3D-tiny spends only ~280 MACs per input pixel-frame, so with these "
            "tiny nets the sampler is a large share of the total; for X3D-M (~5,900 MACs per pixel-frame) it "
            "would be about 1%.", ""]


def centre_window_holds_glyph(st: Settings) -> float:
    """Percent of the evaluated clips whose glyph interior lies wholly inside stage 1's centre crop
    (32 samples at the centre-crop stride around the frame centre), from the clips' ground truth."""
    from s2d.synth import BORDER, OBJECT_SIZE, sample_params

    R, S = st.resolution, st.detail_size
    stride = (R - 1) / R  # (R-1)/(S-1)·exp(δ) at centre_crop_params' δ = log((S-1)/R)
    lo, hi = (R - 1) / 2 - stride * (S - 1) / 2, (R - 1) / 2 + stride * (S - 1) / 2
    inside = 0
    for i in range(st.eval_clips):
        p = sample_params(st.data_seed, st.eval_split, i, st.dense_frames, R)
        x0, y0, _, _ = p.box(p.glyph_start)
        a, b = BORDER, OBJECT_SIZE - BORDER - 1  # interior pixels, inclusive
        inside += lo <= x0 + a and x0 + b <= hi and lo <= y0 + a and y0 + b <= hi
    return round(100 * inside / st.eval_clips, 2)


def findings(results: dict[str, Any]) -> list[str]:
    """What the figures say about where S2DNet's gain comes from, and what the run did not show."""
    m = results["models"]
    if "s2dnet" not in m or "centre_crop" not in m["s2dnet"]:
        return []
    s, cc = m["s2dnet"], m["s2dnet"]["centre_crop"]
    lines = ["## What the figures say", "",
             f"- The synopsis net knows the coarse group and nothing finer: top-5 {s['snet_top5']:.1f}%, top-1 "
             f"{s['snet_top1']:.1f}% (25% is the best a colour-only guess can do), as the no-leak construction says.",
             f"- The detail net reads the glyph where the sampler shows it: with stage 1's fixed centre crop (1 px "
             f"stride, a 32-px window) S2DNet reaches {cc['top1']:.1f}% top-1, after end-to-end training "
             f"{s['top1']:.1f}%. The glyph's 16-px interior lies entirely inside that window for "
             f"{results.get('centre_window_holds_glyph', float('nan')):.1f}% of the evaluated clips and partly "
             f"for the rest: a fixed view already catches much of the detail, a located one would catch all."]
    if s["top1"] - cc["top1"] < 5:
        lines.append(
            f"- The locator did **not** learn to find the glyph in this budget: after stage 2 the detail frames "
            f"had the whole glyph area in view at a stride ≤ 2 px in {s['detail_frames_on_object']:.1f}% of cases "
            f"(mean stride {s['stride_px_mean']:.2f} px), about what the centre crop gives, and accuracy did not "
            f"rise above the centre crop's. Two properties of this benchmark work against it. (1) The synopsis "
            f"net's last feature map is 1×1 at 32² input, so the locator sees where the object paused only "
            f"through what the pooled channels happen to encode. (2) The glyph's evidence is high-frequency "
            f"(period-4 bars), so the sampler's gradient with respect to a window centre oscillates with a 4-px "
            f"period instead of pointing towards the glyph. What would change it: a synopsis feature map with "
            f"spatial extent (e.g. 256² clips with a 64² synopsis, which keeps the no-leak factor of 4, at 4× "
            f"the data cost), a coarse, low-frequency cue that co-locates with the glyph, or far longer stage-2 "
            f"training; none fits the 20-minute CPU budget of this run.")
    return lines + [""]


def write_reports(results: dict[str, Any], out_dir: Path) -> None:
    """results.json (everything) and results.md (table, goals, where S2DNet looked, recipe)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    m, st = results["models"], results["settings"]
    clips = next(iter(m.values()))["clips"] if m else 0
    lines = ["# Synthetic detail benchmark", "",
             f"`python bench/synthetic/run.py{' --quick' if results['quick'] else ''}` on {results['machine']}, "
             f"torch {results['torch']}, {st['threads']} threads (shared with other jobs), model seed {st['seed']}, "
             f"data seed {st['data_seed']}, {results['seconds'] / 60:.0f} min in all. Data: `s2d.synth` clips "
             f"({st['dense_frames']}×{st['resolution']}², 16 classes = 4 object colours × 4 glyphs; chance 6.25% "
             f"top-1, 31.25% top-5; knowing the colour but not the glyph gives 25% top-1, 100% top-5). All models "
             f"are X3D-tiny nets trained from scratch. Accuracy on the first {clips} clips of the held-out "
             f"`{st['eval_split']}` split; GMACs per clip by `s2d.flops.measure` (dense reference sampler).", "",
             table(results), ""]
    s = m.get("s2dnet")
    if s:
        parts = ", ".join(f"{k} {v:.4f}" for k, v in s["gmacs_by_part"].items())
        lines += [f"S2DNet GMACs by part: {parts} (fusion is inside detail). With the banded sampler's count "
                  f"(`backend=\"torch\"`, what runs on CPU) the total is {s['gmacs_banded_sampler']:.4f}.", "",
                  f"Where S2DNet looked on the test clips: the synopsis top-5 held the true class for "
                  f"{s['snet_top5']:.1f}% of them; detail-frame spatial stride {s['stride_px_mean']:.2f} px on average "
                  f"(median {s['stride_px_median']:.2f}; the whole frame is 4.13 px); {s['detail_frames_on_object']:.1f}% "
                  f"of detail frames had the whole glyph area in view at a stride ≤ 2 px, and "
                  f"{s['glyph_frames_seen']:.1f}% of the detail frames centred on a frame that shows the glyph did.", ""]
        stages = ", ".join(f"{k} {v['clips']} clips / {v['seconds'] / 60:.1f} min" for k, v in s["train"].items()
                           if isinstance(v, dict))
        lines += [f"S2DNet training: {stages}; total {s['train']['seconds'] / 60:.1f} min.", ""]
    lines += goals(results)
    lines += findings(results)
    lines += RECIPE_NOTES + [""]
    (out_dir / "results.md").write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run (results under /tmp)")
    parser.add_argument("--out", type=Path, help="folder for results.json / results.md (default: this folder)")
    parser.add_argument("--models", help="comma-separated subset of s2dnet,uniform,full")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a Settings field (repeatable), e.g. --set locator_lr_mult=10")
    parser.add_argument("--no-checkpoint", action="store_true", help="do not write zoo/s2dnet-x3d-synth")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other models' entries of an existing results.json (same settings)")
    parser.add_argument("--report-only", action="store_true", help="rewrite results.md from results.json")
    args = parser.parse_args(argv)
    st = Settings(seed=args.seed)
    if args.quick:
        st = Settings(seed=args.seed, stage0_clips=32, detail_pretrain_clips=32, stage1_clips=32, align_clips=32, stage2_clips=64,
                      baseline_clips=64, eval_clips=64)
    for item in args.set:
        key, _, value = item.partition("=")
        current = getattr(st, key)
        setattr(st, key, type(current)(json.loads(value)) if not isinstance(current, str) else value)
    if args.models:
        st.models = tuple(args.models.split(","))
    out_dir = args.out or (Path("/tmp/s2d-synthetic-quick") if args.quick else HERE)
    previous = {}
    if args.merge and (out_dir / "results.json").is_file():
        previous = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
        mine = {k: v for k, v in st.__dict__.items() if k != "models"}
        theirs = {k: v for k, v in previous["settings"].items() if k != "models"}
        if json.loads(json.dumps(mine)) != theirs:
            parser.error(f"--merge: {out_dir / 'results.json'} was made with other settings")
    if args.report_only:
        write_reports(json.loads((out_dir / "results.json").read_text(encoding="utf-8")), out_dir)
        return 0
    torch.set_num_threads(st.threads)
    torch.set_flush_denormal(True)  # tiny early gradients must not hit the slow denormal path
    keep_freed_memory()

    def log(msg: str) -> None:
        print(msg, flush=True)

    eval_data = loader(st, st.eval_split, 0, st.eval_clips, 32)
    results: dict[str, Any] = {"quick": args.quick, "settings": {**st.__dict__},
                               "machine": f"{platform.machine()} CPU ({os.cpu_count()} cores visible)",
                               "torch": torch.__version__, "python": platform.python_version(),
                               "models": dict(previous.get("models", {}))}
    t0 = time.perf_counter()
    if "s2dnet" in st.models:
        model, res = run_s2dnet(st, log, eval_data)
        results["models"]["s2dnet"] = res
        results["models"]["snet"] = snet_result(res)
        log(f"S2DNet: {json.dumps(res)}")
        if not args.quick and not args.no_checkpoint:
            save_checkpoint(model, res, st, REPO / "zoo" / ZOO_NAME, log)
    if "uniform" in st.models:
        res = run_baseline(st, log, eval_data, st.detail_size, "uniform DNet")
        results["models"]["uniform"] = res
        log(f"uniform DNet: {json.dumps(res)}")
    if "full" in st.models:
        res = run_baseline(st, log, eval_data, st.resolution, "full-res DNet")
        results["models"]["full"] = res
        log(f"full-res DNet: {json.dumps(res)}")
    results["settings"]["models"] = sorted(results["models"])
    results["centre_window_holds_glyph"] = centre_window_holds_glyph(st)
    results["seconds"] = round(time.perf_counter() - t0, 1) + previous.get("seconds", 0)
    write_reports(results, out_dir)
    log(f"wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
