"""`python -m s2d data ...`: dataset preparation.

`data prepare ROOT --out LIST` scans a folder of class sub-folders, checks that every video
decodes, and writes a `path label` list plus `classes.txt` for `s2d.data.VideoListDataset`.
The exit status is 1 when some video is unreadable or none was found.
"""
from __future__ import annotations

import argparse
import os
import sys


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
    prepare.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                         help="videos checked in parallel (default: %(default)s)")
    prepare.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                         help="give up on a video that takes longer to decode (default: %(default)s)")
    parser.set_defaults(data_parser=parser)


def run(args: argparse.Namespace) -> int:
    """Run the chosen `data` action; returns the process exit status."""
    if getattr(args, "data_command", None) != "prepare":
        args.data_parser.print_help()
        return 2
    from s2d.data import prepare_list  # noqa: PLC0415 - keeps `python -m s2d --help` light

    try:
        report = prepare_list(args.root, args.out, check=args.check, workers=max(1, args.workers),
                              timeout_s=args.timeout, progress=sys.stderr.isatty())
    except (OSError, ValueError) as err:  # ROOT missing, an --out that would replace a video, bad class names
        print(f"s2d data prepare: {err}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0 if report.ok and report.videos > 0 else 1
