"""One benchmark run: the sections in turn, a progress line per section, the JSON document
written after each one, and `--resume` / `--update` on top of an earlier document.

With `--json OUT` the document is rewritten atomically (`report.write_json`) as soon as a section
completes, its `meta.sections` naming the sections measured and `meta.pending` those still to
come, so a run stopped at any point (Ctrl-C included) leaves OUT holding every completed section.
`--resume` with the same OUT measures only the sections it still lacks, after checking that the
document was made on the same device, in the same mode, with the same threads and options.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from s2d.bench.context import DEFAULT_SECTIONS, SECTIONS, Bench, short_reason
from s2d.bench.report import (apply_base, build_meta, device_info, git_revision, load_document, loadavg, make_document,
                              merge_sections, run_options, write_json)
from s2d.bench.timing import parallel_probe_ms

#: Environment variable that switches the default mode to tiny (used by tests).
TINY_ENV = "S2D_BENCH_TINY"

#: Section → the module under `s2d.bench` whose `run(bench)` measures it.
SECTION_MODULES = {"kernels": "kernels", "sampler": "sampler", "models": "models", "parts": "parts",
                   "decode": "decode", "predict": "predict", "flops": "complexity",
                   "deploy": "deploy"}


def section_runner(name: str) -> Callable[[Bench], None]:
    """The `run(bench)` function of section `name` (its module is imported on demand)."""
    if name not in SECTION_MODULES:
        raise ValueError(f"unknown section {name!r}")
    return importlib.import_module(f"s2d.bench.{SECTION_MODULES[name]}").run


def mode_of(args: argparse.Namespace) -> str:
    """"tiny" with `--tiny` or `S2D_BENCH_TINY=1` (unless `--quick`), "quick" with `--quick`, else "full"."""
    if args.tiny or (not args.quick and os.environ.get(TINY_ENV, "").strip() not in ("", "0")):
        return "tiny"
    return "quick" if args.quick else "full"


def setup_mismatch(meta: dict[str, Any], bench: Bench, threads: int) -> list[str]:
    """How this run's setup differs from the one that made `meta` (`name document vs this run`), [] if alike."""
    old_dev, new_dev = meta.get("device") or {}, device_info(bench.device)
    old_opt = meta.get("options")
    new_opt = run_options(bench)
    checks = [("device", old_dev.get("type"), new_dev["type"]), ("device name", old_dev.get("name"), new_dev["name"]),
              ("mode", meta.get("mode"), bench.mode), ("threads", meta.get("threads"), threads)]
    if isinstance(old_opt, dict):  # documents written before options were recorded are not checked for them
        # an option a document does not record did not exist when it was made: it ran without it
        checks += [(f"--{k.replace('_', '-')}", old_opt.get(k, False if k == "compile_model" else None), v)
                   for k, v in new_opt.items()]
    return [f"{name} {old!r} vs {new!r}" for name, old, new in checks if old != new]


def completed(doc: dict[str, Any]) -> list[str]:
    """Sections `doc` holds, less those that failed as a whole (a resumed run measures those again)."""
    failed = {s["section"] for s in doc["meta"].get("skipped", [])
              if s["id"] == f"{s['section']}/*" and s["reason"].startswith("section failed")}
    return [s for s in doc["meta"]["sections"] if s not in failed]


