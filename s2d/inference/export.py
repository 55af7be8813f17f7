"""Models as graphs that run without this package: `export_model(model, path, format="onnx"|"pt2")`.

The graph takes what a decoder gives: `frames`, uint8 RGB `[B, T, H, W, 3]` (T = the config's
`dense_frames`, H = W = `dense_size`; the clip `s2d.io.read_clip` cuts, before `channels_first`),
and `num_frames`, int64 `[B]`, each video's valid frames (a shorter video repeats its last frame
after them). Normalisation happens inside, as `model(frames)` does it. The batch size is dynamic.
Outputs, named: `logits`, and for S2DNet `synopsis_logits`, `topk` and the sampling window
(`centre_t`, `stride_t` `[B]`; `centre_x`, `centre_y`, `stride_x`, `stride_y` `[B, T_d]`, in frames
and pixels, as `S2DOutput.params`).

Both formats start from one `torch.export` program of the model on the "torch" backend, in eval
mode. Under `torch.export` the sampler runs its plain-op form (`s2d_kernels.sampler.portable`, the
fast path's values without its custom op), the context and fusion their pure-torch split forms, the
temporal shift its concatenating form, and the synopsis' nearest resize gathers the pixels torch reads
(ONNX's Resize reads others for some sizes); the input checks that read values stay out of the graph.
`"pt2"` saves that program (`torch.export.load(path).module()(frames, num_frames)`), `"onnx"`
translates it with `torch.onnx` (needs the `export` extra: onnx, onnxscript; onnxruntime to run it).
Beside the graph, `metadata_path(path)` (`FILE.json`) holds the label names and how to read a video.
A step that cannot be exported raises `ExportError` naming the module and the op.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import traceback
from pathlib import Path
from typing import Any

import torch
from torch import nn

from s2d.models.clip import channels_first, clip_spec

__all__ = ["FORMATS", "MIN_OPSET", "ExportError", "ExportedForward", "check_opset", "example_inputs",
           "export_metadata", "export_model", "export_program", "metadata_path", "output_names", "save_program"]

FORMATS = ("onnx", "pt2")

#: The oldest ONNX opset that `torch.onnx`'s exporter writes (its function library targets 18).
MIN_OPSET = 18

#: S2DNet's outputs beside `logits`, in graph order: the synopsis, its top-k, where the sampler looked.
WINDOW = ("centre_t", "stride_t", "centre_x", "centre_y", "stride_x", "stride_y")
S2D_OUTPUTS = ("logits", "synopsis_logits", "topk", *WINDOW)
INPUTS = ("frames", "num_frames")


class ExportError(RuntimeError):
    """A model could not be exported: the message names the module and the op that failed."""


def output_names(model: nn.Module) -> tuple[str, ...]:
    """The exported graph's output names, in order."""
    return S2D_OUTPUTS if model.config.kind == "s2dnet" else ("logits",)


