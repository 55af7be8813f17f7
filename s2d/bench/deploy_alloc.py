"""The allocator half of the `deploy` section: an optimised model's batch forwards timed with their
minor page faults, in this process and again in a child process under the other glibc setting
(`s2d.inference.allocator`: freed memory kept, or glibc's default that hands large temporaries back
to the OS and faults them in again on the next pass).

The same probe runs on both sides (`probe`): the model built from its seed, a fixed uint8 batch,
`warmup` untimed forwards, then `reps` timed ones with `resource.getrusage` around them. The child
is `python -m s2d.bench.deploy_alloc ...`, printing the probe's result as one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

import torch

from s2d.bench.timing import quantile

#: How long a child probe may take before it is given up (seconds).
CHILD_TIMEOUT_S = 1800


def kept_in_this_process() -> bool:
    """Whether this process keeps freed memory (`keep_freed_memory` applied and taken by glibc)."""
    from s2d.inference import allocator

    return bool(getattr(allocator, "_applied", None))


def probe(model_name: str, batch: int, *, tiny: bool, warmup: int, reps: int) -> dict[str, Any]:
    """Time `reps` forwards of the optimised `model_name` at `batch` (after `warmup`), with the minor page
    faults and system CPU time they cost; per-video milliseconds as median and samples."""
    from s2d.bench.models import Variant, build_variant

    model = build_variant(Variant(model_name, model_name, optimize=True), tiny)
    c = model.config
    frames = torch.randint(0, 256, (batch, c.dense_frames, 3, c.dense_size, c.dense_size), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(batch))
    samples = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(frames)
        before = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(reps):
            start = time.perf_counter()
            model(frames)
            samples.append((time.perf_counter() - start) * 1e3 / batch)
        after = resource.getrusage(resource.RUSAGE_SELF)
    return {"model": model_name, "batch": batch, "kept": kept_in_this_process(), "threads": torch.get_num_threads(),
            "ms_per_video": quantile(samples, 0.5), "p20": quantile(samples, 0.2), "p80": quantile(samples, 0.8),
            "n": reps, "minor_faults_per_call": (after.ru_minflt - before.ru_minflt) / reps,
            "sys_s_per_call": (after.ru_stime - before.ru_stime) / reps,
            "peak_rss_mb": after.ru_maxrss / 1024}


def probe_in_child(model_name: str, batch: int, *, tiny: bool, warmup: int, reps: int, keep: bool) -> dict[str, Any]:
    """`probe` in a fresh Python process that keeps freed memory when `keep`, else runs glibc's default
    (`S2D_MALLOC=default`), with this process's thread count."""
    env = {k: v for k, v in os.environ.items() if k != "S2D_MALLOC"}
    if not keep:
        env["S2D_MALLOC"] = "default"
    cmd = [sys.executable, "-m", "s2d.bench.deploy_alloc", model_name, str(batch), "--warmup", str(warmup),
           "--reps", str(reps), "--threads", str(torch.get_num_threads())] + (["--tiny"] if tiny else []) + \
        (["--keep"] if keep else [])
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"allocator probe child exited with {done.returncode}: {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Child entry point: run `probe` and print its result as one JSON line."""
    p = argparse.ArgumentParser(prog="python -m s2d.bench.deploy_alloc",
                                description="Time an optimised model's forwards and their page faults "
                                            "(one JSON line).")
    p.add_argument("model")
    p.add_argument("batch", type=int)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tiny", action="store_true", help="the bench's tiny-mode model")
    p.add_argument("--keep", action="store_true", help="keep freed memory (s2d.inference.allocator)")
    args = p.parse_args(argv)
    if args.keep:
        from s2d.inference.allocator import keep_freed_memory

        keep_freed_memory(force=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(probe(args.model, args.batch, tiny=args.tiny, warmup=args.warmup, reps=args.reps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
