"""Tests for keeping results as they are made: the JSON document written after each section, an
interrupted run (Ctrl-C) keeping its completed sections, `--resume`, and the progress lines.
Timing values are machine-dependent and never asserted."""
from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path
from typing import Callable

import pytest

from s2d.bench import main, runner
from s2d.bench.context import Bench
from s2d.bench.report import validate_document, write_json

#: A cheap first section (seconds in tiny mode) and the one that gets interrupted.
FIRST, SECOND = "sampler", "flops"
ARGS = ["--tiny", "--threads", "1", "--only", f"{FIRST},{SECOND}"]


def _interrupting(name: str) -> Callable[[Bench], None]:
    """`section_runner` whose SECOND section is stopped by Ctrl-C after adding a row."""
    if name != SECOND:
        return REAL_RUNNER(name)

    def ctrl_c(bench: Bench) -> None:
        bench.add(f"{SECOND}/partial", SECOND, "g", "half-made", "params", 1, "params")
        raise KeyboardInterrupt

    return ctrl_c


REAL_RUNNER = runner.section_runner


def _fake_row(bench: Bench, section: str) -> None:
    """What a stand-in section measures: one count row (renders in every section's report)."""
    bench.add(f"{section}/fake", section, "g", "fake", "params", 1, "params", model="fake")


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny run whose second section is interrupted: the document it leaves, its stderr, its rc."""
    folder = tmp_path_factory.mktemp("interrupted")
    out = folder / "run.json"
    capture = folder / "stderr.txt"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "section_runner", _interrupting)
        with capture.open("w") as err, contextlib.redirect_stderr(err):
            rc = main([*ARGS, "--json", str(out)])
    return {"rc": rc, "path": out, "text": out.read_text(), "stderr": capture.read_text(), "folder": folder}


def test_interrupt_keeps_completed_sections(interrupted: dict) -> None:
    assert interrupted["rc"] == 130
    doc = json.loads(interrupted["text"])
    assert validate_document(doc) == []
    assert doc["meta"]["sections"] == [FIRST] and doc["meta"]["pending"] == [SECOND]
    assert doc["rows"] and {r["section"] for r in doc["rows"]} == {FIRST}
    assert sorted(p.name for p in interrupted["folder"].iterdir()) == ["run.json", "stderr.txt"]  # no temp left
    err = interrupted["stderr"]
    assert f"interrupted during [2/2] {SECOND}" in err and "holds the 1 completed section(s) (sampler)" in err
    # progress lines: start and end of each section, with index / total
    assert f"[1/2] {FIRST} ..." in err and re.search(rf"\[1/2\] {FIRST} done in [\d.]+ s", err)
    assert f"[2/2] {SECOND} ..." in err


def test_resume_skips_completed_sections(interrupted: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run.json"
    shutil.copy(interrupted["path"], out)
    called: list[str] = []

    def counting(name: str) -> Callable[[Bench], None]:
        called.append(name)
        return REAL_RUNNER(name)

    monkeypatch.setattr(runner, "section_runner", counting)
    assert main([*ARGS, "--json", str(out), "--resume"]) == 0
    assert called == [SECOND]
    before, after = json.loads(interrupted["text"]), json.loads(out.read_text())
    assert validate_document(after) == []
    assert after["meta"]["sections"] == [FIRST, SECOND] and after["meta"]["pending"] == []
    assert [r for r in after["rows"] if r["section"] == FIRST] == before["rows"]
    assert any(r["section"] == SECOND for r in after["rows"])
    assert not any(r["id"] == f"{SECOND}/partial" for r in after["rows"])
    assert [r["sections"] for r in after["meta"]["resumes"]] == [[SECOND]]
    assert after["meta"]["date"] == before["meta"]["date"]
    assert f"[1/2] {FIRST}: already in" in capsys.readouterr().err
    # once complete, a further --resume measures nothing
    called.clear()
    assert main([*ARGS, "--quiet", "--json", str(out), "--resume"]) == 0
    assert called == [] and json.loads(out.read_text())["rows"] == after["rows"]


def test_resume_without_only_continues_the_earlier_plan(interrupted: dict, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run.json"
    shutil.copy(interrupted["path"], out)
    called: list[str] = []

    def fake(name: str) -> Callable[[Bench], None]:
        called.append(name)
        return lambda bench: _fake_row(bench, name)

    monkeypatch.setattr(runner, "section_runner", fake)
    assert main(["--tiny", "--quiet", "--threads", "1", "--json", str(out), "--resume"]) == 0
    assert called == [SECOND]  # not the default sections: what the interrupted run was asked for


@pytest.mark.parametrize("change, args, mismatch", [
    (None, ["--threads", "2"], "threads 1 vs 2"),
    (("mode", "quick"), [], "mode 'quick' vs 'tiny'"),
    (("device", {"type": "cuda", "name": "GPU"}), [], "device 'cuda' vs 'cpu'"),
    (None, ["--compile-model"], "--compile-model False vs True"),
])
def test_resume_refuses_another_setup(interrupted: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      change: tuple | None, args: list[str], mismatch: str) -> None:
    out = tmp_path / "run.json"
    doc = json.loads(interrupted["text"])
    if change:
        doc["meta"][change[0]] = change[1]
    out.write_text(json.dumps(doc))
    before = out.read_text()
    monkeypatch.setattr(runner, "section_runner", lambda name: pytest.fail(f"measured {name}"))
    threads = [] if "--threads" in args else ["--threads", "1"]
    with pytest.raises(SystemExit, match=re.escape(mismatch)) as exit_:
        main(["--tiny", "--quiet", *threads, *args, "--only", f"{FIRST},{SECOND}", "--json", str(out), "--resume"])
    assert "\n" not in str(exit_.value) and str(exit_.value).startswith(f"--resume {out}: ")
    assert out.read_text() == before


def test_resume_needs_json() -> None:
    with pytest.raises(SystemExit, match="--resume needs --json"):
        main(["--tiny", "--quiet", "--threads", "1", "--only", FIRST, "--resume"])


def test_resume_of_a_missing_file_starts_afresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "section_runner", lambda name: lambda bench: _fake_row(bench, name))
    out = tmp_path / "new" / "run.json"
    assert main(["--tiny", "--quiet", "--threads", "1", "--only", "flops", "--json", str(out), "--resume"]) == 0
    assert json.loads(out.read_text())["meta"]["sections"] == ["flops"]


def test_document_written_after_each_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run.json"
    seen: list[list[str]] = []

    def fake(name: str) -> Callable[[Bench], None]:
        def run(bench: Bench) -> None:
            seen.append(json.loads(out.read_text())["meta"]["sections"] if out.exists() else [])
            _fake_row(bench, name)
        return run

    monkeypatch.setattr(runner, "section_runner", fake)
    assert main(["--tiny", "--quiet", "--threads", "1", "--only", "kernels,models,flops", "--json", str(out)]) == 0
    assert seen == [[], ["kernels"], ["kernels", "models"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_write_json_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "doc.json"
    write_json({"a": 1}, out)
    monkeypatch.setattr(json, "dumps", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        write_json({"a": 2}, out)
    monkeypatch.undo()
    assert json.loads(out.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]
