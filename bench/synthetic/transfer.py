"""Transfer: fine-tune `s2dnet-x3d-synth` onto a task it has never seen, against training from scratch.

    python -m s2d data synth DATA/train --task transfer --split train --clips 640
    python -m s2d data synth DATA/val --task transfer --split val --clips 256
    python bench/synthetic/transfer.py --data DATA --out runs/transfer              # val scores (tuning)
    python bench/synthetic/transfer.py --data DATA --out runs/transfer --runs finetune --tag=_lr1e3 \
        --set optim.lr=0.001 --set model.freeze=[]                                   # a variant, on val
    python bench/synthetic/transfer.py --data DATA --out runs/transfer --score-only --test 512   # test, once

The task (`s2d.synth.tasks.TRANSFER`): the benchmark's objects, 8 classes = colour group (warm,
cool) × 4 diagonal glyphs the benchmark never shows. The data are folders of mp4 files, read as a
user's would be (`data.kind=folder`). Runs, all `python -m s2d train finetune` on the same folders,
the same schedule and the same clip budget (`--epochs` × the train clips):

- `finetune`: `model.init=s2dnet-x3d-synth` (class-dependent layers re-initialised, the rest trained),
  with the recipe's settings or a variant of them (`--set`, named by `--tag`);
- `scratch`: the same architecture from random initialisation (`model.name=s2dnet-x3d-synth`, no
  init), with the synthetic recipe's optimiser (every part at the full lr, the locator at 0.1×);
- `step0`: the fine-tuning start point, not trained: where its locator looks before any update.

Scores (`s2d.synth.score.score_synthetic` on the task's clips, rendered in memory: the same bytes
as the files): top-1, the synopsis net's top-1, glyph in view, window-to-glyph distance, and the
training wall time. Seeds: data seed 0, model seed 0. Writes `transfer.json` into `--out`.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep on a shared CPU

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

import s2d
from s2d.synth import SyntheticDetailDataset
from s2d.synth.score import score_synthetic
from s2d.train import load_config, train

RUNS = ("step0", "finetune", "scratch")
SCRATCH_OPTIM = ["optim.lr=0.003", 'optim.lr_ratios={"locator": 0.1}', "model.freeze=[]"]


def overrides(run: str, data: Path, out: Path, epochs: int, tag: str = "") -> list[str]:
    """The `python -m s2d train finetune` overrides of a run."""
    common = [f"data.root={data / 'train'}", f"data.args.val_root={data / 'val'}", f"out_dir={out / (run + tag)}",
              f"stages.stage2_epochs={epochs}", "data.val_every=100", "threads=2", "flush_denormal=true",
              "device=cpu", "progress=false", "seed=0"]
    if run == "finetune":
        return ["model.init=s2dnet-x3d-synth", *common]
    return ["model.name=s2dnet-x3d-synth", *SCRATCH_OPTIM, *common]


def scores(model: torch.nn.Module, split: str, count: int) -> dict[str, float]:
    data = SyntheticDetailDataset(split, count, seed=0, task="transfer")
    raw = score_synthetic(model, data, range(count))
    return {k: round(float(v), 2) for k, v in raw.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder holding train/ and val/ class folders")
    p.add_argument("--out", type=Path, required=True, help="run folders and transfer.json go here")
    p.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    p.add_argument("--epochs", type=int, default=8, help="passes over the train folder (default 8)")
    p.add_argument("--val", type=int, default=256, help="val clips scored (default 256)")
    p.add_argument("--test", type=int, default=0, help="test clips scored (default 0: none; score once, at the end)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a further training override for the trained runs (repeatable), e.g. optim.lr=0.003")
    p.add_argument("--tag", default="", help="suffix of the run names (and folders) for a variant made with --set")
    p.add_argument("--score-only", action="store_true", help="score the runs' existing folders, train nothing")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    classes = sorted(d.name for d in (args.data / "train").iterdir() if d.is_dir())
    train_clips = sum(1 for _ in (args.data / "train").rglob("*.mp4"))
    path = args.out / "transfer.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    for run in args.runs.split(","):
        entry: dict[str, Any] = {"train_clips": train_clips, "epochs": args.epochs,
                                 "clip_reads": 0 if run == "step0" else train_clips * args.epochs}
        if run == "step0":
            model = s2d.load("s2dnet-x3d-synth", labels=classes)
            entry["reinitialised"] = model.weights_source.reinitialised
            entry["train_seconds"] = 0.0
        elif args.score_only:
            entry = results[run + args.tag]
            model = s2d.load(args.out / (run + args.tag))
        else:
            entry["overrides"] = overrides(run, args.data, args.out, args.epochs, args.tag) + args.set
            cfg = load_config("finetune", entry["overrides"])
            start = time.perf_counter()
            train(cfg)
            entry["train_seconds"] = round(time.perf_counter() - start, 1)
            model = s2d.load(args.out / (run + args.tag))
        entry["val"] = scores(model, "val", args.val)
        if args.test:
            entry["test"] = scores(model, "test", args.test)
        results[run + args.tag] = entry
        print(run, json.dumps(entry), flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
    for split in ("val", "test"):
        print(f"\n{split}:\n{table(results, split)}")
    return 0


def table(results: dict[str, Any], split: str) -> str:
    """Markdown rows of the runs scored on `split`."""
    rows = ["| run | clip reads | top-1 | synopsis top-1 | glyph in view | window to glyph | train time |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for run, entry in results.items():
        if split in entry:
            s = entry[split]
            rows.append(f"| {run} | {entry['clip_reads']:,} | {s['top1']:.2f} | {s['synopsis_top1']:.2f} | "
                        f"{s['glyph_in_view']:.1f}% | {s['window_to_glyph_px']:.1f} px | {entry['train_seconds']:.0f} s |")
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
