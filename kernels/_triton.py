"""Shared Triton plumbing: config choice at launch, and ahead-of-time compilation for a GPU target.

Only the kernel modules (`sampler/triton_sampler.py`, `fusion/triton_fusion.py`) import this, and
only when the Triton backend is used, so importing s2d_kernels never imports Triton.

Each kernel is a plain `@triton.jit` function with a list of candidate configurations. On a GPU the
launcher autotunes over them (lazily, keyed on the problem sizes); in the CPU interpreter
(`TRITON_INTERPRET=1`) it runs the first, smallest one, because timing interpreted kernels means
nothing. The same lists feed `aot_compile`, so every configuration that can run is also compiled
for sm_80 and sm_90 by the tests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import triton

from s2d_kernels.backend import triton_interpreted


@dataclass(frozen=True)
class KernelConfig:
    """One candidate launch configuration: constexpr meta-parameters plus warps and stages."""

    meta: dict[str, int]
    num_warps: int = 4
    num_stages: int = 2

    def name(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.meta.items()) + f",w{self.num_warps},s{self.num_stages}"


@dataclass
class TunedKernel:
    """A jitted kernel, its configurations, and the autotuner built for it on first GPU launch."""

    fn: Any
    configs: Sequence[KernelConfig]
    key: Sequence[str]
    reset_to_zero: Sequence[str] = ()
    _tuned: Any = field(default=None, init=False, repr=False)

    def __getitem__(self, grid: Callable[[dict], tuple]) -> Callable[..., None]:
        """`kernel[grid](**kwargs)`, as for a Triton kernel; `grid` receives the chosen meta."""
        def launch(**kwargs):
            if triton_interpreted():
                cfg = self.configs[0]
                meta = dict(kwargs, **cfg.meta)
                self.fn[grid(meta)](**kwargs, **cfg.meta, num_warps=cfg.num_warps, num_stages=cfg.num_stages)
                return
            if self._tuned is None:
                self._tuned = triton.autotune(
                    configs=[triton.Config(dict(c.meta), num_warps=c.num_warps, num_stages=c.num_stages)
                             for c in self.configs],
                    key=list(self.key), reset_to_zero=list(self.reset_to_zero) or None)(self.fn)
            self._tuned[grid](**kwargs)
        return launch


def aot_compile(fn: Any, signature: dict[str, str], constexprs: dict[str, Any], capability: int,
                config: KernelConfig):
    """Compile `fn` for CUDA compute capability `capability` (e.g. 80, 90) without a GPU.

    `signature` maps every runtime argument to its Triton type ("*fp32", "i32", ...);
    `constexprs` gives every constexpr argument other than the config's meta-parameters.
    Returns the compiled kernel; `compiled.metadata.shared` is its static shared memory in bytes.
    """
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    consts = dict(constexprs, **config.meta)
    sig = dict(signature, **{k: "constexpr" for k in consts})
    src = ASTSource(fn=fn, signature=sig, constexprs=consts)
    return triton.compile(src, target=GPUTarget("cuda", capability, 32),
                          options={"num_warps": config.num_warps, "num_stages": config.num_stages})
