"""Exported graphs as models: `load_exported("model.onnx" | "model.pt2")` runs a graph that
`s2d.inference.export.export_model` wrote wherever the package runs a model (`predict`,
`predict_many`, `python -m s2d predict --model FILE`), giving the same `Prediction`s.

The model is rebuilt from the graph's metadata (`FILE.json` beside it: the config, the label
names, the outputs); the graph itself runs on ONNX Runtime (`.onnx`, the `export` extra) or as
the `torch.export` program (`.pt2`). The engine's channels-first clip `[B, T, 3, H, W]` goes in
as the graph's uint8 `[B, T, H, W, 3]` (the same pixels, only the axes moved back), and the named
outputs come back as the eager model's output (`S2DOutput` with the sampling window, or
`BaselineOutput`), so predictions, records and `--vis` pictures are made as for the eager model.
The graph has no detail volume V̂ among its outputs: asked for it (`return_detail`, the pictures),
V̂ is sampled again from the clip at the window the graph returned.

A `.pt2` file is read by `torch.export.load`, which unpickles parts of it (`torch.load` with
`weights_only=False`): loading one can run any code its author put in it. Load trusted files
only; an ONNX file is a protobuf, read without executing anything of it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from s2d.inference.optimize import InferenceOnlyError
from s2d.models.backbones import TSM_ARCHS
from s2d.models.baseline import BaselineOutput
from s2d.models.clip import check_clip
from s2d.models.config import config_from_dict
from s2d.models.s2dnet import S2DOutput
from s2d.models.sampler import SamplingWindow
from s2d_kernels.sampler import RawSampling, filterbank_sample

__all__ = ["EXPORTED_SUFFIXES", "ExportedModel", "is_exported", "load_exported"]

#: Graph files by suffix, and what runs them.
EXPORTED_SUFFIXES = {".onnx": "onnxruntime", ".pt2": "torch.export"}

#: The graph's outputs by model kind, in order (as `s2d.inference.export.output_names` writes them).
_WINDOW = ("centre_t", "stride_t", "centre_x", "centre_y", "stride_x", "stride_y")
_OUTPUTS = {"s2dnet": ("logits", "synopsis_logits", "topk", *_WINDOW), "baseline": ("logits",)}
_INPUTS = ["frames", "num_frames"]

#: |tanh| below 1 by this much keeps the inverted window finite where tanh saturated in float32.
_SATURATED = 2.0 ** -24


def is_exported(path: str | os.PathLike) -> bool:
    """Whether `path` names an exported graph (by its suffix: `.onnx` or `.pt2`)."""
    return Path(path).suffix.lower() in EXPORTED_SUFFIXES


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_metadata(path: Path) -> dict[str, Any]:
    """The graph's `FILE.json`, checked: the config, one label per class, the outputs of its kind."""
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path}: its metadata file {meta_path} is missing; `python -m s2d export` (or "
                                f"export_model) writes FILE.json beside the graph, and the two travel together")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{meta_path}: not the metadata of an exported graph (not JSON: {err})") from None
    missing = [k for k in ("config", "labels", "outputs") if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise ValueError(f"{meta_path}: not the metadata of an exported graph (no {', '.join(missing)})")
    try:
        config = config_from_dict(meta["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{meta_path}: its config is not a model config: {err}") from None
    labels = meta["labels"]
    if (not isinstance(labels, list) or len(labels) != config.num_classes
            or not all(isinstance(name, str) for name in labels)):
        raise ValueError(f"{meta_path}: labels must be {config.num_classes} class names (the config's num_classes)")
    expected = _OUTPUTS[config.kind]
    if meta["outputs"] != list(expected):
        raise ValueError(f"{meta_path}: outputs must be {list(expected)} for a {config.kind} graph, "
                         f"got {meta['outputs']!r}")
    written_as = meta.get("format")
    if written_as is not None and f".{written_as}" != path.suffix.lower():
        raise ValueError(f"{meta_path}: describes a {written_as} graph, not {path.name}")
    meta["config"] = config
    return meta


class _OnnxSession:
    """An ONNX Runtime session of the graph; numpy in and out, on the host."""

    def __init__(self, path: Path, providers: Sequence[str] | None, threads: int | None, device: str | None):
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ImportError(f"{path}: running an ONNX graph needs onnxruntime, in the `export` extra "
                              f"(pip install \"s2d[export]\"): {err}") from None
        if providers is None:
            providers = ["CPUExecutionProvider"]
            if device is not None and torch.device(device).type == "cuda":
                if "CUDAExecutionProvider" not in ort.get_available_providers():
                    raise RuntimeError(f"{path}: ONNX Runtime here has no CUDAExecutionProvider (available: "
                                       f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu, "
                                       "or run on the CPU")
                providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=list(providers))
        except Exception as err:  # noqa: BLE001 - ORT raises its own classes for a file that is not a graph
            raise ValueError(f"{path}: ONNX Runtime cannot load it as a graph: {err}") from None
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != _INPUTS:
            raise ValueError(f"{path}: the graph's inputs are {inputs}, not {_INPUTS} (an s2d export)")
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, frames: torch.Tensor, num_frames: torch.Tensor) -> list[torch.Tensor]:
        feeds = {"frames": frames.detach().cpu().contiguous().numpy(),
                 "num_frames": num_frames.detach().cpu().to(torch.int64).numpy()}
        return [torch.from_numpy(value) for value in self.session.run(None, feeds)]


