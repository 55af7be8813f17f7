"""Tests for the `sampler` and `parts` sections of `python -m s2d.bench` (tiny mode) and for the
help text's defaults. Timing values are machine-dependent and never asserted."""
from __future__ import annotations

import json
import re

import pytest
import torch

from s2d.bench import main
from s2d.bench.__main__ import parse_sections
from s2d.bench.context import DEFAULT_SECTIONS, MODEL_BATCHES, SECTIONS, Bench
from s2d.bench.models import batches_for
from s2d.bench.parts import PAIRS, PARTS
from s2d.bench.report import validate_document
from s2d.bench.sampler import CLOCKS, PATHS


@pytest.fixture(scope="module")
def extra_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny run of the two sections a full run leaves out."""
    out = tmp_path_factory.mktemp("extra")
    path, md = out / "extra.json", out / "extra.md"
    rc = main(["--tiny", "--quiet", "--threads", "1", "--only", "parts,sampler", "--json", str(path),
               "--markdown", str(md)])
    return {"rc": rc, "doc": json.loads(path.read_text()), "md": md.read_text()}


def test_sampler_section_rows(extra_run: dict) -> None:
    assert extra_run["rc"] == 0
    doc = extra_run["doc"]
    assert validate_document(doc) == [] and doc["meta"]["sections"] == ["sampler", "parts"]
    by_id = {r["id"]: r for r in doc["rows"] if r["section"] == "sampler"}
    for pass_ in ("fwd", "fwdbwd"):
        for dtype in ("uint8", "float32"):
            for clock in CLOCKS:
                for path in PATHS:
                    row = by_id[f"sampler/{pass_}/{dtype}/{path}/{clock}"]
                    assert row["metric"] == "latency" and row["unit"] == "ms" and row["n"] >= 1
                    assert row["min"] <= row["value"] and row["p20"] <= row["value"] <= row["p80"]
                    assert row["input"] == (dtype if path == "banded" else "float32")
                fast = by_id[f"sampler/{pass_}/{dtype}/banded/{clock}"]["min"]
                for path in ("per_video", "dense"):
                    speedup = by_id[f"sampler/{pass_}/{dtype}/banded/{clock}/speedup_vs_{path}"]
                    slow = by_id[f"sampler/{pass_}/{dtype}/{path}/{clock}"]["min"]
                    assert speedup["value"] == pytest.approx(slow / fast) and speedup["statistic"] == "min"
    assert "## Sampler paths" in extra_run["md"] and "### forward · CPU clock (all threads)" in extra_run["md"]


def test_parts_section_rows(extra_run: dict) -> None:
    doc = extra_run["doc"]
    by_id = {r["id"]: r for r in doc["rows"] if r["section"] == "parts"}
    assert not [s for s in doc["meta"]["skipped"] if s["section"] == "parts"]
    for s2dnet, baseline in PAIRS:
        total = by_id[f"parts/{s2dnet}/total/latency"]
        base = by_id[f"parts/{s2dnet}/baseline/latency"]
        assert base["model"] == baseline and by_id[f"parts/{s2dnet}/baseline_at_detail/latency"]["model"] == baseline
        for part in (*PARTS, "rest"):
            row = by_id[f"parts/{s2dnet}/{part}/latency"]
            assert row["value"] >= 0 and row["n"] == total["n"]
            assert row["share"] == pytest.approx(row["value"] / total["value"])
            assert row["over_baseline"] == pytest.approx(row["value"] / base["value"])
        assert by_id[f"parts/{s2dnet}/detail/latency"]["value"] > 0
        ratio = by_id[f"parts/{s2dnet}/ratio/total_over_baseline"]
        assert ratio["value"] == pytest.approx(total["value"] / base["value"]) and ratio["p20"] <= ratio["p80"]
        assert f"parts/{s2dnet}/ratio/baseline_at_detail_over_baseline" in by_id
        assert f"**{s2dnet} (optimised) vs {baseline}, batch 1: median ms" in extra_run["md"]
    assert "| Part | ms | share of the S2DNet | / baseline |" in extra_run["md"]


def test_help_states_the_batches_and_sections_the_code_uses(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    found = re.search(r"default: ([\d,]+) on CPU and GPU alike; ([\d,]+) with --quick; ([\d,]+) with --tiny", text)
    assert found, text
    for mode, quoted in zip(("full", "quick", "tiny"), found.groups()):
        for device in ("cpu", "cuda"):
            used = batches_for(Bench(device=torch.device(device), mode=mode))
            assert quoted == ",".join(map(str, used)) == ",".join(map(str, MODEL_BATCHES[mode])), (mode, device)
    assert f"A run without --only measures {', '.join(DEFAULT_SECTIONS)}" in text
    assert "sampler, parts and deploy run only when --only names them" in text


def test_only_all_and_defaults() -> None:
    assert parse_sections("all") == list(SECTIONS)
    assert parse_sections(None) == list(DEFAULT_SECTIONS)
    assert parse_sections("parts,sampler") == ["sampler", "parts"]
    assert set(SECTIONS) - set(DEFAULT_SECTIONS) == {"sampler", "parts", "deploy"}


def test_sampler_section_is_skipped_on_cuda_with_a_reason() -> None:
    from s2d.bench.sampler import run

    bench = Bench(device=torch.device("cuda"), mode="tiny", verbose=False)
    run(bench)  # returns before touching the device: no GPU needed
    assert bench.rows == [] and [s["id"] for s in bench.skipped] == ["sampler/*"]
    assert "CPU-only" in bench.skipped[0]["reason"]
