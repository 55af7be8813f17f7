"""Command line of the benchmark: `python -m s2d.bench --help` (report layout: see `s2d.bench`)."""
from __future__ import annotations

import argparse
import sys

import torch

from s2d.bench.context import DEFAULT_SECTIONS, MODEL_BATCHES, SECTIONS
from s2d.bench.markdown import reliability_warnings, render_markdown
from s2d.bench.report import load_document, usable_cores, write_json
from s2d.bench.runner import TINY_ENV, run_bench
from s2d.io.files import atomic_write_text


def parse_sections(text: str | None) -> list[str]:
    """`"kernels,flops"` → sections in run order; `"all"` → every section; the default ones when `text` is None."""
    if not text:
        return list(DEFAULT_SECTIONS)
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    if wanted == ["all"]:
        return list(SECTIONS)
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)} or all")
    return [s for s in SECTIONS if s in wanted]


def parse_batches(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batches takes comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"--batches takes positive integers, got {text!r}")
    return values


def _batches(mode: str) -> str:
    return ",".join(map(str, MODEL_BATCHES[mode]))


def batches_help() -> str:
    """The `--batches` help, quoting the defaults the models section uses (`context.MODEL_BATCHES`)."""
    return (f"model batch sizes (default: {_batches('full')} on CPU and GPU alike; {_batches('quick')} with --quick; "
            f"{_batches('tiny')} with --tiny)")


def build_parser() -> argparse.ArgumentParser:
    extra = [s for s in SECTIONS if s not in DEFAULT_SECTIONS]
    p = argparse.ArgumentParser(
        prog="python -m s2d.bench",
        description="Benchmark S2DNet kernels, models, video decoding and FLOP counts; print markdown tables "
                    "and optionally write a JSON document (schema in `s2d.bench`). Sections: "
                    f"{', '.join(SECTIONS)}. A run without --only measures {', '.join(DEFAULT_SECTIONS)}; "
                    f"{', '.join(extra[:-1])} and {extra[-1]} run only when --only names them.",
        epilog="With --json OUT the document is rewritten after every section, so an interrupted run keeps the "
               "sections it completed; rerun the same command with --resume to measure only the rest.")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="device to measure on (default: cuda when available, else cpu)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help=f"small shapes, batch {_batches('quick')}, few repetitions (minutes on CPU)")
    mode.add_argument("--tiny", action="store_true",
                      help=f"shrunken shapes and models, for tests (seconds); also via {TINY_ENV}=1")
    p.add_argument("--only", type=parse_sections, default=None, metavar="SECTION[,SECTION]",
                   help=f"run only these sections, or all of them with 'all' (from {', '.join(SECTIONS)}; "
                        f"default: {', '.join(DEFAULT_SECTIONS)})")
    p.add_argument("--json", metavar="OUT", help="write the JSON document here (after every section)")
    p.add_argument("--resume", action="store_true",
                   help="with --json OUT: keep the sections OUT already holds and measure only the missing ones "
                        "(by default those the earlier run was asked for); refused when OUT was made on another "
                        "device, in another mode or with other threads or options; a missing OUT starts afresh")
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
    p.add_argument("--batches", type=parse_batches, default=None, metavar="B[,B]", help=batches_help())
    comp = p.add_mutually_exclusive_group()
    comp.add_argument("--compile", dest="compile", action="store_true", default=None,
                      help="include torch.compile in the sampler comparison (default: on in full mode)")
    comp.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--compile-model", action="store_true",
                   help="deploy section: also time optimize_for_inference(compile=True) (its first call takes minutes)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; usable in-process (`main(["--tiny", "--json", "out.json"])`). Returns 0, or 130
    when interrupted (Ctrl-C), after saying what the --json document kept."""
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
        except KeyboardInterrupt as stop:
            print(f"s2d.bench: {stop or 'interrupted'}", file=sys.stderr)
            return 130
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
        atomic_write_text(args.markdown, text)
    return 0


if __name__ == "__main__":
    from s2d.inference.allocator import keep_freed_memory

    keep_freed_memory()  # as `python -m s2d` does: the figures are those of s2d's own processes
    sys.exit(main())
