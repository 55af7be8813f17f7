"""Publishing a zoo model: `python -m s2d zoo publish NAME --repo-id ORG/REPO`.

The weights are checked by a strict load into the registered architecture, uploaded with the
config and a freshly rendered card in one Hub commit, and that commit, with the file's sha256 and
size and the config's sha256, is what the zoo index records so that `s2d.load(NAME)` fetches exactly
these weights and checks them and their config.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from s2d.hub import zoo_folder
from s2d.hub._index import ZooEntry, record_entry
from s2d.hub._sources import is_repo_id, zoo_dir
from s2d.hub.builder import build_model
from s2d.hub.cards import render_config
from s2d.hub.errors import HubError, NoWeightsError, UnknownModelError, ZooError
from s2d.hub.registry import MODELS, get_config
from s2d.hub.weights import (CONFIG_NAME, WEIGHTS_NAME, config_from_file, load_weights, read_weights, save_weights,
                             sha256_bytes, sha256_file)
from s2d.io.files import atomic_copy, atomic_write_text


@dataclass
class PublishResult:
    """What `publish` uploaded (or, in a dry run, would upload) and the index entry to record."""

    name: str
    repo_id: str
    files: list[str]
    sha256: str
    size: int
    config_sha256: str  # of the uploaded config.json, recorded so that loading checks the config too
    revision: str | None = None  # the commit created on the Hub (None in a dry run)
    commit_url: str | None = None

    def entry(self) -> ZooEntry | None:
        """The zoo index entry (None in a dry run: there is no commit to pin yet)."""
        if not self.revision:
            return None
        return ZooEntry(self.repo_id, self.revision, self.sha256, self.size, config_sha256=self.config_sha256)


def _stage_weights(name: str, weights: str | os.PathLike | None, config, dest: Path) -> None:
    """Copy (or convert) the weights to publish into `dest`, after a strict load into `config`'s model."""
    from s2d.hub.convert import load_checkpoint_file

    path = Path(weights) if weights is not None else zoo_dir() / name / WEIGHTS_NAME
    if path.is_dir():
        folder_config = config_from_file(path / CONFIG_NAME) if (path / CONFIG_NAME).is_file() else config
        if folder_config.to_dict() != config.to_dict():
            raise ZooError(f"{path / CONFIG_NAME} describes another architecture than {name!r}; publish weights "
                           f"trained for the registered config")
        path = path / WEIGHTS_NAME
    if not path.is_file():
        raise NoWeightsError(f"nothing to publish for {name!r}: {path} does not exist (pass --weights PATH)")
    model = build_model(config)
    if path.suffix == ".safetensors":
        load_weights(model, read_weights(path), strict=True, source=str(path))
        atomic_copy(path, dest)
    else:  # a torch checkpoint, read weights-only, re-saved as safetensors
        load_weights(model, load_checkpoint_file(path), strict=True, source=str(path))
        save_weights(model, dest)


def publish(name: str, repo_id: str, *, weights: str | os.PathLike | None = None, dry_run: bool = False,
            private: bool | None = None, token: str | None = None, record: bool = False) -> PublishResult:
    """Upload a zoo model to the Hub: `config.json`, the model card and `model.safetensors`.

    The weights (`weights`: a .safetensors file, a torch checkpoint or a model folder; default
    `zoo/<name>/model.safetensors`) must load strictly into the registered architecture. The card is
    rendered for `repo_id` with freshly measured figures. With `dry_run`, nothing leaves the machine.
    Otherwise the repo is created if needed and the folder uploaded in one commit, whose hash,
    with the file's sha256 and size, is what the zoo index must record (`record=True` writes it).
    """
    import tempfile

    from huggingface_hub import HfApi

    if name not in MODELS:
        raise UnknownModelError(f"{name!r} is not a registered model; publish registered names only "
                                f"({', '.join(sorted(MODELS))})")
    if not is_repo_id(repo_id):
        raise ZooError(f"--repo-id must be 'org/name', got {repo_id!r}")
    config = get_config(name)
    with tempfile.TemporaryDirectory(prefix=f"s2d-publish-{name}-") as tmp:
        stage = Path(tmp)
        _stage_weights(name, weights, config, stage / WEIGHTS_NAME)
        config_text = render_config(config)
        atomic_write_text(stage / CONFIG_NAME, config_text)
        atomic_write_text(stage / "README.md",
                          zoo_folder.render_zoo_card(name, zoo_folder.measure_config(config), repo_id=repo_id))
        if zoo_folder.read_eval(name) is not None:
            atomic_copy(zoo_dir() / name / "eval.json", stage / "eval.json")
        result = PublishResult(name, repo_id, sorted(p.name for p in stage.iterdir() if not p.name.startswith(".")),
                               sha256_file(stage / WEIGHTS_NAME), (stage / WEIGHTS_NAME).stat().st_size,
                               sha256_bytes(config_text.encode("utf-8")))
        if dry_run:
            return result
        from huggingface_hub.errors import HfHubHTTPError

        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            commit = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(stage),
                                       commit_message=f"s2d: publish {name}")
        except HfHubHTTPError as err:
            raise HubError(f"upload to {repo_id} refused: {err}\nLog in with a token that may write to it "
                           f"(`hf auth login`, or --token).") from None
    result.revision = commit.oid
    result.commit_url = str(commit.commit_url) if getattr(commit, "commit_url", None) else None
    if record:
        record_entry(name, result.entry())
    return result
