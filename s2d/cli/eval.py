"""`python -m s2d eval --model NAME_OR_DIR --data KIND [key=value ...]`: top-1/top-5 of a model.

`--data` is a data kind (list, kinetics, ssv2, synth, or package.module:factory; `python -m s2d
train --list` shows their keys) followed by its arguments (`list_file=val.txt root=/videos
clip.num_frames=16`), or a training config JSON whose data section (split `--split`, default
val) is used, with the arguments as overrides.
Reports the detail net's (the prediction's) and the synopsis net's accuracy, averaged over
`--clips` temporal views. Runs under torchrun as well: each rank evaluates a share and every
sample is counted once. Exit status 1 when some videos could not be read, 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from s2d.cli.args import int_at_least


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Register the arguments of `eval`."""
    parser.add_argument("--model", required=True,
                        help="zoo name, hf-hub:org/repo, or a model folder (a training out_dir)")
    parser.add_argument("--data", required=True, metavar="KIND_OR_CONFIG",
                        help="data kind, or a training config JSON file (its data section)")
    parser.add_argument("args", nargs="*", metavar="KEY=VALUE", help="dataset arguments (dotted keys, JSON values)")
    parser.add_argument("--split", default="val", help="split to build (default: %(default)s)")
    parser.add_argument("--batch-size", type=int_at_least(1), default=8, help="per process (default: %(default)s)")
    parser.add_argument("--clips", type=int_at_least(1),
                        help="temporal views per video (default: the config's, else 1)")
    parser.add_argument("--workers", type=int_at_least(0), default=4, help="DataLoader workers (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cuda or cpu (default: %(default)s)")
    parser.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none", help="autocast on CUDA")
    parser.add_argument("--untrained", action="store_true", help="random weights (to check the pipeline)")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.add_argument("--allow-code", action="store_true",
                        help="allow a module:attribute data kind to import Python code")
    parser.add_argument("--predictions", metavar="FILE",
                        help="write one JSON line per sample: index, label, top-5 classes and probabilities")


def _dataset_spec(args: argparse.Namespace) -> tuple[str, dict, int]:
    """(kind, arguments, clips) from --data and the KEY=VALUE arguments."""
    from s2d.train.config import TrainConfigError, load_config
    from s2d.train.values import parse_value

    extra: dict = {}
    for item in args.args:
        if "=" not in item:
            raise TrainConfigError(f"dataset argument {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        node = extra
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = parse_value(text, f"dataset argument {key!r}")
    if Path(args.data).is_file():
        data = load_config(args.data).data
        dataset_args = data.split_args(args.split)
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(dataset_args.get(key), dict):
                dataset_args[key] = {**dataset_args[key], **value}
            else:
                dataset_args[key] = value
        return data.kind, dataset_args, data.val_clips if args.clips is None else args.clips
    return args.data, extra, 1 if args.clips is None else args.clips


def run(args: argparse.Namespace) -> int:
    """Build the model and dataset, evaluate, print the metrics."""
    import s2d
    from s2d.train import build_dataset, evaluate
    from s2d.train.data_checks import check_labels
    from s2d.train.datasets import supports_views
    from s2d.train.distributed import DeviceError, setup, teardown

    if args.predictions and Path(args.predictions).is_dir():
        print(f"s2d eval: --predictions {args.predictions}: is a folder; give a file name", file=sys.stderr)
        return 2

    try:
        env = setup(args.device)
    except DeviceError as err:
        print(f"s2d eval: --device {args.device}: {err}", file=sys.stderr)
        return 2
    try:
        try:
            kind, dataset_args, clips = _dataset_spec(args)
            model = s2d.create(args.model) if args.untrained else s2d.load(args.model)
            model.to(env.device)
            dataset = build_dataset(kind, args.split, dataset_args, model.config, allow_code=args.allow_code)
            if clips > 1 and not supports_views(dataset):
                raise ValueError(f"--clips {clips}: this dataset offers no temporal views (uniformly sampled "
                                 "clips already span the whole video); use --clips 1 or clip.sampling=stride")
            check_labels(dataset, int(model.config.num_classes), f"data kind {kind!r} ({args.split} split)",
                         fix="evaluate a model trained on these classes")
        except Exception as err:  # unknown model, missing weights or files, bad dataset arguments
            print(f"s2d eval: {err}", file=sys.stderr)
            return 2
        result = evaluate(model, dataset, batch_size=args.batch_size, clips=clips, device=env.device,
                          workers=args.workers, amp=args.amp, env=env, progress=sys.stderr.isatty())
    finally:
        teardown(env)
    if not env.is_main:
        return 0
    if args.predictions:
        _write_predictions(args.predictions, result)
    metrics = result.metrics()
    if args.json:
        print(json.dumps(metrics))
    else:
        def pct(x):
            return "-" if x is None else f"{x:.2f}%"

        print(f"{args.model} on {metrics['samples']} videos ({clips} clip{'s' if clips > 1 else ''}):")
        print(f"  detail net   top-1 {pct(result.dnet_top1)}  top-5 {pct(result.dnet_top5)}")
        if result.snet_top1 is not None:
            print(f"  synopsis net top-1 {pct(result.snet_top1)}  top-5 {pct(result.snet_top5)}")
        if result.unlabelled:
            print(f"  {result.unlabelled} unlabelled videos not counted")
    if result.failed:
        print(f"{len(result.failed)} videos could not be read and were not counted:", file=sys.stderr)
        for index, path, reason in result.failed:
            print(f"  [{index}] {path}: {reason}", file=sys.stderr)
        return 1
    return 0


def _write_predictions(path: str, result) -> None:
    """One JSON line per sample, the file replaced whole (never half-written, never through a link)."""
    from s2d.io.files import atomic_write_text

    k = min(5, result.probs.shape[1]) if result.probs is not None and result.probs.ndim == 2 else 0
    lines = []
    for row, index in enumerate(result.indices.tolist()):
        top = result.probs[row].topk(k)
        lines.append(json.dumps({"index": index, "label": int(result.labels[row]), "top5": top.indices.tolist(),
                                 "probs": [round(p, 6) for p in top.values.tolist()]}) + "\n")
    atomic_write_text(path, "".join(lines))
