"""`predict --output` against hostile results files and interruptions: a file that is not this run's
results is refused untouched, no write goes through a planted link, Ctrl-C at any step of an append
records each video exactly once, two runs never share a file, and any file name round-trips."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
from pathlib import Path

import pytest
import torch

import s2d
import s2d.cli.predict as cli_predict
from s2d.cli import main
from s2d.inference.results import ResultsFile, model_identity
from s2d.io.files import OutputLock

TINY = dict(num_classes=4, labels=None, topk=2, dense_frames=8, dense_size=48,
            synopsis={"arch": "x3d_tiny", "frames": 4, "size": 32}, detail={"arch": "x3d_tiny"},
            sampler={"frames": 4, "size": 24})
NAME = "s2dnet-x3d-k400"


def tiny_model(**changes) -> torch.nn.Module:
    torch.manual_seed(0)
    return s2d.create(NAME, **{**TINY, **changes}).eval()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def clips(tmp_path_factory, videos) -> list[str]:
    """Four tiny videos."""
    root = tmp_path_factory.mktemp("clips")
    return [str(videos.write_video(root / f"c{i}.mp4", num_frames=6 + i, width=48, height=40)) for i in range(4)]


@pytest.fixture
def patched(monkeypatch, model):
    """The CLI loads the tiny model (untrained) whatever --model names."""
    def load(name, device, untrained):
        model.pretrained = False
        return model

    monkeypatch.setattr(cli_predict, "load_model", load)
    return model


def argv(inputs, out, *extra) -> list[str]:
    return ["predict", *map(str, inputs), "--model", NAME, "--untrained", "--output", str(out), "--workers", "0",
            "--topk", "2", *extra]


def ident(model) -> str:
    return model_identity(model, NAME)


def record(path: str, model_id: str, error: str | None = None, topk: int = 2) -> dict:
    labels = [] if error else [{"label": "a", "prob": 0.75}, {"label": "b", "prob": 0.25}][:topk]
    return {"path": path, "model": model_id, "topk": topk, "labels": labels, "synopsis": None, "sampling": None,
            "num_frames": 0 if error else 8, "pretrained": False, "error": error}


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def refused(capsys, code: int, path: Path, before: bytes) -> str:
    """Assert a one-line refusal (exit 2) naming `path`, with the file as it was; returns the message."""
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(path) in err and "Traceback" not in err
    assert path.read_bytes() == before
    return err


# -- 1. a file that is not this run's results is refused, untouched ---------------------------------
CSV_HEADER = "path,error,num_frames,label_1,prob_1,label_2,prob_2,model\r\n"
FOREIGN = {
    "one-line JSON": ("package.jsonl", lambda m: '{"name": "pkg", "version": "1.0"}'),
    "one-line JSON that starts like a record": ("data.jsonl", lambda m: '{"path": "x.mp4", "note": 1}'),
    "pretty-printed JSON": ("conf.jsonl", lambda m: '{\n  "name": "pkg",\n  "version": "1.0"\n}'),
    "a .json file": ("package.json", lambda m: '{"name": "pkg", "version": "1.0"}'),
    "CSV without a last newline": ("table.csv", lambda m: "a,b\n1,2\n3,4"),
    "CSV with the first columns": ("table2.csv", lambda m: "path,error,num_frames\nx.mp4,,3"),
    "CSV of an older s2d (no model column)": ("old.csv", lambda m: "path,error,num_frames,label_1,prob_1,label_2,"
                                              "prob_2\n/v/a.mp4,,8,a,0.750000,b,0.250000\n/v/b.mp4,,8,a,0.7"),
    "records then a tail that is no record": ("r1.jsonl", lambda m: jsonl(record("/v/a.mp4", m)) + "garbage"),
    "CSV records then an overlong tail": ("r2.csv", lambda m: CSV_HEADER + "/v/a.mp4,,8,a,0.75,b,0.25," + m
                                          + "\r\n/v/b.mp4,,8,a,0.75,b,0.25," + m + ",x,y,z"),
    "records of an older s2d (no model)": ("old.jsonl", lambda m: '{"labels": [], "synopsis": null, '
                                           '"sampling": null, "num_frames": 0, "path": "/v/a.mp4", '
                                           '"pretrained": false, "error": "gone"}\n'),
    "a blank line": ("blank.jsonl", lambda m: jsonl(record("/v/a.mp4", m)) + "\n"),
}


@pytest.mark.parametrize("case", list(FOREIGN))
def test_a_file_that_is_not_this_runs_results_is_refused_untouched(case, tmp_path, capsys, patched, clips):
    name, content = FOREIGN[case]
    out = tmp_path / name
    out.write_text(content(ident(patched)), newline="")
    before = out.read_bytes()
    refused(capsys, main(argv(clips[:1], out)), out, before)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no lock or temporary file left


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_torn_record_is_dropped_at_the_next_write_only(suffix, tmp_path, patched, clips):
    out = tmp_path / f"r{suffix}"
    results = ResultsFile(out, topk=2, model=ident(patched))
    results.append([record(clips[0], results.model), record("/v/new\nline.mp4", results.model, error="bad")])
    whole = out.read_bytes()
    cut = whole[: whole.index(b"new") + 4]  # torn inside the second record, after its file name's line break
    out.write_bytes(cut)
    reopened = ResultsFile(out, topk=2, model=ident(patched))  # reading changes nothing
    assert [r["path"] for r in reopened.records] == [clips[0]] and out.read_bytes() == cut
    assert main(argv(clips[:2], out)) == 0  # the torn record's video is not among the inputs: dropped
    assert [r["path"] for r in ResultsFile(out, topk=2).records] == clips[:2]


# -- 2. no write through a planted link --------------------------------------------------------------
def plant(folder: Path, names: list[str], victim: Path) -> list[Path]:
    links = [folder / n for n in names]
    for link in links:
        link.symlink_to(victim)
    return links


def check_planted(links: list[Path], victim: Path, *outputs: Path) -> None:
    assert victim.read_text() == "victim"
    assert all(link.is_symlink() for link in links)
    for out in outputs:
        assert out.is_file() and not out.is_symlink()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_retry_failed_rewrites_through_no_planted_link(suffix, tmp_path, patched, clips):
    out = tmp_path / f"results{suffix}"
    results = ResultsFile(out, topk=2, model=ident(patched))
    results.append([record(clips[0], results.model), record(clips[1], results.model, error="unreadable")])
    victim = tmp_path / "victim.txt"
    victim.write_text("victim")
    links = plant(tmp_path, [f"{out.name}.tmp", f".{out.name}.tmp", f"{out.name}.part", f"{out.name}.new"], victim)
    assert main(argv(clips[:2], out, "--retry-failed")) == 0
    check_planted(links, victim, out)
    records = ResultsFile(out, topk=2).records
    assert [r["path"] for r in records] == clips[:2] and not any(r["error"] for r in records)


def test_pictures_are_written_through_no_planted_link(tmp_path, model, clips):
    from PIL import Image

    from s2d.inference.predict import predict
    from s2d.inference.viz import save_visualisation

    pred = predict(model, clips[3], topk=2, keep_detail=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("victim")
    names = [f"{p}{s}" for p in ("clip.png", "clip.gif", ".clip.png", ".clip.gif") for s in (".part", ".tmp")]
    links = plant(tmp_path, names, victim)
    png, gif = save_visualisation(pred, model.config, tmp_path, stem="clip")
    check_planted(links, victim, png, gif)
    assert Image.open(png).format == "PNG" and Image.open(gif).n_frames == model.config.sampler.frames
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names + ["clip.gif", "clip.png", "victim.txt"])


# -- 3. Ctrl-C at any step of an append; two runs on one file ---------------------------------------
def fd_of(path: Path):
    """Whether a file descriptor is open on `path`."""
    target = os.path.realpath(path)

    def matches(fd) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}") == target
        except OSError:
            return False

    return matches


STEPS = [(step, when) for step in ("open", "write", "fsync", "close", "_remember") for when in ("before", "after")]


@pytest.mark.parametrize("step, when", STEPS, ids=[f"{w}-{s}" for s, w in STEPS])
def test_ctrl_c_at_any_step_of_an_append_records_each_video_once(step, when, tmp_path, monkeypatch, capsys,
                                                                 patched, clips):
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to tell the results file's descriptor")
    out = tmp_path / "results.jsonl"
    on_out = fd_of(out)
    fired: list[str] = []

    def interrupt_once() -> None:
        if not fired:
            fired.append(f"{when} {step}")
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered when Python next checks signals

    def wrap(real, ours):
        """`real`, with the Ctrl-C sent just before or after it when `ours(*args)` says the call is the append's."""
        def wrapped(*args, **kwargs):
            mine = ours(*args)
            if mine and when == "before":
                interrupt_once()
            result = real(*args, **kwargs)
            if mine and when == "after":
                interrupt_once()
            return result
        return wrapped

    if step == "_remember":
        monkeypatch.setattr(ResultsFile, "_remember", wrap(ResultsFile._remember, lambda *a: True))
    elif step == "open":
        monkeypatch.setattr(os, "open", wrap(os.open, lambda path, *a: os.fsdecode(path) == str(out)))
    else:
        monkeypatch.setattr(os, step, wrap(getattr(os, step), lambda fd, *a: on_out(fd)))
    command = argv(clips, out, "--batch-size", "2")
    code = main(command)
    err = capsys.readouterr().err
    assert fired == [f"{when} {step}"]
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert main(command) == 0
    assert sorted(json.loads(line)["path"] for line in out.read_text().splitlines()) == clips  # each once
    assert len(ResultsFile(out, topk=2, model=ident(patched)).records) == len(clips)