def _load_program(path: Path) -> torch.export.ExportedProgram:
    try:
        return torch.export.load(str(path))
    except Exception as err:  # noqa: BLE001 - a zip or pickle error from a file that is not a program
        raise ValueError(f"{path}: torch.export cannot load it as a program: {type(err).__name__}: {err}") from None


def _raw_of_window(window: dict[str, torch.Tensor], num_frames: torch.Tensor, height: int, width: int,
                   out_size: int) -> RawSampling:
    """The locator's raw outputs behind a sampling window: `SamplingWindow.from_raw` inverted
    (`atanh` of the centre, `log` of the stride; a one-frame video's temporal centre has none)."""
    limit = 1.0 - _SATURATED

    def centre(c: torch.Tensor, half: torch.Tensor | float) -> torch.Tensor:
        half = torch.as_tensor(half, dtype=c.dtype, device=c.device)
        ratio = torch.where(half > 0, (c - half) / half.clamp_min(1e-12), 0.0)
        return torch.atanh(ratio.clamp(-limit, limit))

    n = num_frames.to(window["centre_t"].device, torch.float32)
    out_frames = window["centre_x"].shape[1]
    return RawSampling(centre(window["centre_t"], (n - 1) / 2),
                       torch.log(window["stride_t"] * (out_frames - 1) / n),
                       centre(window["centre_x"], (width - 1) / 2), centre(window["centre_y"], (height - 1) / 2),
                       torch.log(window["stride_x"] * (out_size - 1) / width),
                       torch.log(window["stride_y"] * (out_size - 1) / height))


