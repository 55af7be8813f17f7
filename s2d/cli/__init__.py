"""Command-line interface: one module per sub-command, each with `add_parser` and `run`.

A sub-command module lives in `s2d/cli/<name>.py` and is listed in `COMMANDS`; it is imported
only when needed so `python -m s2d --help` stays fast and optional dependencies stay optional.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("s2d.cli.demo", "S2DNet at work on synthetic clips: what it saw, where it looked, what it said"),
    "info": ("s2d.cli.info", "list named models with parameters and input specs"),
    "data": ("s2d.cli.data", "prepare list files for video datasets"),
    "predict": ("s2d.cli.predict", "classify video files and draw where the model looked"),
    "zoo": ("s2d.cli.zoo", "list, document and publish pretrained models"),
    "convert": ("s2d.cli.convert", "convert official / pytorchvideo / SlowFast / torchvision checkpoints"),
    "train": ("s2d.cli.train", "train a model (two-stage recipe; DDP under torchrun; resumable)"),
    "eval": ("s2d.cli.eval", "top-1/top-5 of a model on a dataset (multi-clip, DDP-aware)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2d", description="S2DNet video recognition.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:  # a sub-command whose optional dependency is missing
            if err.name and err.name.startswith("s2d"):
                raise
            sub.add_parser(name, help=f"{help_text} (unavailable: {err})")
            continue
        modules[name] = module
        module.add_parser(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command not in modules:
        print(f"s2d {args.command}: unavailable in this installation", file=sys.stderr)
        return 2
    return int(modules[args.command].run(args) or 0)
