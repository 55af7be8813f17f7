"""`python -m s2d convert SOURCE ...`: turn other checkpoint layouts into an s2d model folder.

Every sub-command writes a zoo-style folder (`config.json` + `model.safetensors`, optionally a
model card) that `s2d.load(DIR)` reads:

    official      a checkpoint of the official S2DNet code (TSM family) → the whole model
    pytorchvideo  a pytorchvideo X3D checkpoint → the X3D backbone(s) of a model
    slowfast      a SlowFast X3D checkpoint → the X3D backbone(s) of a model
    torchvision   ImageNet ResNet-50 / MobileNetV2 state dicts → the TSM backbone(s) of a model

Checkpoints are read with `torch.load(weights_only=True)` (or as safetensors): files that need
arbitrary unpickling are refused.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

SOURCES = {
    "official": "official S2DNet checkpoint (TSM family) → whole model",
    "pytorchvideo": "pytorchvideo X3D checkpoint → X3D backbone(s)",
    "slowfast": "SlowFast X3D checkpoint → X3D backbone(s)",
    "torchvision": "torchvision ImageNet ResNet-50 / MobileNetV2 → TSM backbone(s)",
}


def add_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="source", metavar="SOURCE")
    for source, help_text in SOURCES.items():
        p = sub.add_parser(source, help=help_text, description=help_text)
        if source == "torchvision":
            p.add_argument("checkpoint", nargs="+", help="resnet50 and/or mobilenet_v2 state dict files (.pth)")
        else:
            p.add_argument("checkpoint", help="checkpoint file (.pth, .pyth, .pt or .safetensors)")
        p.add_argument("--model", help="registered model to build (see `python -m s2d zoo list`)")
        p.add_argument("--config", help="config.json describing the model instead of --model")
        p.add_argument("--out", required=True, help="output folder (config.json + model.safetensors)")
        if source != "official":
            p.add_argument("--part", help="backbone(s) to initialise: synopsis, detail (S2DNet) or backbone "
                                          "(baseline); comma-separated; default: those of the checkpoint's "
                                          "architecture")
        if source == "slowfast":
            p.add_argument("--bn-eps", type=float, default=1e-5, help="SlowFast BN.EPS (default 1e-5)")
        p.add_argument("--card", action="store_true", help="also write a model card (README.md)")
        p.add_argument("--seed", type=int, default=0, help="seed of the random init of everything not converted")


def _build(args) -> "torch.nn.Module":
    import torch

    from s2d.hub.builder import build_model
    from s2d.hub.registry import get_config
    from s2d.hub.weights import config_from_file

    if bool(args.model) == bool(args.config):
        raise ValueError("give exactly one of --model NAME or --config config.json")
    config = get_config(args.model) if args.model else config_from_file(args.config)
    torch.manual_seed(args.seed)
    return build_model(config)


def convert(args) -> tuple["torch.nn.Module", list[str]]:
    """Build the model and load the converted checkpoint(s); returns the model and a report."""
    from s2d.hub.convert import CheckpointError, init_backbones, load_official_checkpoint

    model = _build(args)
    if args.source == "official":
        if model.config.kind != "s2dnet" or model.config.family != "tsm":
            raise CheckpointError("official checkpoints convert into S2DNet TSM-family models (s2dnet-tsm-*)")
        load_official_checkpoint(model, args.checkpoint, strict=True)
        return model, [f"all {len(model.state_dict())} tensors from {args.checkpoint}"]
    paths = args.checkpoint if isinstance(args.checkpoint, list) else [args.checkpoint]
    return model, init_backbones(model, args.source, paths, args.part, bn_eps=getattr(args, "bn_eps", 1e-5))


def run(args) -> int:
    from s2d.hub.convert import CheckpointError
    from s2d.hub.errors import ZooError
    from s2d.hub.weights import WEIGHTS_NAME, sha256_file

    if args.source is None:
        print("usage: python -m s2d convert {" + ",".join(SOURCES) + "} CHECKPOINT --model NAME --out DIR",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    taken = [name for name in ("config.json", WEIGHTS_NAME) if os.path.lexists(out / name)]  # a symlink counts
    if out.exists() and not out.is_dir() or taken:
        what = "is a file" if not taken else f"already holds {', '.join(taken)}"
        print(f"s2d convert {args.source}: --out {out} {what}; choose a new or empty folder", file=sys.stderr)
        return 2
    try:
        model, report = convert(args)
    except (CheckpointError, ZooError, KeyError, ValueError) as err:
        print(f"s2d convert {args.source}: {err}", file=sys.stderr)
        return 1
    model.save_pretrained(out, card=args.card)
    weights = out / WEIGHTS_NAME
    for line in report:
        print(f"  {line}")
    print(f"wrote {out}/config.json and {weights} ({weights.stat().st_size:,} bytes, sha256 {sha256_file(weights)})")
    print(f"load with: s2d.load({str(out)!r})")
    return 0
