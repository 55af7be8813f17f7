"""`python -m s2d export NAME_OR_FOLDER --format onnx|pt2 --out FILE`: a model as a graph that runs
without this package (ONNX Runtime, or a `torch.export` program), with `FILE.json` beside it (the label
names and how to read a video). An existing output is never replaced. Exit status 2 for bad arguments
(an existing output, an unknown model, one without weights unless `--untrained`, a missing `export`
extra), 1 when the model cannot be exported.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from s2d.cli.args import int_at_least

#: Kept in step with `s2d.inference.export` (not imported here: `--help` must not import torch).
FORMATS = ("onnx", "pt2")
MIN_OPSET = 18


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Register the arguments of `export`."""
    parser.add_argument("model", metavar="NAME_OR_FOLDER",
                        help="zoo name, hf-hub:org/repo[@rev], or a model folder (what s2d.load takes)")
    parser.add_argument("--format", choices=FORMATS, default="onnx",
                        help="onnx (ONNX Runtime and other runtimes) or pt2 (a torch.export program; "
                             "default: %(default)s)")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="the graph file to write (refused if it exists); FILE.json beside it gets the label "
                             "names, the inputs and outputs, and how to cut a clip from a video")
    parser.add_argument("--untrained", action="store_true",
                        help="export the named architecture with random weights (the only way to export a variant "
                             "without published weights)")
    parser.add_argument("--opset", type=int_at_least(MIN_OPSET), metavar="N",
                        help=f"ONNX opset, >= {MIN_OPSET} (default: the exporter's)")


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _load(name: str, untrained: bool):
    """The model to export: its published weights, or with `untrained` a random init."""
    import s2d

    if untrained:
        return s2d.create(name)
    from s2d.hub.errors import NoWeightsError
    try:
        return s2d.load(name)
    except NoWeightsError:
        raise NoWeightsError(f"{name!r} has no published weights; add --untrained to export its untrained "
                             "architecture") from None


def run(args: argparse.Namespace) -> int:
    from s2d.inference.export import metadata_path

    out = Path(args.out)
    if args.opset is not None and args.format != "onnx":
        return _usage("--opset applies to --format onnx only")
    if out.suffix.lower() == ".json":
        return _usage(f"--out {out}: the graph file cannot end in .json (its metadata goes to FILE.json beside it)")
    for target in (out, metadata_path(out)):
        if os.path.lexists(target):
            return _usage(f"{target} already exists; choose another --out or remove it")
    if not out.parent.is_dir():
        return _usage(f"--out {out}: folder {out.parent} does not exist")
    if args.format == "onnx":
        missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            return _usage(f"--format onnx needs {' and '.join(missing)}: pip install \"s2d[export]\" "
                          "(onnx, onnxscript, onnxruntime)")
    try:
        model = _load(args.model, args.untrained)
    except Exception as err:  # unknown name, no weights, a broken folder: the error says what to do
        return _usage(str(err))
    from s2d.inference.export import ExportError, export_model

    try:
        export_model(model, out, args.format, opset=args.opset)
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    c = model.config
    T, S = c.dense_frames, c.dense_size
    state = "untrained" if args.untrained else "trained"
    print(f"wrote {out} ({args.format}, {out.stat().st_size / 1e6:.1f} MB, {state} weights) and {metadata_path(out)}")
    print(f"inputs: frames uint8 [B, {T}, {S}, {S}, 3] (RGB, as decoded), num_frames int64 [B]; "
          f"outputs: see {metadata_path(out).name}")
    return 0
