"""Command-line interface: one module per sub-command, each with `add_parser` and `run`.

A sub-command module lives in `s2d/cli/<name>.py` and is listed in `COMMANDS`; it imports its
heavy dependencies (torch, decoders) inside `run`, and only the chosen command's module is loaded,
so `python -m s2d --help` stays fast and optional dependencies stay optional.

Under `torchrun` only rank 0 speaks: the other ranks' output is held back and shown only when
that rank fails, so summaries are printed once and lines do not interleave.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
from typing import Sequence

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("s2d.cli.demo", "S2DNet at work on synthetic clips: what it saw, where it looked, what it said"),
    "info": ("s2d.cli.info", "list named models with parameters and input specs"),
    "data": ("s2d.cli.data", "prepare list files for video datasets; write synthetic clips as class folders"),
    "predict": ("s2d.cli.predict", "classify video files and draw where the model looked"),
    "zoo": ("s2d.cli.zoo", "list, document and publish pretrained models"),
    "convert": ("s2d.cli.convert", "convert official / pytorchvideo / SlowFast / torchvision checkpoints"),
    "train": ("s2d.cli.train", "train a model (two-stage recipe; DDP under torchrun; resumable)"),
    "eval": ("s2d.cli.eval", "top-1/top-5 of a model on a dataset (multi-clip, DDP-aware)"),
    "export": ("s2d.cli.export", "export a model to ONNX or a torch.export program (runs without torch or s2d)"),
}


EPILOG = """\
models:   python -m s2d info            the named architectures, their inputs and sizes
          python -m s2d zoo list        which of them have weights (s2d.load) and where
training: python -m s2d train --help    recipes, configs and overrides
Each command has its own --help. Python: import s2d; s2d.list_models(); s2d.load(name)."""


def build_parser(command: str | None = None) -> tuple[argparse.ArgumentParser, dict]:
    """The parser, with full arguments for `command` only (the others get their one-line help)."""
    parser = argparse.ArgumentParser(prog="python -m s2d", description="S2DNet video recognition.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=help_text, description=help_text)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:  # a sub-command whose optional dependency is missing
            if err.name and err.name.startswith("s2d"):
                raise
            sub.add_parser(name, help=f"{help_text} (unavailable: {err})")
            continue
        modules[name] = module
        module.add_parser(sub.add_parser(name, help=help_text, description=help_text))
    return parser, modules


def _command(argv: Sequence[str]) -> str | None:
    """The sub-command named in `argv` (its first word that is not an option), if any."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def _run(argv: Sequence[str]) -> int:
    parser, modules = build_parser(_command(argv))
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


class _Tail(io.TextIOBase):
    """A text sink that keeps only its last `limit` characters (a quiet rank's output)."""

    def __init__(self, limit: int = 20_000):
        self.limit, self.text = limit, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text = (self.text + text)[-self.limit:]
        return len(text)


def rank() -> int:
    """This process's rank under torchrun (`RANK`), 0 otherwise."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    me = rank()
    if me == 0:
        return _run(argv)
    tail = _Tail()
    failed = True
    try:
        with contextlib.redirect_stdout(tail), contextlib.redirect_stderr(tail):
            code = _run(argv)
        failed = code != 0
        return code
    finally:
        if failed and tail.text:
            sys.stderr.write("".join(f"[rank {me}] {line}\n" for line in tail.text.splitlines()))
