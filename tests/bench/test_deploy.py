"""Tests for the `deploy` section of `python -m s2d.bench` (tiny mode): its rows and their arithmetic,
the stated reasons of paths that cannot run, the allocator probe in a child process, the markdown
tables. Timing values are machine-dependent and never asserted. The ONNX export of even the tiny
models takes tens of seconds, so the default run makes onnxruntime and PT2E unavailable (the skip
reasons under test); the slow test runs every path."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from s2d.bench import deploy, deploy_paths, main
from s2d.bench.context import DEFAULT_SECTIONS, SECTIONS, Bench
from s2d.bench.deploy_alloc import probe_in_child
from s2d.bench.report import validate_document

NO_PT2E = (("s2d_no_such_quantize_pt2e", "s2d_no_such_quantizer"),)


def _run(tmp_path, *, without_onnxruntime: bool, extra: tuple[str, ...] = ()) -> dict:
    path, md = tmp_path / "deploy.json", tmp_path / "deploy.md"
    with pytest.MonkeyPatch.context() as mp:
        if without_onnxruntime:
            mp.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
            mp.setattr(deploy_paths, "PT2E_MODULES", NO_PT2E)
            # the child process costs seconds per model: one in-process probe stands in for it here
            mp.setattr("s2d.bench.deploy_alloc.probe_in_child", fake_child)
        rc = main(["--tiny", "--quiet", "--threads", "1", "--only", "deploy", "--json", str(path), "--markdown",
                   str(md), *extra])
    return {"rc": rc, "doc": json.loads(path.read_text()), "md": md.read_text()}


def fake_child(model_name: str, batch: int, *, tiny: bool, warmup: int, reps: int, keep: bool) -> dict:
    from s2d.bench.deploy_alloc import probe

    return {**probe(model_name, batch, tiny=tiny, warmup=warmup, reps=reps), "kept": keep}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny run of the section without onnxruntime and PT2E."""
    return _run(tmp_path_factory.mktemp("deploy"), without_onnxruntime=True)


def test_deploy_is_registered_but_not_default() -> None:
    assert "deploy" in SECTIONS and "deploy" not in DEFAULT_SECTIONS


def test_latency_rows_and_ratio_arithmetic(tiny_run: dict) -> None:
    assert tiny_run["rc"] == 0
    doc = tiny_run["doc"]
    assert validate_document(doc) == [] and doc["meta"]["sections"] == ["deploy"]
    assert not [s for s in doc["meta"]["skipped"] if s["id"] == "deploy/*"]
    by_id = {r["id"]: r for r in doc["rows"]}
    s2dnet, baseline = deploy.PAIRS["tiny"]
    for batch in deploy.BATCHES["tiny"]:
        lat = {}
        for model in (s2dnet, baseline):
            for path in ("eager", "optimized"):
                row = by_id[f"deploy/{model}/b{batch}/{path}/per_video_latency"]
                assert (row["metric"], row["unit"], row["better"]) == ("latency", "ms", "lower")
                assert row["model"] == model and row["batch"] == batch and row["path"] == path and row["n"] >= 1
                assert row["p20"] <= row["value"] <= row["p80"]
                assert 0 <= row["rel_err"] < 1e-4  # eager is the reference; folding keeps the logits
                lat[(model, path)] = row["value"]
            speedup = by_id[f"deploy/speedup/{model}/b{batch}/eager"]
            assert speedup["value"] == pytest.approx(lat[(model, "optimized")] / lat[(model, "eager")], rel=1e-9)
            assert f"deploy/speedup/{model}/b{batch}/optimized" not in by_id  # the baseline of the speedups
        for path in ("eager", "optimized"):
            ratio = by_id[f"deploy/ratio/{s2dnet}_over_{baseline}/b{batch}/{path}"]
            assert ratio["value"] == pytest.approx(lat[(s2dnet, path)] / lat[(baseline, path)], rel=1e-9)
            assert ratio["p20"] <= ratio["p80"]
    assert not any(r["id"].endswith("/compiled/per_video_latency") for r in doc["rows"])  # opt-in only


def test_unavailable_paths_are_skipped_with_their_reason(tiny_run: dict) -> None:
    skipped = {s["id"]: s["reason"] for s in tiny_run["doc"]["meta"]["skipped"]}
    for model in deploy.PAIRS["tiny"]:
        assert "onnxruntime is not installed" in skipped[f"deploy/{model}/*/onnxruntime/*"]
        assert "no PT2E quantisation" in skipped[f"deploy/{model}/*/int8/*"]
    assert "onnxruntime is not installed" in skipped["deploy/accuracy/onnxruntime/*"]
    if not deploy_paths.native_bf16()[0]:
        assert "no native bf16" in skipped["deploy/*/*/bf16/*"]
    assert not any("/onnxruntime/" in r["id"] or "/int8/" in r["id"] for r in tiny_run["doc"]["rows"])


