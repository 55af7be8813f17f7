"""The zoo: `s2d.load`, the Hub mixin, the index, model cards and publishing.

Hub tests run huggingface_hub's real download code against the `local_hub` fixture's server on
127.0.0.1, with the Hugging Face cache in a temporary folder; nothing touches the internet.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch

import s2d
from s2d.hub._index import ZooEntry, load_index
from s2d.hub._sources import known_names
from s2d.hub.cards import DATASETS, card_numbers, render_config
from s2d.hub.factory import (ChecksumError, CorruptWeightsError, HubError, NoWeightsError, UnknownModelError,
                             WeightsMismatchError, WeightsUnavailableError, ZooError)
from s2d.hub.publish import publish
from s2d.hub.zoo_folder import measure_config, render_zoo_card, sync_cards
from s2d.models.flops import count_params

REPO_ZOO = Path(__file__).resolve().parents[2] / "zoo"

# An S2DNet with X3D-tiny backbones and small inputs: ~1.3M parameters, a 5 MB safetensors file.
TINY = dict(dense_frames=8, dense_size=64, synopsis={"arch": "x3d_tiny", "frames": 4, "size": 64},
            sampler={"frames": 4, "size": 32}, detail={"arch": "x3d_tiny"})


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = s2d.create("s2dnet-x3d-k400", **TINY)
    with torch.no_grad():  # non-trivial BN statistics, so that loaded buffers matter
        for name, t in model.state_dict().items():
            if name.endswith("running_mean"):
                t.normal_(0, 0.1)
    return model.eval()


def clip(batch: int = 2) -> torch.Tensor:
    return torch.randint(0, 256, (batch, 8, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(9))


def logits(model, frames=None) -> torch.Tensor:
    with torch.no_grad():
        return model(clip() if frames is None else frames).logits


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli(module: str, argv: list[str]) -> int:
    import importlib

    mod = importlib.import_module(f"s2d.cli.{module}")
    parser = argparse.ArgumentParser()
    mod.add_parser(parser)
    return mod.run(parser.parse_args(argv))


@pytest.fixture(autouse=True)
def one_thread():
    """The models here are tiny: one thread is as fast, and immune to oversubscribed CI cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def zoo_env(tmp_path, monkeypatch):
    """An empty private zoo: index file and zoo folder in tmp_path. Returns a function adding entries."""
    index = tmp_path / "index.json"
    index.write_text("{}")
    monkeypatch.setenv("S2D_ZOO_INDEX", str(index))
    monkeypatch.setenv("S2D_ZOO_DIR", str(tmp_path / "zoo"))

    def add(name: str, repo_id: str, revision: str, weights: Path, sha: str | None = None, size: int | None = None):
        data = json.loads(index.read_text())
        data[name] = {"repo_id": repo_id, "revision": revision, "sha256": sha or sha256(weights),
                      "size": size or weights.stat().st_size}
        index.write_text(json.dumps(data))

    return add


@pytest.fixture
def hub(local_hub):
    return local_hub


@pytest.fixture
def published(tmp_path, hub, zoo_env):
    """`tiny` published as org/tiny: commit A (seed 0, pinned by the index), then B (seed 1, main)."""
    folders = {}
    for seed in (0, 1):
        folders[seed] = tmp_path / f"repo{seed}"
        tiny_model(seed).save_pretrained(folders[seed])
    rev_a = hub.commit_folder("org/tiny", folders[0])
    rev_b = hub.commit_folder("org/tiny", folders[1])
    zoo_env("tiny", "org/tiny", rev_a, folders[0] / "model.safetensors")
    return {"a": rev_a, "b": rev_b, "folders": folders}


# -- local folders and the mixin --------------------------------------------------------------------