def test_a_second_run_on_the_same_output_is_refused(tmp_path, capsys, patched, clips):
    out = tmp_path / "results.jsonl"
    assert main(argv(clips[:1], out)) == 0
    before = out.read_bytes()
    capsys.readouterr()
    with OutputLock(out):  # another run holds the file
        err = refused(capsys, main(argv(clips, out)), out, before)
    assert f"pid {os.getpid()}" in err and "another run" in err
    assert main(argv(clips, out)) == 0 and len(ResultsFile(out, topk=2).records) == 4


# -- 4. another model's results, and records that are not records ------------------------------------
def test_model_identity_names_the_weights_or_the_config(tmp_path, model):
    untrained = ident(model)
    assert untrained.startswith(f"{NAME} untrained (config sha256:") and ident(tiny_model()) == untrained
    assert ident(tiny_model(num_classes=5)) != untrained
    model.save_pretrained(tmp_path / "mine")
    loaded = s2d.load(tmp_path / "mine")
    loaded.pretrained = True
    digest = hashlib.sha256((tmp_path / "mine" / "model.safetensors").read_bytes()).hexdigest()
    assert model_identity(loaded, str(tmp_path / "mine")) == f"mine sha256:{digest[:12]}"
    assert model_identity(loaded, f"local-dir:{tmp_path / 'mine'}/") == f"mine sha256:{digest[:12]}"


