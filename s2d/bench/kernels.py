"""Kernel benchmarks: the Gaussian filterbank sampler and the context fusion.

Sampler implementations compared, all on the same inputs:

- `per_video`: the official-style loop (`filterbank_sample_per_video`, each video's valid frames
  sliced and filtered on their own), the baseline every speedup is quoted against;
- `reference`: the dense batched algorithm (`filterbank_sample(..., backend="reference")`, i.e.
  `filterbank_sample_dense` after the uint8 normalisation);
- `compile`: `torch.compile` of the dense algorithm (normalisation included);
- `torch`: the public fast path `filterbank_sample(..., backend="torch")`;
- `triton`: `backend="triton"`, only when `s2d_kernels` offers it and the device is CUDA.

Passes: `fwd` (no autograd), `bwd` (backward alone, gradients w.r.t. the six raw sampling
parameters) and `fwdbwd` (forward with autograd + backward, the training cost); `bwd` and
`fwdbwd` come from the same repetitions. Inputs: uint8 frames (normalised inside the op) and
float32 frames (already normalised). One video of the batch is shorter than the clip, so the
per-video valid-length handling is exercised; the raw sampling parameters are drawn as a trained
locator spreads them (centres N(0, 0.5) before the tanh, log-strides N(0, 0.3)). On CUDA each sampler row also carries the bytes the
pass must move at least (the valid input frames and the output; for the backward the output
gradient and the input again), the achieved bandwidth and its fraction of the measured
device copy bandwidth (the roofline column).

The implementations are timed interleaved (one repetition of each in turn, see
`s2d.bench.timing.time_interleaved`), forward and forward+backward separately.

Fusion: `context_fusion` at the ResNet-50 `layer2` / `layer3` outputs of the detail net
(`btchw` layout: `[B*T_d, C, h, w]`, 256-d context), backends `reference` (broadcast concat, as the
official code), `torch` (split GEMM + per-video bias) and `triton` where available.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from s2d.bench.context import Bench, short_reason
from s2d.bench.timing import Candidate, copy_bandwidth, time_interleaved
from s2d.models.config import IMAGENET_MEAN, IMAGENET_STD

SECTION = "kernels"


@dataclass(frozen=True)
class SamplerShape:
    """Dense clip `batch × frames × size²` resampled to `out_frames × out_size²`."""

    batch: int
    frames: int
    size: int
    out_frames: int
    out_size: int

    def label(self) -> str:
        return (f"B={self.batch}, {self.frames}×{self.size}² → {self.out_frames}×{self.out_size}²")


@dataclass(frozen=True)
class FusionShape:
    """Detail-net features of `videos` × `frames` frames at one stage."""

    layer: str
    videos: int
    frames: int
    channels: int
    size: int
    context: int = 256

    def label(self) -> str:
        return (f"{self.layer}: [{self.videos}×{self.frames}, {self.channels}, {self.size}, {self.size}] "
                f"+ {self.context}-d context")


#: SSv2-efficient sampler (batch 8, 32×224² → 12×144²) in full mode; smaller in quick / tiny.
SAMPLER_SHAPES = {
    "full": SamplerShape(8, 32, 224, 12, 144),
    "quick": SamplerShape(2, 16, 112, 6, 64),
    "tiny": SamplerShape(2, 8, 32, 4, 16),
}

#: ResNet-50 layer2 / layer3 outputs for a 12×144² detail volume (18² and 9² maps).
FUSION_SHAPES = {
    "full": (FusionShape("layer2", 8, 12, 512, 18), FusionShape("layer3", 8, 12, 1024, 9)),
    "quick": (FusionShape("layer2", 1, 12, 512, 18), FusionShape("layer3", 1, 12, 1024, 9)),
    "tiny": (FusionShape("layer2", 1, 2, 32, 4), FusionShape("layer3", 1, 2, 64, 2)),
}

#: Sampler implementations, in table order, with their labels.
SAMPLER_IMPLS = {
    "per_video": "per-video loop (official style)",
    "reference": "reference (dense batched)",
    "compile": "torch.compile(dense)",
    "torch": "torch (fast path)",
    "triton": "triton",
}

PASS_LABELS = {"fwd": "forward", "bwd": "backward", "fwdbwd": "forward + backward"}


def triton_available(device: torch.device) -> tuple[bool, str]:
    """Whether the kernels offer a Triton backend usable on `device`, and if not, why."""
    from s2d_kernels import BACKENDS

    if "triton" not in BACKENDS:
        return False, "s2d_kernels has no 'triton' backend"
    if device.type != "cuda":
        return False, "the triton backend needs a CUDA device"
    return True, ""


def sampler_inputs(shape: SamplerShape, device: torch.device) -> dict[str, Any]:
    """Seeded inputs of `shape`: uint8 frames, the same normalised to float32, valid lengths (the
    last video shorter) and the six raw sampling parameters."""
    from s2d_kernels.sampler import normalize_frames

    gen = torch.Generator().manual_seed(0)
    B, T, H, Td = shape.batch, shape.frames, shape.size, shape.out_frames
    frames = torch.randint(0, 256, (B, T, 3, H, H), generator=gen, dtype=torch.uint8)
    num_frames = torch.full((B,), T, dtype=torch.long)
    if B > 1:
        num_frames[-1] = max(2, (3 * T) // 4)
    # Realistic raw locator outputs: centres N(0, 0.5) (tanh spreads them), log-strides N(0, 0.3).
    raw = [torch.randn(B, generator=gen) * 0.5, torch.randn(B, generator=gen) * 0.3]
    raw += [torch.randn(B, Td, generator=gen) * s for s in (0.5, 0.5, 0.3, 0.3)]
    frames = frames.to(device)
    return {"uint8": frames, "float32": normalize_frames(frames, IMAGENET_MEAN, IMAGENET_STD),
            "num_frames": num_frames.to(device), "raw": [r.to(device) for r in raw]}


def _sampler_impls(shape: SamplerShape, bench: Bench) -> dict[str, Callable | None]:
    """Name → `fn(frames, num_frames, params)`; None where the implementation is unavailable
    (the reason is recorded as a skip)."""
    from s2d_kernels.sampler import (filterbank_sample, filterbank_sample_dense, filterbank_sample_per_video,
                                     normalize_frames)

    S = shape.out_size

    def public(backend: str) -> Callable:
        return lambda fr, n, p: filterbank_sample(fr, n, p, S, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                                  backend=backend)

    def per_video(fr, n, p):
        return filterbank_sample_per_video(normalize_frames(fr, IMAGENET_MEAN, IMAGENET_STD), n, p, S)

    def dense_normalized(fr, n, p):
        return filterbank_sample_dense(normalize_frames(fr, IMAGENET_MEAN, IMAGENET_STD), n, p, S)

    impls: dict[str, Callable | None] = {"per_video": per_video, "reference": public("reference")}
    if bench.compile:
        impls["compile"] = torch.compile(dense_normalized)
        bench.notes.append("kernels: the torch.compile first call includes Dynamo tracing and Inductor code "
                           "generation; Inductor's on-disk cache (warm after a first run on the machine) shortens it.")
    else:
        impls["compile"] = None
        bench.skip("kernels/sampler/*/compile", SECTION,
                   "torch.compile not measured in this mode (about a minute of compilation per graph "
                   "on CPU); pass --compile to include it")
    impls["torch"] = public("torch")
    ok, why = triton_available(bench.device)
    impls["triton"] = public("triton") if ok else None
    if not ok:
        bench.skip("kernels/*/triton", SECTION, why)
    return impls


def _sampler_bytes(inputs: dict[str, Any], dtype: str, shape: SamplerShape) -> dict[str, int]:
    """Bytes each pass must move at least: valid input frames + fp32 output (forward); output
    gradient + valid input frames again (backward)."""
    frames = inputs[dtype]
    per_frame = 3 * shape.size * shape.size * frames.element_size()
    inp = int(inputs["num_frames"].sum()) * per_frame
    out = shape.batch * shape.out_frames * 3 * shape.out_size ** 2 * 4
    return {"fwd": inp + out, "bwd": out + inp, "fwdbwd": 2 * (inp + out)}


def forward_candidate(fn: Callable, frames: torch.Tensor, num_frames: torch.Tensor,
                       raw: list[torch.Tensor]) -> Candidate:
    """Inference forward of one sampler implementation (no autograd)."""
    from s2d_kernels.sampler import RawSampling

    params = RawSampling(*raw)
    return Candidate([lambda: fn(frames, num_frames, params)], context=torch.no_grad)


def _autograd_candidate(run: Callable[[list[torch.Tensor]], torch.Tensor], inputs: Sequence[torch.Tensor],
                        grad_out: torch.Tensor) -> Candidate:
    """Forward with autograd on fresh leaf copies of `inputs`, then backward of `grad_out` (two
    timed phases; the leaves' gradients are cleared before every repetition)."""
    leaves = [t.clone().requires_grad_(True) for t in inputs]
    state: dict[str, torch.Tensor] = {}

    def setup() -> None:
        for leaf in leaves:
            leaf.grad = None
        state.clear()

    def forward() -> None:
        state["out"] = run(leaves)

    def backward() -> None:
        state.pop("out").backward(grad_out)

    return Candidate([forward, backward], setup)


def train_candidate(fn: Callable, frames: torch.Tensor, num_frames: torch.Tensor, raw: list[torch.Tensor],
                     grad_out: torch.Tensor) -> Candidate:
    """Forward with autograd, then backward to the six raw sampling parameters (two phases)."""
    from s2d_kernels.sampler import RawSampling

    return _autograd_candidate(lambda leaves: fn(frames, num_frames, RawSampling(*leaves)), raw, grad_out)


def bench_sampler(bench: Bench) -> None:
    """Time every sampler implementation, pass and input dtype; add speedup rows."""
    shape = SAMPLER_SHAPES[bench.mode]
    bench.shapes["sampler"] = shape.label()
    inputs = sampler_inputs(shape, bench.device)
    impls = _sampler_impls(shape, bench)
    settings = bench.settings.kernels
    peak_bw = None
    if bench.cuda:
        peak_bw = copy_bandwidth(bench.device)
        bench.add("kernels/device/copy_bandwidth", SECTION, "device", "device copy bandwidth (read + write)",
                  "bandwidth", peak_bw / 1e9, "GB/s", better="higher")
    medians: dict[tuple[str, str, str], float] = {}
    broken: set[str] = set()
    for dtype in ("uint8", "float32"):
        frames, n = inputs[dtype], inputs["num_frames"]
        nbytes = _sampler_bytes(inputs, dtype, shape)
        live = {impl: fn for impl, fn in impls.items() if fn is not None and impl not in broken}
        bench.log(f"sampler {dtype}: forward of {', '.join(live)}")
        fwd = time_interleaved({impl: forward_candidate(fn, frames, n, inputs["raw"]) for impl, fn in live.items()},
                               bench.device, settings)
        for impl, result in fwd.items():
            if isinstance(result, BaseException):  # one implementation failing must not stop the others
                bench.skip(f"kernels/sampler/*/{dtype}/{impl}", SECTION, short_reason(result))
                broken.add(impl)
                live.pop(impl)
        bench.log(f"sampler {dtype}: forward + backward of {', '.join(live)}")
        grad_out = torch.ones(shape.batch, shape.out_frames, 3, shape.out_size, shape.out_size, device=bench.device)
        train = time_interleaved({impl: train_candidate(fn, frames, n, inputs["raw"], grad_out)
                                  for impl, fn in live.items()}, bench.device, settings)
        for impl in live:
            timings: dict[str, Any] = {"fwd": fwd[impl][0]}
            if isinstance(train[impl], BaseException):
                bench.skip(f"kernels/sampler/bwd/{dtype}/{impl}", SECTION, short_reason(train[impl]))
            else:
                timings.update(bwd=train[impl][1], fwdbwd=train[impl][2])
            label = f"{dtype} · {SAMPLER_IMPLS[impl]}"
            for pass_, timing in timings.items():
                row_id = f"kernels/sampler/{pass_}/{dtype}/{impl}"
                extra: dict[str, Any] = {}
                if peak_bw is not None:
                    gbps = nbytes[pass_] / timing.median_s / 1e9
                    extra = {"bytes": nbytes[pass_], "gbps": gbps, "roofline_pct": 100.0 * gbps * 1e9 / peak_bw}
                bench.add(row_id, SECTION, f"sampler · {PASS_LABELS[pass_]}", label, "latency", 0.0, "ms",
                          better="lower", timing=timing, scale=1e3, backend=impl, dtype=dtype, **{"pass": pass_},
                          shape=shape.label(), **extra)
                medians[(pass_, dtype, impl)] = timing.median_s
                if impl in ("compile", "triton") and pass_ != "bwd":  # bwd shares the fwdbwd first call
                    bench.add(f"{row_id}/first_call", SECTION, f"sampler · {PASS_LABELS[pass_]}",
                              f"{label}: first call (compile{' + autotune' if impl == 'triton' else ''})",
                              "compile_time", timing.first_call_s, "s", better="lower")
    for pass_ in PASS_LABELS:
        for dtype in ("uint8", "float32"):
            base = medians.get((pass_, dtype, "per_video"))
            ref = medians.get((pass_, dtype, "reference"))
            for impl in SAMPLER_IMPLS:
                t = medians.get((pass_, dtype, impl))
                if t is None:
                    continue
                group = f"sampler · {PASS_LABELS[pass_]}"
                if base is not None and impl != "per_video":
                    bench.add(f"kernels/sampler/{pass_}/{dtype}/{impl}/speedup_vs_per_video", SECTION, group,
                              f"{dtype} · {impl} speedup vs per-video loop", "speedup", base / t, "x",
                              better="higher")
                if ref is not None and impl in ("torch", "triton"):
                    bench.add(f"kernels/sampler/{pass_}/{dtype}/{impl}/speedup_vs_reference", SECTION, group,
                              f"{dtype} · {impl} speedup vs reference", "speedup", ref / t, "x", better="higher")


def _fusion_candidates(x: torch.Tensor, m: torch.Tensor, w: torch.Tensor,
                       backend: str) -> tuple[Candidate, Candidate]:
    """(inference forward, forward + backward to x, m and the weight) of one fusion backend."""
    from s2d_kernels.fusion import context_fusion

    fwd = Candidate([lambda: context_fusion(x, m, w, layout="btchw", backend=backend)], context=torch.no_grad)
    train = _autograd_candidate(lambda leaves: context_fusion(*leaves, layout="btchw", backend=backend), (x, m, w),
                                torch.ones_like(x))
    return fwd, train


def bench_fusion(bench: Bench) -> None:
    """Time `context_fusion` per backend at the detail net's layer2 / layer3 shapes."""
    backends = ["reference", "torch"]
    if triton_available(bench.device)[0]:
        backends.append("triton")
    dtypes = [torch.float32] + ([torch.bfloat16] if bench.cuda else [])
    settings = bench.settings.kernels
    bench.shapes["fusion"] = [s.label() for s in FUSION_SHAPES[bench.mode]]
    for shape in FUSION_SHAPES[bench.mode]:
        gen = torch.Generator().manual_seed(1)
        for dtype in dtypes:
            dname = str(dtype).replace("torch.", "")
            x = torch.randn(shape.videos * shape.frames, shape.channels, shape.size, shape.size, generator=gen)
            m = torch.relu(torch.randn(shape.videos, shape.context, generator=gen))
            w = torch.randn(shape.channels, shape.channels + shape.context, 1, 1, 1, generator=gen) * 0.02
            x, m, w = (t.to(bench.device, dtype) for t in (x, m, w))
            group = f"fusion · {shape.layer}"
            bench.log(f"fusion {shape.layer} {dname}: {', '.join(backends)}")
            cands = {b: _fusion_candidates(x, m, w, b) for b in backends}
            fwd = time_interleaved({b: c[0] for b, c in cands.items()}, bench.device, settings)
            train = time_interleaved({b: c[1] for b, c in cands.items()}, bench.device, settings)
            medians: dict[tuple[str, str], float] = {}
            for backend in backends:
                failed = next((r for r in (fwd[backend], train[backend]) if isinstance(r, BaseException)), None)
                if failed is not None:
                    bench.skip(f"kernels/fusion/{shape.layer}/*/{dname}/{backend}", SECTION, short_reason(failed))
                    continue
                passes = (("fwd", fwd[backend][0]), ("bwd", train[backend][1]), ("fwdbwd", train[backend][2]))
                for pass_, timing in passes:
                    row_id = f"kernels/fusion/{shape.layer}/{pass_}/{dname}/{backend}"
                    bench.add(row_id, SECTION, group, f"{PASS_LABELS[pass_]} · {dname} · {backend}", "latency",
                              0.0, "ms", better="lower", timing=timing, scale=1e3, backend=backend, dtype=dname,
                              **{"pass": pass_}, shape=shape.label())
                    medians[(pass_, backend)] = timing.median_s
                    if backend == "triton" and pass_ != "bwd":
                        bench.add(f"{row_id}/first_call", SECTION, group,
                                  f"{PASS_LABELS[pass_]} · {dname} · triton: first call (compile + autotune)",
                                  "compile_time", timing.first_call_s, "s", better="lower")
            for pass_ in PASS_LABELS:
                ref = medians.get((pass_, "reference"))
                for backend in backends[1:]:
                    t = medians.get((pass_, backend))
                    if ref is not None and t is not None:
                        bench.add(f"kernels/fusion/{shape.layer}/{pass_}/{dname}/{backend}/speedup_vs_reference",
                                  SECTION, group, f"{PASS_LABELS[pass_]} · {dname} · {backend} speedup vs reference",
                                  "speedup", ref / t, "x", better="higher")


def run(bench: Bench) -> None:
    """The kernels section: sampler, then fusion."""
    bench_sampler(bench)
    bench_fusion(bench)