def test_save_pretrained_round_trip(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == model.config.to_dict()
    card = (tmp_path / "m" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: s2d\npipeline_tag: video-classification\nlicense: apache-2.0\n")
    assert f"**{count_params(model):,}**" in card

    for ref in (str(tmp_path / "m"), tmp_path / "m", f"local-dir:{tmp_path / 'm'}"):
        loaded = s2d.load(ref)
        assert type(loaded) is s2d.S2DNet and not loaded.training
        assert loaded.labels == model.labels and len(loaded.labels) == 400
        assert torch.equal(logits(loaded), logits(model))
    assert loaded.weights_source.kind == "local" and loaded.weights_source.path.endswith("model.safetensors")

    again = s2d.S2DNet.from_pretrained(tmp_path / "m")
    assert torch.equal(logits(again), logits(model))
    with pytest.raises(ZooError, match="not a VideoClassifier"):
        s2d.VideoClassifier.from_pretrained(tmp_path / "m")
    untrained = s2d.load(tmp_path / "m", pretrained=False)
    assert untrained.config == model.config and untrained.weights_source is None
    assert not torch.equal(logits(untrained), logits(model))


def test_baseline_round_trip(tmp_path):
    model = s2d.create("x3d-m", arch="x3d_tiny", frames=4, size=64, dense_frames=8, dense_size=64).eval()
    model.save_pretrained(tmp_path / "b", card=False)
    assert not (tmp_path / "b" / "README.md").exists()
    loaded = s2d.VideoClassifier.from_pretrained(str(tmp_path / "b"))
    assert type(loaded) is s2d.VideoClassifier and loaded.config.kind == "baseline"
    assert torch.equal(logits(loaded), logits(model))


def test_strict_loading_names_keys(tmp_path):
    from safetensors.torch import load_file, save_file

    tiny_model().save_pretrained(tmp_path / "m", card=False)
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(str(weights))
    state.pop("detail.fc.bias")
    state["detail.extra.weight"] = torch.zeros(2)
    state["locator.fc2.weight"] = torch.zeros(3, 3)
    save_file(state, str(weights))
    with pytest.raises(WeightsMismatchError) as err:
        s2d.load(tmp_path / "m")
    message = str(err.value)
    assert "missing keys (1): detail.fc.bias" in message and "unexpected keys (1): detail.extra.weight" in message
    assert "locator.fc2.weight: checkpoint (3, 3)" in message
    with pytest.warns(UserWarning, match="strict=False"):
        partial = s2d.load(tmp_path / "m", strict=False)
    assert torch.equal(partial.state_dict()["detail.fc.weight"], state["detail.fc.weight"])


def test_corrupted_and_missing_files(tmp_path):
    tiny_model().save_pretrained(tmp_path / "m", card=False)
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CorruptWeightsError, match="not a valid safetensors file"):
        s2d.load(tmp_path / "m")
    weights.unlink()
    with pytest.raises(NoWeightsError, match="no model.safetensors"):
        s2d.load(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text('{"kind": "s2dnet", "num_classes": 1}')
    with pytest.raises(ZooError, match="not a valid s2d model config"):
        s2d.load(tmp_path / "m", pretrained=False)


def test_names_without_weights_and_unknown_names(zoo_env):
    with pytest.raises(UnknownModelError, match="'s2dnet-tsm-sthv2'"):
        s2d.load("s2dnet-tsm-sthv3")
    with pytest.raises(NoWeightsError, match=r"s2d.create\('x3d-m'\)"):
        s2d.load("x3d-m")
    with pytest.raises(NoWeightsError):
        s2d.create("x3d-m", pretrained=True)
    with pytest.raises(UnknownModelError, match="hf-hub:org/model"):
        s2d.load("org/model")
    with pytest.raises(UnknownModelError, match="no such folder"):
        s2d.load("./missing/folder")
    model = s2d.load("x3d-m", pretrained=False)
    assert type(model) is s2d.VideoClassifier and not model.training and model.labels[0] == "abseiling"
    assert s2d.list_models(pretrained=True) == [] and "x3d-m" in s2d.list_models(pretrained=False)


# -- the Hub ------------------------------------------------------------------------------------------

def test_load_from_hub_then_offline_from_cache(published, hub, monkeypatch, hub_env):
    expected = logits(tiny_model(0))
    model = s2d.load("tiny")
    assert torch.equal(logits(model), expected)
    src = model.weights_source
    assert (src.kind, src.repo_id, src.revision, src.commit, src.verified) == ("hub", "org/tiny", published["a"],
                                                                               published["a"], True)
    assert "tiny" in known_names() and load_index()["tiny"].revision == published["a"]
    served = len(hub.requests)
    assert s2d.load("tiny").weights_source.verified  # cache hit: a pinned commit needs no request
    assert len(hub.requests) == served

    hub.stop()
    hub_env.offline()
    assert torch.equal(logits(s2d.load("tiny")), expected)
    assert torch.equal(logits(s2d.load(f"hf-hub:org/tiny@{published['a']}")), expected)
    with pytest.raises(WeightsUnavailableError) as err:  # never downloaded
        s2d.load("tiny", revision=published["b"])
    assert f"hf download org/tiny --revision {published['b']} --local-dir" in str(err.value)


def test_offline_without_cache_prints_the_download_command(published, monkeypatch, hub_env):
    hub_env.offline()
    with pytest.raises(WeightsUnavailableError) as err:
        s2d.load("tiny")
    message = str(err.value)
    assert f"hf download org/tiny --revision {published['a']} --local-dir" in message
    assert "zoo/tiny" in message.replace("\\", "/") and "huggingface-cli download" in message
    assert "HF_HUB_OFFLINE" in message


def test_unreachable_hub_fails_at_once_with_the_real_error(published, hub, tmp_path, monkeypatch, caplog, hub_env):
    """No network: one refused connection is the answer, not a series of retries with backoff."""
    expected = logits(tiny_model(0))
    s2d.load("tiny")  # now cached
    hub.stop()
    hub_env.use(None, tmp_path / "hf")  # the same cache, an endpoint nothing listens on
    sleeps = []
    monkeypatch.setattr("huggingface_hub.utils._http.time.sleep", sleeps.append)
    assert torch.equal(logits(s2d.load("tiny")), expected)  # the cache still serves the pinned commit
    with pytest.raises(WeightsUnavailableError) as err:
        s2d.load("hf-hub:org/other")
    assert "the Hub cannot be reached (127.0.0.1:9: Connection refused)" in str(err.value)
    assert "hf download org/other --local-dir other" in str(err.value)
    assert sleeps == [] and "Retrying" not in caplog.text


def test_revision_pinning(published):
    a, b = logits(tiny_model(0)), logits(tiny_model(1))
    assert not torch.equal(a, b)
    assert torch.equal(logits(s2d.load("tiny")), a)  # the index pins commit A although main is B
    newer = s2d.load("tiny", revision=published["b"])
    assert torch.equal(logits(newer), b) and not newer.weights_source.verified  # no checksum known for B
    assert torch.equal(logits(s2d.load("hf-hub:org/tiny")), b)  # main
    pinned = s2d.load(f"hf-hub:org/tiny@{published['a']}")
    assert torch.equal(logits(pinned), a) and pinned.weights_source.verified  # the index knows this one
    with pytest.raises(ZooError, match="give one"):
        s2d.load(f"hf-hub:org/tiny@{published['a']}", revision=published["b"])


def test_checksum_mismatch(published, zoo_env):
    weights = published["folders"][0] / "model.safetensors"
    zoo_env("tiny", "org/tiny", published["a"], weights, sha="0" * 64)
    with pytest.raises(ChecksumError) as err:
        s2d.load("tiny")
    assert f"expected {'0' * 64}" in str(err.value) and f"got      {sha256(weights)}" in str(err.value)
    assert "--force-download" in str(err.value)
    zoo_env("tiny", "org/tiny", published["a"], weights, size=123)
    with pytest.raises(ChecksumError, match="records 123 for tiny"):
        s2d.load("tiny")


def test_corrupted_download(hub, tmp_path):
    tiny_model().save_pretrained(tmp_path / "bad", card=False)
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"\x00" * 64)
    hub.commit_folder("org/bad", tmp_path / "bad")
    with pytest.raises(CorruptWeightsError, match="hf download org/bad model.safetensors --force-download"):
        s2d.load("hf-hub:org/bad")


def test_hub_errors(hub, tmp_path):
    with pytest.raises(HubError, match="not found"):
        s2d.load("hf-hub:org/nothing")
    hub.commit("org/empty", {"config.json": tiny_model().config.to_json()})
    with pytest.raises(HubError, match="revision 'v9' does not exist"):
        s2d.load("hf-hub:org/empty@v9")
    with pytest.raises(HubError, match="no file 'model.safetensors'"):
        s2d.load("hf-hub:org/empty")
    assert s2d.load("hf-hub:org/empty", pretrained=False).config == tiny_model().config


def test_zoo_folder_weights(published, zoo_env, tmp_path, monkeypatch, hub_env):
    """zoo/<name>/model.safetensors (e.g. `hf download ... --local-dir zoo/<name>`) wins over the Hub."""
    hub_folder = published["folders"][0]
    local = tmp_path / "zoo" / "tiny"
    local.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (local / name).write_bytes((hub_folder / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    hub_env.offline()
    model = s2d.load("tiny")
    assert model.weights_source.kind == "zoo" and model.weights_source.verified
    assert torch.equal(logits(model), logits(tiny_model(0)))

    (local / "model.safetensors").write_bytes((published["folders"][1] / "model.safetensors").read_bytes())
    with pytest.raises(ChecksumError) as err:
        s2d.load("tiny")
    assert "load them by path: s2d.load('zoo/tiny')" in str(err.value)
    assert torch.equal(logits(s2d.load("zoo/tiny")), logits(tiny_model(1)))  # by path: no index check


def test_bundled_weights(zoo_env, tmp_path, monkeypatch, hub_env):
    """An index entry without a repo: weights shipped in zoo/<name>/, checked like downloaded ones."""
    local = tmp_path / "zoo" / "tiny"
    tiny_model(0).save_pretrained(local)
    zoo_env("tiny", None, None, local / "model.safetensors")
    hub_env.offline()
    model = s2d.load("tiny")
    assert model.weights_source.kind == "zoo" and model.weights_source.verified
    assert torch.equal(logits(model), logits(tiny_model(0)))
    assert load_index()["tiny"].bundled

    with pytest.raises(ZooError, match="no Hub revisions"):
        s2d.load("tiny", revision="a" * 40)
    good = (local / "model.safetensors").read_bytes()
    tiny_model(1).save_pretrained(local)
    with pytest.raises(ChecksumError, match="git checkout -- "):
        s2d.load("tiny")
    (local / "model.safetensors").unlink()
    with pytest.raises(WeightsUnavailableError, match="ship with s2d as"):
        s2d.load("tiny")
    (local / "model.safetensors").write_bytes(good)
    assert torch.equal(logits(s2d.load("tiny")), logits(tiny_model(0)))


@pytest.mark.parametrize("entry, problem", [
    ({"repo_id": None, "revision": "a" * 40}, "bundled entry"),
    ({"repo_id": "org/x", "revision": None}, "40-hex commit"),
    ({"repo_id": "x", "revision": "a" * 40}, "'org/name'"),
])
def test_index_entry_validation(entry, problem):
    with pytest.raises(ValueError, match=problem):
        ZooEntry(**entry, sha256="0" * 64, size=1)


# -- publishing ---------------------------------------------------------------------------------------

class FakeApi:
    """HfApi stand-in whose uploads land in the LocalHub (the commit protocol is not emulated)."""

    hub: Any  # the LocalHub of the test
    calls: list = []

    def __init__(self, token=None):
        pass

    def create_repo(self, repo_id, repo_type=None, private=None, exist_ok=False):
        FakeApi.calls.append(("create_repo", repo_id))
        return argparse.Namespace(repo_id=repo_id)

    def upload_folder(self, repo_id, folder_path, repo_type=None, commit_message=None, **kwargs):
        FakeApi.calls.append(("upload_folder", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))
        return argparse.Namespace(oid=FakeApi.hub.commit_folder(repo_id, folder_path), commit_url=None)


def test_push_to_hub(hub, monkeypatch):
    import huggingface_hub

    FakeApi.hub, FakeApi.calls = hub, []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    model = tiny_model()
    model.push_to_hub("org/pushed")
    assert FakeApi.calls[-1] == ("upload_folder", "org/pushed", ["README.md", "config.json", "model.safetensors"])
    repo = hub.repos["org/pushed"]
    card = repo.commits[repo.refs["main"]]["README.md"].decode()
    assert "library_name: s2d" in card and "hf download org/pushed --local-dir pushed" in card
    assert torch.equal(logits(s2d.load("hf-hub:org/pushed")), logits(model))


def test_publish_then_load(hub, zoo_env, tmp_path, monkeypatch, capsys, complexities):
    import huggingface_hub

    monkeypatch.setattr("s2d.hub.zoo_folder.measure_config", lambda config: complexities["x3d-m"])
    model = s2d.create("x3d-m").eval()
    model.save_pretrained(tmp_path / "trained", card=False)
    weights = tmp_path / "trained" / "model.safetensors"

    argv = ["publish", "x3d-m", "--repo-id", "org/x3d-m", "--weights", str(weights)]
    assert run_cli("zoo", argv + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"sha256 {sha256(weights)}" in out and "nothing was uploaded" in out

    FakeApi.hub, FakeApi.calls = hub, []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert run_cli("zoo", argv + ["--record"]) == 0
    assert FakeApi.calls == [("create_repo", "org/x3d-m"),
                             ("upload_folder", "org/x3d-m", ["README.md", "config.json", "model.safetensors"])]
    entry = load_index()["x3d-m"]
    assert entry == ZooEntry("org/x3d-m", hub.repos["org/x3d-m"].refs["main"], sha256(weights), weights.stat().st_size,
                             hashlib.sha256(render_config(s2d.get_config("x3d-m")).encode()).hexdigest())
    assert f'"revision": "{entry.revision}"' in capsys.readouterr().out
    card = hub.repos["org/x3d-m"].commits[entry.revision]["README.md"].decode()
    assert "hf download org/x3d-m --local-dir zoo/x3d-m" in card and "No weights yet" not in card

    loaded = s2d.load("x3d-m")
    assert (src := loaded.weights_source).verified and src.config_verified and type(loaded) is s2d.VideoClassifier
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())

    (tmp_path / "other").mkdir()
    s2d.create("tsm-r50").save_pretrained(tmp_path / "other", card=False)
    with pytest.raises(ZooError, match="another architecture"):
        publish("x3d-m", "org/x3d-m", weights=tmp_path / "other", dry_run=True)


def test_zoo_list(published, capsys):
    assert run_cli("zoo", ["list"]) == 0
    out = capsys.readouterr().out
    assert f"org/tiny@{published['a'][:10]} (not downloaded)" in out and "x3d-m" in out
    s2d.load("tiny")
    assert run_cli("zoo", ["list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["tiny"]["cached"] and rows["x3d-m"]["published"] is None



def test_zoo_list_shipped_index(capsys, monkeypatch):
    """The index as shipped: a bundled entry (no repo, no revision) next to models without weights."""
    monkeypatch.delenv("S2D_ZOO_INDEX", raising=False)
    monkeypatch.delenv("S2D_ZOO_DIR", raising=False)
    assert load_index()["s2dnet-x3d-synth"].bundled
    assert run_cli("zoo", ["list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith(("s2d", "x3d"))}
    assert "bundled in zoo/" in rows["s2dnet-x3d-synth"]
    assert rows["s2dnet-x3d-k400"].endswith("no weights yet")
    assert run_cli("zoo", ["list", "--json"]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["s2dnet-x3d-synth"]["published"]["repo_id"] is None and listed["s2dnet-x3d-synth"]["local"]


def test_no_weights_error_says_what_to_run(monkeypatch):
    """`s2d.load` of a paper-scale variant refuses with the calls that work instead."""
    monkeypatch.delenv("S2D_ZOO_INDEX", raising=False)
    with pytest.raises(NoWeightsError) as err:
        s2d.load("s2dnet-x3d-k400")
    for hint in ("s2d.create('s2dnet-x3d-k400')", "python -m s2d train --help", "python -m s2d zoo list"):
        assert hint in str(err.value)

# -- cards ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def complexities():
    """Measured parameters and GMACs of every registered model (shared: measuring takes seconds each)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        return {name: measure_config(s2d.get_config(name)) for name in s2d.list_models()}
    finally:
        torch.set_num_threads(threads)


def test_every_model_has_a_current_card(complexities, monkeypatch):
    monkeypatch.delenv("S2D_ZOO_INDEX", raising=False)
    monkeypatch.delenv("S2D_ZOO_DIR", raising=False)
    for name in s2d.list_models():
        folder = REPO_ZOO / name
        assert (folder / "config.json").read_text() == render_config(s2d.get_config(name)), name
        card = (folder / "README.md").read_text()
        assert card == render_zoo_card(name, complexities[name]), f"{name}: stale card, run python -m s2d zoo cards"
        numbers = card_numbers(card)
        assert numbers["params"] == complexities[name].params == count_params(s2d.create(name))
        assert numbers["gmacs"] == pytest.approx(complexities[name].gmacs, abs=5e-4)
        front = card.split("---\n")[1]
        for line in ("library_name: s2d", "pipeline_tag: video-classification", "license: apache-2.0"):
            assert line in front, (name, line)
        hub_dataset = DATASETS.get(s2d.get_config(name).labels, (None,))[0]
        assert ("datasets:" in front) == bool(hub_dataset), name  # the synthetic benchmark is no Hub dataset
        assert ("metrics:" in front) == (folder / "eval.json").is_file(), name  # only evaluated weights
        assert "Delving into Details: Synopsis-to-Detail Networks" in card
        assert "github.com/aliyun/Synopsis-to-Detail-Network" in card
    assert sync_cards(check=True, complexities=complexities) == []
    assert s2d.models.config.config_from_dict(json.loads((REPO_ZOO / "s2dnet-tsm-sthv2" / "config.json").read_text())) \
        == s2d.get_config("s2dnet-tsm-sthv2")


def test_reference_numbers(complexities):
    sthv2, minik = complexities["s2dnet-tsm-sthv2"], complexities["s2dnet-tsm-minik"]
    assert (sthv2.params, round(sthv2.gmacs, 2)) == (29_842_180, 25.44)
    assert (minik.params, round(minik.gmacs, 2)) == (30_779_324, 22.08)


def test_cards_check_detects_stale_files(tmp_path, complexities, zoo_env, capsys, monkeypatch):
    zoo_dir = tmp_path / "zoo"
    written = sync_cards(check=False, zoo=zoo_dir, complexities=complexities)
    assert len(written) == 1 + 2 * len(s2d.list_models())
    assert sync_cards(check=True, zoo=zoo_dir, complexities=complexities) == []
    card = zoo_dir / "x3d-m" / "README.md"
    card.write_text(card.read_text().replace("3,794,274", "3,794,275"))
    assert sync_cards(check=True, zoo=zoo_dir, complexities=complexities) == [card]

    monkeypatch.setattr("s2d.hub.zoo_folder.measure_config", lambda config: complexities[
        next(n for n in s2d.list_models() if s2d.get_config(n) == config)])
    assert run_cli("zoo", ["cards", "--check"]) == 1
    assert str(card) in capsys.readouterr().err
    assert run_cli("zoo", ["cards", "x3d-m"]) == 0
    assert run_cli("zoo", ["cards", "--check"]) == 0


def test_card_with_recorded_evaluation_and_latency(tmp_path, complexities, zoo_env, monkeypatch):
    from s2d.hub import zoo_folder

    (tmp_path / "zoo" / "x3d-m").mkdir(parents=True)
    (tmp_path / "zoo" / "x3d-m" / "eval.json").write_text(json.dumps(
        {"dataset": "Kinetics-400", "split": "val", "top1": 75.9, "top5": 92.1, "views": "3×10", "videos": 19761}))
    meta = {"mode": "full", "threads": 2, "date": "2026-11-24T00:10:00",
            "device": {"type": "cpu", "name": "Test CPU", "cores": 2}}
    rows = [{"id": "models/x3d-m/b1/fp32/per_video_latency", "section": "models", "metric": "latency",
             "value": 812.5, "unit": "ms", "model": "x3d-m", "batch": 1, "dtype": "fp32"},
            {"id": "models/x3d-m/b1/fp32/throughput", "section": "models", "metric": "throughput", "value": 1.2,
             "unit": "videos/s", "model": "x3d-m", "batch": 1, "dtype": "fp32"}]
    bench = tmp_path / "cpu-results.json"
    bench.write_text(json.dumps({"schema": 1, "meta": meta, "rows": rows}))
    monkeypatch.setattr(zoo_folder, "bench_results_path", lambda: bench)
    card = render_zoo_card("x3d-m", complexities["x3d-m"])
    assert "metrics:\n- accuracy" in card and "| Kinetics-400 | val (19,761 videos) | 3×10 | 75.90 | 92.10 |" in card
    assert "| Test CPU (2 cores, 2 threads) | 1 | fp32 | 812.5 |" in card and "Not measured yet" not in card
    assert "run of 2026-11-24" in card
