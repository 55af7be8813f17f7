"""Classify a video collection: `predict_many(model, paths)` decodes in DataLoader workers while
the model runs on batches, and yields one `Prediction` per video, in input order.

Decoding a clip costs about as much CPU as a forward pass, so running them one after the other
leaves the model waiting for the decoder and the decoder for the model; here worker processes
decode the next videos while the main process runs the model. Unreadable videos do not stop
the run: each yields a `Prediction` with `error` set (the reason) and no labels.

The model is run as `optimize_for_inference` makes it (BatchNorm folded, channels-last), on
CUDA under bf16 autocast with pinned host memory. Predictions do not depend on the worker count;
across batch sizes the labels are the same and the probabilities agree to float rounding (about
1e-7: oneDNN picks different kernels for different batch sizes).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from s2d.data import VideoDataset, collate
from s2d.inference.predict import Prediction, check_topk, prediction_from_outputs
from s2d.inference.results import path_key
from s2d.io import DEFAULT_TIMEOUT_S, VIDEO_EXTENSIONS, VideoError
from s2d.models.clip import clip_spec

__all__ = ["predict_many", "find_videos", "default_workers", "default_batch_size", "LIST_SUFFIXES"]

#: Inputs with these suffixes are lists of videos (one path a line, optionally followed by a label).
LIST_SUFFIXES = (".txt", ".lst", ".list")
_TRAILING_LABELS = re.compile(r"(\s+-?\d+){1,2}$")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_workers(device: str | torch.device = "cpu") -> int:
    """Decoding processes: on CPU half the cores (the model's threads need the rest), on CUDA all
    of them up to 8 (the GPU waits for the decoders)."""
    cores = _cores()
    return max(1, cores // 2) if torch.device(device).type == "cpu" else max(1, min(8, cores))


def default_batch_size(device: str | torch.device = "cpu") -> int:
    """Videos per forward pass: 16 on CUDA, 1 on CPU (where a batch brings no speed: per-video
    latency grows with the batch, see the benchmarks)."""
    return 16 if torch.device(device).type == "cuda" else 1


def _list_entries(list_file: str) -> list[str]:
    """Paths in a list file: one a line, relative to the list's folder; blank lines, `#` comments
    and trailing integer labels (`path label`, `path num_frames label`, as dataset lists) are ignored."""
    base = os.path.dirname(list_file)
    entries = []
    with open(list_file, encoding="utf-8") as handle:
        for line in handle:
            text = line.strip()
            if text and not text.startswith("#"):
                entries.append(os.path.join(base, _TRAILING_LABELS.sub("", text)))
    return entries


def find_videos(inputs: Iterable[str | os.PathLike], extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list[str]:
    """Expand `inputs` into video paths: folders are searched recursively for `extensions`
    (sorted, so the order is stable), list files (`LIST_SUFFIXES`) give one path a line, other
    paths are taken as videos (a missing or broken one is then reported by the reader). A video
    named twice is kept once, at its first place."""
    wanted = tuple(e.lower() for e in extensions)
    found: list[str] = []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            for root, dirs, files in os.walk(item, followlinks=True):
                dirs.sort()
                found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(wanted)]
        elif item.lower().endswith(LIST_SUFFIXES) and os.path.isfile(item):
            found += _list_entries(item)
        else:
            found.append(item)
    seen: set[str] = set()
    unique = []
    for path in found:
        key = path_key(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


class _Clips(VideoDataset):
    """The model's dense clips of the videos; any failure (not only `VideoError`: a decoder bug
    on one odd file too) becomes a placeholder sample carrying the reason."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            return super().__getitem__(index)
        except Exception as err:  # noqa: BLE001 - one bad file must not end a collection run
            path = self.samples[index][0]
            return self._placeholder(index, VideoError(path, f"{type(err).__name__}: {err}"))


def _row(value: Any, i: int) -> Any:
    """Video `i` of batched outputs, as a batch of one (tensors sliced, dataclasses recursed)."""
    if isinstance(value, torch.Tensor):
        return value[i:i + 1]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _row(getattr(value, f.name), i)
                                             for f in dataclasses.fields(value) if f.init})
    return value