def test_results_of_other_weights_are_refused_untouched(tmp_path, capsys, clips):
    """The real loading path: two model folders of one architecture, different weights."""
    tiny_model().save_pretrained(tmp_path / "a")
    torch.manual_seed(1)
    s2d.create(NAME, **TINY).save_pretrained(tmp_path / "b")
    out = tmp_path / "results.csv"
    options = ["--output", str(out), "--workers", "0", "--topk", "2", "--model"]
    assert main(["predict", clips[0], *options, str(tmp_path / "a")]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    err = refused(capsys, main(["predict", *clips[:2], *options, str(tmp_path / "b")]), out, before)
    assert "'a sha256:" in err and "'b sha256:" in err


OTHER_RUNS = {  # (format, what changes in the second run, pattern of the refusal)
    "another model": (".jsonl", "model", r"holds the results of model '.*untrained.*', not of this run's"),
    "another --topk (JSON lines)": (".jsonl", "topk", r"top-2 record, this run is top-1; pass the same --topk"),
    "another --topk (CSV)": (".csv", "topk", r"columns are those of a top-2 run, this run is top-1; .*--topk"),
    "another model (CSV)": (".csv", "model", r"holds the results of model"),
}


@pytest.mark.parametrize("case", list(OTHER_RUNS))
def test_resuming_another_runs_results_is_refused_untouched(case, tmp_path, capsys, monkeypatch, patched, clips):
    suffix, change, pattern = OTHER_RUNS[case]
    out = tmp_path / f"results{suffix}"
    assert main(argv(clips[:2], out)) == 0
    before = out.read_bytes()
    capsys.readouterr()
    command = argv(clips, out)
    if change == "topk":
        command[command.index("--topk") + 1] = "1"
    else:
        other = tiny_model(num_classes=5)
        monkeypatch.setattr(cli_predict, "load_model", lambda *a: setattr(other, "pretrained", False) or other)
    err = refused(capsys, main(command), out, before)
    assert re.search(pattern, err), err


JUNK = {  # (content after a valid first record, the line and the field named)
    "labels not a list": (".jsonl", lambda m: jsonl({**record("/v/b.mp4", m), "labels": "not a list"}), 2, "labels"),
    "path a number": (".jsonl", lambda m: jsonl({**record("/v/b.mp4", m), "path": 5}), 2, "path"),
    "error a number": (".jsonl", lambda m: jsonl({**record("/v/b.mp4", m), "error": 3}), 2, "error"),
    "num_frames a string": (".jsonl", lambda m: jsonl({**record("/v/b.mp4", m), "num_frames": "3"}), 2, "num_frames"),
    "num_frames a bool": (".jsonl", lambda m: jsonl({**record("/v/b.mp4", m), "num_frames": True}), 2, "num_frames"),
    "a probability of 1.5": (".jsonl", lambda m: jsonl({**record("/v/b.mp4", m), "labels": [
        {"label": "a", "prob": 1.5}]}), 2, "labels"),
    "a label without a name": (".jsonl", lambda m: jsonl({**record("/v/b.mp4", m), "labels": [{"prob": 0.5}]}),
                               2, "labels"),
    "no model": (".jsonl", lambda m: jsonl({k: v for k, v in record("/v/b.mp4", m).items() if k != "model"}),
                 2, "'model'"),
    "a record of another model": (".jsonl", lambda m: jsonl(record("/v/b.mp4", "other sha256:0123")), 2, "mixes"),
    "a list, not a record": (".jsonl", lambda m: "[1, 2]\n", 2, "a list"),
    "CSV: a probability that is no number": (".csv", lambda m: f"/v/b.mp4,,8,a,high,b,0.2,{m}\r\n", 3, "prob_1"),
    "CSV: num_frames not a count": (".csv", lambda m: f"/v/b.mp4,,-3,a,0.5,b,0.2,{m}\r\n", 3, "num_frames"),
    "CSV: a cell too few": (".csv", lambda m: "/v/b.mp4,,8,a,0.5,b,0.2\r\n", 3, "7 cells"),
    "CSV: no path": (".csv", lambda m: f",,8,a,0.5,b,0.2,{m}\r\n", 3, "no path"),
}


@pytest.mark.parametrize("case", list(JUNK))
def test_a_junk_record_is_refused_with_its_file_and_line(case, tmp_path, capsys, patched, clips):
    suffix, junk, line, field = JUNK[case]
    out = tmp_path / f"results{suffix}"
    m = ident(patched)
    first = (jsonl(record("/v/a.mp4", m)) if suffix == ".jsonl"
             else CSV_HEADER + f"/v/a.mp4,,8,a,0.75,b,0.25,{m}\r\n")
    out.write_bytes((first + junk(m)).encode())
    with pytest.raises(ValueError, match=f"{re.escape(str(out))}:{line}: .*{re.escape(field)}"):
        ResultsFile(out, topk=2)
    refused(capsys, main(argv(clips[:1], out)), out, (first + junk(m)).encode())


# -- 10. any file name round-trips ----------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_file_names_with_line_breaks_and_undecodable_bytes_round_trip(suffix, tmp_path, capsys, patched, clips):
    names = []
    for raw in (b"new\nline.mp4", b"bad\xff-name.mp4", "caf\u00e9\u2028.mp4".encode()):
        target = tmp_path / os.fsdecode(raw)
        try:
            shutil.copyfile(clips[0], target)
        except (OSError, UnicodeEncodeError):
            continue  # a filesystem that refuses such a name has nothing to round-trip
        names.append(str(target))
    if len(names) < 2:
        pytest.skip("this filesystem refuses names with line breaks and undecodable bytes")
    out = tmp_path / f"results{suffix}"
    assert main(argv(names, out)) in (0, 1)  # a decoder may not open such a name: then it is a recorded failure
    assert sorted(r["path"] for r in ResultsFile(out, topk=2).records) == sorted(names)
    capsys.readouterr()
    assert main(argv(names, out)) == 0  # every video found recorded: the rerun goes no further
    assert "every video is already recorded" in capsys.readouterr().err
    plain = ["predict", *names, "--model", NAME, "--untrained", "--workers", "0"]  # printed, not recorded
    assert main(plain) in (0, 1)
    shown = "".join(capsys.readouterr())
    assert "new\\nline.mp4" in shown or "bad\\xff-name.mp4" in shown
