"""`python -m s2d train CONFIG [key=value ...]`: train a model (also under `torchrun ... -m s2d train`).

CONFIG is a JSON training config (see `s2d.train.config`) or the name of a recipe
(`s2d.train.recipes`: s2dnet-tsm-sthv2, s2dnet-x3d-k400, s2dnet-x3d-synth, ...). Dotted overrides
change single values: `optim.lr=0.01 data.root=/videos model.overrides.sampler.size=48`.
`--list` shows the recipes, the data kinds and their keys; `--print-config` shows the resolved
config (a JSON file to edit) without training.
Exit status: 0 when training finished, 143 (128 + SIGTERM) or 130 (128 + SIGINT, Ctrl-C) when a
signal stopped it, in any phase, after saving what there was to save (the message says how to
continue: --resume, or the same command again), 2 for a configuration error, 1 for other failures.
"""
from __future__ import annotations

import argparse
import signal
import sys

EXIT_INTERRUPTED = 128 + 15  # what a shell reports for a process ended by SIGTERM: not "finished"
EXIT_CTRL_C = 128 + 2  # ... and by SIGINT


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoint in out_dir (start fresh when there is none)")
    parser.add_argument("--out-dir", metavar="DIR", help="where checkpoints and logs go (overrides out_dir)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--list", action="store_true", help="list the recipes and the data kinds with their keys")
    parser.add_argument("--allow-code", action="store_true",
                        help="allow data.kind=module:attribute to import Python code (never implied by a config)")


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Register the arguments of `train`."""
    parser.add_argument("config", metavar="CONFIG", nargs="?",
                        help="training config JSON file, or a recipe name (see --list)")
    # The options may also come among the overrides (argparse alone would refuse them there).
    parser.add_argument("overrides", nargs=argparse.REMAINDER, metavar="KEY=VALUE",
                        help="dotted overrides, values as JSON (strings may stay unquoted)")
    _add_options(parser)


def _split_options(args: argparse.Namespace) -> list[str]:
    """Move options found among the overrides onto `args`; returns the overrides proper."""
    late = argparse.ArgumentParser(prog="python -m s2d train", add_help=False)
    _add_options(late)
    found, rest = late.parse_known_args(args.overrides)
    unknown = [item for item in rest if item.startswith("-")]
    if unknown:
        raise ValueError(f"unknown option(s) {' '.join(unknown)} (options: --resume, --out-dir DIR, --print-config, "
                         "--list, --allow-code)")
    args.resume = args.resume or found.resume
    args.out_dir = found.out_dir or args.out_dir
    args.print_config = args.print_config or found.print_config
    args.list = args.list or found.list
    args.allow_code = args.allow_code or found.allow_code
    return rest


def print_catalogue() -> None:
    """Recipes (with their model and data kind) and data kinds with the keys they take."""
    from s2d.train.datasets import available_datasets, dataset_keys
    from s2d.train.recipes import RECIPES

    print("recipes (python -m s2d train RECIPE [key=value ...]):")
    for name, recipe in RECIPES.items():
        model = recipe["model"]["name"] or "model.init's"
        print(f"  {name:24s} model {model}, data kind {recipe['data']['kind']}")
    print("data kinds (data.kind=KIND; keys under data.args, data.train or data.val):")
    seen: dict[tuple[str, ...], str] = {}
    for kind in available_datasets():
        keys = tuple(dataset_keys(kind))
        print(f"  {kind:10s} " + (f"(same as {seen[keys]})" if keys in seen else ", ".join(keys)))
        seen.setdefault(keys, kind)
    print("  or package.module:factory (called as factory(split=..., **args))")
    print("every kind also takes split=NAME (read that split); '...': further keys go to the dataset class")


def run(args: argparse.Namespace) -> int:
    """Load the config, train, and report how the run ended."""
    from s2d.train import TrainConfigError, load_config, train
    from s2d.train.checkpoint import CheckpointMismatchError
    from s2d.train.distributed import DeviceError

    try:
        overrides = _split_options(args)
        if args.list:
            print_catalogue()
            return 0
        if args.config is None:
            raise ValueError("give a training config JSON file or a recipe name (python -m s2d train --list)")
        config = load_config(args.config, overrides)
        if args.resume:
            config.resume = True
        if args.out_dir:
            config.out_dir = args.out_dir
        config.validate()
    except ValueError as err:  # TrainConfigError, or an unknown option
        print(f"s2d train: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        print(config.to_json(), end="")
        return 0
    try:
        result = train(config, allow_code=args.allow_code)
    except (TrainConfigError, DeviceError) as err:
        print(f"s2d train: {err}", file=sys.stderr)
        return 2
    except CheckpointMismatchError as err:
        print(f"s2d train: cannot resume: {err}", file=sys.stderr)
        return 1
    if result.interrupted:
        return EXIT_CTRL_C if result.signal == signal.SIGINT else EXIT_INTERRUPTED
    best = "-" if result.best_val_dnet_top1 is None else f"{result.best_val_dnet_top1:.2f}%"
    print(f"done: {result.epochs} epochs, {result.step} steps; best val top-1 {best}; model in {result.out_dir}",
          file=sys.stderr)
    return 0