class ExportedModel(nn.Module):
    """An exported graph with the eager model's call: `model(frames, num_frames)` on the dense clip
    `[B, T, 3, H, W]` uint8, answering `S2DOutput` (S2DNet) or `BaselineOutput`; `config`,
    `labels`, `pretrained` as a loaded model has them. Inference only: `.train()` is refused.

    `identity` (`"FILE sha256:<12 hex>"`, the graph file's name and checksum) names the model in
    results files; `runtime` is "onnxruntime" or "torch.export".
    """

    #: Nothing to optimise: `predict_many` runs the graph as it is.
    inference_only = True

    def __init__(self, path: Path, meta: dict[str, Any], session: _OnnxSession | None = None,
                 exported: torch.export.ExportedProgram | None = None):
        """Use `load_exported`: `meta` is the checked metadata; `session` (ONNX) or `exported` (.pt2) runs it."""
        super().__init__()
        self.path = path
        self.config = meta["config"]
        self.labels = tuple(meta["labels"])
        self.pretrained = bool(meta.get("pretrained", True))
        self.runtime = EXPORTED_SUFFIXES[path.suffix.lower()]
        self.identity = f"{path.name} sha256:{_file_sha256(path)[:12]}"
        self.metadata = {k: v for k, v in meta.items() if k != "config"}
        self._session = session
        self._exported = exported
        # the .pt2 program as a module (its weights are this model's parameters), else None
        self.program = exported.module() if exported is not None else None
        # where the model runs, for the engine's `next(model.parameters()).device`
        self.device_marker = nn.Parameter(torch.empty(0), requires_grad=False)
        self.training = False

    def train(self, mode: bool = True) -> ExportedModel:
        if mode:
            raise InferenceOnlyError(f"{self.path.name} is an exported graph: it runs in eval mode only; train the "
                                     "original model")
        self.training = False  # the graph is in eval mode already; its module refuses train()/eval() calls
        return self

    def to(self, *args: Any, **kwargs: Any) -> ExportedModel:
        """Move to a device (a .pt2 program is re-targeted with `torch.export.passes.move_to_device_pass`;
        an ONNX session stays on its providers, inputs are copied to the host). dtypes are the graph's."""
        device = kwargs.pop("device", args[0] if args else None)
        if kwargs.get("dtype") is not None or isinstance(device, torch.dtype) or len(args) > 1:
            raise TypeError("an exported graph's dtypes are fixed; .to() takes a device only")
        if device is None:
            return self
        device = torch.device(device)
        if self.program is not None and device != self.device_marker.device:
            from torch.export.passes import move_to_device_pass

            self.program = move_to_device_pass(self._exported, device).module()
        self.device_marker.data = self.device_marker.data.to(device)
        return self

    def forward(self, frames: torch.Tensor, num_frames: Any = None, return_detail: bool = False) -> Any:
        """Run the graph on dense clips `[B, T, 3, H, W]` uint8 (the frames the graph was exported for);
        `return_detail` adds V̂, sampled from `frames` at the window the graph chose."""
        c = self.config
        num_frames = check_clip(frames, num_frames, dense=(c.dense_frames, c.dense_size))
        if frames.dtype != torch.uint8:
            raise TypeError(f"{self.path.name} takes uint8 frames (0..255; normalisation is inside the graph), "
                            f"got {frames.dtype}")
        clip = frames.movedim(-3, -1)  # [B, T, H, W, 3]: the decoded pixels, as the graph takes them
        with torch.no_grad(), _no_autocast(frames.device):
            if self.program is not None:
                values = self.program(clip.contiguous(), num_frames)
            else:
                values = self._session(clip, num_frames)
        out = dict(zip(_OUTPUTS[c.kind], (v.to(frames.device) for v in values)))
        if c.kind != "s2dnet":
            return BaselineOutput(out["logits"])
        H, W = frames.shape[-2:]
        raw = _raw_of_window(out, num_frames, H, W, c.sampler.size)
        window = SamplingWindow(*(out[k] for k in _WINDOW), raw)
        layout = "btchw" if c.detail.arch in TSM_ARCHS else "bcthw"
        detail = None
        if return_detail:
            detail = filterbank_sample(frames, num_frames, raw, c.sampler.size, mean=c.mean, std=c.std,
                                       temporal=c.sampler.temporal, layout=layout, backend="torch",
                                       sigma=c.sampler.sigma)
        # no k-hot vector s among the graph's outputs: `topk` names the synopsis' classes
        return S2DOutput(out["logits"], out["synopsis_logits"], out["topk"], None, window, detail, layout)

    def predict(self, video: Any, topk: int | None = None, device: Any = None) -> Any:
        """Classify a video file or a uint8 clip `[T, H, W, 3]`: see `s2d.inference.predict.predict`."""
        from s2d.inference.predict import predict
        return predict(self, video, topk=topk, device=device)

    def extra_repr(self) -> str:
        return f"{self.path.name}, {self.runtime}, {self.config.kind}, {self.config.num_classes} classes"


def _no_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """The graph runs in the dtypes it was exported with, also under the engine's CUDA autocast."""
    return torch.autocast(device.type, enabled=False) if device.type in ("cuda", "cpu") else contextlib.nullcontext()


def load_exported(path: str | os.PathLike, *, providers: Sequence[str] | None = None, threads: int | None = None,
                  device: str | torch.device | None = None) -> ExportedModel:
    """The graph at `path` (`.onnx` or `.pt2`, with its `FILE.json`) as a model `predict` and
    `predict_many` run like the eager one.

    ONNX: an ONNX Runtime session with `providers` (default: the CPU; with `device="cuda"`, CUDA
    first, an error where ONNX Runtime has no CUDA provider) and `threads` intra-op threads (default:
    ONNX Runtime's). `.pt2`: `torch.export.load(path).module()`, on `device` (default: the CPU),
    running on torch's threads. Loading a `.pt2` file unpickles it: it can run code its author put
    in it, so load trusted files only.

    A missing or unreadable graph or metadata file, or another suffix, is an error naming the file.
    """
    path = Path(path)
    runtime = EXPORTED_SUFFIXES.get(path.suffix.lower())
    if runtime is None:
        raise ValueError(f"{path}: an exported graph ends in {' or '.join(EXPORTED_SUFFIXES)} "
                         f"(`python -m s2d export` writes them), got {path.suffix or 'no suffix'!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such graph file")
    meta = _read_metadata(path)
    if runtime == "onnxruntime":
        session = _OnnxSession(path, providers, threads, device)
        if session.outputs != meta["outputs"]:
            raise ValueError(f"{path}: the graph's outputs {session.outputs} are not those its metadata names "
                             f"({meta['outputs']})")
        return ExportedModel(path, meta, session=session)
    if providers is not None:
        raise ValueError("providers apply to ONNX graphs only (a .pt2 program runs on torch)")
    model = ExportedModel(path, meta, exported=_load_program(path))
    if device is not None:
        model.to(device)
    return model
