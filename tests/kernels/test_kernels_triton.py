"""Triton backend without a GPU: interpreter run (in a subprocess), AOT compilation, import hygiene.

- The interpreter tests live in `test_kernels_triton_interp.py`; `TRITON_INTERPRET=1` must be set
  before Triton is imported, so they run here in a fresh interpreter process.
- Every kernel is compiled ahead of time for sm_80 and sm_90 (`s2d_kernels.aot`): the first
  configuration of each kernel in the default run, every specialisation × configuration under `slow`.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from s2d_kernels.backend import resolve_backend

ROOT = Path(__file__).resolve().parents[2]
INTERP_FILE = "tests/kernels/test_kernels_triton_interp.py"
#: Static shared memory available per block (dynamic allocation limit) on each target.
SHARED_LIMIT = {80: 163 * 1024, 90: 227 * 1024}


def _run_interpreter_suite(marker: str) -> str:
    env = dict(os.environ, TRITON_INTERPRET="1")
    env.pop("S2D_BACKEND", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", INTERP_FILE, "-q", "-p", "no:cacheprovider",
                           "-m", marker], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"interpreted Triton tests failed:\n{out[-6000:]}"
    summary = out.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 0, f"nothing ran: {summary}"
    assert "skipped" not in summary and "failed" not in summary and "error" not in summary, summary
    return summary


def test_triton_kernels_match_reference_under_interpreter():
    """Forward and backward of every Triton kernel vs the torch reference (TRITON_INTERPRET=1)."""
    _run_interpreter_suite("not slow")


@pytest.mark.slow
def test_triton_kernels_match_reference_under_interpreter_long():
    _run_interpreter_suite("slow")


def test_importing_the_kernels_needs_no_triton():
    code = ("import sys, s2d_kernels, s2d_kernels.sampler, s2d_kernels.fusion;"
            "assert 'triton' not in sys.modules, 'triton imported eagerly'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_backend_resolution(monkeypatch):
    monkeypatch.delenv("S2D_BACKEND", raising=False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    cpu = torch.device("cpu")
    assert resolve_backend("auto", cpu) == "torch"
    assert resolve_backend("reference", cpu) == "reference"
    with pytest.raises(RuntimeError, match="CUDA"):
        resolve_backend("triton", cpu)
    monkeypatch.setenv("S2D_BACKEND", "triton")  # a preference: falls back where Triton cannot run
    assert resolve_backend("auto", cpu) == "torch"
    monkeypatch.setenv("S2D_BACKEND", "bogus")
    with pytest.raises(ValueError, match="S2D_BACKEND"):
        resolve_backend("auto", cpu)
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("cuda", cpu)
    monkeypatch.setenv("S2D_BACKEND", "auto")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert resolve_backend("triton", cpu) == "triton"
    assert resolve_backend("auto", cpu) == "torch"  # auto picks Triton for CUDA tensors only


def _compile(first_config: bool, main_variant_only: bool):
    from s2d_kernels.aot import CAPABILITIES, compile_all

    results = list(compile_all(first_config=first_config, main_variant_only=main_variant_only))
    kernels = {r.kernel for r in results}
    assert kernels == {"sampler_fwd", "sampler_bwd", "fusion_gemm"}
    for cap in CAPABILITIES:
        assert {r.kernel for r in results if r.capability == cap} == kernels
    for r in results:
        assert 0 <= r.shared <= SHARED_LIMIT[r.capability], r
    return results


def test_aot_compile_every_kernel_for_sm80_and_sm90():
    _compile(first_config=True, main_variant_only=True)


@pytest.mark.slow
def test_aot_compile_every_config_and_specialisation():
    from s2d_kernels.aot import specialisations

    results = _compile(first_config=False, main_variant_only=False)
    expected = sum(len(s.configs) for s in specialisations()) * 2
    assert len(results) == expected
