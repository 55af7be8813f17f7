"""`python -m s2d predict INPUT... --model NAME`: labels for each video, pictures of where it looked.

Inputs are video files, folders (searched recursively for video files) or list files (`.txt`,
one path a line). Worker processes decode while the model runs on batches (`s2d.predict_many`).

`--output results.jsonl` (or `.csv`) records every video as it finishes; run the same command
again and the videos already recorded are skipped, so an interrupted run resumes where it stopped.
What a run with `--output` guarantees (see `s2d.inference.results`):

- one run per results file: the file is locked (`OutputLock`) for the whole run, and a second run
  on it is refused (exit 2) with a message naming the run that holds it;
- nothing in the file changes before it is known to be a results file of this model (its name and
  weights' sha256), this `--topk` and this record schema: any other file is refused, untouched;
- each video is recorded exactly once across an interrupted run and its rerun: a batch is appended
  and removed from the pending list as one step that Ctrl-C and SIGTERM wait for, and what is
  pending when the run stops (Ctrl-C: exit 130) is appended on the way out.

Bad files do not stop the run: each is reported as it fails (and recorded with its reason) and
summarised at the end, and the exit status is 1 if any failed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from s2d.cli.args import int_in, non_negative_int, positive_int
from s2d.cli.predict_windows import add_arguments as add_window_arguments
from s2d.cli.predict_windows import run_windows, windowed
from s2d.io.text import shown
from s2d.models.limits import MAX_CLASSES


def picture_stems(videos: list[str]) -> list[str]:
    """One picture name per video: its file stem, numbered (`clip`, `clip-2`) where stems repeat,
    so two inputs with the same file name do not overwrite each other's pictures."""
    seen: dict[str, int] = {}
    stems = []
    for video in videos:
        stem = Path(video).stem or "clip"
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems


