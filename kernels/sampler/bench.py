"""CPU benchmark of the sampler paths: fast banded path vs the per-video loop vs dense batched.

    python -m s2d_kernels.sampler.bench --threads 2 --reps 5

Defaults are the SSv2-efficient shape (batch 8, dense clip 32×224², T_d = 12, S = 144) with
random realistic parameters (centres spread over the tanh range, strides exp(N(0, 0.3))).
Every path is timed in the same loop, interleaved, so a busy machine slows them alike; the
ratios use the minimum over repetitions (the least disturbed run) and the median is printed
beside it.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch

from s2d_kernels.sampler.banded_op import filterbank_sample_banded
from s2d_kernels.sampler.params import RawSampling
from s2d_kernels.sampler.reference import filterbank_sample_dense, filterbank_sample_per_video

MEAN, STD = (0.45, 0.45, 0.45), (0.225, 0.225, 0.225)


def random_params(batch: int, out_frames: int, generator: torch.Generator | None = None,
                  requires_grad: bool = False) -> RawSampling:
    """Realistic raw locator outputs: centres N(0, 0.5) (tanh spreads them), log-strides N(0, 0.3)."""
    def r(*shape, s):
        return (torch.randn(*shape, generator=generator) * s).requires_grad_(requires_grad)
    return RawSampling(r(batch, s=0.5), r(batch, s=0.3), r(batch, out_frames, s=0.5),
                         r(batch, out_frames, s=0.5), r(batch, out_frames, s=0.3), r(batch, out_frames, s=0.3))


def _time(fns: dict[str, Callable[[], object]], reps: int, clock: str = "wall") -> dict[str, list[float]]:
    """ms per call of each function, interleaved. "wall": elapsed time; "cpu": this process's CPU
    time (all threads), which a machine shared with other jobs disturbs far less."""
    now = time.perf_counter if clock == "wall" else time.process_time
    for f in fns.values():  # warm-up
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = now()
            f()
            times[k].append((now() - t0) * 1e3)
    return times


def run(batch: int = 8, frames: int = 32, size: int = 224, out_frames: int = 12, out_size: int = 144,
        reps: int = 5, dtype: str = "float32", backward: bool = True, seed: int = 0,
        clock: str = "wall") -> dict[str, dict[str, float]]:
    """Time forward (and forward+backward) of the three CPU paths; returns ms (min, median)."""
    g = torch.Generator().manual_seed(seed)
    B, T = batch, frames
    if dtype == "uint8":
        x = torch.randint(0, 256, (B, T, 3, size, size), dtype=torch.uint8, generator=g)
        x_ref = (x.float() / 255 - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    else:
        x = x_ref = torch.randn(B, T, 3, size, size, generator=g)
    n = torch.full((B,), T)
    p = random_params(B, out_frames, g)
    kw = {"mean": MEAN, "std": STD} if dtype == "uint8" else {}
    fwd = {
        "banded": lambda: filterbank_sample_banded(x, n, p, out_size, **kw),
        "per_video": lambda: filterbank_sample_per_video(x_ref, n, p, out_size),
        "dense": lambda: filterbank_sample_dense(x_ref, n, p, out_size),
    }
    results = {}
    with torch.no_grad():
        results["forward"] = _time(fwd, reps, clock)
    if backward:
        pg = RawSampling(*(t.detach().clone().requires_grad_() for t in p.as_tuple()))
        grad = torch.randn(B, out_frames, 3, out_size, out_size, generator=g)

        def fb(f, xx, **k):
            def step():
                for t in pg.as_tuple():
                    t.grad = None
                f(xx, n, pg, out_size, **k).backward(grad)
            return step
        bwd = {"banded": fb(filterbank_sample_banded, x, **kw),
               "per_video": fb(filterbank_sample_per_video, x_ref),
               "dense": fb(filterbank_sample_dense, x_ref)}
        results["forward+backward"] = _time(bwd, reps, clock)
    return {phase: {k: (min(v), statistics.median(v)) for k, v in r.items()} for phase, r in results.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--out-frames", type=int, default=12)
    ap.add_argument("--out-size", type=int, default=144)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", choices=("float32", "uint8"), default="float32")
    ap.add_argument("--no-backward", action="store_true")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="wall: elapsed time; cpu: process CPU time (robust on a shared machine)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    res = run(a.batch, a.frames, a.size, a.out_frames, a.out_size, a.reps, a.dtype, not a.no_backward,
              clock=a.clock)
    print(f"frames {a.dtype} [{a.batch}, {a.frames}, 3, {a.size}, {a.size}] -> T_d={a.out_frames}, "
          f"S={a.out_size}; torch threads {torch.get_num_threads()}; {a.clock} clock; {a.reps} reps "
          f"(min / median ms)")
    for phase, r in res.items():
        fast = r["banded"][0]
        for k, (lo, med) in r.items():
            print(f"  {phase:17s} {k:10s} {lo:9.1f} / {med:9.1f}   x{lo / fast:6.1f} vs banded")


if __name__ == "__main__":
    main()
