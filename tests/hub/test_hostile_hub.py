"""Weights and configs that lie, names that shadow, and writers that must not write through planted paths.

- weights of another kind of number (integer, boolean, complex) are refused naming the key and the dtype
  expected, however they are loaded;
- a zoo model's config.json is hashed like its weights: an edited one (normalisation, sampler.sigma) fails
  its check instead of loading as "verified";
- a config.json missing keys names the file and the keys instead of taking defaults;
- a folder named like a zoo model is loaded with a notice naming both, and `zoo:NAME` reaches the zoo;
- `save_pretrained`, `convert`, the index and the zoo cards write through exclusive temporaries: a symlink
  planted at a temporary name or at the final name never leads a write to another file.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import s2d
from s2d.hub._index import ZooEntry, load_index, record_entry
from s2d.hub._sources import zoo_dir
from s2d.hub.cards import render_config
from s2d.hub.convert import CheckpointError, load_state_dict_strict
from s2d.hub.errors import ChecksumError, ConfigFileError, CorruptWeightsError, UnknownModelError

TINY = dict(dense_frames=8, dense_size=64, synopsis={"arch": "x3d_tiny", "frames": 4, "size": 64},
            sampler={"frames": 4, "size": 32}, detail={"arch": "x3d_tiny"})
TINY_BASELINE = dict(arch="x3d_tiny", num_classes=4, labels=None, frames=4, size=32, dense_frames=8, dense_size=48)
SYNTH = "s2dnet-x3d-synth"
#: Names a writer could once have used as its temporary, planted as symlinks to a victim file.
TEMP_NAMES = ["{}.tmp", ".{}.tmp", "{}.part", ".{}.part", "{}~", "{}.new"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A tiny S2DNet saved once (config.json + model.safetensors), copied by the tests that change it."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("saved") / "tiny"
    s2d.create("s2dnet-x3d-k400", **TINY).save_pretrained(folder, card=False)
    return folder


@pytest.fixture
def copy(saved, tmp_path):
    def make(name: str = "tiny", root: Path | None = None) -> Path:
        return Path(shutil.copytree(saved, (root or tmp_path) / name))
    return make


@pytest.fixture
def private_zoo(tmp_path, monkeypatch):
    """An empty zoo (index + folder) in tmp_path; `add(name, folder, config_sha256)` bundles a model folder."""
    index = tmp_path / "index.json"
    index.write_text("{}")
    monkeypatch.setenv("S2D_ZOO_INDEX", str(index))
    monkeypatch.setenv("S2D_ZOO_DIR", str(tmp_path / "zoo"))

    def add(name: str, folder: Path, config_sha256: str | None = None, repo: tuple | None = None) -> None:
        weights = folder / "model.safetensors"
        entry = ZooEntry(*(repo or (None, None)), sha256(weights.read_bytes()), weights.stat().st_size,
                         config_sha256=config_sha256)
        record_entry(name, entry, index)

    return add


def victims(root: Path, names: list[str]) -> dict[Path, bytes]:
    """Victim files, and a symlink to one at each of `names` below `root`."""
    out = {}
    for i, name in enumerate(names):
        victim = root / "elsewhere" / f"victim{i}"
        victim.parent.mkdir(parents=True, exist_ok=True)
        victim.write_bytes(f"do not touch {i}".encode())
        link = root / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(victim)
        out[victim] = victim.read_bytes()
    return out


def untouched(planted: dict[Path, bytes]) -> bool:
    return all(path.read_bytes() == content for path, content in planted.items())


# -- weights of another kind of number ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.complex64])
def test_weights_of_another_kind_of_number_are_refused(copy, dtype):
    folder = copy()
    weights = folder / "model.safetensors"
    state = load_file(str(weights))
    save_file({k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}, str(weights))
    for strict in (True, False):
        with pytest.raises(CorruptWeightsError, match=rf"model.safetensors: \d+ of {len(state)} tensors are not of "
                                                      rf"the model's kind of number: \S+ \({dtype}; expected "
                                                      r"torch.float32\)"):
            s2d.load(folder, strict=strict)


def test_half_precision_weights_still_load(copy):
    folder = copy()
    weights = folder / "model.safetensors"
    state = load_file(str(weights))
    save_file({k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}, str(weights))
    model = s2d.load(folder)
    assert model.synopsis.fc.weight.dtype == torch.float32


def test_converters_refuse_integer_weights():
    model = s2d.create("x3d-m", **TINY_BASELINE)
    state = {k: (v.long() if k == "fc.weight" else v) for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"dtype mismatches \(1\): fc.weight: checkpoint torch.int64 vs model "
                                              r"floating-point \(torch.float32\)"):
        load_state_dict_strict(model, state, "ckpt.pth")


# -- configs that lie -----------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value", [("mean", [0.0, 0.0, 0.0]), ("sampler.sigma", 0.5), (None, None)])
def test_an_edited_zoo_config_fails_its_check(copy, private_zoo, tmp_path, key, value):
    folder = copy("tiny", tmp_path / "zoo")
    config = folder / "config.json"
    private_zoo("tiny", folder, sha256(config.read_bytes()))
    assert s2d.load("tiny").weights_source.config_verified
    data = json.loads(config.read_text())
    if key is None:  # the same values, other bytes: the file is what is checked
        config.write_text(json.dumps(data))
    else:
        *parents, leaf = key.split(".")
        (data[parents[0]] if parents else data)[leaf] = value
        config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    with pytest.raises(ChecksumError, match=rf"sha256 mismatch for {config} \(tiny\)(.|\n)*The config was edited"):
        s2d.load("tiny")


def test_an_index_without_a_config_hash_says_only_the_weights_are_verified(copy, private_zoo, tmp_path, caplog):
    folder = copy("tiny", tmp_path / "zoo")
    private_zoo("tiny", folder)
    with caplog.at_level(logging.WARNING, logger="s2d.hub._sources"):
        source = s2d.load("tiny").weights_source
    assert source.verified and not source.config_verified
    assert "records no config sha256 for tiny; only its weights are verified" in caplog.text


def test_a_pinned_hub_config_is_checked(copy, private_zoo, local_hub):
    folder = copy()
    revision = local_hub.commit_folder("org/tiny", folder)
    good = sha256((folder / "config.json").read_bytes())
    private_zoo("tiny", folder, good, repo=("org/tiny", revision))
    assert s2d.load("tiny").weights_source.config_verified
    private_zoo("tiny", folder, "0" * 64, repo=("org/tiny", revision))
    with pytest.raises(ChecksumError, match=rf"expected {'0' * 64}\n  got      {good}(.|\n)*hf download org/tiny "
                                            rf"config.json --revision {revision} --force-download"):
        s2d.load("tiny")


def test_the_shipped_index_hashes_the_bundled_config(monkeypatch):
    monkeypatch.delenv("S2D_ZOO_INDEX", raising=False)
    monkeypatch.delenv("S2D_ZOO_DIR", raising=False)
    for name, entry in load_index().items():
        text = (zoo_dir() / name / "config.json").read_bytes()
        assert entry.config_sha256 == sha256(text) == sha256(render_config(s2d.get_config(name)).encode()), name
    assert s2d.load(SYNTH).weights_source.config_verified


@pytest.mark.parametrize("drop, named", [(["mean"], "mean"), (["sampler.sigma"], "sampler.sigma"),
                                         (["kind", "locator.gradient", "resize_ratio"],
                                          "resize_ratio, kind, locator.gradient")])
def test_a_config_missing_keys_names_them(copy, drop, named):
    folder = copy()
    data = json.loads((folder / "config.json").read_text())
    for key in drop:
        *parents, leaf = key.split(".")
        del (data[parents[0]] if parents else data)[leaf]
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigFileError, match=rf"tiny/config.json is not a valid s2d model config: missing keys "
                                              rf"{named}\. A saved config names every key"):
        s2d.load(folder)


# -- a local folder named like a zoo model ---------------------------------------------------------------

def test_a_folder_shadowing_a_zoo_name_is_named(copy, tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("S2D_ZOO_INDEX", raising=False)
    monkeypatch.delenv("S2D_ZOO_DIR", raising=False)
    copy(SYNTH)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="s2d.hub._sources"):
        shadow = s2d.load(SYNTH)
    assert shadow.weights_source.kind == "local" and shadow.config.num_classes == 400
    assert (f"loading the local folder ./{SYNTH}, not the zoo model {SYNTH}; pass zoo:{SYNTH} for the zoo model"
            in caplog.text)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="s2d.hub._sources"):
        zoo = s2d.load(f"zoo:{SYNTH}")
        assert s2d.load(f"./{SYNTH}").weights_source.kind == "local"
    assert zoo.weights_source.kind == "zoo" and zoo.weights_source.verified and zoo.config.num_classes == 16
    assert caplog.text == ""
    with pytest.raises(UnknownModelError, match="'nothing' is not a zoo model"):
        s2d.load("zoo:nothing")
    monkeypatch.chdir(zoo_dir())  # the zoo folder itself is no shadow: the zoo model, verified
    assert s2d.load(SYNTH).weights_source.kind == "zoo"


# -- writers: nothing is written through a planted path -------------------------------------------------------

def test_save_pretrained_never_writes_through_planted_symlinks(tmp_path):
    out = tmp_path / "out"
    files = ("config.json", "model.safetensors", "README.md")
    planted = victims(tmp_path, [f"out/{pattern.format(f)}" for f in files for pattern in TEMP_NAMES]
                      + ["out/config.json", "out/model.safetensors"])  # the final names too
    (out / "README.md").symlink_to(tmp_path / "never-created")  # dangling: an existing README is left alone
    model = s2d.create("x3d-m", **TINY_BASELINE).eval()
    model.save_pretrained(out)
    assert untouched(planted) and not (tmp_path / "never-created").exists()
    assert not (out / "config.json").is_symlink() and not (out / "model.safetensors").is_symlink()
    loaded = s2d.load(out)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())


def run_cli(module: str, argv: list[str]) -> int:
    mod = importlib.import_module(f"s2d.cli.{module}")
    parser = argparse.ArgumentParser()
    mod.add_parser(parser)
    return mod.run(parser.parse_args(argv))


def test_convert_never_writes_through_planted_symlinks(tmp_path, capsys):
    model = s2d.create("x3d-m", **TINY_BASELINE)
    ckpt = tmp_path / "x3d.pyth"
    torch.save({"model_state": {k[len("net."):]: v for k, v in model.backbone.state_dict().items()}}, ckpt)
    config = tmp_path / "config.json"
    config.write_text(model.config.to_json())
    out = tmp_path / "out"
    planted = victims(tmp_path, [f"out/{pattern.format(f)}" for f in ("config.json", "model.safetensors")
                                 for pattern in TEMP_NAMES])
    argv = ["pytorchvideo", str(ckpt), "--config", str(config), "--out", str(out)]
    assert run_cli("convert", argv) == 0
    assert untouched(planted) and s2d.load(out).config == model.config
    dangling = tmp_path / "out2"
    dangling.mkdir()
    (dangling / "config.json").symlink_to(tmp_path / "never-created")
    assert run_cli("convert", argv[:-1] + [str(dangling)]) == 2
    assert "already holds config.json" in capsys.readouterr().err and not (tmp_path / "never-created").exists()


def test_the_index_is_rewritten_through_a_temporary(tmp_path):
    index = tmp_path / "index.json"
    planted = victims(tmp_path, [pattern.format("index.json") for pattern in TEMP_NAMES])
    shared = tmp_path / "elsewhere" / "shared-index.json"  # an index the final name links to
    shared.write_text("{}")
    index.symlink_to(shared)
    planted[shared] = b"{}"
    entry = ZooEntry(None, None, "0" * 64, 1)
    record_entry("a", entry, index)
    record_entry("b", entry, index)
    assert untouched(planted) and not index.is_symlink() and sorted(json.loads(index.read_text())) == ["a", "b"]


def test_zoo_cards_are_written_through_temporaries(tmp_path, monkeypatch):
    from s2d.hub import zoo_folder
    from s2d.models.flops import Complexity

    monkeypatch.setattr(zoo_folder, "measure_config", lambda config: Complexity(1, 1.0))
    zoo = tmp_path / "zoo"
    planted = victims(tmp_path, [f"zoo/x3d-m/{pattern.format(f)}" for f in ("config.json", "README.md")
                                 for pattern in TEMP_NAMES] + [f"zoo/{p.format('README.md')}" for p in TEMP_NAMES])
    (zoo / "tsm-r50").mkdir()
    (zoo / "tsm-r50" / "config.json").symlink_to(tmp_path / "never-created")
    zoo_folder.sync_cards(zoo=zoo)
    assert untouched(planted) and not (tmp_path / "never-created").exists()
    assert (zoo / "tsm-r50" / "config.json").read_text() == render_config(s2d.get_config("tsm-r50"))
    assert not os.path.islink(zoo / "tsm-r50" / "config.json")
