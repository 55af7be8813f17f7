"""Model benchmarks: per-video latency and throughput of S2DNet against its baselines.

Each model runs in eval mode under `torch.inference_mode` on a random uint8 dense clip of its own
config (`dense_frames × dense_size²`), so the timed work is what `model(frames)` costs a user:
normalisation, synopsis, locator, sampler, detail net. fp32 on CPU; fp32, bf16 and fp16 on CUDA
(`torch.autocast`, weights stay fp32, as mixed-precision inference usually runs).

Variants: `s2dnet-tsm-sthv2` vs `tsm-r50` (both from a 32×224² dense clip), the
linear-temporal sampler ablation of `s2dnet-tsm-sthv2`, and `s2dnet-x3d-k400` vs `x3d-m` (64×224²);
then the four networks again as `optimize_for_inference` makes them (`-opt`: BatchNorm folded,
channels-last 2D convs), with the speedups over the plain models and the S2DNet / baseline ratios
of the optimised pair.
Ratios (S2DNet / baseline per-video latency) are computed from the medians of this same run; the
variants are timed interleaved (one call of each in turn), so load from other processes that
drifts during the run affects both sides of a ratio alike.
In tiny mode the same variants are shrunk through `s2d.create` overrides.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from s2d.bench.context import MODEL_BATCHES, Bench, short_reason
from s2d.bench.timing import Candidate, time_interleaved
from s2d_kernels.backend import resolve_backend

SECTION = "models"

#: Paper Table 3 latencies (V100, batch 16, per video, ms) quoted beside the measured ratio.
PAPER_LATENCY_MS = {"s2dnet-tsm-sthv2": 6.5, "tsm-r50": 8.4}


@dataclass(frozen=True)
class Variant:
    """A benchmarked model: its row name, the registry name and overrides it is built from."""

    key: str
    model: str
    overrides: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    optimize: bool = False  # run as `optimize_for_inference` makes it


_TSM_TINY = dict(dense_frames=8, dense_size=64, synopsis={"frames": 4, "size": 32}, sampler={"frames": 4, "size": 32})
_X3D_TINY = dict(dense_frames=8, dense_size=64, synopsis={"arch": "x3d_tiny", "frames": 4, "size": 32},
                 sampler={"frames": 4, "size": 32}, detail={"arch": "x3d_tiny"})

#: Overrides that shrink each registry model for tiny mode (same code paths, seconds to run).
TINY_OVERRIDES: dict[str, dict[str, Any]] = {
    "s2dnet-tsm-sthv2": _TSM_TINY,
    "s2dnet-tsm-minik": _TSM_TINY,
    "s2dnet-x3d-k400": _X3D_TINY,
    "tsm-r50": dict(dense_frames=8, dense_size=64, frames=4, size=32),
    "x3d-m": dict(dense_frames=8, dense_size=64, arch="x3d_tiny", frames=4, size=32),
}

VARIANTS = (
    Variant("s2dnet-tsm-sthv2", "s2dnet-tsm-sthv2", label="S2DNet TSM (SSv2 efficient, MN2 8×144 / R50 12×144)"),
    Variant("tsm-r50", "tsm-r50", label="TSM-R50 8×224"),
    Variant("s2dnet-tsm-sthv2-linear", "s2dnet-tsm-sthv2", {"sampler": {"temporal": "linear"}},
            label="S2DNet TSM, linear temporal sampler"),
    Variant("s2dnet-x3d-k400", "s2dnet-x3d-k400", label="S2DNet X3D (X3D-S 8×128 / X3D-M 16×160)"),
    Variant("x3d-m", "x3d-m", label="X3D-M 16×224"),
    Variant("s2dnet-tsm-sthv2-opt", "s2dnet-tsm-sthv2", label="S2DNet TSM, optimize_for_inference()", optimize=True),
    Variant("tsm-r50-opt", "tsm-r50", label="TSM-R50 8×224, optimize_for_inference()", optimize=True),
    Variant("s2dnet-x3d-k400-opt", "s2dnet-x3d-k400", label="S2DNet X3D, optimize_for_inference()", optimize=True),
    Variant("x3d-m-opt", "x3d-m", label="X3D-M 16×224, optimize_for_inference()", optimize=True),
)

#: (numerator, denominator, label) of the per-video latency ratios reported.
RATIOS = (
    ("s2dnet-tsm-sthv2", "tsm-r50", "S2DNet-efficient / TSM-R50"),
    ("s2dnet-x3d-k400", "x3d-m", "S2DNet-X3D / X3D-M"),
    ("s2dnet-tsm-sthv2-linear", "s2dnet-tsm-sthv2", "linear / Gaussian temporal sampler"),
    ("s2dnet-tsm-sthv2-opt", "tsm-r50-opt", "S2DNet-efficient / TSM-R50, both optimised"),
    ("s2dnet-x3d-k400-opt", "x3d-m-opt", "S2DNet-X3D / X3D-M, both optimised"),
)

#: (optimised, plain, label) of the speedups of `optimize_for_inference` reported (plain / optimised latency).
SPEEDUPS = (
    ("s2dnet-tsm-sthv2-opt", "s2dnet-tsm-sthv2", "S2DNet-efficient"),
    ("tsm-r50-opt", "tsm-r50", "TSM-R50"),
    ("s2dnet-x3d-k400-opt", "s2dnet-x3d-k400", "S2DNet-X3D"),
    ("x3d-m-opt", "x3d-m", "X3D-M"),
)


def merge_overrides(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` updated with `extra`, merging sub-config dicts one level deep."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def build_variant(variant: Variant, tiny: bool) -> nn.Module:
    """The variant's model in eval mode (random weights: latency does not depend on them)."""
    import s2d

    overrides = merge_overrides(TINY_OVERRIDES.get(variant.model, {}), variant.overrides) if tiny else variant.overrides
    torch.manual_seed(0)
    model = s2d.create(variant.model, **overrides).eval()
    return model.optimize_for_inference() if variant.optimize else model