def without_base(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` without an earlier `--base` comparison (this run's `--base`, if any, is applied to every row)."""
    meta = {k: v for k, v in doc["meta"].items() if k != "base"}
    rows = [{k: v for k, v in r.items() if k not in ("base", "vs_base")} for r in doc["rows"]]
    return make_document(meta, rows)


def _warn_unfinished(path: str) -> None:
    """Say so when a fresh run is about to replace an unfinished document (that `--resume` would continue)."""
    try:
        pending = json.loads(Path(path).read_text()).get("meta", {}).get("pending")
    except (OSError, ValueError, AttributeError):
        return
    if pending:
        print(f"warning: {path} holds an unfinished run (pending: {', '.join(pending)}); this run replaces it "
              "after its first section (stop now and pass --resume to continue it instead)", file=sys.stderr)


def _seconds(s: float) -> str:
    return f"{s:.0f}" if s >= 10 else f"{s:.1f}"


def earlier_document(args: argparse.Namespace, bench: Bench, threads: int) -> tuple[dict[str, Any] | None, str]:
    """The document this run builds on (`--update DOC`, or `--resume` with an existing `--json OUT`)
    and the meta list that records the run there ("reruns" / "resumes"); refuses another setup."""
    if args.update:
        if not args.only:
            raise SystemExit("--update needs --only: the sections to re-measure")
        if args.resume:
            raise SystemExit("--update and --resume do not go together: --resume continues the --json document")
        what, path, history = f"--update {args.update}", args.update, "reruns"
    elif args.resume:
        if not args.json:
            raise SystemExit("--resume needs --json OUT: the document to continue")
        what, path, history = f"--resume {args.json}", args.json, "resumes"
        if not Path(path).exists():
            if bench.verbose:
                print(f"--resume: {path} does not exist yet; measuring every section", file=sys.stderr)
            return None, history
    else:
        if args.json and Path(args.json).is_file():
            _warn_unfinished(args.json)
        return None, "reruns"
    earlier = without_base(load_document(path))
    mismatch = setup_mismatch(earlier["meta"], bench, threads)
    if mismatch:
        raise SystemExit(f"{what}: the run differs from the document (document vs this run: {'; '.join(mismatch)})")
    return earlier, history


def planned_sections(args: argparse.Namespace, earlier: dict[str, Any] | None, history: str) -> list[str]:
    """`--only`, else what a resumed run was asked for, else the default sections."""
    if args.only:
        return list(args.only)
    if earlier is not None and history == "resumes":
        planned = set(earlier["meta"]["sections"]) | set(earlier["meta"].get("pending", []))
        return [s for s in SECTIONS if s in planned]
    return list(DEFAULT_SECTIONS)


def interrupted_message(out: str | None, update: bool, kept: list[str], written: list[str]) -> str:
    """What an interrupted run leaves behind, in one line."""
    if not out:
        return "nothing was kept (pass --json OUT to keep each section as it completes)"
    if not written:
        return f"no section completed; {out} {'is as it was' if Path(out).exists() else 'was not written'}"
    if update:
        return f"{out} holds the sections re-measured before it ({', '.join(written)})"
    return f"{out} holds the {len(kept)} completed section(s) ({', '.join(kept)}); rerun with --resume to measure the rest"


def run_bench(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Run the selected sections, writing the document after each, and return it (with `--base` applied).

    Raises KeyboardInterrupt with a one-line account of what was kept when interrupted.
    """
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    mode = mode_of(args)
    threads = torch.get_num_threads()
    bench = Bench(device=device, mode=mode, compile=(mode == "full") if args.compile is None else args.compile,
                  model_batches=args.batches, verbose=not args.quiet,
                  compile_model=bool(getattr(args, "compile_model", False)))
    base_doc = load_document(args.base) if args.base else None  # fail before measuring, not after
    out = args.json or args.update
    earlier, history = earlier_document(args, bench, threads)
    done = completed(earlier) if earlier is not None and history == "resumes" else []
    sections = planned_sections(args, earlier, history)
    started = _dt.datetime.now().astimezone()
    load_start, probe_start, git = loadavg(), round(parallel_probe_ms(), 3), git_revision()
    t0 = time.perf_counter()
    measured: list[str] = []
    written: list[str] = []

    def document() -> dict[str, Any]:
        if earlier is not None and not measured:
            return make_document(dict(earlier["meta"]), list(earlier["rows"]))
        pending = [s for s in sections if s not in measured and s not in done]
        meta = build_meta(bench, argv, measured, threads, started, time.perf_counter() - t0, load_start,
                          probe_start, pending, git)
        doc = make_document(meta, list(bench.rows))
        return merge_sections(earlier, doc, history) if earlier is not None else doc

    def progress(message: str) -> None:
        if bench.verbose:
            print(message, file=sys.stderr, flush=True)

    current = None
    try:
        for i, section in enumerate(sections, 1):
            tag = f"[{i}/{len(sections)}] {section}"
            if section in done:
                progress(f"{tag}: already in {out}, skipped (--resume)")
                continue
            current = tag
            progress(f"{tag} ... ({mode}, {device}, {threads} thread{'' if threads == 1 else 's'})")
            start, outcome = time.perf_counter(), "done"
            try:
                section_runner(section)(bench)
            except Exception as err:  # a broken section is reported, the others still run
                bench.skip(f"{section}/*", section, f"section failed: {short_reason(err)}")
                outcome = "failed"
            measured.append(section)
            if out:
                write_json(document(), out)
                written.append(section)
            current = None
            progress(f"{tag} {outcome} in {_seconds(time.perf_counter() - start)} s")
    except KeyboardInterrupt:
        kept = [s for s in sections if s in written or s in done]
        where = interrupted_message(out, bool(args.update), kept, written)
        raise KeyboardInterrupt(f"interrupted{f' during {current}' if current else ''}: {where}") from None
    doc = document()
    if base_doc is not None:
        doc["meta"]["base"] = apply_base(doc["rows"], base_doc, args.base)
    return doc
