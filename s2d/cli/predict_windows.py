"""`python -m s2d predict long.mp4 --model NAME --window 2.0 --hop 1.0`: a label for every window of a video.

The windowed flow of `predict` (`s2d.inference.windows`): each video is decoded once, from start to end,
and every window (seconds, or frames: `64f`) is classified from the model's dense clip of that window.
`--output` records one line per window and resumes like a collection run (the windows recorded are not
run again; a video whose last window is recorded is not read again); `--smooth N` averages the
probabilities over N neighbouring windows for the timeline; `--segments FILE.json` writes the runs of
one label (label, start, end, mean probability); `--vis out.mp4` writes the annotated video.
The input `-` reads one video stream from stdin (a pipe, e.g. mpegts from ffmpeg): each window is printed
or recorded as it closes, under the path `<stdin>`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from s2d.cli.args import positive_int

#: What the first key of a segments file says (a file without it is not overwritten).
SEGMENTS_KIND = "s2d predict --window segments"
#: The input that reads a video stream from stdin, and the path its records and segments give it.
STDIN, STDIN_NAME = "-", "<stdin>"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The windowed run's options (in `predict`'s parser)."""
    group = parser.add_argument_group("long videos: a label for every window")
    group.add_argument("--window", metavar="SPAN",
                       help="classify every window of SPAN seconds (2.0) or frames (64f) instead of the whole video; "
                            "--vis then names an annotated .mp4; the input '-' reads a video stream (e.g. mpegts) "
                            "from stdin, each window printed or recorded as it closes, under the path <stdin>")
    group.add_argument("--hop", metavar="SPAN", help="with --window: step between window starts (default: half the "
                                                     "window); longer than the window leaves gaps")
    group.add_argument("--smooth", type=positive_int, default=1, metavar="N",
                       help="with --window: average the probabilities over N neighbouring windows for the segments "
                            "and the annotated video (default 1: none; records keep each window's own)")
    group.add_argument("--segments", metavar="FILE.json",
                       help="with --window: write the runs of one label (label, start, end, mean probability)")
    group.add_argument("--vis-size", metavar="WxH", type=_size,
                       help="with --window --vis: the annotated video's frame size (default: the input's)")


def windowed(args: argparse.Namespace) -> bool:
    """Whether the command asks for the windowed flow (any of its options given)."""
    given = any(getattr(args, name, None) is not None for name in ("window", "hop", "segments", "vis_size"))
    return given or getattr(args, "smooth", 1) != 1 or STDIN in getattr(args, "videos", ())


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and 2 <= int(p) <= 8192 for p in parts):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, each in [2, 8192] (e.g. 640x360), got {text!r}")
    return int(parts[0]), int(parts[1])


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _check_args(args: argparse.Namespace, videos: list[str]) -> str | None:
    """Why the windowed options cannot run (None when they can)."""
    if STDIN in args.videos:
        if args.window is None:
            return "reading stdin needs --window (the windows to label as the stream comes)"
        if len(args.videos) != 1:
            return f"'{STDIN}' (a video stream on stdin) must be the only input; {len(args.videos)} were given"
        if args.vis:
            return (f"--vis cannot re-read stdin (the annotated video reads its input again); save the stream "
                    f"to a file for --vis {args.vis}")
    if args.window is None:
        given = [f"--{n.replace('_', '-')}" for n in ("hop", "segments", "vis_size") if getattr(args, n) is not None]
        return f"{', '.join(given or ['--smooth'])} needs --window (the windows to label)"
    if args.decoder not in ("auto", "pyav"):
        return f"--window reads each video once, in order, with PyAV; --decoder {args.decoder} does not apply"
    if args.vis:
        if Path(args.vis).suffix.lower() != ".mp4":
            return f"--vis {args.vis}: with --window, --vis names the annotated video, an .mp4 file"
        if len(videos) != 1:
            return f"--vis {args.vis} annotates one video; {len(videos)} were given"
        if os.path.lexists(args.vis):
            return f"--vis {args.vis}: already exists; choose another name or remove it"
    elif args.vis_size is not None:
        return "--vis-size needs --vis (the annotated video)"
    if args.segments:
        if Path(args.segments).suffix.lower() != ".json":
            return f"--segments {args.segments}: must be a .json file"
        if os.path.lexists(args.segments) and not _our_segments(args.segments):
            return f"--segments {args.segments}: exists and is not a segments file of s2d; choose another name"
    return None


