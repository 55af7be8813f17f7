"""Can S2DNet's locator learn where to look on the synthetic benchmark? Three probes of a trained model.

    python bench/synthetic/diagnose.py --model s2dnet-x3d-synth --out bench/synthetic/diagnose
    python bench/synthetic/diagnose.py --model runs/synth --probes a,b --clips 32

(a) landscape: with the detail net fixed, the loss and its gradient with respect to the window centre
    as the window slides away from the glyph along x (how wide is the basin of attraction, and does the
    gradient point toward the glyph?);
(b) descent: per clip, plain gradient descent on the window centre itself from several distances (can
    gradient descent through this sampler localise at all, with no locator in between?);
(c) locator alone: a fresh locator trained for a few hundred steps with everything else frozen, reading
    the synopsis map the model is configured with, and the same with the true glyph centre appended to
    its input (position information, never a target: the loss is still the classification loss).

Everything is seeded (`--seed`, data seed `--data-seed`) and reads the `val` split (probes) and a
far range of the `train` split (probe c's training clips); nothing touches `test`. Writes
`diagnose.json` and `diagnose.png` into `--out`.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import s2d
from s2d.data import collate
from s2d.models.clip import channels_first
from s2d.models.locator import Locator
from s2d.models.sampler import window_params
from s2d.models.synopsis import map_size
from s2d.synth.benchmark import SyntheticDetailDataset
from s2d.synth.views import where_it_looked
from s2d_kernels.context import topk_vector

#: Window offsets (px, along x) probed in (a), and start distances of (b).
OFFSETS = tuple(range(-24, 25, 2))
DISTANCES = (0, 4, 8, 12, 16, 24)


def clips(split: str, start: int, count: int, data_seed: int, spread: int | None = None) -> dict[str, Any]:
    """A batch of synthetic clips with their glyph centres (`focus`, px) and ground truth (`truth`)."""
    kwargs = {} if spread is None else {"spread": spread}
    ds = SyntheticDetailDataset(split, start + count, seed=data_seed, **kwargs)
    batch = collate([ds[i] for i in range(start, start + count)])
    truth = [ds.params(i) for i in range(start, start + count)]
    batch["frames"] = channels_first(batch["frames"])  # [B, T, 3, H, W]
    batch["focus"] = torch.tensor([p.glyph_centre() for p in truth], dtype=torch.float32)
    batch["truth"] = truth
    return batch


def _loss_and_grad(model: nn.Module, batch: dict[str, Any], cx: torch.Tensor, cy: torch.Tensor,
                   stride: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-clip CE loss and its gradient with respect to the window centre (px), in eval mode."""
    c = model.config
    cx, cy = cx.clone().requires_grad_(True), cy.clone().requires_grad_(True)
    raw = window_params(cx, cy, torch.full_like(cx, stride), c.sampler.frames, c.dense_size, c.dense_size,
                        c.sampler.size)
    out = model(batch["frames"], batch["num_frames"], look_at=raw)
    loss = F.cross_entropy(out.logits, batch["labels"], reduction="none")
    gx, gy = torch.autograd.grad(loss.sum(), (cx, cy))
    return loss.detach(), gx, gy


def landscape(model: nn.Module, batch: dict[str, Any], stride: float, offsets=OFFSETS, fd: int = 4) -> dict[str, Any]:
    """Probe (a): mean loss, accuracy, and how often dL/dx points toward the glyph, per x offset; and
    how often the loss difference between the windows `fd` px either side does (a smoothed slope)."""
    model.eval()
    fx, fy = batch["focus"][:, 0], batch["focus"][:, 1]
    rows = []
    for off in offsets:
        loss, gx, _ = _loss_and_grad(model, batch, fx + off, fy, stride)
        with torch.no_grad():
            c = model.config
            raw = window_params(fx + off, fy, torch.full_like(fx, stride), c.sampler.frames, c.dense_size,
                                c.dense_size, c.sampler.size)
            acc = (model(batch["frames"], batch["num_frames"], look_at=raw).logits.argmax(1) == batch["labels"])
        toward = (gx * off > 0).float().mean().item() if off else float("nan")
        rows.append({"offset": off, "loss": loss.mean().item(), "top1": 100 * acc.float().mean().item(),
                     "toward": toward, "grad_abs": gx.abs().mean().item(), "grad_mean": gx.mean().item(),
                     "per_clip_loss": loss.tolist()})
    # The smoothed alternative: per-clip central differences of the loss over ±`fd` px.
    by_offset = {r["offset"]: torch.tensor(r["per_clip_loss"]) for r in rows}
    for r in rows:
        off = r["offset"]
        if off and off + fd in by_offset and off - fd in by_offset:
            diff = by_offset[off + fd] - by_offset[off - fd]
            r[f"fd{fd}_toward"] = (diff * off > 0).float().mean().item()
    for r in rows:
        del r["per_clip_loss"]
    return {"stride": stride, "fd_px": fd, "rows": rows}


