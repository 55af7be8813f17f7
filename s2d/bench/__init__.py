"""`python -m s2d.bench`: kernel, model, decode, end-to-end predict and FLOP benchmarks with ratios.

Usage::

    python -m s2d.bench [--device cpu|cuda] [--quick | --tiny] [--only SECTION[,SECTION] | --only all]
                        [--json OUT [--resume]] [--markdown OUT] [--base OLD.json] [--threads N]
                        [--update DOC.json] [--render DOC.json] [--batches 1,16]
                        [--compile | --no-compile] [--compile-model] [--quiet]

Sections: `kernels` (filterbank sampler and context fusion per backend, forward / backward /
forward+backward, uint8 vs float input), `models` (per-video latency and throughput of S2DNet vs
TSM-R50 and X3D-M, plain and as `optimize_for_inference` makes them, and of the linear-temporal
sampler ablation), `decode` (clips/s of reading each model's dense clip from a synthetic video,
per decoder), `predict` (videos/s over a folder of synthetic videos: the sequential per-video
loop, pipelined `predict_many`, decode only, model only, and their ratios), `flops` (params and
GMACs split by component, beside the paper's and the official code's counts); these five make a
run without `--only`. Three more run only when `--only` names them (or `--only all`): `sampler` (the
banded, per-video-loop and dense CPU sampler implementations called directly, each call on the
wall clock and on the process CPU clock, which other jobs disturb less) and `parts` (an
optimised S2DNet's batch-1 time split by part beside its baseline and the baseline at the detail
net's input, the analysis behind the S2DNet / baseline ratio) and `deploy` (CPU inference
paths of S2DNet-efficient and TSM-R50 in one run: eager, `optimize_for_inference`, ONNX Runtime,
bf16, int8 PT2E and, with `--compile-model`, the whole-model compile, each with its logit error
against eager; top-1 of `s2dnet-x3d-synth` per precision; the allocator settings compared in a
child process, see `s2d.bench.deploy`). `--quick` takes a few minutes on
a CPU, `--tiny` (or `S2D_BENCH_TINY=1`) seconds; every ratio is computed from measurements of
the same run.
With `--json OUT` the document is rewritten (atomically) after every section, `meta.pending`
naming the sections still to come, so an interrupted run keeps what it completed; rerunning it
with `--resume` measures only the missing sections, provided OUT was made on the same device, in
the same mode, with the same threads and options. A progress line on stderr marks each
section's start and end (`[2/5] models ...`, `[2/5] models done in 312 s`) unless `--quiet`.
`--update DOC.json --only models` re-measures one section of an earlier run (same device, mode
and threads) and replaces its rows there, recording when, for runs disturbed by other load;
`--render DOC.json` prints the report of an earlier JSON without measuring.

The markdown report goes to stdout (and to `--markdown`), progress to stderr.

JSON document (schema 1, kept stable; new optional row fields may be added, never renamed)::

    {
      "schema": 1,
      "meta": {
        "date": ISO-8601 local time the run started,
        "mode": "full" | "quick" | "tiny",
        "device": {"type": "cpu"|"cuda", "name", "host_cpu", "cores", "platform",
                   "capability", "memory_gb" (CUDA only)},
        "threads": torch.get_num_threads() during the run,
        "versions": {"python", "torch", "s2d", "triton", "torchvision", "numpy", "av", "decord", "cuda"},
        "git": {"revision": commit hash or null, "dirty": bool or null},
        "options": {"compile": bool, "batches": [int] or null (the mode's default)},
        "argv": [...], "sections": [...] (measured),
        "pending": [...]: sections asked for and not measured yet (empty once the run is complete),
        "shapes": {"sampler": str, "fusion": [str], "sampler_paths": str, "parts": str, "decode": str,
                   "predict": str},
        "skipped": [{"id", "section", "reason"}],   # measurements not made, and why
        "notes": [str],
        "loadavg_start", "loadavg_end": [1, 5, 15 min] or null,
        "parallel_probe_ms": {"start", "end"}: median ms of a small multi-threaded op (≈0.05 idle;
                             several ms when other processes hold the cores),
        "elapsed_s": float,
        "base": {"path", "date", "git", "device", "mode", "matched_rows", "unmatched_rows"},  # with --base
        "reruns": [{"sections", "date", "git", "argv", "loadavg_start", "loadavg_end",
                    "parallel_probe_ms", "elapsed_s"}],  # sections re-measured with --update
        "resumes": [same fields]  # sections measured by a --resume of an interrupted run
      },
      "rows": [
        {
          "id": stable key, "/"-separated, e.g. "kernels/sampler/fwd/uint8/torch",
                "models/tsm-r50/b1/fp32/per_video_latency", "flops/s2dnet-tsm-sthv2/total/gmacs",
                "predict/pipelined_w1/videos_per_s", "predict/ratio/pipelined_over_sequential",
                "deploy/tsm-r50/b16/onnxruntime/per_video_latency", "deploy/accuracy/int8/top1",
                "sampler/fwd/uint8/banded/cpu", "parts/s2dnet-tsm-sthv2/detail/latency",
          "section": "kernels" | "sampler" | "models" | "parts" | "decode" | "predict" | "flops" | "deploy",
          "group": sub-table title, "name": human-readable label,
          "metric": "latency" | "throughput" | "speedup" | "ratio" | "compile_time" |
                    "bandwidth" | "params" | "gmacs" | "accuracy",
          "value": number, "unit": "ms" | "s" | "x" | "videos/s" | "clips/s" | "GB/s" | "params" | "GMAC" | "%",
          "better": "lower" | "higher" | null (counts),
          # optional:
          "p20", "p80": quantiles of the repeated runs (same unit), "n": timed runs,
          "first_call_s": the untimed-for-stats first call (compile / autotune / warm-up),
          "peak_mem_mb": CUDA peak allocated memory, "bytes", "gbps", "roofline_pct": sampler
          roofline on CUDA, "reference": {published name: value}, "base", "vs_base" (with --base:
          the earlier value and the speedup, > 1 meaning better now), plus descriptive fields
          ("backend", "kernel_backend", "dtype", "pass", "batch", "model", "description", "shape",
          "input", "clip", "video", "part", "clock"), "min": fastest run (sampler section),
          "statistic": "min" (a ratio of minimums), "share", "over_baseline" (parts section: of the
          S2DNet's total, and over the baseline's latency), "path", "rel_err" (deploy: largest
          |out - eager fp32| / max |eager fp32| of the logits), "delta_vs_fp32", "agreement_pct", "clips"
          (deploy accuracy), "allocator", "process", "minor_faults_per_call", "sys_s_per_call" (deploy allocator)
        }
      ]
    }
"""
from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark CLI in-process (see `s2d.bench.__main__.main`)."""
    from s2d.bench.__main__ import main as _main

    return _main(argv)


__all__ = ["main"]