def batches_for(bench: Bench) -> tuple[int, ...]:
    """Batch sizes to time: `--batches`, else the mode's `MODEL_BATCHES` (1 and 16, on CPU too; 1 in quick mode)."""
    return bench.model_batches or MODEL_BATCHES[bench.mode]


def dtypes_for(bench: Bench) -> tuple[str, ...]:
    """Precisions to time: fp32 on CPU (autocast there is not what users deploy); fp32, bf16 and
    fp16 on CUDA."""
    return ("fp32", "bf16", "fp16") if bench.cuda else ("fp32",)


@contextlib.contextmanager
def inference_context(device: torch.device, dtype: str) -> Iterator[None]:
    """`torch.inference_mode`, plus autocast to bf16 / fp16 when `dtype` asks for it."""
    with torch.inference_mode():
        if dtype == "fp32":
            yield
        else:
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16 if dtype == "bf16" else torch.float16):
                yield


def _candidate(model: nn.Module, frames: torch.Tensor, device: torch.device, dtype: str) -> Candidate:
    """One inference call of `model` on `frames`, as a timing candidate."""
    return Candidate([lambda: model(frames)], context=lambda: inference_context(device, dtype))


def run(bench: Bench) -> None:
    """Time every variant at every batch size and dtype, the variants interleaved so that their
    ratios see the same machine load; add the latency ratios."""
    batches, dtypes = batches_for(bench), dtypes_for(bench)
    tiny = bench.mode == "tiny"
    models: dict[str, nn.Module] = {}
    for variant in VARIANTS:
        try:
            models[variant.key] = build_variant(variant, tiny).to(bench.device)
        except Exception as err:
            bench.skip(f"models/{variant.key}/*", SECTION, f"could not build: {short_reason(err)}")
    variants = [v for v in VARIANTS if v.key in models]
    kernel_backend = resolve_backend("auto", bench.device)  # what the models' "auto" kernels run
    per_video: dict[tuple[str, int, str], float] = {}
    for batch in batches:
        gen = torch.Generator().manual_seed(batch)
        clips: dict[tuple[int, int], torch.Tensor] = {}
        for v in variants:
            c = models[v.key].config
            if (c.dense_frames, c.dense_size) not in clips:
                clips[(c.dense_frames, c.dense_size)] = torch.randint(
                    0, 256, (batch, c.dense_frames, 3, c.dense_size, c.dense_size), generator=gen,
                    dtype=torch.uint8).to(bench.device)
        for dtype in dtypes:
            bench.log(f"models batch {batch} {dtype}: {', '.join(v.key for v in variants)}")
            cands = {}
            for v in variants:
                c = models[v.key].config
                cands[v.key] = _candidate(models[v.key], clips[(c.dense_frames, c.dense_size)], bench.device, dtype)
            results = time_interleaved(cands, bench.device, bench.settings.models)
            group = f"batch {batch} · {dtype}"
            for v in variants:
                result = results[v.key]
                if isinstance(result, BaseException):
                    bench.skip(f"models/{v.key}/b{batch}/{dtype}/*", SECTION, short_reason(result))
                    continue
                timing = result[0]
                c = models[v.key].config
                base = f"models/{v.key}/b{batch}/{dtype}"
                common = dict(model=v.key, batch=batch, dtype=dtype, input=f"{c.dense_frames}×{c.dense_size}² uint8",
                              description=v.label, kernel_backend=kernel_backend)
                bench.add(f"{base}/batch_latency", SECTION, group, f"{v.key}: batch latency", "latency", 0.0, "ms",
                          better="lower", timing=timing, scale=1e3, **common)
                bench.add(f"{base}/per_video_latency", SECTION, group, f"{v.key}: per video", "latency", 0.0, "ms",
                          better="lower", timing=timing, scale=1e3 / batch, **common)
                tput = bench.add(f"{base}/throughput", SECTION, group, f"{v.key}: throughput", "throughput",
                                 batch / timing.median_s, "videos/s", better="higher", n=timing.n, **common)
                tput["p20"], tput["p80"] = batch / timing.p80_s, batch / timing.p20_s
                per_video[(v.key, batch, dtype)] = (timing, batch)
        del clips
    for batch in batches:
        for dtype in dtypes:
            for num, den, label in RATIOS:
                ta, tb = per_video.get((num, batch, dtype)), per_video.get((den, batch, dtype))
                if ta is None or tb is None:
                    continue
                a, b = ta[0].median_s, tb[0].median_s  # the same batch: per-video scaling cancels
                # the spread of a ratio: numerator's p20 over denominator's p80, and the reverse
                extra: dict[str, Any] = {"p20": ta[0].p20_s / tb[0].p80_s, "p80": ta[0].p80_s / tb[0].p20_s,
                                         "n": min(ta[0].n, tb[0].n)}
                if (num, den) == ("s2dnet-tsm-sthv2", "tsm-r50") and not tiny:
                    extra["reference"] = {"paper_v100_b16": PAPER_LATENCY_MS[num] / PAPER_LATENCY_MS[den]}
                bench.add(f"models/ratio/{num}_over_{den}/b{batch}/{dtype}", SECTION, "latency ratios (same run)",
                          f"{label}, batch {batch}, {dtype}", "ratio", a / b, "x", better="lower", batch=batch,
                          dtype=dtype, **extra)
            for fast, plain, label in SPEEDUPS:
                tf, tp = per_video.get((fast, batch, dtype)), per_video.get((plain, batch, dtype))
                if tf is None or tp is None:
                    continue
                bench.add(f"models/speedup/{fast}/b{batch}/{dtype}", SECTION, "optimize_for_inference speedups (same run)",
                          f"{label} optimised vs plain, batch {batch}, {dtype}", "speedup",
                          tp[0].median_s / tf[0].median_s, "x", better="higher", batch=batch, dtype=dtype,
                          p20=tp[0].p20_s / tf[0].p80_s, p80=tp[0].p80_s / tf[0].p20_s, n=min(tf[0].n, tp[0].n))
