"""The CPU inference paths the `deploy` section compares, each built from one eval model into a
callable of the exported signature (`s2d.inference.export`): uint8 frames `[B, T, H, W, 3]` and
`num_frames` int64 `[B]` in, logits out.

Paths: `eager` (the model as `model.eval()` leaves it), `optimized` (`optimize_for_inference`:
BatchNorm folded, channels-last), `onnxruntime` (the exported ONNX graph in an
`onnxruntime.InferenceSession`), `bf16` (the optimised model under CPU bf16 autocast), `int8` (PT2E
post-training quantisation with the x86 Inductor quantizer, calibrated on the bench's own clips) and
`compiled` (`optimize_for_inference(compile=True)`). A path that cannot run here raises
`PathUnavailable` with the reason the report states.
"""
from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from s2d.bench.context import short_reason

#: Paths in report order; `optimized` is the baseline of the speedups.
PATHS = ("eager", "optimized", "onnxruntime", "bf16", "int8", "compiled")
BASELINE = "optimized"

PATH_LABELS = {"eager": "eager fp32 (model.eval())", "optimized": "optimize_for_inference() fp32",
               "onnxruntime": "ONNX Runtime fp32 (CPUExecutionProvider)", "bf16": "bf16 autocast, optimised",
               "int8": "int8 PT2E (x86 Inductor quantizer)", "compiled": "optimize_for_inference(compile=True)"}

#: Where PT2E quantisation lives: in torch itself up to 2.9, in torchao since.
PT2E_MODULES = (("torch.ao.quantization.quantize_pt2e", "torch.ao.quantization.quantizer.x86_inductor_quantizer"),
                ("torchao.quantization.pt2e.quantize_pt2e",
                 "torchao.quantization.pt2e.quantizer.x86_inductor_quantizer"))

Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class PathUnavailable(RuntimeError):
    """An inference path cannot run on this machine or with this software; the message says why."""


@dataclass
class BuiltPath:
    """A ready path: `forward(frames, num_frames) -> logits` and the context to call it in."""

    forward: Forward
    context: Callable[[], contextlib.AbstractContextManager]
    detail: str = ""


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out - ref| / max |ref| of two logit tensors (the tolerance `s2d.inference.export` tests hold)."""
    ref = ref.detach().float()
    return float((out.detach().float() - ref).abs().max() / ref.abs().max().clamp_min(1e-12))


def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16() -> tuple[bool, str]:
    """(whether this CPU computes bf16 natively, what was found): avx512_bf16 or AMX in its flags,
    or oneDNN saying it supports bf16."""
    flags = cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_tile"}
    onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    found = (f"cpu flags {', '.join(sorted(flags)) or 'without avx512_bf16/amx_bf16'}; torch cpu capability "
             f"{torch.backends.cpu.get_cpu_capability()}; oneDNN bf16 {'supported' if onednn else 'unsupported'}")
    return bool(flags) or onednn, found


def _inference() -> contextlib.AbstractContextManager:
    return torch.inference_mode()


@contextlib.contextmanager
def _bf16() -> Iterator[None]:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        yield


def logits_of(model: nn.Module) -> Forward:
    """`model`'s logits for inputs of the exported signature."""
    from s2d.models.clip import channels_first

    return lambda frames, num_frames: model(channels_first(frames), num_frames).logits