def _our_segments(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("kind") == SEGMENTS_KIND
    except (OSError, ValueError, AttributeError):
        return False


def run_windows(args: argparse.Namespace, *, load_model: Callable, record: Callable, shown: Callable) -> int:
    """The windowed run of `predict` (its options checked, the results file locked); the exit status.
    `load_model`, `record` and `shown` are the collection flow's own (`s2d.cli.predict` passes them: it
    imports this module, not the other way round)."""
    host = SimpleNamespace(load_model=load_model, record=record, shown=shown)
    from s2d.inference.results import results_format
    from s2d.io.files import OutputBusyError, OutputLock

    if args.retry_failed and not args.output:
        return _error("--retry-failed needs --output (the file that records the failures)")
    if not args.output:
        return _run(args, host)
    try:
        results_format(args.output)
        lock = OutputLock(args.output, what="results file").acquire()
    except (ValueError, OutputBusyError) as err:
        return _error(str(err))
    try:
        return _run(args, host)
    finally:
        lock.release()


def _run(args: argparse.Namespace, host: SimpleNamespace) -> int:
    from s2d.inference.batch_predict import default_batch_size, find_videos
    from s2d.inference.predict import check_topk, default_topk
    from s2d.inference.results import model_identity, path_key
    from s2d.inference.window_results import WindowResultsFile
    from s2d.inference.windows import WindowPlan

    unreadable: list[tuple[str, str]] = []
    piped = STDIN in args.videos
    videos = [STDIN_NAME] if piped else find_videos(args.videos, errors=unreadable)
    for folder, reason in unreadable:
        print(f"warning: {host.shown(folder)}: cannot be read ({reason}); its videos are not predicted",
              file=sys.stderr)
    if not videos:
        return _error(f"no video files in {', '.join(args.videos)}")
    problem = _check_args(args, videos)
    if problem:
        return _error(problem)
    try:
        plan = WindowPlan.parse(args.window, args.hop)
    except (TypeError, ValueError) as err:
        return _error(f"--{err}")
    try:
        model = host.load_model(args.model, args.device, args.untrained)
        args.topk = default_topk(model.config.num_classes) if args.topk is None else args.topk
        check_topk(args.topk, model.config.num_classes)
        results = WindowResultsFile(args.output, topk=args.topk) if args.output else None
        if results is not None:
            results.check_model(model_identity(model, args.model))
            results.check_plan(plan.describe())
            if piped and (results.windows(STDIN_NAME) or path_key(STDIN_NAME) in results.finished()):
                return _error(f"--output {args.output} already holds windows of {STDIN_NAME}: a stream cannot be "
                              "resumed; choose another results file")
    except ValueError as err:
        return _error(f"{'--' if str(err).startswith('topk') else ''}{err}")
    except Exception as err:  # noqa: BLE001 - unknown name, no weights, offline: the error says what to do
        return _error(str(err))
    if results is not None and args.retry_failed:
        results.forget_failures()
    if not getattr(model, "pretrained", False):
        why = "--untrained" if args.untrained else f"{args.model!r} has no published weights"
        print(f"warning: untrained weights ({why}) - the labels below are meaningless", file=sys.stderr)
    batch_size = args.batch_size or default_batch_size(args.device)
    failures: list[tuple[str, str]] = []
    timelines: list[dict[str, Any]] = []
    for video in videos:
        finished = results is not None and path_key(video) in results.finished() and not args.vis
        if finished:
            print(f"{host.shown(video)}: every window already recorded in {args.output}", file=sys.stderr)
            scored = [w for _, w in sorted(results.windows(video).items())]
            segs = _timeline(iter(scored), args.smooth, None)
        else:
            segs = _video(args, host, model, video, plan, results, batch_size, failures)
        if segs is not None:
            timelines.append({"path": video, "segments": [s.to_dict() for s in segs]})
    if args.segments:
        from s2d.io.files import atomic_write_text

        document = {"kind": SEGMENTS_KIND, "model": model_identity(model, args.model), "plan": plan.describe(),
                    "smooth": args.smooth, "topk": args.topk, "videos": timelines}
        atomic_write_text(args.segments, json.dumps(document, indent=1) + "\n")
        print(f"wrote {host.shown(args.segments)} ({sum(len(t['segments']) for t in timelines)} segments)",
              file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(videos)} videos failed:", file=sys.stderr)
        for path, reason in failures:
            print(f"  {host.shown(path)}: {reason}", file=sys.stderr)
    return 1 if failures or unreadable else 0


def _timeline(scored: Iterator[Any], size: int, annotated: Any) -> list[Any]:
    """The segments of a video's windows (smoothed over `size`), feeding `annotated` each window on the way."""
    from s2d.inference.timeline import segments, smooth

    def fed(windows: Iterator[Any]) -> Iterator[Any]:
        for w in windows:
            if annotated is not None:
                annotated.add_window(w)
            yield w

    return list(segments(fed(smooth(scored, size))))


def _video(args: argparse.Namespace, host: SimpleNamespace, model: Any, video: str, plan: Any, results: Any,
           batch_size: int, failures: list[tuple[str, str]]) -> list[Any] | None:
    """Run the windows of one video: records, printed lines, the annotated video; its segments (None: failed)."""
    from tqdm import tqdm

    from s2d.inference.timeline import Scored
    from s2d.inference.windows import predict_windows
    from s2d.io.limits import VideoError
    from s2d.models.clip import clip_spec

    recorded = results.windows(video) if results is not None else {}
    annotated = None
    on_frame = None
    if args.vis:
        from s2d.inference.annotate import AnnotatedVideo, input_format

        try:
            rate, time_base = input_format(video)
        except VideoError as err:
            failures.append((video, err.reason))
            return None
        sampler = getattr(getattr(model.config, "sampler", None), "size", None)
        annotated = AnnotatedVideo(args.vis, rate, time_base, clip_spec(model.config), sampler, args.vis_size)

        def on_frame(index: int, seconds: float, frame: Any) -> None:
            annotated.add_frame(index, frame)

    source = sys.stdin.buffer if args.videos == [STDIN] else video  # "-": the stream, read once, as it comes
    live = source is not video  # each window recorded and printed as it closes
    preds = predict_windows(model, source, window=args.window, hop=args.hop, topk=args.topk, batch_size=batch_size,
                            device=args.device, optimize=args.optimize, skip=set(recorded), on_frame=on_frame)
    pending: list[dict] = []
    failed: list[str] = []
    bar = tqdm(desc=Path(video).name[:30], unit="window", disable=not sys.stderr.isatty() or args.json,
               dynamic_ncols=True)

    def scored() -> Iterator[Any]:
        for pred in preds:
            bar.update(1)
            if pred.error is not None:
                failed.append(pred.error)
                if results is not None:
                    pending.append(pred.to_dict())
                continue
            if pred.skipped:
                yield recorded[pred.window]
                continue
            if results is not None:
                pending.append(pred.to_dict())
                if live or len(pending) >= batch_size:
                    host.record(results, pending)
            if args.json:
                print(json.dumps(pred.to_dict()), flush=True)
            elif results is None:
                name, p = pred.labels[0]
                tqdm.write(f"{host.shown(video)}  window {pred.window}  {pred.start_s:8.2f}-{pred.end_s:8.2f} s  "
                           f"{name} ({p:.3f})")
                if live:
                    sys.stdout.flush()
            yield Scored.of(pred)

    try:
        segs = _timeline(scored(), args.smooth, annotated)
    except BaseException:
        if annotated is not None:
            annotated.abort()
        raise
    finally:  # Ctrl-C or a crash: what finished is on disk, the next run picks up from there
        bar.close()
        if results is not None and pending:
            host.record(results, pending)
    if failed:
        failures.append((video, failed[0]))
        tqdm.write(f"skipped {host.shown(video)}: {failed[0]}", file=sys.stderr)
        if annotated is not None:
            annotated.abort()
        return None
    if annotated is not None:
        print(f"wrote {host.shown(annotated.finish())} ({annotated.written} frames)", file=sys.stderr)
    return segs
