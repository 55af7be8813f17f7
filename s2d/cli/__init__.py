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
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
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
    try:
        return int(modules[args.command].run(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"s2d {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one line instead of a traceback; --debug shows it
        if args.debug:
            raise
        return report_error(args.command, err)


def report_error(command: str, err: Exception) -> int:
    """Print `err` as one clear line; exit status 2 for bad input (a ValueError: a config, an
    argument, a file's content), 1 for anything else."""
    text = str(err).strip() or type(err).__name__
    if not type(err).__module__.startswith("s2d"):  # s2d's own errors say what they are
        text = f"{type(err).__name__}: {text}"
    print(f"s2d {command}: {text}\n(run `python -m s2d --debug {command} ...` for the traceback)", file=sys.stderr)
    return 2 if isinstance(err, ValueError) else 1
