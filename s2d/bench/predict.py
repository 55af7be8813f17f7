"""Predict benchmark: end-to-end videos/s of classifying a folder of video files.

The bench encodes a folder of synthetic videos (`s2d.bench.decode.encode_video`: 16 videos of
10 s at 30 fps, 456×256 in full mode; fewer and shorter in quick and tiny modes) and times four
passes over all of them with S2DNet-efficient (`s2dnet-tsm-sthv2`, as `optimize_for_inference`
makes it), interleaved so machine load hits them alike:

- sequential: the per-video loop `for v in videos: predict(model, v)` (decode, then the model);
- pipelined: `s2d.predict_many` with its default workers and batch size (decoding in DataLoader
  workers while the model runs), and with one worker per core when that differs;
- decode-only: the same DataLoader without the model;
- model-only: the model on the already decoded clips, at the pipeline's batch size, on all the
  cores, and on CPU also on the threads the pipeline leaves it (`predict_many` gives the model the
  cores its decoding workers do not take).

Ratios of the same run: pipelined / sequential (what overlapping buys) and pipelined / the slower
of decode-only and model-only (the pipeline's efficiency; 1.0 would hide the faster stage
entirely behind the slower one). Both stages share the machine's cores when pipelined, so on a
small CPU where each alone keeps every core busy the efficiency is bounded well below 1; the
ratio to the model on the pipeline's share of the cores shows how much of that bound is reached.
"""
from __future__ import annotations

import contextlib
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from s2d.bench.context import Bench, short_reason
from s2d.bench.decode import VIDEO_SHAPES, encode_video
from s2d.bench.models import TINY_OVERRIDES
from s2d.bench.timing import Candidate, TimerSettings, time_interleaved

SECTION = "predict"
MODEL = "s2dnet-tsm-sthv2"

#: Videos in the folder per mode (the issue's target asks for 16 or more real-size videos).
VIDEO_COUNTS = {"full": 16, "quick": 6, "tiny": 3}

#: Each repetition is a pass over the whole folder: few repetitions, no extra warm-up.
SETTINGS = {"full": TimerSettings(warmup=1, min_reps=3, max_reps=3, budget_s=0.0),
            "quick": TimerSettings(warmup=1, min_reps=2, max_reps=2, budget_s=0.0),
            "tiny": TimerSettings(warmup=1, min_reps=1, max_reps=1, budget_s=0.0)}


def _folder(directory: Path, mode: str) -> list[str]:
    """Encode the mode's synthetic videos into `directory` (each a different phase of the motion)."""
    shape = VIDEO_SHAPES[mode]
    paths = []
    for i in range(VIDEO_COUNTS[mode]):
        sub = directory / f"{i:02d}"
        sub.mkdir()
        path, _ = encode_video(sub, replace(shape, frames=shape.frames - 3 * i))
        paths.append(str(path))
    return paths