class ExportedForward(nn.Module):
    """`model` with the exported signature: decoded frames `[B, T, H, W, 3]` uint8 and `num_frames`
    `[B]` int64 in, a tuple of the outputs `output_names(model)` names out."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor, num_frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(channels_first(frames), num_frames)
        if self.model.config.kind != "s2dnet":
            return (out.logits,)
        p = out.params
        return (out.logits, out.snet_logits, out.topk, p.centre_t, p.stride_t, p.centre_x, p.centre_y, p.stride_x,
                p.stride_y)


def example_inputs(config: Any, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs of the exported signature for `config`: random uint8 frames `[batch, T, S, S, 3]` and
    valid lengths from the whole clip down to about half of it."""
    T, S = config.dense_frames, config.dense_size
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (batch, T, S, S, 3), dtype=torch.uint8, generator=g)
    lengths = torch.linspace(T, max(1, (T + 1) // 2), batch).round().long()
    return frames, lengths


def _export_copy(model: nn.Module) -> nn.Module:
    """An eval-mode CPU copy of `model` on the pure-torch backend (the graph's ops; the model passed
    in keeps its mode, device and backend)."""
    copied = copy.deepcopy(model).cpu().eval()
    if hasattr(copied, "backend"):
        copied.backend = "torch"
    return copied


def export_program(model: nn.Module, *, batch: int = 2) -> torch.export.ExportedProgram:
    """The `torch.export` program of `ExportedForward(model)` (eval mode, "torch" backend), batch dynamic."""
    wrapper = ExportedForward(_export_copy(model))
    args = example_inputs(model.config, batch)
    batch_dim = torch.export.Dim("batch", min=1, max=4096)
    try:
        with torch.no_grad():
            return torch.export.export(wrapper, args, dynamic_shapes=({0: batch_dim}, {0: batch_dim}), strict=False)
    except Exception as err:
        raise ExportError(f"cannot export {_what(model)} with torch.export: {_traced_culprit(wrapper, err)}: "
                          f"{_reason(err)}") from err


def _what(model: nn.Module) -> str:
    return f"{type(model).__name__} ({model.config.kind})"


def _reason(err: BaseException) -> str:
    """The innermost cause's message, first meaningful line (exporter errors wrap each other)."""
    while err.__cause__ is not None:
        err = err.__cause__
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:500]


def _traced_culprit(wrapper: nn.Module, err: BaseException) -> str:
    """`module <path> (<type>), op `<source line>` (<file>:<line>)` of the innermost model code that
    raised `err` while tracing: the deepest frame of a module's own code, and the deepest frame
    outside torch and the standard library (the line that called what could not be traced)."""
    names = {id(m): n.removeprefix("model.") or "(the model)" for n, m in wrapper.named_modules()}
    module, op = None, None
    for frame, line in traceback.walk_tb(_innermost(err).__traceback__):
        owner = frame.f_locals.get("self")
        if isinstance(owner, nn.Module) and id(owner) in names and owner is not wrapper:
            module = f"{names[id(owner)]} ({type(owner).__name__})"
        filename = frame.f_code.co_filename
        if not filename.startswith(_LIBRARY_DIRS) and Path(filename).resolve() != Path(__file__).resolve():
            code = traceback.FrameSummary(filename, line, frame.f_code.co_name).line
            op = f"`{code}` ({Path(filename).parent.name}/{Path(filename).name}:{line})"
    return f"module {module or '(unknown)'}, op {op or '(unknown)'}"


#: Code that is not the model's: torch itself and the standard library.
_LIBRARY_DIRS = (os.path.dirname(torch.__file__), os.path.dirname(os.__file__))


def _innermost(err: BaseException) -> BaseException:
    """The exception whose traceback reaches into the model's code (the first in the cause chain with
    frames of it; export errors re-raise the tracing error from their own frames)."""
    chain = [err]
    while chain[-1].__cause__ is not None or chain[-1].__context__ is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    for e in chain:
        for frame, _ in traceback.walk_tb(e.__traceback__):
            if isinstance(frame.f_locals.get("self"), nn.Module) and frame.f_code.co_name == "forward":
                return e
    return err


def _graph_culprit(program: torch.export.ExportedProgram, err: BaseException) -> str:
    """`module <path> (<type>), op <target>` of the graph node a translation error names (`%node`)."""
    text = "\n".join(str(e) for e in _chain(err))
    nodes = {n.name: n for n in program.graph.nodes}
    for name in re.findall(r"%(\w+)", text):
        node = nodes.get(name)
        if node is None or node.op != "call_function":
            continue
        stack = list((node.meta.get("nn_module_stack") or {}).values())
        module = "(the model)"
        if stack:
            path, kind = stack[-1]
            path = re.sub(r"^(L\['self'\]\.)?(model\.)?", "", str(path)) or "(the model)"
            module = f"{path} ({getattr(kind, '__name__', str(kind).rsplit('.', 1)[-1])})"
        return f"module {module}, op {node.target}"
    return "module (unknown), op (unknown)"


def _chain(err: BaseException) -> list[BaseException]:
    out = [err]
    while out[-1].__cause__ is not None:
        out.append(out[-1].__cause__)
    return out


def _onnx_model(program: torch.export.ExportedProgram, model: nn.Module, opset: int | None):
    """The `torch.onnx` translation of `program`, with the graph's input and output names, through the
    exporter's graph optimiser (not optional: without it ONNX Runtime refuses some bias-free 3D convs)."""
    try:
        import onnxscript  # noqa: F401  (torch.onnx's translator; named here so a missing one says so)
    except ImportError as err:
        raise ImportError(f"exporting to ONNX needs the `export` extra (pip install \"s2d[export]\": onnx, "
                          f"onnxscript, onnxruntime): {err}") from None
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
            return torch.onnx.export(program, example_inputs(model.config), dynamo=True, opset_version=opset,
                                     input_names=list(INPUTS), output_names=list(output_names(model)),
                                     optimize=True, verbose=False)
    except Exception as err:
        raise ExportError(f"cannot export {_what(model)} to ONNX: {_graph_culprit(program, err)}: "
                          f"{_reason(err)}") from err


def check_opset(opset: Any) -> int | None:
    """`opset` (None: the exporter's default) as an int >= `MIN_OPSET`; anything else is a ValueError."""
    if opset is None:
        return None
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an integer >= {MIN_OPSET} (the oldest that torch.onnx writes), got {opset!r}")
    return opset


def metadata_path(path: str | os.PathLike) -> Path:
    """Where the graph's metadata lives: `FILE.json` beside `FILE.onnx` / `FILE.pt2`."""
    return Path(path).with_suffix(".json")


def export_metadata(model: nn.Module, format: str, opset: int | None = None) -> dict[str, Any]:
    """What a user of the graph needs without torch: its inputs and outputs, the label names, and how
    the clip is cut from a video (frames, size, resize, crop; normalisation is inside the graph)."""
    from s2d import __version__
    from s2d.inference.predict import class_names

    c = model.config
    spec = clip_spec(c)
    T, S = c.dense_frames, c.dense_size
    meta: dict[str, Any] = {
        "format": format, "opset": opset, "s2d_version": __version__, "kind": c.kind,
        "inputs": {
            "frames": {"dtype": "uint8", "shape": ["batch", T, S, S, 3],
                       "layout": "[B, T, H, W, 3]: RGB frames as decoded (0..255), the video's clip"},
            "num_frames": {"dtype": "int64", "shape": ["batch"],
                           "meaning": f"valid frames per video, 1..{T}; a shorter video's clip repeats its last "
                                      "frame after them"}},
        "outputs": list(output_names(model)),
        "labels": class_names(model),
        # trained weights (loaded from the zoo, the Hub or a folder) or a random init: predict warns on the latter
        "pretrained": getattr(model, "weights_source", None) is not None or bool(getattr(model, "pretrained", False)),
        "dense_frames": T, "dense_size": S, "short_side": spec.short_side, "crop": "center",
        "frame_choice": f"uniform: frame indices linspace(0, n-1, {T}) truncated to integers, for a video of n >= "
                        f"{T} frames; a shorter video gives all its n frames, then its last frame repeated",
        "resize": f"short side to {spec.short_side} px (bilinear, antialiased), keeping the aspect ratio; then the "
                  f"centred {S}x{S} square",
        "normalisation": "inside the graph: (x / 255 - mean) / std per RGB channel",
        "mean": list(c.mean), "std": list(c.std),
        "config": json.loads(c.to_json()),
    }
    if c.kind == "s2dnet":
        meta["window"] = {"centre_t, stride_t": "[B] temporal centre and stride, in frames",
                          "centre_x, centre_y, stride_x, stride_y": f"[B, {c.sampler.frames}] per detail frame, in "
                                                                    f"pixels of the {S}x{S} clip"}
    return meta


def export_model(model: nn.Module, path: str | os.PathLike, format: str = "onnx", *, opset: int | None = None,
                 metadata: bool = True, overwrite: bool = False) -> Path:
    """Export `model` (an S2DNet or a baseline) to `path` as ONNX or a `torch.export` program (.pt2),
    with `metadata_path(path)` (label names, how to read a video) when `metadata`; returns `path`.

    An existing `path` (or metadata file) is refused unless `overwrite`. Raises `ExportError` naming
    the module and op that could not be exported; nothing is written then.
    """
    from s2d.io.files import atomic_write_text

    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    opset = check_opset(opset)
    if opset is not None and format != "onnx":
        raise ValueError("opset applies to the onnx format only")
    if getattr(model, "config", None) is None or model.config.kind not in ("s2dnet", "baseline"):
        raise TypeError(f"export_model takes an S2DNet or a baseline model (s2d.create / s2d.load), "
                        f"got {type(model).__name__}")
    path = Path(path)
    targets = [path, metadata_path(path)] if metadata else [path]
    if metadata and metadata_path(path) == path:
        raise ValueError(f"{path}: the graph file cannot end in .json (its metadata is written as {path.name})")
    if not overwrite:
        for target in targets:
            if os.path.lexists(target):
                raise FileExistsError(f"{target} already exists; choose another name or remove it")
    program = export_program(model)
    opset = save_program(program, model, path, format, opset=opset)
    if metadata:
        text = json.dumps(export_metadata(model, format, opset), indent=2, ensure_ascii=False) + "\n"
        atomic_write_text(metadata_path(path), text)
    return path


def save_program(program: torch.export.ExportedProgram, model: nn.Module, path: str | os.PathLike,
                 format: str = "onnx", *, opset: int | None = None) -> int | None:
    """Write `program` (`export_program(model)`) to `path` as `format`, atomically, replacing what is
    there; returns the ONNX opset written (None for pt2). One program serves both formats."""
    from s2d.io.files import atomic_write

    if format == "pt2":
        def save(tmp: str) -> None:
            with open(tmp, "wb") as tmp_file:  # a file object: the temporary's name does not end in .pt2
                torch.export.save(program, tmp_file)

        atomic_write(path, save)
        return None
    onnx_program = _onnx_model(program, model, check_opset(opset))
    atomic_write(path, lambda tmp: onnx_program.save(tmp, external_data=False))
    return opset or _saved_opset(onnx_program)


def _saved_opset(onnx_program: Any) -> int | None:
    """The default-domain opset the ONNX model was written with."""
    for entry in onnx_program.model_proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None
