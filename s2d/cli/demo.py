"""`python -m s2d demo [--out DIR] [--num N]`: S2DNet at work on synthetic clips, end to end.

Renders a few clips of the synthetic detail benchmark (`s2d.synth`, held-out `test` split),
writes them as mp4 files, reads them back like any video, classifies them with the trained
`s2dnet-x3d-synth` model shipped in the zoo, and prints, per clip, the ground truth, the synopsis
net's top-k (which should hold the right direction but cannot see the glyph) and the final
prediction after the detail net looked closer. For each clip it writes `<clip>.png` (contact sheet
of the sampled regions and detail frames) and `<clip>.gif` beside the videos.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_MODEL = "s2dnet-x3d-synth"


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="s2d-demo", metavar="DIR",
                        help="folder for the clips (mp4) and pictures (png, gif); default ./s2d-demo")
    parser.add_argument("--num", type=int, default=4, metavar="N", help="number of clips (default 4)")
    parser.add_argument("--start", type=int, default=0, help="first clip index of the test split (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="data seed of the synthetic clips (default 0)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"a model trained on s2d.synth clips (default {DEFAULT_MODEL})")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")


def _mark(ok: bool) -> str:
    return "yes" if ok else "NO"


def run(args: argparse.Namespace) -> int:
    import torch

    from s2d.io import read_clip
    from s2d.predict import clip_spec, predict
    from s2d.synth import CLASSES, SyntheticDetailDataset, where_it_looked, write_video
    from s2d.viz import save_visualisation
    from s2d.zoo import ZooError, load

    if args.num < 1:
        print("error: --num must be at least 1", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        model = load(args.model, device=args.device)
    except ZooError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    config = model.config
    if getattr(config, "kind", None) != "s2dnet" or config.num_classes != len(CLASSES):
        print(f"error: {args.model!r} is not an S2DNet trained on the synthetic benchmark ({len(CLASSES)} classes)",
              file=sys.stderr)
        return 2
    model.pretrained = True
    T, R = config.dense_frames, config.dense_size
    data = SyntheticDetailDataset("test", args.start + args.num, seed=args.seed, frames=T, resolution=R)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"model {args.model}: synopsis {config.synopsis.frames}x{config.synopsis.size}^2 (nearest) -> top-{config.topk} "
          f"-> detail {config.sampler.frames}x{config.sampler.size}^2 sampled from {T}x{R}^2 clips")
    correct = synopsis_hit = 0
    for index in range(args.start, args.start + args.num):
        sample = data[index]
        truth = data.params(index)
        path = write_video(out / f"synth_test_{index:04d}.mp4", sample["frames"])
        clip = read_clip(path, clip_spec(config))  # read back as any video, the way the model's config asks
        pred = predict(model, clip.frames, topk=3, num_frames=clip.num_frames, device=args.device, keep_detail=True)
        pred.path = str(path)
        name = CLASSES[truth.label]
        in_topk = name in [n for n, _ in pred.synopsis]
        right = pred.labels[0][0] == name
        correct += right
        synopsis_hit += in_topk
        looked = where_it_looked(pred.outputs.params, [truth], T, config.sampler.size)[0]
        strides = torch.tensor(looked["stride"])
        print(f"\n{path}")
        print(f"  truth:      {name}   (glyph shown in frames {truth.glyph_start}-"
              f"{truth.glyph_start + truth.glyph_frames - 1})")
        print(f"  synopsis:   " + " | ".join(f"{n} {p:.2f}" for n, p in pred.synopsis)
              + f"   truth in top-{config.topk}: {_mark(in_topk)}")
        print(f"  prediction: " + " | ".join(f"{n} {p:.2f}" for n, p in pred.labels) + f"   correct: {_mark(right)}")
        print(f"  looked at:  frames {looked['frames']}, stride {float(strides.min()):.2f}-{float(strides.max()):.2f} px, "
              f"glyph area in view (zoomed) in {sum(looked['on_object'])}/{len(looked['on_object'])} detail frames")
        for p in save_visualisation(pred, config, out):
            print(f"  wrote {p}")
    print(f"\n{correct}/{args.num} correct; synopsis top-{config.topk} held the truth for {synopsis_hit}/{args.num}; "
          f"{time.perf_counter() - started:.1f} s")
    return 0