def run(bench: Bench) -> None:
    """Time sequential, pipelined, decode-only and model-only passes over a folder of videos."""
    import s2d
    from s2d.data import collate
    from s2d.inference.batch_predict import _Clips, default_batch_size, default_workers, predict_many
    from s2d.inference.predict import predict
    from s2d.models.clip import clip_spec

    tiny = bench.mode == "tiny"
    torch.manual_seed(0)
    try:
        model = s2d.create(MODEL, **(TINY_OVERRIDES[MODEL] if tiny else {})).eval().optimize_for_inference()
        model.to(bench.device)
    except Exception as err:
        bench.skip("predict/*", SECTION, f"could not build {MODEL}: {short_reason(err)}")
        return
    device = bench.device
    batch = default_batch_size(device)
    workers = default_workers(device)
    cores = torch.get_num_threads() if device.type == "cpu" else workers
    with tempfile.TemporaryDirectory(prefix="s2d-bench-predict-") as tmp:
        try:
            videos = _folder(Path(tmp), bench.mode)
        except Exception as err:
            bench.skip("predict/*", SECTION, f"could not encode the videos: {short_reason(err)}")
            return
        shape = VIDEO_SHAPES[bench.mode]
        bench.shapes["predict"] = f"{len(videos)} videos of up to {shape.label()}; {MODEL} (optimised), " \
                                  f"batch {batch}, {workers} worker(s) by default"
        spec = clip_spec(model.config)
        dataset = _Clips([(v, -1) for v in videos], spec, on_error="record")
        clips = [dataset[i] for i in range(len(dataset))]
        if any(c["error"] for c in clips):
            bench.skip("predict/*", SECTION, f"a synthetic video did not decode: {next(c['error'] for c in clips if c['error'])}")
            return
        batches = [collate(clips[i:i + batch]) for i in range(0, len(clips), batch)]

        def sequential() -> None:
            for v in videos:
                predict(model, v, device=device)

        def pipelined(w: int) -> None:
            for _ in predict_many(model, videos, batch_size=batch, workers=w, device=device, optimize=False):
                pass

        def decode_only() -> None:
            loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers, collate_fn=collate)
            for _ in loader:
                pass

        def model_only() -> None:
            with torch.inference_mode():
                for b in batches:
                    model(b["frames"].to(device).permute(0, 1, 4, 2, 3), b["num_frames"].to(device))
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        share = max(1, cores - workers)  # the model's threads inside predict_many on CPU

        @contextlib.contextmanager
        def model_threads():
            before = torch.get_num_threads()
            torch.set_num_threads(share)
            try:
                yield
            finally:
                torch.set_num_threads(before)

        cands: dict[str, Candidate] = {
            "sequential": Candidate([sequential]),
            f"pipelined_w{workers}": Candidate([lambda: pipelined(workers)]),
            "decode_only": Candidate([decode_only]),
            "model_only": Candidate([model_only]),
        }
        if device.type == "cpu" and share != cores:
            cands["model_only_share"] = Candidate([model_only], context=model_threads)
        if cores > workers:
            cands[f"pipelined_w{cores}"] = Candidate([lambda: pipelined(cores)])
        bench.log(f"predict over {len(videos)} videos: {', '.join(cands)}")
        results = time_interleaved(cands, "cpu", SETTINGS[bench.mode])
    labels = {"sequential": "sequential per-video loop (predict)",
              "decode_only": f"decode only (DataLoader, {workers} worker(s))",
              "model_only": f"model only (decoded clips, batch {batch})",
              "model_only_share": f"model only on the pipeline's {share} thread(s) (decoded clips, batch {batch})"}
    group = f"{len(videos)} videos end to end ({MODEL}, optimised)"
    tput: dict[str, Any] = {}
    for key, result in results.items():
        if isinstance(result, BaseException):
            bench.skip(f"predict/{key}/*", SECTION, short_reason(result))
            continue
        timing = result[0]
        n = len(videos)
        w = int(key.split("_w")[1]) if key.startswith("pipelined") else None
        name = labels.get(key) or f"pipelined predict_many ({w} worker(s), batch {batch})"
        row = bench.add(f"predict/{key}/videos_per_s", SECTION, group, f"{name}: videos/s", "throughput",
                        n / timing.median_s, "videos/s", better="higher", n=timing.n, videos=n, batch=batch,
                        workers=w if w is not None else (workers if key == "decode_only" else None),
                        threads={"model_only": cores, "model_only_share": share}.get(key),
                        first_call_s=timing.first_call_s)
        row["p20"], row["p80"] = n / timing.p80_s, n / timing.p20_s
        tput[key] = row
    main = f"pipelined_w{workers}"

    def ratio(id: str, name: str, num: dict[str, Any], den: dict[str, Any], **extra: Any) -> None:
        """A throughput ratio with its spread: numerator's p20 over denominator's p80, and the reverse."""
        bench.add(id, SECTION, "ratios (same run)", name, "ratio", num["value"] / den["value"], "x", better="higher",
                  p20=num["p20"] / den["p80"], p80=num["p80"] / den["p20"], n=min(num["n"], den["n"]), **extra)

    if main in tput and "sequential" in tput:
        ratio("predict/ratio/pipelined_over_sequential", f"pipelined ({workers} worker(s)) / sequential videos/s",
              tput[main], tput["sequential"])
    if main in tput and "decode_only" in tput and "model_only" in tput:
        decode_slower = tput["decode_only"]["value"] <= tput["model_only"]["value"]
        ratio("predict/ratio/pipelined_over_slower_stage",
              f"pipelined ({workers} worker(s)) / slower of decode-only and model-only", tput[main],
              tput["decode_only" if decode_slower else "model_only"], slower_stage="decode" if decode_slower else "model")
    if main in tput and "decode_only" in tput and "model_only_share" in tput:
        slower = min(("decode_only", "model_only_share"), key=lambda k: tput[k]["value"])
        ratio("predict/ratio/pipelined_over_slower_stage_same_cores",
              f"pipelined ({workers} worker(s)) / slower of decode-only and model-only on {share} thread(s)",
              tput[main], tput[slower], slower_stage="decode" if slower == "decode_only" else "model")
    best = max((k for k in tput if k.startswith("pipelined")), key=lambda k: tput[k]["value"], default=None)
    if best and best != main and "sequential" in tput:
        ratio("predict/ratio/best_pipelined_over_sequential",
              f"pipelined ({best.split('_w')[1]} workers) / sequential videos/s", tput[best], tput["sequential"])
