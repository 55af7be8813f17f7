"""Classify a video collection: `predict_many(model, paths)` decodes in DataLoader workers while
the model runs on batches, and yields one `Prediction` per video, in input order.

Decoding a clip costs about as much CPU as a forward pass, so running them one after the other
leaves the model waiting for the decoder and the decoder for the model; here worker processes
decode the next videos while the main process runs the model. Unreadable videos do not stop
the run: each yields a `Prediction` with `error` set (the reason) and no labels.

A decoder crash does not stop it either: when a DataLoader worker dies (a native decoder aborting
on a hostile file, the kernel's OOM killer), the videos it may have held are decoded again one
per child process (`s2d.io.isolate`), those that kill their child get an error record naming the
signal, and a fresh loader goes on with the rest. An input that is not a list or tuple is read in
chunks, so an endless generator yields predictions as they come.

The model is run as `optimize_for_inference` makes it (BatchNorm folded, channels-last), on
CUDA under bf16 autocast with pinned host memory. Predictions do not depend on the worker count;
across batch sizes the labels are the same and the probabilities agree to float rounding (about
1e-7: oneDNN picks different kernels for different batch sizes).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import os
import re
import signal
import threading
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from s2d.data import VideoDataset, collate
from s2d.inference.predict import Prediction, check_topk, default_topk, prediction_from_outputs
from s2d.io import DEFAULT_TIMEOUT_S, VIDEO_EXTENSIONS, VideoError
from s2d.io.isolate import isolated_map
from s2d.io.walk import WalkErrors, unique_files, walk_files
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


def find_videos(inputs: str | os.PathLike | Iterable[str | os.PathLike],
                extensions: Sequence[str] = VIDEO_EXTENSIONS, *, errors: WalkErrors | None = None) -> list[str]:
    """Expand `inputs` (one path, or several) into video paths: folders are searched recursively for
    `extensions` (sorted, so the order is stable; links to folders followed, each folder read once),
    list files (`LIST_SUFFIXES`) give one path a line, other paths are taken as videos (a missing or
    broken one is then reported by the reader). A video reached twice (named twice, or through links)
    is kept once, at its first place.

    A folder that cannot be read is appended to `errors` as `(folder, reason)` and the search goes
    on; with `errors=None` it raises `ValueError` naming the folder.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found: list[str] = []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            found += walk_files(item, extensions, errors)
        elif item.lower().endswith(LIST_SUFFIXES) and os.path.isfile(item):
            found += _list_entries(item)
        else:
            found.append(item)
    return unique_files(found)


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


#: Batches each DataLoader worker decodes ahead.
PREFETCH = 2
#: Batches per worker read at a time from an input that is not a list or tuple.
STREAM_BATCHES = 16


def _worker_died(err: RuntimeError) -> bool:
    """Whether a DataLoader error says a worker process died (not an error raised by Python code in it)."""
    return str(err).startswith("DataLoader worker") and ("exited unexpectedly" in str(err) or "signal" in str(err))


class _ChildSignals:
    """Lets a worker's death be raised only where it is handled: while waiting for the next batch.

    DataLoader's SIGCHLD handler raises a worker's death in whatever the main thread runs at that
    moment, the caller's code between two predictions included. Engaged, SIGCHLD runs that handler
    only inside `waiting()`; a signal that comes at any other time is kept for the next wait.
    `restore` puts the previous handler back.
    """

    def __init__(self) -> None:
        self.saved: Any = None
        self.engaged = self.inside = self.pending = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.inside:
            self._forward()
        else:
            self.pending = True

    def _forward(self) -> None:
        if callable(self.saved):
            self.saved(signal.SIGCHLD, None)

    def engage(self) -> None:
        """After a loader started (which installs DataLoader's handler once per process)."""
        if self.engaged or not hasattr(signal, "SIGCHLD") or threading.current_thread() is not threading.main_thread():
            return
        self.saved = signal.signal(signal.SIGCHLD, self._handle)
        self.engaged = True

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Around `next(loader)`: a worker's death (now or kept from earlier) is raised here."""
        self.inside = True
        try:
            if self.pending:
                self.pending = False
                self._forward()
            yield
        finally:
            self.inside = False

    def restore(self) -> None:
        if self.engaged:
            try:
                signal.signal(signal.SIGCHLD, self.saved if self.saved is not None else signal.SIG_DFL)
            except ValueError:  # finalised outside the main thread: nothing can be restored from here
                pass
            self.engaged = False


def _decode_alone(dataset: VideoDataset, index: int) -> dict[str, Any]:
    """Sample `index`, in a child process of its own (one thread, as in a DataLoader worker)."""
    torch.set_num_threads(1)
    return dataset[index]


def _decoded_batches(dataset: "_Clips", batch_size: int, workers: int, pin: bool,
                     signals: _ChildSignals) -> Iterator[dict[str, Any]]:
    """Collated batches of `dataset`, in order, decoded by `workers` DataLoader processes.

    When a worker dies, the batches it may have held (at most `PREFETCH` per worker after the last
    one received) are decoded again, one video per child process; a video whose child dies too gets
    a placeholder whose error names the signal or exit code, and a fresh loader takes the rest.
    With no workers everything is decoded here, relying on the reader's header checks.
    """
    done, total = 0, len(dataset)
    while done < total:
        part = dataset if done == 0 else Subset(dataset, range(done, total))
        loader = DataLoader(part, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate,
                            pin_memory=pin, prefetch_factor=PREFETCH if workers else None)
        if not workers:
            yield from loader
            return
        batches = iter(loader)
        signals.engage()
        try:
            while True:
                with signals.waiting():
                    batch = next(batches, None)
                if batch is None:
                    return
                done += len(batch["paths"])
                yield batch
        except RuntimeError as err:
            if not _worker_died(err):
                raise
        finally:
            getattr(batches, "_shutdown_workers", lambda: None)()
            del batches
        held = range(done, min(total, done + PREFETCH * workers * batch_size))
        answers = isolated_map(functools.partial(_decode_alone, dataset), held, parallel=workers,
                               timeout_s=dataset.timeout_s)
        samples = []
        for index, (sample, reason) in zip(held, answers):
            if reason is not None:
                sample = dataset._placeholder(index, VideoError(dataset.samples[index][0], reason))
            samples.append(sample)
        for first in range(0, len(samples), batch_size):
            yield collate(samples[first:first + batch_size])
        done = held.stop


