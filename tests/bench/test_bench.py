"""Tests for `python -m s2d.bench`: the tiny end-to-end run, the JSON schema, `--base` and
`--only`. Timing values are machine-dependent and never asserted."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from s2d.bench import main
from s2d.bench.context import DEFAULT_SECTIONS, SECTIONS
from s2d.bench.markdown import fmt, render_markdown
from s2d.bench.report import SCHEMA, apply_base, validate_document
from s2d.bench.timing import TimerSettings, quantile, time_phases

ROW_KEYS = {"id", "section", "group", "name", "metric", "value", "unit", "better"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny run without --only (the default sections), shared by the tests below."""
    out = tmp_path_factory.mktemp("bench")
    json_path, md_path = out / "tiny.json", out / "tiny.md"
    rc = main(["--tiny", "--quiet", "--threads", "1", "--json", str(json_path), "--markdown", str(md_path)])
    return {"rc": rc, "json": json_path, "md": md_path, "doc": json.loads(json_path.read_text())}


def test_tiny_run_end_to_end(tiny_run: dict, capsys: pytest.CaptureFixture) -> None:
    assert tiny_run["rc"] == 0
    doc = tiny_run["doc"]
    assert validate_document(doc) == []
    assert doc["schema"] == SCHEMA
    meta = doc["meta"]
    assert meta["mode"] == "tiny" and meta["threads"] == 1 and meta["device"]["type"] == "cpu"
    assert meta["versions"]["torch"] == torch.__version__ and meta["versions"]["s2d"]
    assert {"date", "git", "skipped", "notes", "sections", "elapsed_s"} <= set(meta)
    assert meta["sections"] == list(DEFAULT_SECTIONS) and meta["pending"] == []
    rows = doc["rows"]
    for row in rows:
        assert ROW_KEYS <= set(row), row
        assert row["section"] in SECTIONS
        assert row["id"].startswith(row["section"] + "/")
    ids = {r["id"] for r in rows}
    assert len(ids) == len(rows)
    # Every section produced rows (decode may only be skipped with a stated reason).
    for section in DEFAULT_SECTIONS:
        produced = any(r["section"] == section for r in rows)
        skipped = any(s["section"] == section for s in meta["skipped"])
        assert produced or (section == "decode" and skipped), section
    # The comparisons the report promises are present.
    assert "kernels/sampler/fwd/uint8/torch/speedup_vs_per_video" in ids
    assert "kernels/sampler/fwdbwd/float32/reference" in ids
    assert "kernels/fusion/layer3/fwd/float32/torch/speedup_vs_reference" in ids
    assert "models/ratio/s2dnet-tsm-sthv2_over_tsm-r50/b1/fp32" in ids
    assert "models/s2dnet-tsm-sthv2-linear/b1/fp32/per_video_latency" in ids
    assert "flops/s2dnet-tsm-sthv2/sampler/gmacs" in ids
    timed = [r for r in rows if r["metric"] == "latency"]
    assert timed and all(r["p20"] <= r["value"] <= r["p80"] and r["n"] >= 1 for r in timed)
    md = tiny_run["md"].read_text()
    assert md.startswith("# s2d benchmark")
    for title in ("## Kernels", "## Models", "## FLOPs and parameters"):
        assert title in md
    assert "| Benchmark | Value | Unit |" in md


