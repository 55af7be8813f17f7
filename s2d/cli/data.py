"""`python -m s2d data ...`: dataset preparation.

`data prepare ROOT --out LIST` scans a folder of class sub-folders, checks that every video
decodes, and writes a `path label` list plus `classes.txt` for `s2d.data.VideoListDataset`.
The exit status is 1 when some video is unreadable or none was found.

`data synth OUT --task transfer --split train --clips N` writes synthetic clips (`s2d.synth`) as
such a folder, `OUT/<class>/<split>_<index>.mp4`, and says how many clips each class got. It never
replaces a file: exit status 2, naming the file, when one of those it would write exists.
"""
from __future__ import annotations

import argparse
import os
import sys

from s2d.cli.args import int_at_least, positive_seconds, seed


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Register the `data` actions on the sub-command's parser."""
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    prepare = actions.add_parser(
        "prepare", help="write a 'path label' list for a folder of class sub-folders",
        description="Write a 'path label' list (and classes.txt beside it) for ROOT/<class>/<video> "
                    "files, leaving out and reporting videos that cannot be decoded.")
    prepare.add_argument("root", metavar="ROOT", help="folder with one sub-folder of videos per class")
    prepare.add_argument("--out", required=True, metavar="LIST", help="list file to write")
    prepare.add_argument("--no-check", dest="check", action="store_false",
                         help="list every video file without decoding it (fast)")
    prepare.add_argument("--workers", type=int_at_least(1), default=min(8, os.cpu_count() or 1),
                         help="videos checked in parallel (default: %(default)s)")
    prepare.add_argument("--timeout", type=positive_seconds, default=120.0, metavar="SECONDS",
                         help="give up on a video that takes longer to decode (default: %(default)s)")
    synth = actions.add_parser(
        "synth", help="write synthetic clips as class folders of mp4 files (OUT/<class>/<split>_<index>.mp4)",
        description="Write clips of a synthetic task (s2d.synth) as a class-folder video dataset, "
                    "OUT/<class>/<split>_<index:05d>.mp4 (H.264, 8 fps, 16 frames of 128x128), the way a "
                    "user's data looks. Clip INDEX of SPLIT under SEED is the same video everywhere. "
                    "Existing files are never replaced.")
    synth.add_argument("out", metavar="OUT", help="folder to write the class folders into")
    synth.add_argument("--task", choices=("transfer", "benchmark"), default="transfer",
                       help="transfer: 8 classes, colour group x diagonal bars (new to s2dnet-x3d-synth); "
                            "benchmark: its 16 training classes (default: %(default)s)")
    synth.add_argument("--split", choices=("train", "val", "test"), default="train",
                       help="split to draw from (default: %(default)s)")
    synth.add_argument("--clips", type=int_at_least(1), required=True, metavar="N", help="how many clips to write")
    synth.add_argument("--seed", type=seed, default=0, help="data seed (default: %(default)s)")
    synth.add_argument("--start", type=int_at_least(0), default=0, metavar="I",
                       help="index of the first clip, to add clips to a folder (default: %(default)s)")
    synth.add_argument("--lossy", action="store_true",
                       help="ordinary yuv420p files instead of lossless RGB (smears the one-pixel glyphs)")
    parser.set_defaults(data_parser=parser)


def run(args: argparse.Namespace) -> int:
    """Run the chosen `data` action; returns the process exit status."""
    action = getattr(args, "data_command", None)
    if action == "synth":
        return _synth(args)
    if action != "prepare":
        args.data_parser.print_help()
        return 2
    from s2d.data import prepare_list  # noqa: PLC0415 - keeps `python -m s2d --help` light

    try:
        report = prepare_list(args.root, args.out, check=args.check, workers=args.workers,
                              timeout_s=args.timeout, progress=sys.stderr.isatty())
    except (OSError, ValueError) as err:  # ROOT missing, an --out that would replace a video, bad class names
        print(f"s2d data prepare: {err}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.ok and report.videos > 0 else 1


def _synth(args: argparse.Namespace) -> int:
    """`data synth`: write the clips, then one line per class with its count."""
    from s2d.synth.folder import write_folder  # noqa: PLC0415 - keeps `python -m s2d --help` light

    try:
        written = write_folder(args.out, args.task, args.split, args.clips, seed=args.seed, start=args.start,
                               lossless=not args.lossy)
    except FileExistsError as err:  # an earlier run's clips: never replaced
        print(f"s2d data synth: {err}", file=sys.stderr)
        return 2
    last = args.start + args.clips - 1
    print(f"wrote {args.clips} {args.task} clips ({args.split} {args.start}..{last}, seed {args.seed}) "
          f"to {args.out}, per class:")
    width = max(len(name) for name in written)
    for name, count in written.items():
        print(f"  {name:<{width}}  {count}")
    return 0