def _chunks(videos: Iterable[str | os.PathLike], size: int) -> Iterator[list[str]]:
    """The paths of `videos`, `size` at a time, read as they are needed."""
    items = iter(videos)
    while chunk := [os.fspath(v) for v in itertools.islice(items, size)]:
        yield chunk


@torch.inference_mode()
def predict_many(model: nn.Module, videos: str | os.PathLike | Iterable[str | os.PathLike], *, topk: int | None = None,
                 batch_size: int | None = None, workers: int | None = None,
                 device: str | torch.device | None = None, optimize: bool = True, amp: bool | None = None,
                 backend: str = "auto", timeout_s: float | None = DEFAULT_TIMEOUT_S, keep_detail: bool = False,
                 progress: bool = False, threads: int | None = None, features: bool = False,
                 part_size: int | None = None) -> Iterator[Prediction]:
    """Classify video files, yielding one `Prediction` per video in input order (`error` set,
    no labels, for a video that cannot be read or that crashes its decoder).

    `videos` is one path or an iterable of paths: a list or tuple is decoded by one set of workers,
    any other iterable (a generator, possibly endless) is read `STREAM_BATCHES` batches per worker
    at a time, and predictions come as each part is done.
    `topk` labels per video (default 5, or every class of a model with fewer; at most its classes).
    `batch_size` videos per forward (default by device, `default_batch_size`); `workers` decoding
    processes (default `default_workers`; 0 decodes in this process, one video after the other);
    `device` defaults to the model's. `optimize` runs a copy made by `optimize_for_inference`
    (the model passed in is not changed); `amp` (default: on for CUDA) runs under bf16 autocast.
    `backend` and `timeout_s` go to `s2d.io.read_clip`. `keep_detail` keeps each video's raw
    outputs, detail volume and clip in the prediction (for `s2d.inference.viz`; memory grows with the
    batch). `progress` shows a tqdm bar with videos/s on stderr. Use `find_videos` to expand
    folders and list files. `features` fills `Prediction.features` with each video's pooled
    features (`s2d.inference.features`). `part_size` (default `STREAM_BATCHES` batches per worker)
    is how many paths are read at a time from an input that is not a list or tuple: a small one
    lets a generator that claims work (`s2d.inference.distributed`) claim no more than it needs.

    On CPU the model runs on `threads` intra-op threads while predicting (default: the cores the
    decoding workers leave, at least one; torch's setting is restored afterwards): a decoder and
    a model thread sharing one core stall every parallel region of the model.
    """
    topk = default_topk(model.config.num_classes) if topk is None else topk
    check_topk(topk, model.config.num_classes)
    if features:
        from s2d.inference.features import supports_features

        if not supports_features(model):
            raise ValueError(f"{type(model).__name__} cannot return pooled features (an exported graph has none); "
                             "predict with the model itself")
    if isinstance(videos, (str, os.PathLike)):
        videos = [videos]
    device = torch.device(device) if device is not None else next(model.parameters()).device
    batch_size = default_batch_size(device) if batch_size is None else int(batch_size)
    workers = default_workers(device) if workers is None else int(workers)
    if batch_size < 1 or workers < 0:
        raise ValueError(f"batch_size must be >= 1 and workers >= 0, got {batch_size} and {workers}")
    amp = device.type == "cuda" if amp is None else bool(amp)
    if isinstance(videos, (list, tuple)):
        total: int | None = len(videos)
        parts: Iterator[list[str]] = iter([[os.fspath(v) for v in videos]])
    else:
        total, parts = None, _chunks(videos, part_size or STREAM_BATCHES * batch_size * max(1, workers))
    first = next(parts, [])
    if not first:
        return
    parts = itertools.chain([first], parts)
    previous_threads = torch.get_num_threads()
    if device.type == "cpu":
        wanted = threads if threads is not None else min(previous_threads, max(1, _cores() - workers))
        torch.set_num_threads(max(1, int(wanted)))
    was_training = model.training
    net = _prepare(model.eval(), device, optimize)
    spec = clip_spec(net.config)
    signals = _ChildSignals()

    def batches() -> Iterator[dict[str, Any]]:
        for paths in parts:
            dataset = _Clips([(p, -1) for p in paths], spec, on_error="record", backend=backend, timeout_s=timeout_s)
            yield from _decoded_batches(dataset, batch_size, workers, device.type == "cuda", signals)

    extra = {"return_detail": True} if keep_detail and net.config.kind == "s2dnet" else {}
    if features:
        extra["return_features"] = True

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast(device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()

    from tqdm import tqdm

    bar = tqdm(total=total, desc="predict", unit="video", disable=not progress, dynamic_ncols=True)
    failed = 0
    try:
        for batch in batches():
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
        signals.restore()
        model.train(was_training)
        torch.set_num_threads(previous_threads)
