"""Sampler section: the three CPU sampler implementations called directly, on two clocks.

`filterbank_sample_banded` (the fast banded path), `filterbank_sample_per_video` (the
official-style loop) and `filterbank_sample_dense` (the dense batched reference), each called
directly rather than through `filterbank_sample`'s dispatch, forward (no autograd) and forward +
backward (gradients to the six raw sampling parameters). With uint8 input the banded path
normalises inside, as the models run it, while the loop and the dense reference read the float
frames normalised beforehand (their natural input; the `kernels` section times all of them on
uint8 with the normalisation included).

Every call is timed on the wall clock and on this process's CPU clock (all threads summed), in
the same interleaved repetitions (`s2d.bench.timing.time_two_clocks`): the CPU clock is far less
disturbed by other jobs on a shared machine. Rows carry the median (p20 / p80) and the minimum;
the banded path's speedups are ratios of minimums (each side's least disturbed run). Shapes are the `kernels` section's (`SAMPLER_SHAPES`). CPU only: on CUDA
the section is skipped (the `kernels` section times the CUDA backends).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from s2d.bench.context import Bench, short_reason
from s2d.bench.kernels import PASS_LABELS, SAMPLER_SHAPES, forward_candidate, sampler_inputs, train_candidate
from s2d.bench.timing import Candidate, time_two_clocks
from s2d.models.config import IMAGENET_MEAN, IMAGENET_STD

SECTION = "sampler"

#: The implementations, in table order, with their labels; `banded` is the one sped up.
PATHS = {"banded": "banded (fast path)", "per_video": "per-video loop (official style)",
         "dense": "dense batched reference"}

#: The clocks every call is read on, with their group labels.
CLOCKS = {"wall": "wall clock", "cpu": "CPU clock (all threads)"}


def sampler_paths(dtype: str, out_size: int) -> dict[str, tuple[str, Callable]]:
    """Path → (the input it reads, `fn(frames, num_frames, params)`): the banded path reads the
    `dtype` frames (uint8 normalised inside), the loop and the dense reference the float frames."""
    from s2d_kernels.sampler.banded_op import filterbank_sample_banded
    from s2d_kernels.sampler.reference import filterbank_sample_dense, filterbank_sample_per_video

    kw: dict[str, Any] = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD} if dtype == "uint8" else {}
    return {"banded": (dtype, lambda fr, n, p: filterbank_sample_banded(fr, n, p, out_size, **kw)),
            "per_video": ("float32", lambda fr, n, p: filterbank_sample_per_video(fr, n, p, out_size)),
            "dense": ("float32", lambda fr, n, p: filterbank_sample_dense(fr, n, p, out_size))}


def _candidate(pass_: str, fn: Callable, frames: torch.Tensor, num_frames: torch.Tensor, raw: list[torch.Tensor],
               grad_out: torch.Tensor) -> Candidate:
    """`fwd`: one forward without autograd; `fwdbwd`: forward with autograd, then backward."""
    if pass_ == "fwd":
        return forward_candidate(fn, frames, num_frames, raw)
    return train_candidate(fn, frames, num_frames, raw, grad_out)


def run(bench: Bench) -> None:
    """Time the three paths per pass and input dtype on both clocks; add the banded path's speedups."""
    if bench.cuda:
        bench.skip(f"{SECTION}/*", SECTION, "CPU-only section (the CPU sampler paths on the CPU clock); "
                                            "the kernels section times the CUDA backends")
        return
    shape = SAMPLER_SHAPES[bench.mode]
    bench.shapes["sampler_paths"] = shape.label()
    inputs = sampler_inputs(shape, bench.device)
    n, raw = inputs["num_frames"], inputs["raw"]
    grad_out = torch.ones(shape.batch, shape.out_frames, 3, shape.out_size, shape.out_size)
    for dtype in ("uint8", "float32"):
        paths = sampler_paths(dtype, shape.out_size)
        for pass_ in ("fwd", "fwdbwd"):
            bench.log(f"sampler paths {dtype} {PASS_LABELS[pass_]}: {', '.join(paths)}")
            cands = {p: _candidate(pass_, fn, inputs[src], n, raw, grad_out) for p, (src, fn) in paths.items()}
            results = time_two_clocks(cands, bench.settings.kernels)
            minimum: dict[tuple[str, str], float] = {}
            for path, result in results.items():
                if isinstance(result, BaseException):
                    bench.skip(f"{SECTION}/{pass_}/{dtype}/{path}/*", SECTION, short_reason(result))
                    continue
                for clock, timing in zip(CLOCKS, result):
                    minimum[(path, clock)] = min(timing.samples_s)
                    bench.add(f"{SECTION}/{pass_}/{dtype}/{path}/{clock}", SECTION,
                              f"{PASS_LABELS[pass_]} · {CLOCKS[clock]}", f"{dtype} · {PATHS[path]}", "latency", 0.0,
                              "ms", better="lower", timing=timing, scale=1e3, min=minimum[(path, clock)] * 1e3,
                              backend=path, dtype=dtype, input=paths[path][0], clock=clock, shape=shape.label(),
                              **{"pass": pass_})
            for clock in CLOCKS:
                fast = minimum.get(("banded", clock))
                for path in PATHS:
                    other = minimum.get((path, clock))
                    if path == "banded" or fast is None or other is None:
                        continue
                    bench.add(f"{SECTION}/{pass_}/{dtype}/banded/{clock}/speedup_vs_{path}", SECTION,
                              f"{PASS_LABELS[pass_]} · {CLOCKS[clock]}", f"{dtype} · banded speedup vs {path} (minimums)",
                              "speedup", other / fast, "x", better="higher", statistic="min", dtype=dtype, clock=clock,
                              **{"pass": pass_})
