"""Where an S2DNet's CPU time goes: per-part latency of one optimised forward at batch 1, beside
the single-network baseline it is compared with and that baseline at the detail net's input size.

    python bench/s2dnet_parts.py [--model s2dnet-tsm-sthv2] [--threads 2] [--reps 7]

Each part (synopsis input, synopsis net, context, locator, sampler, detail net) is timed by a
wrapper around its forward; medians over `--reps` forwards after two warm-up calls. Prints a
markdown table. Used for the latency-ratio analysis in bench/cpu-inference.md.
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch

import s2d

PARTS = ("synopsis_clip", "synopsis", "context", "locator", "sampler", "detail")
BASELINE = {"s2dnet-tsm-sthv2": "tsm-r50", "s2dnet-x3d-k400": "x3d-m"}


def _timed(record: dict[str, list[float]], key: str, fn: Callable) -> Callable:
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        record[key][-1] += time.perf_counter() - start
        return out

    return wrapper


def _input(config) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (1, config.dense_frames, 3, config.dense_size, config.dense_size)
    return torch.randint(0, 256, shape, dtype=torch.uint8), torch.tensor([config.dense_frames])


def _median_ms(fn: Callable[[], object], reps: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="s2dnet-tsm-sthv2", choices=sorted(BASELINE))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = s2d.create(args.model).eval().optimize_for_inference()
    c = model.config
    record: dict[str, list[float]] = {k: [] for k in (*PARTS, "total")}
    for key in PARTS:
        owner = model if key == "synopsis_clip" else getattr(model, key)
        name = "synopsis_clip" if key == "synopsis_clip" else "forward"
        setattr(owner, name, _timed(record, key, getattr(owner, name)))
    frames, num = _input(c)

    def forward() -> None:
        for v in record.values():
            v.append(0.0)
        start = time.perf_counter()
        model(frames, num)
        record["total"][-1] = time.perf_counter() - start

    for _ in range(2):
        forward()
    for v in record.values():
        v.clear()
    for _ in range(args.reps):
        forward()
    parts = {k: 1000 * statistics.median(v) for k, v in record.items()}
    base_name = BASELINE[args.model]
    base = s2d.create(base_name).eval().optimize_for_inference()
    bf, bn = _input(base.config)
    base_ms = _median_ms(lambda: base(bf, bn), args.reps)
    at_detail = dict(frames=c.sampler.frames, size=c.sampler.size, dense_frames=c.sampler.frames,
                     dense_size=c.sampler.size)
    small = s2d.create(base_name, **at_detail).eval().optimize_for_inference()
    sf, sn = _input(small.config)
    small_ms = _median_ms(lambda: small(sf, sn), args.reps)
    print(f"{args.model} (optimised), batch 1, {args.threads} thread(s), medians of {args.reps}; "
          f"load average {', '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}\n")
    print("| part | ms | share of the S2DNet | / baseline |")
    print("|---|---:|---:|---:|")
    for key in (*PARTS, "total"):
        print(f"| {key} | {parts[key]:.1f} | {parts[key] / parts['total']:.2f} | {parts[key] / base_ms:.3f} |")
    print(f"| {base_name} {base.config.frames}×{base.config.size}² (baseline) | {base_ms:.1f} | | 1.000 |")
    print(f"| {base_name} at the detail input, {c.sampler.frames}×{c.sampler.size}² | {small_ms:.1f} | | "
          f"{small_ms / base_ms:.3f} |")


if __name__ == "__main__":
    main()