def onnx_session(model: nn.Module, path: str, threads: int) -> BuiltPath:
    """`model` exported to ONNX at `path` (a temporary file) and loaded in ONNX Runtime (CPU, `threads`
    intra-op threads)."""
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError as err:
        raise PathUnavailable(f"onnxruntime is not installed (pip install \"s2d[export]\"): {err}") from None
    from s2d.inference.export import export_model

    export_model(model, path, "onnx", metadata=False, overwrite=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ONNX Runtime's pool threads spin after each run by default: interleaved with the torch paths, they
    # would hold the cores that the next path's threads need
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(frames: torch.Tensor, num_frames: torch.Tensor) -> torch.Tensor:
        out = session.run(["logits"], {"frames": frames.numpy(), "num_frames": num_frames.numpy()})[0]
        return torch.from_numpy(out)

    return BuiltPath(forward, contextlib.nullcontext, f"onnxruntime {ort.__version__}, {threads} threads")


def pt2e_api() -> tuple[Callable, Callable, Callable[[str | None], object], str]:
    """(prepare_pt2e, convert_pt2e, make an X86InductorQuantizer with its default config for the module
    named, or the whole graph for None, where they came from); `PathUnavailable` naming every place looked
    at when none imports."""
    tried = []
    for flow, quantizer in PT2E_MODULES:
        try:
            f, q = importlib.import_module(flow), importlib.import_module(quantizer)
        except ImportError as err:
            tried.append(f"{flow}: {short_reason(err)}")
            continue

        def make(module: str | None, q=q) -> object:
            config = q.get_default_x86_inductor_quantization_config()
            quantizer = q.X86InductorQuantizer()
            return quantizer.set_global(config) if module is None else quantizer.set_module_name_qconfig(module, config)

        return f.prepare_pt2e, f.convert_pt2e, make, flow.split(".")[0]
    raise PathUnavailable("no PT2E quantisation in this environment (" + "; ".join(tried) + ")")


def int8_pt2e(model: nn.Module, calibration: list[tuple[torch.Tensor, torch.Tensor]]) -> BuiltPath:
    """`model` quantised to int8 by PT2E (x86 Inductor quantizer, static per-tensor activations,
    per-channel weights), calibrated on `calibration`. The converted graph holds quantize /
    dequantize pairs around fp32 ops: int8 kernels replace them only under Inductor, so without
    `compiled` the timing is that of the simulated graph (stated in the row).

    Of an S2DNet only the detail net is quantised (where its multiply-adds are): the synopsis, locator
    and sampler stay fp32 (the observers cannot take the boolean masks of their valid-frame handling)."""
    prepare, convert, make_quantizer, where = pt2e_api()
    from s2d.inference.export import export_program

    scope = "model.detail" if model.config.kind == "s2dnet" else None
    try:
        graph = export_program(model).module()
        prepared = prepare(graph, make_quantizer(scope))
        with torch.no_grad():
            for frames, num_frames in calibration:
                prepared(frames, num_frames)
        quantized = convert(prepared)
    except Exception as err:
        raise PathUnavailable(f"PT2E int8 ({where}) failed: {short_reason(err)}") from err
    what = "detail net int8, synopsis / locator / sampler fp32" if scope else "whole model int8"
    return BuiltPath(lambda frames, num_frames: quantized(frames, num_frames)[0], _inference,
                     f"{where} PT2E, {what}; reference graph (q/dq around fp32 ops, not int8 kernels)")


def build_path(path: str, model: nn.Module, optimized: nn.Module, *, folder: str, threads: int,
               calibration: list[tuple[torch.Tensor, torch.Tensor]]) -> BuiltPath:
    """Path `path` of `model` (`optimized` is its `optimize_for_inference` copy, shared by the paths
    built on it); raises `PathUnavailable` with the reason when it cannot run here."""
    if path == "eager":
        return BuiltPath(logits_of(model), _inference)
    if path == "optimized":
        return BuiltPath(logits_of(optimized), _inference)
    if path == "onnxruntime":
        return onnx_session(model, os.path.join(folder, f"model-{id(model)}.tmp.onnx"), threads)
    if path == "bf16":
        return BuiltPath(logits_of(optimized), _bf16)
    if path == "int8":
        return int8_pt2e(model, calibration)
    if path == "compiled":
        from s2d.inference.optimize import optimize_for_inference

        return BuiltPath(logits_of(optimize_for_inference(model, compile=True)), _inference, "Inductor, whole model")
    raise ValueError(f"unknown inference path {path!r}; choose from {', '.join(PATHS)}")
