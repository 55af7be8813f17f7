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
from s2d.topk import topk_vector
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
    lr: float = 0.1
    locator_lr_mult: float = 1.0
    weight_decay: float = 1e-3
    clip_grad: float = 10.0  # gradient-norm clip of the networks
    locator_clip: float = 1.0  # gradient-norm clip of the locator, separately
    warmup: float = 0.05  # fraction of steps
    stage0_clips: int = 1600  # S2DNet stage 0 (synopsis net alone)
    stage1_clips: int = 4096  # S2DNet stage 1 (sampler frozen)
    align_clips: int = 1024  # S2DNet hand-over between stages 1 and 2 (see align_locator)
    stage2_clips: int = 8192  # S2DNet stage 2 (end to end)
    baseline_clips: int = 8192  # each baseline (uniform, full resolution)
    eval_clips: int = 1024
    eval_split: str = "test"
    dropout: float = 0.0  # every clip is new (no overfitting), and dropout 0.5 stalls these tiny nets
    locator_init: float = 0.01  # LocatorConfig.head_init_factor: spread of the initial sampling
    locator_hidden: int = 16
    locator_mlp: tuple[int, int] = (256, 128)
    threads: int = 2
    models: tuple[str, ...] = ("s2dnet", "uniform", "full")


def s2dnet_overrides(st: Settings) -> dict[str, Any]:
    """The S2DNet architecture of this benchmark as `s2d.create("s2dnet-x3d-k400", **overrides)`."""
    return dict(num_classes=len(CLASSES), labels=LABEL_LIST, dense_frames=st.dense_frames,
                dense_size=st.resolution, mean=MEAN, std=STD,
                synopsis={"arch": "x3d_tiny", "frames": st.synopsis_frames, "size": st.synopsis_size,
                          "dropout": st.dropout, "context_dropout": st.dropout},
                detail={"arch": "x3d_tiny", "dropout": st.dropout},
                sampler={"frames": st.detail_frames, "size": st.detail_size},
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


def train(model: nn.Module, data: DataLoader, st: Settings, log: Callable[[str], None], tag: str) -> dict[str, Any]:
    """One pass over `data`: SGD (momentum 0.9), linear warm-up then cosine decay, gradient clipping."""
    groups = param_groups(model, st)
    opt = torch.optim.SGD(groups, lr=st.lr, momentum=0.9)
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
    strides, hits, frames_on_glyph, glyph_hits = [], 0, 0, 0
    for batch in data:
        out = model(as_model_input(batch), batch["num_frames"])
        y = batch["labels"]
        n += y.numel()
        top1 += _topk_hits(out.logits, y, 1)
        top5 += _topk_hits(out.logits, y, 5)
        if hasattr(out, "snet_logits"):
            s_top1 += _topk_hits(out.snet_logits, y, 1)
            s_top5 += _topk_hits(out.snet_logits, y, 5)
            truth = [dataset.params(int(i)) for i in batch["indices"]]
            for clip in where_it_looked(out.params, truth, model.config.dense_frames, model.config.sampler.size):
                strides.extend(clip["stride"])
                hits += sum(clip["on_object"])
                frames_on_glyph += sum(clip["glyph_shown"])
                glyph_hits += sum(o and g for o, g in zip(clip["on_object"], clip["glyph_shown"]))
    res = {"clips": n, "top1": round(100 * top1 / n, 2), "top5": round(100 * top5 / n, 2)}
    if strides:
        s = torch.tensor(strides)
        res.update({
            "snet_top1": round(100 * s_top1 / n, 2), "snet_top5": round(100 * s_top5 / n, 2),
            "stride_px_mean": round(float(s.mean()), 3), "stride_px_median": round(float(s.median()), 3),
            "detail_frames_on_object": round(100 * hits / s.numel(), 2),
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
    log(f"  [handover] {step + 1} steps, final squared error {float(loss):.4f}  {time.perf_counter() - start:.0f}s")
    model.train()
    return {"steps": step + 1, "clips": (step + 1) * st.batch, "seconds": round(time.perf_counter() - start, 1),
            "final_mse": round(float(loss), 5)}


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
    log(f"saved {folder} ({(folder / 'model.safetensors').stat().st_size:,} bytes)")


def table(results: dict[str, Any]) -> str:
    """results.md: the comparison table and the settings."""
    rows = [("(a) SNet only", "snet", "4×32² nearest"),
            ("(b) uniform DNet", "uniform", "8×32² nearest"),
            ("(c) S2DNet", "s2dnet", "synopsis 4×32² + detail 8×32² sampled"),
            ("(d) full-res DNet", "full", "8×128²")]
    full = results["models"].get("full", {})
    out = ["| model | input | top-1 | top-5 | GMACs | GMACs / (d) | params | train time | train clips |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, key, inp in rows:
        r = results["models"].get(key)
        if r is None:
            continue
        ratio = f"{r['gmacs'] / full['gmacs']:.3f}" if full.get("gmacs") else "-"
        params = f"{r['params']:,}" if r.get("params") else "(part of c)"
        train_info = r.get("train", {})
        secs = f"{train_info['seconds'] / 60:.1f} min" if train_info.get("seconds") else "(with c)"
        clips = train_info.get("clips") or sum(v.get("clips", 0) for v in train_info.values() if isinstance(v, dict))
        out.append(f"| {label} | {inp} | {r['top1']:.2f} | {r['top5']:.2f} | {r['gmacs']:.4f} | {ratio} | "
                   f"{params} | {secs} | {clips or '-'} |")
    return "\n".join(out)


def write_reports(results: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    m = results["models"]
    lines = ["# Synthetic detail benchmark", "",
             f"`python bench/synthetic/run.py{' --quick' if results['quick'] else ''}` on {results['machine']}, "
             f"torch {results['torch']}, {results['settings']['threads']} threads, seed {results['settings']['seed']}, "
             f"data seed {results['settings']['data_seed']}. Accuracy on the held-out `{results['settings']['eval_split']}` "
             f"split ({m[next(iter(m))]['clips']} clips, 16 classes: chance 6.25% top-1, 31.25% top-5).", "",
             table(results), ""]
    s = m.get("s2dnet")
    if s:
        lines += ["GMACs are `s2d.flops.measure` (FlopCounterMode on the dense reference sampler) per clip. The "
                  f"S2DNet total splits as {', '.join(f'{k} {v:.4f}' for k, v in s['gmacs_by_part'].items())}; "
                  f"with the banded sampler's count instead of the dense one it is {s['gmacs_banded_sampler']:.4f}.", "",
                  f"Where S2DNet looked (test clips): synopsis top-5 holds the true class for {s['snet_top5']:.1f}% of "
                  f"clips; detail-frame spatial stride mean {s['stride_px_mean']:.2f} px (median "
                  f"{s['stride_px_median']:.2f}; 4.13 px covers the whole frame); {s['detail_frames_on_object']:.1f}% of "
                  f"detail frames are zoomed (stride ≤ 2 px) with the glyph area inside the window, "
                  f"{s['glyph_frames_seen']:.1f}% of those centred on a frame that shows the glyph.", ""]
    if results.get("notes"):
        lines += [*results["notes"], ""]
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
    args = parser.parse_args(argv)
    st = Settings(seed=args.seed)
    if args.quick:
        st = Settings(seed=args.seed, stage0_clips=32, stage1_clips=32, align_clips=32, stage2_clips=64,
                      baseline_clips=64, eval_clips=64)
    for item in args.set:
        key, _, value = item.partition("=")
        current = getattr(st, key)
        setattr(st, key, type(current)(json.loads(value)) if not isinstance(current, str) else value)
    if args.models:
        st.models = tuple(args.models.split(","))
    out_dir = args.out or (Path("/tmp/s2d-synthetic-quick") if args.quick else HERE)
    torch.set_num_threads(st.threads)
    torch.set_flush_denormal(True)  # tiny early gradients must not hit the slow denormal path
    keep_freed_memory()

    def log(msg: str) -> None:
        print(msg, flush=True)

    eval_data = loader(st, st.eval_split, 0, st.eval_clips, 32)
    results: dict[str, Any] = {"quick": args.quick, "settings": {**st.__dict__},
                               "machine": f"{platform.machine()} CPU ({os.cpu_count()} cores visible)",
                               "torch": torch.__version__, "python": platform.python_version(), "models": {}}
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
    results["seconds"] = round(time.perf_counter() - t0, 1)
    write_reports(results, out_dir)
    log(f"wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