def descent(model: nn.Module, batch: dict[str, Any], stride: float, steps: int = 40, lr: float = 1.0,
            distances=DISTANCES, seed: int = 0) -> dict[str, Any]:
    """Probe (b): Adam on each clip's own window centre (px) from a random direction at each distance."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    fx, fy = batch["focus"][:, 0], batch["focus"][:, 1]
    W = model.config.dense_size
    rows = []
    for dist in distances:
        angle = torch.rand(fx.shape, generator=g) * 2 * math.pi
        cx = (fx + dist * torch.cos(angle)).clamp(1, W - 2)
        cy = (fy + dist * torch.sin(angle)).clamp(1, W - 2)
        start = torch.hypot(cx - fx, cy - fy)
        pos = torch.stack([cx, cy]).requires_grad_(True)
        opt = torch.optim.Adam([pos], lr=lr)
        for _ in range(steps):
            loss, gx, gy = _loss_and_grad(model, batch, pos[0].detach(), pos[1].detach(), stride)
            opt.zero_grad()
            pos.grad = torch.stack([gx, gy])
            opt.step()
            with torch.no_grad():
                pos.clamp_(1, W - 2)
        end = torch.hypot(pos[0].detach() - fx, pos[1].detach() - fy)
        rows.append({"distance": dist, "start": start.mean().item(), "end": end.mean().item(),
                     "closer": (end < start - 1).float().mean().item(), "end_within_4px": (end <= 4).float().mean().item()})
    return {"stride": stride, "steps": steps, "lr_px": lr, "rows": rows}


class _PositionLocator(nn.Module):
    """A locator whose map carries two more channels: the true glyph centre, scaled to [-1, 1]."""

    def __init__(self, model: nn.Module, with_position: bool):
        super().__init__()
        c = model.config
        channels = model.locator.conv.in_channels - c.num_classes + (2 if with_position else 0)
        side = map_size(c.synopsis.size, c.locator.feature_stage)
        self.locator = Locator(c.locator, channels, c.num_classes, c.synopsis.frames, side, c.sampler.frames)
        self.with_position = with_position
        self.size = c.dense_size

    def forward(self, fmap: torch.Tensor, s: torch.Tensor, focus: torch.Tensor):
        if self.with_position:
            pos = (focus / (self.size - 1) * 2 - 1)[:, :, None, None, None].expand(-1, -1, *fmap.shape[2:])
            fmap = torch.cat([fmap, pos.to(fmap.dtype)], 1)
        return self.locator(fmap, s)


def locator_alone(model: nn.Module, data_seed: int, steps: int, with_position: bool, batch_size: int = 16,
                  lr: float = 3e-4, warm_steps: int = 30, seed: int = 0, eval_batch: dict[str, Any] | None = None,
                  start_stride: float = 1.3, spread: int | None = None) -> dict[str, Any]:
    """Probe (c): a fresh locator, first fitted (no labels) to a centred window at `start_stride`,
    then trained on the classification loss with every other weight frozen."""
    torch.manual_seed(seed)
    c = model.config
    probe = _PositionLocator(model, with_position)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=1e-3)
    W = c.dense_size

    def run(batch, train: bool):
        syn = model.synopsis(model.synopsis_clip(batch["frames"], batch["num_frames"]))
        _, khot = topk_vector(syn.logits, c.topk, c.topk_scheme)  # the model's own s
        probe.train(train)
        return probe(syn.feature_map, khot, batch["focus"])

    def evaluate() -> dict[str, float]:
        with torch.no_grad():
            raw = run(eval_batch, False)
            out = model(eval_batch["frames"], eval_batch["num_frames"], look_at=raw)
            where = where_it_looked(out.params, eval_batch["truth"], c.dense_frames, c.sampler.size)
        shown = [o for w in where for o, g in zip(w["on_object"], w["glyph_shown"]) if g]
        err = torch.hypot(out.params.centre_x.mean(1) - eval_batch["focus"][:, 0],
                          out.params.centre_y.mean(1) - eval_batch["focus"][:, 1])
        return {"top1": 100 * (out.logits.argmax(1) == eval_batch["labels"]).float().mean().item(),
                "glyph_in_view": 100 * sum(shown) / max(1, len(shown)), "centre_error_px": err.mean().item(),
                "stride_px": out.params.stride_x.mean().item()}

    history = []
    start = 200_000  # far from every other use of the train split; the same clips for both variants
    for step in range(warm_steps + steps):
        batch = clips("train", start + step * batch_size, batch_size, data_seed, spread)
        raw = run(batch, True)
        if step < warm_steps:  # fit the centred window: no labels, no ground truth
            target = window_params(torch.full((batch_size,), (W - 1) / 2), torch.full((batch_size,), (W - 1) / 2),
                                   torch.full((batch_size,), start_stride), c.sampler.frames, W, W, c.sampler.size)
            loss = sum(F.mse_loss(a, b) for a, b in zip(raw.as_tuple(), target.as_tuple()))
        else:
            model.sampler.train()  # V̂ gradient normalisation, as in stage 2
            out = model(batch["frames"], batch["num_frames"], look_at=raw)
            model.sampler.eval()
            loss = F.cross_entropy(out.logits, batch["labels"])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(probe.parameters(), 1.0)
        opt.step()
        if step + 1 == warm_steps or (step + 1 - warm_steps) % max(1, steps // 4) == 0:
            history.append({"step": step + 1 - warm_steps, **evaluate()})
    for p in model.parameters():
        p.requires_grad_(True)
    return {"with_position": with_position, "steps": steps, "lr": lr, "history": history}


def plot(results: dict[str, Any], path: Path) -> None:
    """One PNG: (a) loss / toward-fraction vs offset, (b) end vs start distance, (c) glyph in view vs step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    for a in results.get("landscape", []):
        xs = [r["offset"] for r in a["rows"]]
        ax.plot(xs, [r["loss"] for r in a["rows"]], marker="o", label=f"loss, stride {a['stride']:g}px")
        ax2 = ax.twinx() if "ax2" not in locals() else ax2
        ax2.plot(xs, [r["toward"] for r in a["rows"]], ls="--", marker=".", label=f"P(grad toward glyph), {a['stride']:g}px")
    if results.get("landscape"):
        ax.set_xlabel("window offset from the glyph centre (px)")
        ax.set_ylabel("cross-entropy")
        ax2.set_ylabel("fraction of clips: gradient points toward the glyph")
        ax2.axhline(0.5, color="grey", lw=0.5)
        ax2.set_ylim(0, 1)
        ax.legend(loc="upper left", fontsize=7)
        ax2.legend(loc="lower right", fontsize=7)
    ax.set_title("(a) loss landscape around the glyph")
    ax = axes[1]
    for d in results.get("descent", []):
        rows = d["rows"]
        ax.plot([r["start"] for r in rows], [r["end"] for r in rows], marker="o", label=f"stride {d['stride']:g}px")
    ax.plot([0, 25], [0, 25], color="grey", lw=0.5, label="no progress")
    ax.set_xlabel("start distance (px)")
    ax.set_ylabel(f"distance after descent (px)")
    ax.set_title("(b) gradient descent on the window centre")
    ax.legend(fontsize=7)
    ax = axes[2]
    for c in results.get("locator_alone", []):
        h = c["history"]
        ax.plot([r["step"] for r in h], [r["glyph_in_view"] for r in h], marker="o",
                label="map + true position" if c["with_position"] else "synopsis map only")
    ax.set_xlabel("locator-only training steps")
    ax.set_ylabel("glyph frames with the whole glyph in view (%)")
    ax.set_title("(c) locator trained alone")
    ax.legend(fontsize=7)
    fig.suptitle(results.get("title", ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="s2dnet-x3d-synth", help="zoo name or model folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "diagnose")
    parser.add_argument("--probes", default="a,b,c")
    parser.add_argument("--clips", type=int, default=64, help="val clips for probes a and b")
    parser.add_argument("--strides", default="1.0,1.5", help="window strides (px) for probes a and b")
    parser.add_argument("--locator-steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    model = s2d.load(args.model)
    probes = set(args.probes.split(","))
    strides = [float(s) for s in args.strides.split(",")]
    batch = clips("val", 0, args.clips, args.data_seed)
    results: dict[str, Any] = {"model": args.model, "seed": args.seed, "data_seed": args.data_seed,
                               "clips": args.clips, "title": f"{args.model}: {args.clips} val clips, data seed {args.data_seed}"}
    t0 = time.perf_counter()
    if "a" in probes:
        results["landscape"] = [landscape(model, batch, s) for s in strides]
        print(json.dumps(results["landscape"]), flush=True)
    if "b" in probes:
        results["descent"] = [descent(model, batch, s, seed=args.seed) for s in strides]
        print(json.dumps(results["descent"]), flush=True)
    if "c" in probes:
        eval_batch = clips("val", args.clips, 128, args.data_seed)
        results["locator_alone"] = [locator_alone(model, args.data_seed, args.locator_steps, pos, seed=args.seed,
                                                  eval_batch=eval_batch) for pos in (False, True)]
        print(json.dumps(results["locator_alone"]), flush=True)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "diagnose.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    try:
        plot(results, args.out / "diagnose.png")
    except ImportError:
        print("matplotlib is not installed: wrote diagnose.json only (pip install matplotlib for the figure)")
    print(f"wrote {args.out} in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
