"""Command line of the benchmark: `python -m s2d.bench --help` (report layout: see `s2d.bench`)."""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import time
from typing import Any, Callable

import torch

from s2d.bench.context import SECTIONS, Bench, short_reason
from s2d.bench.markdown import reliability_warnings, render_markdown
from s2d.bench.report import (apply_base, build_meta, load_document, loadavg, make_document, merge_sections,
                              usable_cores, write_json)
from s2d.bench.timing import parallel_probe_ms

#: Environment variable that switches the default mode to tiny (used by tests).
TINY_ENV = "S2D_BENCH_TINY"


def _section_runner(name: str) -> Callable[[Bench], None]:
    if name == "kernels":
        from s2d.bench.kernels import run
    elif name == "models":
        from s2d.bench.models import run
    elif name == "decode":
        from s2d.bench.decode import run
    elif name == "predict":
        from s2d.bench.predict import run
    elif name == "flops":
        from s2d.bench.complexity import run
    else:
        raise ValueError(f"unknown section {name!r}")
    return run


def parse_sections(text: str | None) -> list[str]:
    """`"kernels,flops"` → sections in run order; all when `text` is None."""
    if not text:
        return list(SECTIONS)
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    return [s for s in SECTIONS if s in wanted]


def parse_batches(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batches takes comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"--batches takes positive integers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m s2d.bench",
        description="Benchmark S2DNet kernels, models, video decoding and FLOP counts; print markdown tables "
                    "and optionally write a JSON document (schema in `s2d.bench`).")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="device to measure on (default: cuda when available, else cpu)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small shapes, batch 1, few repetitions (minutes on CPU)")
    mode.add_argument("--tiny", action="store_true",
                      help=f"shrunken shapes and models, for tests (seconds); also via {TINY_ENV}=1")
    p.add_argument("--only", type=parse_sections, default=None, metavar="SECTION[,SECTION]",
                   help=f"run only these sections ({', '.join(SECTIONS)})")
    p.add_argument("--json", metavar="OUT", help="write the JSON document here")
    p.add_argument("--markdown", metavar="OUT", help="also write the markdown report here")
    p.add_argument("--base", metavar="OLD.json", help="earlier JSON to compare with (adds base and speedup columns)")
    p.add_argument("--update", metavar="DOC.json",
                   help="re-measure the --only sections and replace their rows in this earlier JSON of the same "
                        "device, mode and thread count (e.g. after a run disturbed by other load); written back to "
                        "DOC.json unless --json says otherwise")
    p.add_argument("--render", metavar="DOC.json",
                   help="measure nothing: print (and --markdown) the report of an earlier JSON")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: all usable cores)")
    p.add_argument("--batches", type=parse_batches, default=None, metavar="B[,B]",
                   help="model batch sizes (default: 1,16 on GPU; 1,4 on CPU; 1 with --quick)")
    comp = p.add_mutually_exclusive_group()
    comp.add_argument("--compile", dest="compile", action="store_true", default=None,
                      help="include torch.compile in the sampler comparison (default: on in full mode)")
    comp.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def _mode(args: argparse.Namespace) -> str:
    if args.tiny or (not args.quick and os.environ.get(TINY_ENV, "").strip() not in ("", "0")):
        return "tiny"
    return "quick" if args.quick else "full"


def run_bench(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Run the selected sections and return the JSON document (with `--base` applied)."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    mode = _mode(args)
    sections = args.only or list(SECTIONS)
    base_doc = load_document(args.base) if args.base else None  # fail before measuring, not after
    update_doc = None
    if args.update:
        if not args.only:
            raise SystemExit("--update needs --only: the sections to re-measure")
        update_doc = load_document(args.update)
        old = update_doc["meta"]
        mismatch = [f"{k} {old_v!r} vs {new_v!r}" for k, old_v, new_v in (
            ("device", old.get("device", {}).get("type"), device.type), ("mode", old.get("mode"), mode),
            ("threads", old.get("threads"), torch.get_num_threads())) if old_v != new_v]
        if mismatch:
            raise SystemExit(f"--update {args.update}: the run differs from the document ({'; '.join(mismatch)})")
    bench = Bench(device=device, mode=mode, compile=(mode == "full") if args.compile is None else args.compile,
                  model_batches=args.batches, verbose=not args.quiet)
    started = _dt.datetime.now().astimezone()
    load_start = loadavg()
    probe_start = round(parallel_probe_ms(), 3)
    t0 = time.perf_counter()
    for section in sections:
        bench.log(f"section {section} ({mode}, {device}, {torch.get_num_threads()} threads)")
        try:
            _section_runner(section)(bench)
        except Exception as err:  # a broken section is reported, the others still run
            bench.skip(f"{section}/*", section, f"section failed: {short_reason(err)}")
    meta = build_meta(bench, argv, sections, torch.get_num_threads(), started, time.perf_counter() - t0, load_start,
                      probe_start)
    doc = make_document(meta, bench.rows)
    if update_doc is not None:
        doc = merge_sections(update_doc, doc)
    if base_doc is not None:
        doc["meta"]["base"] = apply_base(doc["rows"], base_doc, args.base)
    return doc


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; usable in-process (`main(["--tiny", "--json", "out.json"])`). Returns 0."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.threads is not None and args.threads < 1:
        raise SystemExit("--threads must be >= 1")
    if args.render:
        doc = load_document(args.render)
    else:
        previous = torch.get_num_threads()
        torch.set_num_threads(args.threads or usable_cores())
        try:
            doc = run_bench(args, argv)
        finally:
            torch.set_num_threads(previous)
    text = render_markdown(doc)
    sys.stdout.write(text)
    sys.stdout.flush()
    for warning in reliability_warnings(doc):
        print(f"warning: unreliable figures: {warning}", file=sys.stderr)
    if (args.json or args.update) and not args.render:
        write_json(doc, args.json or args.update)
    if args.markdown:
        from pathlib import Path

        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
