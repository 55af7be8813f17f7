"""`python -m s2d demo [--out DIR] [--num N] [--eval M]`: S2DNet at work on synthetic clips, end to end.

First it scores the trained `s2dnet-x3d-synth` model shipped in the zoo on `--eval` held-out clips
of the synthetic detail benchmark (`s2d.synth`, `test` split, data seed `--seed`): top-1, the
synopsis net's top-1 (colour only: it cannot see the glyph), and how often the detail frames that
show the glyph had the whole glyph area in view, counted on the window the pictures draw. The same
model with stage 1's fixed centre crop instead of its locator is scored beside it. Then, for
`--num` clips, it writes mp4 files, reads them back like any video, and prints per clip the ground
truth, the synopsis top-k, the prediction and where it looked, with `<clip>.png` (contact sheet of
the sampled regions and detail frames) and `<clip>.gif` beside the videos.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_MODEL = "s2dnet-x3d-synth"


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder for the clips (mp4) and pictures (png, gif); default: s2d-demo in the "
                             "system's temporary folder")
    parser.add_argument("--num", type=int, default=4, metavar="N",
                        help="clips shown one by one, with pictures (default 4)")
    parser.add_argument("--eval", type=int, default=32, metavar="M",
                        help="held-out clips the accuracy is measured on (default 32; 0 skips it)")
    parser.add_argument("--start", type=int, default=0, help="first clip index of the test split (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="data seed of the synthetic clips (default 0)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"a model trained on s2d.synth clips (default {DEFAULT_MODEL})")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")


def _mark(ok: bool) -> str:
    return "yes" if ok else "NO"


def run(args: argparse.Namespace) -> int:
    import torch

    from s2d.hub.errors import ZooError
    from s2d.hub.factory import load
    from s2d.inference.predict import predict
    from s2d.inference.viz import save_visualisation
    from s2d.io import read_clip
    from s2d.models.clip import clip_spec
    from s2d.synth.benchmark import CLASSES, SyntheticDetailDataset, write_video
    from s2d.synth.score import score_synthetic
    from s2d.synth.views import where_it_looked

    if args.num < 0 or args.eval < 0 or args.num + args.eval < 1:
        print("error: --num and --eval must be >= 0, and not both 0", file=sys.stderr)
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
    data = SyntheticDetailDataset("test", args.start + max(args.num, args.eval), seed=args.seed, frames=T,
                                  resolution=R)
    out = Path(args.out) if args.out else Path(tempfile.gettempdir()) / "s2d-demo"
    print(f"model {args.model}: synopsis {config.synopsis.frames}x{config.synopsis.size}^2 (nearest) -> top-{config.topk} "
          f"-> detail {config.sampler.frames}x{config.sampler.size}^2 sampled from {T}x{R}^2 clips")
    if args.eval:
        clips = range(args.start, args.start + args.eval)
        score = score_synthetic(model, data, clips, device=args.device)
        fixed = score_synthetic(model, data, clips, look="centre", device=args.device)
        print(f"\n{args.eval} held-out clips (test split, data seed {args.seed}):")
        print(f"  top-1 {score['top1']:.1f}%   synopsis top-1 {score['synopsis_top1']:.1f}% (colour only)   "
              f"glyph in view {score['glyph_in_view']:.1f}% of the detail frames showing it")
        print(f"  same model, fixed centre crop instead of the locator: top-1 {fixed['top1']:.1f}%, glyph in view "
              f"{fixed['glyph_in_view']:.1f}%")
    if not args.num:
        print(f"\n{time.perf_counter() - started:.1f} s")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    correct = synopsis_hit = 0
    print(f"\nclip by clip ({args.num}):")
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
    print(f"\n{correct}/{args.num} shown clips correct; synopsis top-{config.topk} held the truth for "
          f"{synopsis_hit}/{args.num}; pictures in {out}; {time.perf_counter() - started:.1f} s")
    return 0
