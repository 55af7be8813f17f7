"""The `deploy` section: CPU inference paths of S2DNet-efficient and TSM-R50 compared in one run.

Per model and batch, every path of `s2d.bench.deploy_paths` (eager fp32, `optimize_for_inference`,
ONNX Runtime, bf16 autocast, int8 PT2E, and with `--compile-model` the whole-model compile) runs on
the same uint8 clips, timed interleaved (`time_interleaved`) so that load drifting during the run
hits every path alike. Each row holds the per-video latency and the path's largest relative logit
error against eager fp32 on those clips; speedups are over the optimised eager model of the same
run, and the S2DNet / TSM-R50 latency ratio is given per path.

Accuracy: top-1 of the shipped `s2dnet-x3d-synth` on the synthetic benchmark's test split through
eager fp32, ONNX Runtime, bf16 and int8 (calibrated on training clips), with the change against fp32.
Allocator: the optimised models at the largest batch, timed with their minor page faults in this
process and in a child process under the other glibc setting (`s2d.bench.deploy_alloc`).
Tiny mode swaps in the tiny X3D pair of the `models` section (the TSM pair's export takes minutes).
"""
from __future__ import annotations

import tempfile
from typing import Any

import torch
from torch import nn

from s2d.bench.context import Bench, short_reason
from s2d.bench.deploy_paths import (BASELINE, PATH_LABELS, PATHS, BuiltPath, PathUnavailable, build_path, native_bf16,
                                    relative_error)
from s2d.bench.timing import Candidate, time_interleaved

SECTION = "deploy"

#: (S2DNet, baseline) per mode: the paper's efficient pair; tiny mode the shrunken X3D pair.
PAIRS = {"full": ("s2dnet-tsm-sthv2", "tsm-r50"), "quick": ("s2dnet-tsm-sthv2", "tsm-r50"),
         "tiny": ("s2dnet-x3d-k400", "x3d-m")}
#: Batch sizes per mode (`--batches` overrides); the allocator comparison runs at the largest.
BATCHES = {"full": (1, 16), "quick": (1, 4), "tiny": (1, 2)}
#: Synthetic test clips scored per path, per mode.
ACCURACY_CLIPS = {"full": 256, "quick": 64, "tiny": 8}
ACCURACY_MODEL = "s2dnet-x3d-synth"
ACCURACY_PATHS = ("eager", "onnxruntime", "bf16", "int8")
#: Untimed and timed forwards of each allocator probe, per mode.
ALLOCATOR_REPS = {"full": (1, 5), "quick": (1, 3), "tiny": (1, 2)}
#: Training clips that calibrate the int8 activations (accuracy model).
CALIBRATION_CLIPS = 32


def batches_for(bench: Bench) -> tuple[int, ...]:
    return bench.model_batches or BATCHES[bench.mode]


def paths_for(bench: Bench) -> tuple[str, ...]:
    """The timed paths: all of `PATHS`, `compiled` only with `--compile-model` (its first call takes minutes)."""
    return tuple(p for p in PATHS if p != "compiled" or bench.compile_model)