def check_vis(folder: str, stems: list[str]) -> str | None:
    """Why `--vis folder` cannot take the pictures (None when it can): a file in the way, or
    pictures of the same names already there (never overwritten)."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        return f"--vis {folder}: exists and is not a folder"
    taken = [f"{stem}{ext}" for stem in stems for ext in (".png", ".gif") if (path / f"{stem}{ext}").exists()]
    if taken:
        shown = ", ".join(taken[:4]) + (f" and {len(taken) - 4} more" if len(taken) > 4 else "")
        return f"--vis {folder} already holds {shown}; choose another folder or remove them"
    return None


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", metavar="INPUT",
                        help="video files, folders (searched recursively) or list files (.txt, one path a line)")
    parser.add_argument("--model", required=True,
                        help="zoo name, hf-hub:org/repo, a local model folder, or a graph of `s2d export` (FILE.onnx "
                             "or FILE.pt2, with FILE.json beside it; loading a .pt2 file unpickles it and can run "
                             "code: trusted files only)")
    parser.add_argument("--topk", type=int_in(1, MAX_CLASSES), default=None, metavar="K",
                        help="how many labels to print per video, most probable first (default: 5, or every class "
                             "of a model with fewer; at most the model's classes)")
    parser.add_argument("--json", action="store_true", help="one JSON object per video on stdout")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="append one record per video to FILE (.jsonl or .csv) as it finishes; videos already "
                             "in FILE are skipped, so running again resumes an interrupted run")
    parser.add_argument("--retry-failed", action="store_true",
                        help="with --output: try again the videos recorded there as failed (their records are "
                             "replaced)")
    parser.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                        help="videos per forward pass (default: 1 on CPU, 16 on CUDA)")
    parser.add_argument("--workers", type=non_negative_int, default=None, metavar="W",
                        help="decoding processes running ahead of the model (default: half the CPU cores on CPU, "
                             "up to 8 on CUDA; 0 decodes in the main process)")
    parser.add_argument("--decoder", default="auto", choices=("auto", "decord", "torchcodec", "pyav"),
                        help="video decoder (default: auto, decord when installed, else torchcodec when it can "
                             "decode here, else PyAV; PyAV also reads what the others cannot)")
    parser.add_argument("--no-optimize", dest="optimize", action="store_false",
                        help="run the model as loaded (default: BatchNorm folded and channels-last, same outputs)")
    parser.add_argument("--vis", metavar="DIR", help="write <video>.png and <video>.gif showing the sampled regions")
    parser.add_argument("--features", metavar="DIR",
                        help="write each video's pooled synopsis and detail features to DIR (one .safetensors "
                             "file per video, with the frames and sampling window as metadata)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--untrained", action="store_true",
                        help="use randomly initialised weights (also the fallback for a model with no published "
                             "weights)")
    add_window_arguments(parser)  # --window and its options: a label for every window (s2d.cli.predict_windows)


def load_model(name: str, device: str, untrained: bool):
    """The model to predict with: published weights, (with `untrained`) a random init, or an exported graph."""
    import s2d

    if name.lower().endswith((".onnx", ".pt2")):  # a graph of `s2d export`: its weights are in the file
        if untrained:
            raise ValueError(f"--untrained does not apply to an exported graph ({name} holds its weights)")
        from s2d.inference.exported import load_exported
        return load_exported(name, device=device)
    if untrained:
        model = s2d.create(name)
        model.pretrained = False
        return model.to(device).eval()
    from s2d.hub.errors import NoWeightsError
    from s2d.hub.factory import load
    try:
        model = load(name, device=device)
    except NoWeightsError:  # a named variant without published weights: run it untrained, and say so
        return load_model(name, device, untrained=True)
    model.pretrained = True
    return model


def run(args: argparse.Namespace) -> int:
    from s2d.inference.results import results_format
    from s2d.io.files import OutputBusyError, OutputLock

    if windowed(args):
        return run_windows(args, load_model=load_model, record=record, shown=shown)
    if args.retry_failed and not args.output:
        print("error: --retry-failed needs --output (the file that records the failures)", file=sys.stderr)
        return 2
    from s2d.inference.distributed import run_shared, wanted
    if wanted(args.output):  # torchrun, or part files of an earlier such run: the ranks share the videos
        return run_shared(args, collect)
    if not args.output:
        return collect(args)
    try:  # one run per results file, for the whole run: two would record the same videos twice
        results_format(args.output)
        lock = OutputLock(args.output, what="results file").acquire()
    except (ValueError, OutputBusyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        return collect(args)
    finally:
        lock.release()


def collect(args: argparse.Namespace) -> int:
    """The run itself (the results file, if any, locked by the caller): every check, then predictions."""
    from tqdm import tqdm

    from s2d.inference.batch_predict import find_videos, predict_many
    from s2d.inference.predict import check_topk, default_topk
    from s2d.inference.results import ResultsFile, model_identity, path_key

    unreadable: list[tuple[str, str]] = []  # folders the walk could not read: reported, and the exit status is 1
    videos = find_videos(args.videos, errors=unreadable)
    for folder, reason in unreadable:
        print(f"warning: {shown(folder)}: cannot be read ({reason}); its videos are not predicted", file=sys.stderr)
    if not videos:
        print(f"error: no video files in {', '.join(args.videos)}", file=sys.stderr)
        return 2
    try:
        model = load_model(args.model, args.device, args.untrained)
        num_classes = model.config.num_classes
        args.topk = default_topk(num_classes) if args.topk is None else args.topk
        check_topk(args.topk, num_classes)
        # read and checked; nothing in it changes before the model is known to be the one that wrote it
        results = ResultsFile(args.output, topk=args.topk) if args.output else None
        if results is not None:
            results.check_model(model_identity(model, args.model))
    except ValueError as err:  # --topk beyond the classes, a file that is not this run's results
        print(f"error: {'--' if str(err).startswith('topk') else ''}{err}", file=sys.stderr)
        return 2
    except Exception as err:  # unknown name, no weights, offline: the error says what to do
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.vis and model.config.kind != "s2dnet":
        print(f"error: --vis draws where an S2DNet looked; {args.model} is a {model.config.kind} model "
              "that samples no detail", file=sys.stderr)
        return 2
    if getattr(args, "shared", None) is not None:  # torchrun: s2d.inference.distributed shares the videos
        from s2d.inference.distributed import collect_shared
        return collect_shared(args, model, videos, unreadable)
    total = len(videos)
    if results is not None:  # the videos recorded (less the failures to retry) are skipped
        done = results.done() - (results.failed() if args.retry_failed else set())
        videos = [v for v in videos if path_key(v) not in done]
    stems = picture_stems(videos)
    problem = check_vis(args.vis, stems) if args.vis else None
    owner = model_identity(model, args.model) if args.features else None  # who the features files are of
    if args.features and not problem:
        from s2d.inference.features import check_features, write_features
        problem = check_features(args.features, videos, owner, model)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if results is not None:  # every check passed: only now may the results file change
        if args.retry_failed:
            results.forget_failures()
        if total > len(videos):
            print(f"{args.output}: {total - len(videos)} of {total} videos already recorded, skipped", file=sys.stderr)
        if not videos:
            print(f"{args.output}: every video is already recorded; nothing to do", file=sys.stderr)
            return 1 if unreadable else 0
    if not getattr(model, "pretrained", False):
        why = "--untrained" if args.untrained else f"{args.model!r} has no published weights"
        print(f"warning: untrained weights ({why}) - the labels below are meaningless", file=sys.stderr)
    keep_detail = bool(args.vis) and model.config.kind == "s2dnet"
    failures: list[tuple[str, str]] = []
    preds = predict_many(model, videos, topk=args.topk, batch_size=args.batch_size, workers=args.workers,
                         device=args.device, optimize=args.optimize, backend=args.decoder, keep_detail=keep_detail,
                         progress=len(videos) > 1, features=bool(args.features))
    pending: list[dict] = []  # finished, not yet in the results file
    try:
        for pred, stem in zip(preds, stems):
            if args.features and pred.error is None:  # before its record: a recorded video has its features
                write_features(args.features, pred, model=owner, config=model.config)
            if results is not None:
                pending.append(pred.to_dict())
                if len(pending) >= (args.batch_size or 1):
                    record(results, pending)
            if pred.error is not None:
                failures.append((pred.path, pred.error))
                tqdm.write(f"skipped {shown(pred.path)}: {pred.error}", file=sys.stderr)
                continue
            if args.json:
                print(json.dumps(pred.to_dict()), flush=True)
            elif results is None:
                _print(pred)
            if keep_detail:
                from s2d.inference.viz import save_visualisation
                for p in save_visualisation(pred, model.config, args.vis, stem=stem):
                    print(f"  wrote {shown(p)}", file=sys.stderr if args.json else sys.stdout)
    finally:  # Ctrl-C or a crash: what finished is on disk, the next run picks up from there
        if results is not None and pending:
            record(results, pending)
    if results is not None:
        print(f"{args.output}: {len(videos)} videos recorded ({len(failures)} failed)", file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(videos)} videos failed:", file=sys.stderr)
        for path, reason in failures:
            print(f"  {shown(path)}: {reason}", file=sys.stderr)
    for folder, reason in unreadable:
        print(f"{shown(folder)}: cannot be read ({reason}); its videos were not predicted", file=sys.stderr)
    return 1 if failures or unreadable else 0


def record(results, pending: list[dict]) -> None:
    """Append `pending` to `results` and empty it, as one step that Ctrl-C waits for: a record leaves
    `pending` exactly when it is in the file, so the `finally` above never writes it twice."""
    from s2d.io.files import deferred_signals

    with deferred_signals():
        results.append(pending)
        pending.clear()


def _print(pred) -> None:
    print(f"{shown(pred.path)}  ({pred.num_frames} frames)")
    if pred.synopsis:
        print("  synopsis: " + ", ".join(f"{n} ({p:.3f})" for n, p in pred.synopsis))
    for name, p in pred.labels:
        print(f"  {p:6.3f}  {name}")