def test_only_filters_sections_and_prints_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "kernels.json"
    assert main(["--tiny", "--quiet", "--threads", "1", "--only", "kernels", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "## Kernels" in out and "| Pass | Input | per_video (ms) |" in out
    assert "## Models" not in out and "## FLOPs" not in out
    doc = json.loads(path.read_text())
    assert doc["meta"]["sections"] == ["kernels"]
    assert doc["rows"] and {r["section"] for r in doc["rows"]} == {"kernels"}


def test_only_rejects_unknown_section() -> None:
    with pytest.raises(SystemExit):
        main(["--tiny", "--quiet", "--threads", "1", "--only", "kernels,nonsense"])


def test_base_adds_speedup_column(tiny_run: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # An earlier run whose latencies were twice as long and throughputs half as high.
    old = json.loads(tiny_run["json"].read_text())
    for row in old["rows"]:
        if row["better"] == "lower":
            row["value"] *= 2
        elif row["better"] == "higher":
            row["value"] /= 2
    old["rows"].append({"id": "kernels/retired/row", "section": "kernels", "group": "g", "name": "gone",
                        "metric": "latency", "value": 1.0, "unit": "ms", "better": "lower"})
    base = tmp_path / "old.json"
    base.write_text(json.dumps(old))
    out = tmp_path / "new.json"
    assert main(["--tiny", "--quiet", "--threads", "1", "--only", "kernels", "--base", str(base),
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| Base | vs base |" in text
    doc = json.loads(out.read_text())
    assert doc["meta"]["base"]["path"] == str(base) and doc["meta"]["base"]["matched_rows"] > 0
    compared = [r for r in doc["rows"] if "vs_base" in r]
    assert compared and all("base" in r and r["vs_base"] > 0 for r in compared)
    assert validate_document(doc) == []


def test_base_rejects_other_documents(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": 99, "rows": []}))
    with pytest.raises(ValueError, match="schema"):
        main(["--tiny", "--quiet", "--threads", "1", "--only", "flops", "--base", str(bad)])


def test_update_replaces_one_section(tiny_run: dict, tmp_path: Path) -> None:
    doc_path = tmp_path / "doc.json"
    doc_path.write_text(tiny_run["json"].read_text())
    before = json.loads(doc_path.read_text())
    assert main(["--tiny", "--quiet", "--threads", "1", "--only", "kernels", "--update", str(doc_path)]) == 0
    after = json.loads(doc_path.read_text())
    assert validate_document(after) == []
    assert [r["sections"] for r in after["meta"]["reruns"]] == [["kernels"]]
    assert after["meta"]["sections"] == before["meta"]["sections"]
    unchanged = [r for r in before["rows"] if r["section"] != "kernels"]
    assert [r for r in after["rows"] if r["section"] != "kernels"] == unchanged
    assert [r["id"] for r in after["rows"]] == [r["id"] for r in before["rows"]]
    with pytest.raises(SystemExit, match="threads"):  # a different setup cannot update the document
        main(["--tiny", "--quiet", "--threads", "2", "--only", "kernels", "--update", str(doc_path)])


def test_render_reprints_a_document(tiny_run: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    md = tmp_path / "again.md"
    assert main(["--render", str(tiny_run["json"]), "--markdown", str(md)]) == 0
    assert capsys.readouterr().out == md.read_text() == tiny_run["md"].read_text()


def test_apply_base_directions() -> None:
    rows = [{"id": "a", "value": 2.0, "better": "lower"}, {"id": "b", "value": 30.0, "better": "higher"},
            {"id": "c", "value": 7, "better": None}, {"id": "new", "value": 1.0, "better": "lower"}]
    base = {"rows": [{"id": "a", "value": 4.0}, {"id": "b", "value": 10.0}, {"id": "c", "value": 7}],
            "meta": {"date": "d"}}
    summary = apply_base(rows, base, "old.json")
    assert rows[0]["vs_base"] == pytest.approx(2.0) and rows[1]["vs_base"] == pytest.approx(3.0)
    assert rows[2]["base"] == 7 and "vs_base" not in rows[2] and "base" not in rows[3]
    assert summary["matched_rows"] == 3 and summary["unmatched_rows"] == 1


def test_quantile_and_timer() -> None:
    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)
    assert quantile([0.0, 10.0], 0.2) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        quantile([], 0.5)
    calls = []
    settings = TimerSettings(warmup=2, min_reps=3, max_reps=4, budget_s=0.0)
    fwd, bwd, total = time_phases([lambda: calls.append("f"), lambda: calls.append("b")], "cpu", settings)
    assert fwd.n == bwd.n == total.n == 3
    assert len(calls) == 2 * (1 + 1 + 3)  # first call, one more warm-up, three timed
    assert total.median_s >= 0 and fwd.first_call_s is not None


def test_markdown_formatting() -> None:
    assert fmt(29842180, "params") == "29,842,180"
    assert fmt(25.4412) == "25.44" and fmt(None) == ""
    doc = {"schema": SCHEMA, "meta": {"device": {"type": "cpu", "name": "cpu"}, "versions": {}, "threads": 1,
                                      "date": "now", "mode": "tiny", "sections": ["models"], "skipped": [
                                          {"id": "models/*", "section": "models", "reason": "why"}]},
           "rows": []}
    text = render_markdown(doc)
    assert "## Models" in text and "`models/*`: why" in text


def _doc(n: int, load: float, probe: float, p20: float, p80: float) -> dict:
    row = {"id": "models/x/b1/uint8/per_video_latency", "section": "models", "group": "g", "name": "x: per video",
           "metric": "latency", "value": 10.0, "unit": "ms", "better": "lower", "p20": p20, "p80": p80, "n": n}
    meta = {"device": {"type": "cpu", "name": "cpu", "cores": 2}, "versions": {}, "threads": 2, "date": "now",
            "mode": "quick", "sections": ["models"], "loadavg_start": [load, load, load],
            "parallel_probe_ms": {"start": probe, "end": probe}}
    return {"schema": SCHEMA, "meta": meta, "rows": [row]}


def test_reliability_warnings_name_each_cause() -> None:
    from s2d.bench.markdown import reliability_warnings

    assert reliability_warnings(_doc(n=10, load=0.1, probe=0.05, p20=9.5, p80=10.5)) == []
    few, busy, probe, wide = (reliability_warnings(d) for d in (
        _doc(n=2, load=0.1, probe=0.05, p20=9.5, p80=10.5), _doc(n=10, load=1.8, probe=0.05, p20=9.5, p80=10.5),
        _doc(n=10, load=0.1, probe=4.0, p20=9.5, p80=10.5), _doc(n=10, load=0.1, probe=0.05, p20=5.0, p80=20.0)))
    assert len(few) == 1 and "as few as 2 timed runs" in few[0]
    assert len(busy) == 1 and "load average 1.8 on 2 cores" in busy[0]
    assert len(probe) == 1 and "probe took 4.000 ms" in probe[0]
    assert len(wide) == 1 and "1 of 1 timed rows spread" in wide[0]
    assert "**Unreliable figures**: medians of as few as 2" in render_markdown(_doc(2, 0.1, 0.05, 9.5, 10.5))


def test_ratios_and_kernel_summary_show_spread(tiny_run: dict) -> None:
    rows = tiny_run["doc"]["rows"]
    ratios = [r for r in rows if r["metric"] == "ratio"]
    assert ratios and all(r["p20"] <= r["p80"] and r["n"] >= 1 for r in ratios)
    assert "median latency (p20–p80)" in tiny_run["md"].read_text()