def clip_inputs(config: Any, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded uint8 frames `[batch, T, S, S, 3]` (the decoded layout) and full valid lengths."""
    T, S = config.dense_frames, config.dense_size
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (batch, T, S, S, 3), dtype=torch.uint8, generator=gen)
    return frames, torch.full((batch,), T, dtype=torch.long)


def build_paths(bench: Bench, key: str, model: nn.Module, paths: tuple[str, ...], folder: str,
                calibration: list[tuple[torch.Tensor, torch.Tensor]], skip_prefix: str) -> dict[str, BuiltPath]:
    """The paths of `model` that can run here; each one that cannot is recorded as skipped with its reason."""
    from s2d.inference.optimize import optimize_for_inference

    optimized = optimize_for_inference(model)
    built: dict[str, BuiltPath] = {}
    for path in paths:
        bench.log(f"deploy: building {key} / {path}")
        try:
            built[path] = build_path(path, model, optimized, folder=folder, threads=torch.get_num_threads(),
                                     calibration=calibration)
        except PathUnavailable as err:
            bench.skip(f"{skip_prefix}/{path}/*", SECTION, str(err))
        except Exception as err:  # noqa: BLE001  (a path that breaks is reported; the others still run)
            bench.skip(f"{skip_prefix}/{path}/*", SECTION, f"could not build: {short_reason(err)}")
    return built


def speedup_extra(fast: Any, slow: Any) -> dict[str, Any]:
    """p20 / p80 / n of `slow / fast` from two timings: each side's p80 over the other's p20."""
    return {"p20": slow.p20_s / fast.p80_s, "p80": slow.p80_s / fast.p20_s, "n": min(fast.n, slow.n)}


def time_paths(bench: Bench, pair: tuple[str, str], folder: str) -> None:
    """Latency of every path of both models at every batch, with logit errors, speedups and ratios."""
    from s2d.bench.models import Variant, build_variant

    tiny = bench.mode == "tiny"
    paths = paths_for(bench)
    if "bf16" in paths:
        native, found = native_bf16()
        if not native:
            bench.skip(f"{SECTION}/*/*/bf16/*", SECTION, f"no native bf16 on this CPU ({found}): autocast would "
                                                         "emulate it, slower than fp32")
            paths = tuple(p for p in paths if p != "bf16")
    built: dict[str, dict[str, BuiltPath]] = {}
    configs = {}
    for key in pair:
        try:
            model = build_variant(Variant(key, key), tiny)
        except Exception as err:  # noqa: BLE001  (reported as skipped; the other model still runs)
            bench.skip(f"{SECTION}/{key}/*", SECTION, f"could not build: {short_reason(err)}")
            continue
        configs[key] = model.config
        calibration = [clip_inputs(model.config, 2, seed=100 + i) for i in range(2)]
        built[key] = build_paths(bench, key, model, paths, folder, calibration, f"{SECTION}/{key}/*")
    for batch in batches_for(bench):
        inputs = {key: clip_inputs(configs[key], batch, seed=batch) for key in built}
        cands: dict[tuple[str, str], Candidate] = {}
        errors: dict[tuple[str, str], float] = {}
        for key, paths_of in built.items():
            frames, n = inputs[key]
            with torch.inference_mode():
                ref = paths_of["eager"].forward(frames, n) if "eager" in paths_of else None
            for path, bp in paths_of.items():
                try:
                    with bp.context():
                        out = bp.forward(frames, n)
                except Exception as err:  # noqa: BLE001  (a path that fails at this batch is reported, not timed)
                    bench.skip(f"{SECTION}/{key}/b{batch}/{path}/*", SECTION, short_reason(err))
                    continue
                if ref is not None:
                    errors[(key, path)] = relative_error(out, ref)
                cands[(key, path)] = Candidate([lambda f=bp.forward, x=frames, m=n: f(x, m)], context=bp.context)
        bench.log(f"deploy batch {batch}: timing {len(cands)} model paths interleaved")
        results = time_interleaved({f"{k}|{p}": c for (k, p), c in cands.items()}, bench.device,
                                   bench.settings.models)
        timings = {}
        for (key, path) in cands:
            result = results[f"{key}|{path}"]
            if isinstance(result, BaseException):
                bench.skip(f"{SECTION}/{key}/b{batch}/{path}/*", SECTION, short_reason(result))
                continue
            timings[(key, path)] = result[0]
            c = configs[key]
            bench.add(f"{SECTION}/{key}/b{batch}/{path}/per_video_latency", SECTION,
                      f"per-video latency · batch {batch}",
                      f"{key}, {PATH_LABELS[path]}", "latency", 0.0, "ms", better="lower", timing=result[0],
                      scale=1e3 / batch, model=key, batch=batch, path=path, rel_err=errors.get((key, path)),
                      input=f"{c.dense_frames}×{c.dense_size}² uint8", description=built[key][path].detail or None)
        add_ratios(bench, pair, batch, timings)


def add_ratios(bench: Bench, pair: tuple[str, str], batch: int, timings: dict[tuple[str, str], Any]) -> None:
    """Speedups over the optimised eager model, and the S2DNet / baseline latency ratio, per path."""
    for (key, path), t in timings.items():
        base = timings.get((key, BASELINE))
        if base is None or path == BASELINE:
            continue
        bench.add(f"{SECTION}/speedup/{key}/b{batch}/{path}", SECTION, f"speedup over optimised eager · batch {batch}",
                  f"{key}, {PATH_LABELS[path]}", "speedup", base.median_s / t.median_s, "x", better="higher",
                  model=key, batch=batch, path=path, **speedup_extra(t, base))
    s2dnet, baseline = pair
    for path in PATHS:
        a, b = timings.get((s2dnet, path)), timings.get((baseline, path))
        if a is None or b is None:
            continue
        bench.add(f"{SECTION}/ratio/{s2dnet}_over_{baseline}/b{batch}/{path}", SECTION,
                  f"{s2dnet} / {baseline} · batch {batch}", f"{PATH_LABELS[path]}", "ratio",
                  a.median_s / b.median_s, "x", better="lower", batch=batch, path=path,
                  p20=a.p20_s / b.p80_s, p80=a.p80_s / b.p20_s, n=min(a.n, b.n))


def synthetic_batches(split: str, clips: int, batch: int = 32) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(frames `[B, T, H, W, 3]` uint8, num_frames, labels) of the first `clips` clips of a synthetic split."""
    from s2d.synth.benchmark import SyntheticDetailDataset

    data = SyntheticDetailDataset(split, clips)
    out = []
    for start in range(0, clips, batch):
        items = [data[i] for i in range(start, min(clips, start + batch))]
        out.append((torch.stack([it["frames"] for it in items]), torch.tensor([it["num_frames"] for it in items]),
                    torch.tensor([it["label"] for it in items])))
    return out


def score_paths(bench: Bench, folder: str) -> None:
    """Top-1 of the trained synthetic model through each precision / path, and its change against fp32."""
    import s2d

    clips = ACCURACY_CLIPS[bench.mode]
    try:
        model = s2d.load(ACCURACY_MODEL).eval()
    except Exception as err:  # noqa: BLE001  (reported as skipped)
        bench.skip(f"{SECTION}/accuracy/*", SECTION, f"could not load {ACCURACY_MODEL}: {short_reason(err)}")
        return
    test = synthetic_batches("test", clips)
    calibration = [(f, n) for f, n, _ in synthetic_batches("train", CALIBRATION_CLIPS)]
    built = build_paths(bench, ACCURACY_MODEL, model, ACCURACY_PATHS, folder, calibration, f"{SECTION}/accuracy")
    bench.shapes["deploy_accuracy"] = (f"{ACCURACY_MODEL} on the first {clips} clips of the synthetic test split "
                                       f"(data seed 0); int8 calibrated on {CALIBRATION_CLIPS} training clips")
    native = native_bf16()[0]
    logits: dict[str, torch.Tensor] = {}
    for path, bp in built.items():
        try:
            with bp.context():
                logits[path] = torch.cat([bp.forward(f, n).float() for f, n, _ in test])
        except Exception as err:  # noqa: BLE001  (reported as skipped; the other paths are still scored)
            bench.skip(f"{SECTION}/accuracy/{path}/*", SECTION, short_reason(err))
    labels = torch.cat([y for _, _, y in test])
    if "eager" not in logits:
        return
    fp32 = 100.0 * float((logits["eager"].argmax(1) == labels).float().mean())
    for path, out in logits.items():
        top1 = 100.0 * float((out.argmax(1) == labels).float().mean())
        agree = 100.0 * float((out.argmax(1) == logits["eager"].argmax(1)).float().mean())
        note = "bf16 emulated on this CPU (same rounding, not its speed)" if path == "bf16" and not native else None
        bench.add(f"{SECTION}/accuracy/{path}/top1", SECTION, f"accuracy · {ACCURACY_MODEL}, {clips} test clips",
                  PATH_LABELS[path], "accuracy", top1, "%", better="higher", path=path, model=ACCURACY_MODEL,
                  clips=clips, delta_vs_fp32=top1 - fp32, agreement_pct=agree,
                  rel_err=relative_error(out, logits["eager"]), description=note)


def compare_allocators(bench: Bench, pair: tuple[str, str]) -> None:
    """Optimised eager at the largest batch, this process's allocator setting against the other one in a
    child process: per-video latency, minor page faults per call, and glibc default / kept latency."""
    from s2d.bench.deploy_alloc import probe, probe_in_child

    batch = max(batches_for(bench))
    warmup, reps = ALLOCATOR_REPS[bench.mode]
    tiny = bench.mode == "tiny"
    for key in pair:
        bench.log(f"deploy: allocator probes of {key} at batch {batch} (this process, then a child)")
        try:
            here = probe(key, batch, tiny=tiny, warmup=warmup, reps=reps)
            there = probe_in_child(key, batch, tiny=tiny, warmup=warmup, reps=reps, keep=not here["kept"])
        except Exception as err:  # noqa: BLE001  (reported as skipped; the other model still runs)
            bench.skip(f"{SECTION}/allocator/{key}/*", SECTION, short_reason(err))
            continue
        by_setting = {}
        for result, process in ((here, "this process"), (there, "child process")):
            setting = "kept" if result["kept"] else "default"
            by_setting[setting] = result
            label = "freed memory kept" if result["kept"] else "glibc default (S2D_MALLOC=default)"
            bench.add(f"{SECTION}/allocator/{key}/b{batch}/{setting}/per_video_latency", SECTION,
                      f"allocator · optimised eager, batch {batch}", f"{key}, {label} ({process})", "latency",
                      result["ms_per_video"], "ms", better="lower", p20=result["p20"], p80=result["p80"],
                      n=result["n"], model=key, batch=batch, allocator=setting, process=process,
                      minor_faults_per_call=result["minor_faults_per_call"], sys_s_per_call=result["sys_s_per_call"])
        if set(by_setting) == {"kept", "default"}:
            kept, default = by_setting["kept"], by_setting["default"]
            bench.add(f"{SECTION}/allocator/{key}/b{batch}/default_over_kept", SECTION,
                      f"allocator · optimised eager, batch {batch}", f"{key}, glibc default / kept latency",
                      "speedup", default["ms_per_video"] / kept["ms_per_video"], "x", better="higher", model=key,
                      batch=batch, p20=default["p20"] / kept["p80"], p80=default["p80"] / kept["p20"],
                      n=min(kept["n"], default["n"]))


def run(bench: Bench) -> None:
    """Paths timed, accuracy per precision, allocator settings compared (exports go to a temporary folder)."""
    if bench.cuda:
        bench.skip(f"{SECTION}/*", SECTION, "the deploy section compares CPU inference paths (run with --device cpu)")
        return
    pair = PAIRS[bench.mode]
    bench.shapes["deploy"] = (f"{pair[0]} vs {pair[1]}, batches {', '.join(map(str, batches_for(bench)))}, "
                              f"{torch.get_num_threads()} threads; paths {', '.join(paths_for(bench))}")
    with tempfile.TemporaryDirectory(prefix="s2d-bench-deploy-tmp-") as folder:
        time_paths(bench, pair, folder)
        score_paths(bench, folder)
    compare_allocators(bench, pair)