def test_accuracy_rows(tiny_run: dict) -> None:
    by_id = {r["id"]: r for r in tiny_run["doc"]["rows"]}
    fp32 = by_id["deploy/accuracy/eager/top1"]
    assert fp32["clips"] == deploy.ACCURACY_CLIPS["tiny"] and fp32["delta_vs_fp32"] == 0 and fp32["rel_err"] == 0
    bf16 = by_id["deploy/accuracy/bf16/top1"]  # bf16 numerics are measured on any CPU
    assert bf16["delta_vs_fp32"] == pytest.approx(bf16["value"] - fp32["value"])
    assert 0 <= bf16["agreement_pct"] <= 100 and 0 < bf16["rel_err"] < 0.1


def test_allocator_rows(tiny_run: dict) -> None:
    by_id = {r["id"]: r for r in tiny_run["doc"]["rows"]}
    batch = max(deploy.BATCHES["tiny"])
    for model in deploy.PAIRS["tiny"]:
        kept = by_id[f"deploy/allocator/{model}/b{batch}/kept/per_video_latency"]
        default = by_id[f"deploy/allocator/{model}/b{batch}/default/per_video_latency"]
        assert kept["minor_faults_per_call"] >= 0 and default["sys_s_per_call"] >= 0
        ratio = by_id[f"deploy/allocator/{model}/b{batch}/default_over_kept"]
        assert ratio["value"] == pytest.approx(default["value"] / kept["value"])


def test_markdown_tables(tiny_run: dict) -> None:
    md = tiny_run["md"]
    assert "## Deployment paths (CPU)" in md and "| Model | Path | b1 ms/video (p20–p80) |" in md
    assert "per-video latency ratio, per path" in md and "top-1 per precision / path" in md
    assert "glibc default vs freed memory kept" in md and "`deploy/x3d-m/*/onnxruntime/*`" in md


def test_paths_and_bf16_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = Bench(device=torch.device("cpu"), mode="tiny", verbose=False)
    assert "compiled" not in deploy.paths_for(bench)
    bench.compile_model = True
    assert deploy.paths_for(bench)[-1] == "compiled"
    monkeypatch.setattr(deploy_paths, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert deploy_paths.native_bf16()[0]
    with pytest.raises(ValueError, match="unknown inference path"):
        deploy_paths.build_path("fp8", None, None, folder="", threads=1, calibration=[])


def test_relative_error() -> None:
    ref = torch.tensor([[2.0, -4.0]])
    assert deploy_paths.relative_error(ref, ref) == 0
    assert deploy_paths.relative_error(torch.tensor([[2.0, -3.0]]), ref) == pytest.approx(0.25)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_allocator_probe_in_child_process() -> None:
    result = probe_in_child("x3d-m", 1, tiny=True, warmup=1, reps=1, keep=False)
    assert result["kept"] is False and result["threads"] == torch.get_num_threads()
    assert result["ms_per_video"] > 0 and result["minor_faults_per_call"] >= 0



def test_section_is_skipped_on_cuda_with_a_reason() -> None:
    bench = Bench(device=torch.device("cuda"), mode="tiny", verbose=False)
    deploy.run(bench)  # returns before touching the device: no GPU needed
    assert bench.rows == [] and [s["id"] for s in bench.skipped] == ["deploy/*"]


@pytest.mark.slow
def test_every_path_in_tiny_mode(tmp_path) -> None:
    """ONNX Runtime matches eager within the export tolerance; int8 either runs or states why not."""
    pytest.importorskip("onnxruntime")
    doc = _run(tmp_path, without_onnxruntime=False)["doc"]
    rows = {r["id"]: r for r in doc["rows"]}
    for model in deploy.PAIRS["tiny"]:
        for batch in deploy.BATCHES["tiny"]:
            assert rows[f"deploy/{model}/b{batch}/onnxruntime/per_video_latency"]["rel_err"] < 1e-4
        skipped = {s["id"]: s["reason"] for s in doc["meta"]["skipped"]}
        assert f"deploy/{model}/b1/int8/per_video_latency" in rows or skipped[f"deploy/{model}/*/int8/*"]
    assert rows["deploy/accuracy/onnxruntime/top1"]["agreement_pct"] == 100
