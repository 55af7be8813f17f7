"""Bad inputs and hostile files, one table row each: every one gets a clear error that names the
file, key or argument at fault and what is allowed; the command line exits 2 for bad usage (1
for a file that fails), prints one line and no traceback, and nothing the user did not name is
overwritten. Also: the test helpers themselves refuse NaN.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch

import s2d
import s2d.cli as cli
from s2d.models.config import ConfigError, config_from_dict

TINY_S2D = dict(num_classes=4, labels=None, topk=2, dense_frames=8, dense_size=48,
                synopsis={"arch": "x3d_tiny", "frames": 4, "size": 32}, detail={"arch": "x3d_tiny"},
                sampler={"frames": 4, "size": 24})
TINY_BASELINE = dict(arch="x3d_tiny", num_classes=4, labels=None, frames=4, size=32, dense_frames=8, dense_size=48)


def tiny_s2d() -> torch.nn.Module:
    return s2d.create("s2dnet-x3d-k400", **TINY_S2D).eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory, videos) -> dict:
    """Everything the command-line cases point at, made once; `tree(root, classes)` makes a class-folder
    dataset of tiny videos."""
    from PIL import Image

    root = tmp_path_factory.mktemp("bad")
    out: dict[str, Path] = {"root": root}
    out["video"] = videos.write_video(root / "clip.mp4", num_frames=10, width=64, height=48)
    model = tiny_s2d()
    model.save_pretrained(root / "model")
    out["model"] = root / "model"
    s2d.create("x3d-m", **TINY_BASELINE).save_pretrained(root / "baseline")
    out["baseline"] = root / "baseline"
    # all-NaN weights beside a valid config
    nan = root / "nan_model"
    model.save_pretrained(nan)
    from safetensors.torch import load_file, save_file
    state = load_file(str(nan / "model.safetensors"))
    save_file({k: (torch.full_like(v, float("nan")) if v.is_floating_point() else v) for k, v in state.items()},
              str(nan / "model.safetensors"))
    out["nan_model"] = nan
    # a config whose num_classes is not an integer
    bad_cfg = root / "bad_config"
    model.save_pretrained(bad_cfg)
    data = json.loads((bad_cfg / "config.json").read_text())
    data["num_classes"] = 16.5
    (bad_cfg / "config.json").write_text(json.dumps(data))
    out["bad_config"] = bad_cfg
    # a PNG renamed .mp4, a symlink loop, a corrupt safetensors file, a plain file
    Image.new("RGB", (64, 48)).save(root / "picture.png")
    os.replace(root / "picture.png", root / "picture.mp4")
    out["png_as_mp4"] = root / "picture.mp4"
    out["loop"] = root / "loop.mp4"
    os.symlink(out["loop"], out["loop"])
    out["corrupt"] = root / "corrupt.safetensors"
    out["corrupt"].write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    out["a_file"] = root / "notes.txt"
    out["a_file"].write_text("keep me")
    # pictures already in a --vis folder
    (root / "vis").mkdir()
    (root / "vis" / "clip.png").write_bytes(b"an earlier picture")
    # a list of one video and a training config on the tiny model
    (root / "one.txt").write_text(f"{out['video']} 0\n{out['video']} 1\n")
    train_cfg = {"model": {"name": "s2dnet-x3d-k400", "overrides": TINY_S2D},
                 "data": {"kind": "list", "train": {"list_file": str(root / "one.txt")}, "val": None, "workers": 0},
                 "stages": {"stage1_epochs": 1, "stage2_epochs": 0}, "batch_size": 2, "progress": False}
    out["train_cfg"] = root / "train.json"
    out["train_cfg"].write_text(json.dumps(train_cfg))
    out["tree"] = lambda root, classes: dataset_tree(root, classes, videos.write_video)
    return out


def dataset_tree(root: Path, classes: list[str], write_video: Callable) -> Path:
    for name in classes:
        (root / name).mkdir(parents=True)
        write_video(root / name / "v.mp4", num_frames=4, width=32, height=32)
    return root


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.err + captured.out


# (id, argv built from `files` and a fresh tmp folder, exit status, pattern the message must match)
CLI_CASES: list[tuple[str, Callable[[dict, Path], list[str]], int, str]] = [
    ("predict --topk -1", lambda f, t: ["predict", str(f["video"]), "--model", str(f["model"]), "--topk", "-1"],
     2, r"--topk: expected an integer >= 1, got -1"),
    ("predict --topk 0", lambda f, t: ["predict", str(f["video"]), "--model", str(f["model"]), "--topk", "0"],
     2, r"--topk: expected an integer >= 1, got 0"),
    ("predict --topk 10**9", lambda f, t: ["predict", str(f["video"]), "--model", str(f["model"]), "--topk",
                                          str(10**9), "--output", str(t / "r.csv")],
     2, r"--topk: expected an integer in \[1, 10000\], got 1000000000"),
    ("predict --topk above the classes", lambda f, t: ["predict", str(f["video"]), "--model", str(f["model"]),
                                                       "--topk", "9", "--output", str(t / "r.csv")],
     2, r"--topk must lie in \[1, 4\] \(the model's num_classes\), got 9"),
    ("predict --vis into a file", lambda f, t: ["predict", str(f["video"]), "--model", str(f["model"]),
                                                "--vis", str(f["a_file"])],
     2, r"--vis .*notes.txt: exists and is not a folder"),
    ("predict --vis over earlier pictures", lambda f, t: ["predict", str(f["video"]), "--model", str(f["model"]),
                                                          "--vis", str(f["root"] / "vis")],
     2, r"--vis .*vis already holds clip.png"),
    ("predict --vis with a baseline", lambda f, t: ["predict", str(f["video"]), "--model", str(f["baseline"]),
                                                    "--vis", str(t / "pictures")],
     2, r"--vis draws where an S2DNet looked; .* is a baseline model"),
    ("predict a PNG renamed .mp4", lambda f, t: ["predict", str(f["png_as_mp4"]), "--model", str(f["model"])],
     1, r"picture.mp4: an image \(png\), not a video"),
    ("predict a symlink loop", lambda f, t: ["predict", str(f["loop"]), "--model", str(f["model"])],
     1, r"loop.mp4: symbolic link loop"),
    ("predict with all-NaN weights", lambda f, t: ["predict", str(f["video"]), "--model", str(f["nan_model"])],
     2, r"model.safetensors: \d+ of \d+ tensors hold NaN or infinite values"),
    ("predict with num_classes 16.5", lambda f, t: ["predict", str(f["video"]), "--model", str(f["bad_config"])],
     2, r"bad_config/config.json is not a valid s2d model config: num_classes must be an integer, got 16.5"),
    ("data prepare --out ROOT/classes.txt", lambda f, t: ["data", "prepare", str(f["tree"](t, ["a", "b"])),
                                                          "--out", str(t / "classes.txt"), "--no-check"],
     2, r"classes.txt is where the class names go"),
    ("data prepare --out inside a class", lambda f, t: ["data", "prepare", str(f["tree"](t, ["a", "b"])),
                                                        "--out", str(t / "a" / "train.txt"), "--no-check"],
     2, r"lies inside the class folder .*/a; write the list outside"),
    ("data prepare --out a video", lambda f, t: ["data", "prepare", str(f["tree"](t, ["a", "b"])),
                                                 "--out", str(t / "a" / "v.mp4"), "--no-check"],
     2, r"a list file cannot have a video extension \(.mp4\)"),
    ("data prepare class '#hash'", lambda f, t: ["data", "prepare", str(f["tree"](t, ["#hash", "b"])),
                                                 "--out", str(t.parent / f"{t.name}.txt"), "--no-check"],
     2, r"class folder name\(s\) '#hash' cannot be written"),
    ("data prepare class ' '", lambda f, t: ["data", "prepare", str(f["tree"](t, [" ", "b"])),
                                             "--out", str(t.parent / f"{t.name}.txt"), "--no-check"],
     2, r"class folder name\(s\) ' ' cannot be written"),
    ("data prepare class with a newline", lambda f, t: ["data", "prepare", str(f["tree"](t, ["a\nb"])),
                                                        "--out", str(t.parent / f"{t.name}.txt"), "--no-check"],
     2, r"class folder name\(s\) 'a\\nb' cannot be written"),
    *[(f"convert {source} a corrupt .safetensors",
       lambda f, t, source=source: ["convert", source, str(f["corrupt"]), "--model",
                                    "s2dnet-tsm-sthv2" if source == "official" else "s2dnet-x3d-k400",
                                    "--out", str(t / "out")],
       1, r"corrupt.safetensors: not a valid safetensors file")
      for source in ("official", "pytorchvideo", "slowfast")],
    ("convert torchvision a corrupt .safetensors",
     lambda f, t: ["convert", "torchvision", str(f["corrupt"]), "--model", "s2dnet-tsm-sthv2", "--out", str(t / "o")],
     1, r"corrupt.safetensors: not a valid safetensors file"),
    ("convert --out over a model folder",
     lambda f, t: ["convert", "pytorchvideo", str(f["corrupt"]), "--model", "s2dnet-x3d-k400", "--out",
                   str(f["model"])],
     2, r"--out .*model already holds config.json, model.safetensors; choose a new or empty folder"),
    ("train a missing list file", lambda f, t: ["train", str(f["train_cfg"]), "--out-dir", str(t / "run"),
                                                f"data.train.list_file={t / 'missing.txt'}"],
     2, r"data kind 'list' \(train split\): .*missing.txt"),
    ("train out_dir is a file", lambda f, t: ["train", str(f["train_cfg"]), "--out-dir", str(f["a_file"])],
     2, r"out_dir .*notes.txt is a file, not a folder"),
    ("train out_dir holds a model", lambda f, t: ["train", str(f["train_cfg"]), "--out-dir", str(f["model"])],
     2, r"out_dir .*model already holds model.safetensors, config.json but no training checkpoint"),
    ("train an unknown dataset argument", lambda f, t: ["train", str(f["train_cfg"]), "--out-dir", str(t / "run"),
                                                        "data.train.bogus=1"],
     2, r"data kind 'list' \(train split\): unknown argument 'bogus'; it takes list_file, root, clip"),
    ("train module:attr without --allow-code", lambda f, t: ["train", str(f["train_cfg"]), "--out-dir",
                                                             str(t / "run"), "data.kind=os:system"],
     2, r"data.kind 'os:system' names Python code to import .* only when asked on the command line "
        r"with --allow-code"),
    ("eval --clips 2 without temporal views", lambda f, t: ["eval", "--model", str(f["model"]), "--data", "list",
                                                            f"list_file={f['root'] / 'one.txt'}", "--clips", "2",
                                                            "--workers", "0", "--device", "cpu"],
     2, r"--clips 2: this dataset offers no temporal views"),
]


def _train(f: dict, t: Path, *overrides: str) -> list[str]:
    return ["train", str(f["train_cfg"]), "--out-dir", str(t / "run"), *overrides]


def _eval(f: dict, *extra: str, data: tuple[str, ...] = ()) -> list[str]:
    data = data or ("list", f"list_file={f['root'] / 'one.txt'}")
    return ["eval", "--model", str(f["model"]), "--data", *data, "--workers", "0", "--device", "cpu", *extra]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _labels_to_5(f: dict, t: Path) -> Path:  # the tiny model has 4 classes
    return _write(t / "six.txt", f"{f['video']} 0\n{f['video']} 5\n".encode())


LATIN1_LIST = "clip.mp4 0\ncafé.mp4 1\n".encode("latin-1")
LATIN1_CSV = "label,youtube_id,time_start,time_end\ncafé,x,0,10\n".encode("latin-1")
LATIN1_SSV2 = '[{"id": 1, "template": "café"}]'.encode("latin-1")
DEEP_JSON = b"[" * 200_000 + b"]" * 200_000
CLI_CASES += [
    # hyper-parameters and seeds: finite and in range, naming the key
    *[(f"train optim.lr={v}", lambda f, t, v=v: _train(f, t, f"optim.lr={v}"), 2,
       rf"optim.lr must be a number \(a finite one\), got {g}") for v, g in
      (("Infinity", "inf"), ("1e999", "inf"), ("NaN", "nan"), ("-Infinity", "-inf"))],
    ("train optim.lr=-0.1", lambda f, t: _train(f, t, "optim.lr=-0.1"), 2, r"optim.lr must be > 0"),
    ("train optim.lr=1e308 (scaled: inf)", lambda f, t: _train(f, t, "optim.lr=1e308", "optim.ref_batch=1"), 2,
     r"optim.lr 1e\+308 scaled by batch_size/ref_batch is not a finite learning rate"),
    ("train optim.weight_decay=1e999", lambda f, t: _train(f, t, "optim.weight_decay=1e999"), 2,
     r"optim.weight_decay must be a number \(a finite one\), got inf"),
    ("train optim.lr_ratios.locator=NaN", lambda f, t: _train(f, t, "optim.lr_ratios.locator=NaN"), 2,
     r"optim.lr_ratios.locator must be a finite number, got nan"),
    ("train phases lr=Infinity", lambda f, t: _train(f, t, "phases.synopsis_pretrain.lr=Infinity"), 2,
     r"phases.synopsis_pretrain.lr must be a number or null \(a finite one\), got inf"),
    ("train model.overrides NaN", lambda f, t: _train(f, t, "model.overrides.synopsis.dropout=NaN"), 2,
     r"model.overrides.synopsis.dropout must be a finite number, got nan"),
    *[(f"train seed={v}", lambda f, t, v=v: _train(f, t, f"seed={v}"), 2,
       rf"seed must lie in \[0, 2\*\*32-1\], got {v}") for v in (2**70, -1)],
    # strict integers
    ("train stages.stage1_epochs=5.9", lambda f, t: _train(f, t, "stages.stage1_epochs=5.9"), 2,
     r"stages.stage1_epochs must be a integer, got 5.9"),
    ("train batch_size=true", lambda f, t: _train(f, t, "batch_size=true"), 2, r"batch_size must be a integer"),
    *[(f"train synth size={v}", lambda f, t, v=v: _train(f, t, "data.kind=synth", f"data.train.size={v}"), 2,
       rf"data kind 'synth' \(train split\): size must be a integer, got {g}") for v, g in (("5.9", "5.9"),
                                                                                            ("true", "True"))],
    ("train clip.num_frames=5.9", lambda f, t: _train(f, t, "data.args.clip.num_frames=5.9"), 2,
     r"ClipSpec.num_frames must be a positive integer, got 5.9"),
    ("train labels past num_classes", lambda f, t: _train(f, t, f"data.train.list_file={_labels_to_5(f, t)}"),
     2, r"data kind 'list' \(train split\) has labels up to 5 \(its samples in .*six.txt\), but the model has "
        r"num_classes=4 \(labels 0..3\); set model.overrides.num_classes"),
    ("train synth labels past num_classes", lambda f, t: _train(f, t, "data.kind=synth", "data.train={}"), 2,
     r"data kind 'synth' \(train split\) has labels up to 15 \(its 16 classes\), but the model has num_classes=4"),
    ("eval labels past num_classes", lambda f, t: _eval(f, data=("list", f"list_file={_labels_to_5(f, t)}")), 2,
     r"has labels up to 5 .* but the model has num_classes=4 .*; evaluate a model trained on these classes"),
    # count options of the commands
    *[(f"eval {o} {v}", lambda f, t, o=o, v=v: _eval(f, o, v), 2, rf"{o}: expected an integer >= {m}, got {v}")
      for o, v, m in (("--clips", "0", 1), ("--clips", "-3", 1), ("--batch-size", "0", 1), ("--workers", "-1", 0))],
    ("data prepare --workers 0", lambda f, t: ["data", "prepare", str(t), "--out", str(t / "l.txt"), "--workers", "0"],
     2, r"--workers: expected an integer >= 1, got 0"),
    *[(f"data prepare --timeout {v}", lambda f, t, v=v: ["data", "prepare", str(t), "--out", str(t / "l.txt"),
                                                         "--timeout", v], 2, r"--timeout: expected a finite number")
      for v in ("0", "nan", "inf", "-1")],
    *[(f"data synth {' '.join(a)}", lambda f, t, a=a: ["data", "synth", str(t / "o"), "--clips", "1", *a], 2, m)
      for a, m in ((("--clips", "0"), r"--clips: expected an integer >= 1, got 0"),
                   (("--start", "-1"), r"--start: expected an integer >= 0, got -1"),
                   (("--seed", str(2**70)), r"--seed: expected an integer in \[0, 2\*\*32-1\]"))],
    # annotation and config files that are not UTF-8, or nest too deeply
    ("train a Latin-1 list file", lambda f, t: _train(f, t, f"data.train.list_file={_write(t / 'l.txt', LATIN1_LIST)}"),
     2,
     r"l.txt: not UTF-8 text \(byte 0xe9 at line 2, byte offset 14\); annotation files must be UTF-8"),
    ("eval a Latin-1 list file", lambda f, t: _eval(f, data=("list", f"list_file={_write(t / 'l.txt', LATIN1_LIST)}")),
     2, r"l.txt: not UTF-8 text \(byte 0xe9 at line 2, byte offset 14\)"),
    ("eval a Latin-1 Kinetics CSV", lambda f, t: _eval(f, data=("kinetics", f"root={t}", 'classes=["a"]',
                                                                f"csv_file={_write(t / 'k.csv', LATIN1_CSV)}")), 2,
     r"k.csv: not UTF-8 text \(byte 0xe9 at line 2, byte offset 40\)"),
    ("eval a Latin-1 SSv2 JSON", lambda f, t: _eval(f, data=("ssv2", f"json_file={_write(t / 's.json', LATIN1_SSV2)}",
                                                             f"root={t}", 'classes=["a"]')), 2,
     r"s.json: not UTF-8 text \(byte 0xe9 at line 1, byte offset 27\)"),
    ("eval a 200k-deep SSv2 JSON", lambda f, t: _eval(f, data=("ssv2", f"root={t}", 'classes=["a"]',
                                                               f"json_file={_write(t / 'd.json', DEEP_JSON)}")), 2,
     r"d.json: JSON nested too deeply to read"),
    ("train a Latin-1 config", lambda f, t: ["train", str(_write(t / "c.json", '{"seed": 1, "out_dir": "café"}'
                                                                  .encode("latin-1")))], 2,
     r"c.json: not UTF-8 text \(byte 0xe9 at line 1, byte offset 27\); a config must be UTF-8"),
    ("train a 200k-deep config", lambda f, t: ["train", str(_write(t / "deep.json", DEEP_JSON))], 2,
     r"deep.json: JSON nested too deeply to read"),
    ("train a 200k-deep override", lambda f, t: _train(f, t, "data.args.x=" + "[" * 200_000 + "]" * 200_000), 2,
     r"override 'data.args.x': JSON nested too deeply to read"),
    ("eval --data a 200k-deep config", lambda f, t: _eval(f, data=(str(_write(t / "deep.json", DEEP_JSON)),)), 2,
     r"deep.json: JSON nested too deeply to read"),
    ("eval --predictions a folder", lambda f, t: _eval(f, "--predictions", str(t)), 2,
     r"--predictions .*: is a folder; give a file name"),
]
if not torch.cuda.is_available():
    CLI_CASES.append(("train device=cuda without a GPU",
                      lambda f, t: ["train", str(f["train_cfg"]), "--out-dir", str(t / "run"), "device=cuda"],
                      2, r"device 'cuda' requested but CUDA is not available here \(use device=cpu or device=auto\)"))


@pytest.mark.parametrize("argv, code, pattern", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_command_line_bad_input(files, tmp_path, capsys, argv, code, pattern):
    before = {p: p.read_bytes() for p in files["root"].rglob("*") if p.is_file() and not p.is_symlink()}
    got, text = run_cli(argv(files, tmp_path), capsys)
    assert got == code, text
    assert re.search(pattern, text), text
    assert "Traceback" not in text
    after = {p: p.read_bytes() for p in before}
    assert after == before  # nothing the user named as input was changed


def test_data_prepare_leaves_videos_and_class_lists_alone(tmp_path, capsys, videos):
    root = dataset_tree(tmp_path / "data", ["a", "b"], videos.write_video)
    (root / "classes.txt").write_text("mine\n")
    video = (root / "a" / "v.mp4").read_bytes()
    for out in (root / "classes.txt", root / "a" / "v.mp4", root / "a" / "train.txt"):
        code, _ = run_cli(["data", "prepare", str(root), "--out", str(out), "--no-check"], capsys)
        assert code == 2
    assert (root / "classes.txt").read_text() == "mine\n" and (root / "a" / "v.mp4").read_bytes() == video
    assert not (root / "a" / "train.txt").exists()


def test_outputs_replace_a_planted_link_instead_of_writing_through_it(files, tmp_path, capsys, videos):
    """`data prepare`'s lists and `eval --predictions` are replaced whole (a temporary renamed onto the
    name); the metrics log, appended under a fixed name, refuses a link there."""
    root = dataset_tree(tmp_path / "data", ["a", "b"], videos.write_video)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("train.txt", "classes.txt", "pred.jsonl"):
        (lists / name).symlink_to(victim)
    code, text = run_cli(["data", "prepare", str(root), "--out", str(lists / "train.txt"), "--no-check"], capsys)
    assert code == 0, text
    assert (lists / "train.txt").read_text() == "a/v.mp4 0\nb/v.mp4 1\n"
    assert (lists / "classes.txt").read_text() == "a\nb\n"
    code, text = run_cli(_eval(files, "--predictions", str(lists / "pred.jsonl")), capsys)
    assert code == 0, text
    assert len((lists / "pred.jsonl").read_text().splitlines()) == 2
    assert not any((lists / name).is_symlink() for name in ("train.txt", "classes.txt", "pred.jsonl"))
    from s2d.train.metrics import MetricsLog

    log = MetricsLog(lists)
    log.jsonl.symlink_to(victim)
    with pytest.raises(OSError):
        log.write({"kind": "step", "step": 1})
    assert victim.read_text() == "keep me"


def test_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    import s2d.cli.info as info

    def boom(args):
        raise RuntimeError("something broke")

    monkeypatch.setattr(info, "run", boom)
    assert cli.main(["info"]) == 1
    err = capsys.readouterr().err
    assert "s2d info: RuntimeError: something broke" in err and "Traceback" not in err and "--debug" in err
    with pytest.raises(RuntimeError, match="something broke"):
        cli.main(["--debug", "info"])


# -- the Python API -------------------------------------------------------------------------------------

BASE = s2d.get_config("s2dnet-x3d-k400").to_dict()

CONFIG_CASES = [
    ({"num_classes": 16.5}, r"num_classes must be an integer, got 16.5"),
    ({"sampler": {**BASE["sampler"], "frames": 8.5}}, r"sampler.frames must be an integer, got 8.5"),
    ({"mean": "abc"}, r"mean must be a list of 3 finite numbers, got 'abc'"),
    ({"mean": [0.5, float("nan"), 0.5]}, r"mean must be a list of 3 finite numbers"),
    ({"std": [0.2, 0.0, 0.2]}, r"std must be three positive numbers"),
    ({"resize_ratio": 1e308}, r"resize_ratio must lie in \[1, 8\], got 1e\+308"),
    ({"num_classes": 10**9}, r"num_classes must lie in \[2, \d+\], got 1000000000"),
    ({"num_classes": 10}, r"labels: the list 'kinetics400' names 400 classes but num_classes is 10"),
    ({"topk": True}, r"topk must be an integer, got True"),
    ({"labels": 5}, r"labels must be a string or a list of strings or null, got 5"),
    ({"fusion": {**BASE["fusion"], "stages": "res3"}}, r"fusion.stages must be a list of strings, got 'res3'"),
    ({"dense_size": 100_000}, r"dense_size must lie in \[2, \d+\], got 100000"),
]


@pytest.mark.parametrize("change, pattern", CONFIG_CASES, ids=[next(iter(c)) + "=" + str(next(iter(c.values())))[:20]
                                                              for c, _ in CONFIG_CASES])
def test_config_bad_value_names_the_key(change, pattern):
    with pytest.raises(ConfigError, match=pattern):
        config_from_dict({**BASE, **change})


def test_config_file_error_names_the_file_and_the_key(files):
    from s2d.hub.errors import ConfigFileError

    with pytest.raises(ConfigFileError, match=r"bad_config/config.json is not a valid s2d model config: "
                                              r"num_classes must be an integer"):
        s2d.load(str(files["bad_config"]))


def test_nan_weights_are_refused_at_load(files):
    from s2d.hub.errors import CorruptWeightsError

    with pytest.raises(CorruptWeightsError, match=r"tensors hold NaN or infinite values \(.*\)"):
        s2d.load(str(files["nan_model"]))


@pytest.fixture(scope="module")
def model():
    return tiny_s2d()


FRAMES_CASES = [
    ("empty T", torch.zeros(2, 0, 3, 48, 48, dtype=torch.uint8), False, ValueError, r"empty dimension"),
    ("empty B", torch.zeros(0, 8, 3, 48, 48, dtype=torch.uint8), False, ValueError, r"empty dimension"),
    ("empty H", torch.zeros(2, 8, 3, 0, 48, dtype=torch.uint8), False, ValueError, r"empty dimension"),
    ("float64", torch.zeros(2, 8, 3, 48, 48, dtype=torch.float64), False, TypeError, r"got torch.float64"),
    ("float16", torch.zeros(2, 8, 3, 48, 48, dtype=torch.float16), False, TypeError, r"got torch.float16"),
    ("bfloat16", torch.zeros(2, 8, 3, 48, 48, dtype=torch.bfloat16), False, TypeError, r"got torch.bfloat16"),
    ("int32", torch.zeros(2, 8, 3, 48, 48, dtype=torch.int32), False, TypeError, r"must be uint8 .* or float32"),
    ("channels last", torch.zeros(2, 8, 48, 48, 3, dtype=torch.uint8), False, ValueError, r"\[B, T, 3, H, W\]"),
    ("batch 1 in train mode", torch.zeros(1, 8, 3, 48, 48, dtype=torch.uint8), True, ValueError,
     r"training mode needs at least 2 videos .* call model.eval\(\)"),
]


@pytest.mark.parametrize("frames, training, error, pattern", [c[1:] for c in FRAMES_CASES],
                         ids=[c[0] for c in FRAMES_CASES])
def test_model_bad_frames(model, frames, training, error, pattern):
    model.train(training)
    try:
        with pytest.raises(error, match=pattern):
            model(frames)
    finally:
        model.eval()


@pytest.mark.parametrize("clip, kwargs, error, pattern", [
    (torch.full((8, 48, 48, 3), 200.0), {}, TypeError, r"a clip must be uint8 \(0..255\), got torch.float32"),
    (torch.zeros(8, 64, 64, 3, dtype=torch.uint8), {}, ValueError, r"a clip must be uint8 \[T, 48, 48, 3\]"),
    (torch.zeros(8, 48, 48, 3, dtype=torch.uint8), {"topk": 0}, ValueError, r"topk must be an integer >= 1, got 0"),
], ids=["float 0..255", "wrong size", "topk 0"])
def test_predict_bad_clip(model, clip, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        model.predict(clip, **kwargs)


# -- the test helpers -------------------------------------------------------------------------------------

def test_kernel_test_helpers_fail_on_nan():
    from s2d_kernels.testing import assert_as_accurate, assert_close_scaled

    nan, ok = torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 2.0])
    with pytest.raises(AssertionError):
        assert_close_scaled(nan, ok, 1e-5, atol=1e-3)
    with pytest.raises(AssertionError):
        assert_close_scaled(nan, ok, 1e-5)
    with pytest.raises(AssertionError, match="NaN"):
        assert_as_accurate(nan, ok.double(), ok, 1e-5)
    assert_close_scaled(ok, ok, 1e-5, atol=1e-3)  # and equal tensors still pass
    assert_as_accurate(ok, ok.double(), ok, 1e-5)


def test_read_clip_refuses_images_and_link_loops(files):
    from s2d.io import ClipSpec, VideoError, read_clip

    spec = ClipSpec(num_frames=4, short_side=32, crop_size=32)
    for backend in ("pyav", "auto"):
        with pytest.raises(VideoError, match=r"picture.mp4: an image \(png\), not a video"):
            read_clip(files["png_as_mp4"], spec, backend=backend)
        with pytest.raises(VideoError, match=r"loop.mp4: symbolic link loop"):
            read_clip(files["loop"], spec, backend=backend)


if sys.platform == "win32":  # symlinks need privileges there
    pytestmark = pytest.mark.skip(reason="POSIX symlinks")
