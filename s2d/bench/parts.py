"""Parts section: where an S2DNet's time goes, part by part, beside the baseline it is compared with.

For both S2DNet / baseline pairs (`s2dnet-tsm-sthv2` / `tsm-r50`, `s2dnet-x3d-k400` / `x3d-m`), every
model as `optimize_for_inference` makes it, batch 1, a random uint8 dense clip of its own config:

- each part of the S2DNet's forward (`PARTS`: synopsis input, synopsis net, context, locator,
  sampler, detail net), timed by a wrapper around its forward (on CUDA the wrapper synchronises
  before and after, so the parts' times are device times, the stalls included), and `rest`, the
  remainder of the forward; each part's share of the S2DNet and its ratio to the baseline;
- the baseline, and the baseline at the detail net's input (`sampler.frames × sampler.size²`):
  how much of the baseline's time a detail net of the same architecture costs by itself, the
  floor under the S2DNet / baseline ratio.

The three models of a pair are timed interleaved (`s2d.bench.timing.time_interleaved`), so their
ratios see the same machine load. In tiny mode the models are shrunk as in the `models` section.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch
from torch import nn

from s2d.bench.context import Bench, short_reason
from s2d.bench.models import Variant, build_variant
from s2d.bench.timing import Candidate, Timing, time_interleaved

SECTION = "parts"

#: The timed parts of an S2DNet's forward, in the order it runs them.
PARTS = ("synopsis_clip", "synopsis", "context", "locator", "sampler", "detail")

#: (S2DNet, the single-network baseline it is compared with).
PAIRS = (("s2dnet-tsm-sthv2", "tsm-r50"), ("s2dnet-x3d-k400", "x3d-m"))


def _timed(samples: list[float], fn: Callable, device: torch.device) -> Callable:
    """`fn` adding its seconds to the last entry of `samples` (one entry per forward)."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        samples[-1] += time.perf_counter() - start
        return out

    return wrapper


def instrument(model: nn.Module, device: torch.device) -> dict[str, list[float]]:
    """Wrap each part of `model` (an S2DNet) in a timer; returns part → seconds per forward."""
    record: dict[str, list[float]] = {part: [] for part in PARTS}
    for part in PARTS:
        owner, attr = (model, "synopsis_clip") if part == "synopsis_clip" else (getattr(model, part), "forward")
        setattr(owner, attr, _timed(record[part], getattr(owner, attr), device))
    return record


def _clip(model: nn.Module, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A random uint8 dense clip of `model`'s config, batch 1, with its frame count."""
    c = model.config
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (1, c.dense_frames, 3, c.dense_size, c.dense_size), generator=gen, dtype=torch.uint8)
    return frames.to(device), torch.tensor([c.dense_frames], device=device)


def _candidate(model: nn.Module, device: torch.device, setup: Callable[[], None] | None = None) -> Candidate:
    """One batch-1 inference forward of `model` on its own dense clip."""
    frames, num = _clip(model, device)
    return Candidate([lambda: model(frames, num)], setup, context=torch.inference_mode)


def _ratio(a: Timing, b: Timing) -> dict[str, Any]:
    """Ratio of medians a / b, its spread (a's p20 over b's p80 and the reverse) and n."""
    return {"value": a.median_s / b.median_s, "p20": a.p20_s / b.p80_s, "p80": a.p80_s / b.p20_s, "n": min(a.n, b.n)}


def bench_pair(bench: Bench, s2dnet: str, baseline: str) -> None:
    """Time one S2DNet by part beside its baseline and the baseline at the detail input; add the rows."""
    tiny = bench.mode == "tiny"
    model = build_variant(Variant(s2dnet, s2dnet, optimize=True), tiny).to(bench.device)
    c = model.config
    at_detail = dict(frames=c.sampler.frames, size=c.sampler.size, dense_frames=c.sampler.frames,
                     dense_size=c.sampler.size)
    base = build_variant(Variant(baseline, baseline, optimize=True), tiny).to(bench.device)
    small = build_variant(Variant(f"{baseline}-at-detail", baseline, at_detail, optimize=True), tiny).to(bench.device)
    record = instrument(model, bench.device)

    def new_forward() -> None:
        for samples in record.values():
            samples.append(0.0)

    bench.log(f"parts {s2dnet}: by part, beside {baseline} and {baseline} at the detail input")
    results = time_interleaved({"s2dnet": _candidate(model, bench.device, new_forward),
                                "baseline": _candidate(base, bench.device),
                                "at_detail": _candidate(small, bench.device)}, bench.device, bench.settings.models)
    failed = next((r for r in results.values() if isinstance(r, BaseException)), None)
    if failed is not None:
        raise failed
    total, base_t, small_t = (results[k][0] for k in ("s2dnet", "baseline", "at_detail"))
    n = total.n  # the timed forwards are the last n entries (the first call and warm-ups come before)
    parts = {part: Timing(record[part][-n:]) for part in PARTS}
    parts["rest"] = Timing([t - sum(record[p][-n + i] for p in PARTS) for i, t in enumerate(total.samples_s)])
    group = f"{s2dnet} (optimised) vs {baseline}, batch 1"
    common: dict[str, Any] = {"model": s2dnet, "batch": 1, "input": f"{c.dense_frames}×{c.dense_size}² uint8"}
    for part, timing in parts.items():
        bench.add(f"{SECTION}/{s2dnet}/{part}/latency", SECTION, group, part, "latency", 0.0, "ms", better="lower",
                  timing=timing, scale=1e3, part=part, share=timing.median_s / total.median_s,
                  over_baseline=timing.median_s / base_t.median_s, **common)
    bench.add(f"{SECTION}/{s2dnet}/total/latency", SECTION, group, f"{s2dnet} total", "latency", 0.0, "ms",
              better="lower", timing=total, scale=1e3, part="total", over_baseline=total.median_s / base_t.median_s,
              **common)
    bc, sc = base.config, small.config
    bench.add(f"{SECTION}/{s2dnet}/baseline/latency", SECTION, group,
              f"{baseline} {bc.frames}×{bc.size}² (baseline)", "latency", 0.0, "ms", better="lower", timing=base_t,
              scale=1e3, model=baseline, batch=1, input=f"{bc.dense_frames}×{bc.dense_size}² uint8")
    bench.add(f"{SECTION}/{s2dnet}/baseline_at_detail/latency", SECTION, group,
              f"{baseline} at the detail input, {sc.frames}×{sc.size}²", "latency", 0.0, "ms", better="lower",
              timing=small_t, scale=1e3, model=baseline, batch=1, input=f"{sc.dense_frames}×{sc.dense_size}² uint8")
    for key, num, label in (("total_over_baseline", total, f"{s2dnet} / {baseline}"),
                            ("baseline_at_detail_over_baseline", small_t,
                             f"{baseline} at the detail input / {baseline}")):
        r = _ratio(num, base_t)
        bench.add(f"{SECTION}/{s2dnet}/ratio/{key}", SECTION, group, f"{label} (same run)", "ratio", r.pop("value"),
                  "x", better="lower" if key == "total_over_baseline" else None, model=s2dnet, batch=1, **r)


def run(bench: Bench) -> None:
    """Every S2DNet / baseline pair in turn; a pair that fails is skipped with its reason."""
    bench.shapes["parts"] = "batch 1, every model optimised (optimize_for_inference), on its own uint8 dense clip"
    for s2dnet, baseline in PAIRS:
        try:
            bench_pair(bench, s2dnet, baseline)
        except Exception as err:
            bench.skip(f"{SECTION}/{s2dnet}/*", SECTION, short_reason(err))