def _prepare(model: nn.Module, device: torch.device, optimize: bool) -> nn.Module:
    if optimize and not getattr(model, "inference_only", False):
        from s2d.inference.optimize import optimize_for_inference

        model = optimize_for_inference(model)
    return model.to(device)


@torch.inference_mode()
def predict_many(model: nn.Module, videos: Iterable[str | os.PathLike], *, topk: int = 5,
                 batch_size: int | None = None, workers: int | None = None,
                 device: str | torch.device | None = None, optimize: bool = True, amp: bool | None = None,
                 backend: str = "auto", timeout_s: float | None = DEFAULT_TIMEOUT_S, keep_detail: bool = False,
                 progress: bool = False, threads: int | None = None) -> Iterator[Prediction]:
    """Classify video files, yielding one `Prediction` per video in input order (`error` set,
    no labels, for a video that cannot be read).

    `batch_size` videos per forward (default by device, `default_batch_size`); `workers` decoding
    processes (default `default_workers`; 0 decodes in this process, one video after the other);
    `device` defaults to the model's. `optimize` runs a copy made by `optimize_for_inference`
    (the model passed in is not changed); `amp` (default: on for CUDA) runs under bf16 autocast.
    `backend` and `timeout_s` go to `s2d.io.read_clip`. `keep_detail` keeps each video's raw
    outputs, detail volume and clip in the prediction (for `s2d.inference.viz`; memory grows with the
    batch). `progress` shows a tqdm bar with videos/s on stderr. Use `find_videos` to expand
    folders and list files.

    On CPU the model runs on `threads` intra-op threads while predicting (default: the cores the
    decoding workers leave, at least one; torch's setting is restored afterwards): a decoder and
    a model thread sharing one core stall every parallel region of the model.
    """
    check_topk(topk)
    paths = [os.fspath(v) for v in videos]
    device = torch.device(device) if device is not None else next(model.parameters()).device
    batch_size = default_batch_size(device) if batch_size is None else int(batch_size)
    workers = default_workers(device) if workers is None else int(workers)
    if batch_size < 1 or workers < 0:
        raise ValueError(f"batch_size must be >= 1 and workers >= 0, got {batch_size} and {workers}")
    amp = device.type == "cuda" if amp is None else bool(amp)
    if not paths:
        return
    previous_threads = torch.get_num_threads()
    if device.type == "cpu":
        wanted = threads if threads is not None else min(previous_threads, max(1, _cores() - workers))
        torch.set_num_threads(max(1, int(wanted)))
    was_training = model.training
    net = _prepare(model.eval(), device, optimize)
    dataset = _Clips([(p, -1) for p in paths], clip_spec(net.config), on_error="record", backend=backend,
                     timeout_s=timeout_s)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate,
                        pin_memory=device.type == "cuda", prefetch_factor=2 if workers else None)
    extra = {"return_detail": True} if keep_detail and net.config.kind == "s2dnet" else {}

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()

    from tqdm import tqdm

    bar = tqdm(total=len(paths), desc="predict", unit="video", disable=not progress, dynamic_ncols=True)
    failed = 0
    try:
        for batch in loader:
            ok = [i for i, err in enumerate(batch["errors"]) if err is None]
            out = None
            if ok:
                frames = batch["frames"] if len(ok) == len(batch["errors"]) else batch["frames"][ok]
                x = frames.to(device, non_blocking=True).permute(0, 1, 4, 2, 3)  # [B, T, 3, H, W]
                n = batch["num_frames"][ok].to(device, non_blocking=True)
                with autocast():
                    out = net(x, n, **extra)
            row = {i: r for r, i in enumerate(ok)}
            for i, path in enumerate(batch["paths"]):
                if i not in row:
                    failed += 1
                    pred = Prediction([], path=path, error=batch["errors"][i],
                                      pretrained=bool(getattr(model, "pretrained", False)))
                else:
                    pred = prediction_from_outputs(net, out, row[i], topk, int(batch["num_frames"][i]), path)
                    if keep_detail:
                        pred.outputs, pred.clip = _row(out, row[i]), batch["frames"][i]
                bar.update(1)
                yield pred
            if failed:
                bar.set_postfix(failed=failed, refresh=False)
    finally:
        bar.close()
        model.train(was_training)
        torch.set_num_threads(previous_threads)
