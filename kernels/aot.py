"""Ahead-of-time compilation of every Triton kernel for sm_80 and sm_90, without a GPU.

    python -m s2d_kernels.aot                 # every kernel × every config × sm_80, sm_90
    python -m s2d_kernels.aot --first-config  # one config per kernel (quick check)

Each kernel is compiled for the argument types it is launched with (one specialisation per input
dtype family), through `triton.compile(ASTSource(...), target=GPUTarget("cuda", cap, 32))`.
Compilation runs the whole pipeline down to a cubin (ptxas included), so it proves each
configuration fits the target (registers, shared memory) and reports its static shared memory.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any, Iterator

from s2d_kernels._triton import KernelConfig, aot_compile

CAPABILITIES = (80, 90)


@dataclass(frozen=True)
class Specialisation:
    """A kernel, the types of its runtime arguments and the values of its non-tuned constexprs."""

    kernel: str
    variant: str
    fn: Any
    signature: dict[str, str]
    constexprs: dict[str, Any]
    configs: tuple[KernelConfig, ...]


def _sampler_specs() -> list[Specialisation]:
    from s2d_kernels.sampler import triton_sampler as ts

    bands = {f"{k}_ptr": "*i32" for k in ("ts", "sy", "sx")} | {f"{k}_ptr": "*fp32" for k in ("tw", "wy", "wx")}
    common = {"T_d": "i32", "C": "i32", "S": "i32",
              **{f"sx{a}": "i32" for a in "btchw"}}
    specs = []
    for variant, xty, norm, KT in (("uint8, gaussian", "*u8", True, 13), ("float32, gaussian", "*fp32", False, 13),
                                   ("bfloat16, linear", "*bf16", False, 3), ("float16, gaussian", "*fp16", False, 13)):
        sig = {"x_ptr": xty, "out_ptr": "*fp32", **bands, "scale_ptr": "*fp32", "shift_ptr": "*fp32", **common,
               **{f"so{a}": "i32" for a in "bjcik"}}
        specs.append(Specialisation("sampler_fwd", variant, ts._sampler_fwd_kernel, sig,
                                    {"KT": KT, "KY": 13, "KX": 13, "NORMALIZE": norm}, tuple(ts.FWD.configs)))
    for variant, xty, norm, need_x in (("float32, frames grad", "*fp32", False, True),
                                       ("uint8", "*u8", True, False)):
        sig = {"x_ptr": xty, "g_ptr": "*fp32", "nf_ptr": "*i32", **bands, "scale_ptr": "*fp32", "shift_ptr": "*fp32",
               "gtw_ptr": "*fp32", "gwy_ptr": "*fp32", "gwx_ptr": "*fp32", "gx_ptr": "*fp32", **common,
               **{f"sg{a}": "i32" for a in "bjcik"}}
        specs.append(Specialisation("sampler_bwd", variant, ts._sampler_bwd_kernel, sig,
                                    {"KT": 13, "KY": 13, "KX": 13, "NORMALIZE": norm, "NEED_X": need_x,
                                     "KT_P2": 16}, tuple(ts.BWD.configs)))
    return specs


def _fusion_specs() -> list[Specialisation]:
    from s2d_kernels.fusion import triton_fusion as tf

    specs = []
    for variant, ty, ieee in (("float32 (IEEE)", "*fp32", True), ("bfloat16", "*bf16", False),
                              ("float16", "*fp16", False)):
        sig = {"x_ptr": ty, "w_ptr": ty, "bias_ptr": "*fp32", "y_ptr": ty, "C_out": "i32", "C_in": "i32",
               "P": "i32", "frames_per_bias": "i32",
               **{k: "i32" for k in ("sxg", "sxc", "sxp", "swo", "swc", "sbg", "syg", "syc", "syp")}}
        specs.append(Specialisation("fusion_gemm", variant, tf._fusion_kernel, sig, {"IEEE": ieee},
                                    tuple(tf.FUSION.configs)))
    return specs


def specialisations() -> list[Specialisation]:
    """Every kernel specialisation the Triton backend launches."""
    return _sampler_specs() + _fusion_specs()


@dataclass
class CompileResult:
    kernel: str
    variant: str
    config: str
    capability: int
    shared: int
    seconds: float


def compile_all(first_config: bool = False, capabilities: tuple[int, ...] = CAPABILITIES,
                main_variant_only: bool = False) -> Iterator[CompileResult]:
    """Compile the specialisations (all configs, or the first) for each capability."""
    seen: set[str] = set()
    for spec in specialisations():
        if main_variant_only and spec.kernel in seen:
            continue
        seen.add(spec.kernel)
        for cfg in spec.configs[:1] if first_config else spec.configs:
            for cap in capabilities:
                t0 = time.perf_counter()
                compiled = aot_compile(spec.fn, spec.signature, spec.constexprs, cap, cfg)
                yield CompileResult(spec.kernel, spec.variant, cfg.name(), cap, int(compiled.metadata.shared),
                                    time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="AOT-compile the Triton kernels for sm_80 and sm_90")
    ap.add_argument("--first-config", action="store_true", help="only the first config of each kernel")
    ap.add_argument("--main-variant-only", action="store_true", help="one dtype specialisation per kernel")
    a = ap.parse_args(argv)
    print(f"{'kernel':12s} {'variant':22s} {'config':34s} {'sm':>3s} {'shared B':>9s} {'s':>5s}")
    for r in compile_all(a.first_config, main_variant_only=a.main_variant_only):
        print(f"{r.kernel:12s} {r.variant:22s} {r.config:34s} {r.capability:3d} {r.shared:9d} {r.seconds:5.1f}",
              flush=True)


if __name__ == "__main__":
    main()
