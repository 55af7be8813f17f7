"""The Hugging Face Hub side of s2d models: downloads with clear errors, and saving and uploading.

`hub_file` fetches one file of a model repo through the Hub cache (honouring `HF_HUB_OFFLINE`)
and turns every Hub failure into a `ZooError` that says what to run. `save_model` writes a model
folder (`config.json`, `model.safetensors`, a model card) and `push_model` uploads one; they are
the models' `save_pretrained` and `push_to_hub`.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s2d.hub.errors import HubError, WeightsUnavailableError, ZooError
from s2d.hub.weights import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, save_weights
from s2d.io.files import atomic_write_text

if TYPE_CHECKING:
    from torch import nn


# -- downloads -------------------------------------------------------------------------------------

def offline_mode() -> bool:
    """True when `HF_HUB_OFFLINE` is set, read now (the environment) or at import (huggingface_hub)."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE", "")
    return bool(constants.HF_HUB_OFFLINE) or value.upper() in {"1", "ON", "YES", "TRUE"}


def download_command(repo_id: str, revision: str | None, local_dir: str) -> str:
    """The `hf download` command line that fetches a model repo into `local_dir`."""
    rev = f" --revision {revision}" if revision else ""
    return f"hf download {repo_id}{rev} --local-dir {local_dir}"


_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


def hub_unreachable(endpoint: str | None = None, timeout: float = 5.0) -> str | None:
    """Why the Hub endpoint cannot be reached (name resolution, refused connection, timeout), or None.

    One TCP connection, no retries: huggingface_hub retries connection errors with backoff (tens of
    seconds) before giving up, which offline is only a delay in front of the real error. Behind a
    proxy the endpoint is not contacted directly, so nothing is probed.
    """
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return None
    url = urlsplit(endpoint or constants.ENDPOINT)
    if not url.hostname:
        return None
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return None
    except OSError as err:
        return f"{url.hostname}:{port}: {err.strerror or err}"


def hub_file(repo_id: str, filename: str, *, revision: str | None, local_dir_hint: str, then: str = "",
             force_download: bool = False, token: str | bool | None = None,
             cache_dir: str | Path | None = None, local_files_only: bool = False) -> str:
    """Path of `filename` from the Hub cache, downloading it when needed (`hf_hub_download`).

    Honours `HF_HUB_OFFLINE` (cache only). Hub errors become `ZooError`s; when the file is neither
    cached nor reachable the message gives the `hf download` command that fetches it, with
    `local_dir_hint` as its `--local-dir`, followed by `then` (how to load the folder).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    offline = local_files_only or offline_mode()
    unreachable = None if offline else hub_unreachable()
    where = f"{repo_id}@{revision or 'main'}"
    try:
        return hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir, token=token,
                               force_download=force_download, local_files_only=offline or unreachable is not None)
    except LocalEntryNotFoundError as err:
        if offline_mode():
            why = "downloads are disabled (HF_HUB_OFFLINE=1)"
            retry = "Or unset HF_HUB_OFFLINE to download into the cache."
        elif offline:
            why, retry = "local_files_only=True forbids downloads", "Or allow downloads (local_files_only=False)."
        else:
            why, retry = (f"the Hub cannot be reached ({unreachable or err.__cause__ or err})",
                          "Or retry once the Hub is reachable.")
        raise WeightsUnavailableError(
            f"{filename} of {where} is not in the Hugging Face cache and {why}.\n"
            f"Fetch the model on a machine with internet access:\n"
            f"    {download_command(repo_id, revision, local_dir_hint)}\n"
            f"(with huggingface_hub < 0.34 the command is `huggingface-cli download` with the same arguments)"
            f"{', then ' + then if then else ''}.\n{retry}") from None
    except GatedRepoError as err:
        raise HubError(f"{where} is gated: accept its conditions on the Hub and log in (`hf auth login`).\n{err}") \
            from None
    except RepositoryNotFoundError as err:
        raise HubError(f"Hub repo {repo_id!r} not found, or private without a valid token (`hf auth login`).\n{err}") \
            from None
    except RevisionNotFoundError as err:
        raise HubError(f"revision {revision!r} does not exist in {repo_id}.\n{err}") from None
    except EntryNotFoundError as err:
        raise HubError(f"{where} has no file {filename!r}: it is not an s2d model repo, or the weights were never "
                       f"uploaded.\n{err}") from None
    except HfHubHTTPError as err:
        raise HubError(f"the Hub refused {filename} of {where}: {err}") from None
    except OSError as err:  # size consistency check, disk full, permissions
        raise ZooError(f"downloading {filename} of {where} failed: {err}\n"
                       f"Retry with `hf download {repo_id} {filename}"
                       f"{' --revision ' + revision if revision else ''} --force-download`.") from None


# -- saving and uploading ------------------------------------------------------------------------

def model_card(model: "nn.Module", *, name: str | None = None, repo_id: str | None = None) -> str:
    """The s2d model card of `model`, with parameters and GMACs measured on it."""
    import torch

    from s2d.hub.cards import render_model_card
    from s2d.models.flops import measure

    device = next(model.parameters()).device
    c = model.config
    frames = torch.zeros(1, c.dense_frames, 3, c.dense_size, c.dense_size, dtype=torch.uint8, device=device)
    source = getattr(model, "weights_source", None)
    name = name or (source.name if source is not None else None)
    return render_model_card(c, name=name, repo_id=repo_id, has_weights=True, complexity=measure(model, frames))


def save_model(model: "nn.Module", save_directory: str | Path, *, config: Any = None, repo_id: str | None = None,
               push_to_hub: bool = False, model_card_kwargs: dict[str, Any] | None = None, card: bool = True,
               **push_to_hub_kwargs: Any) -> str | None:
    """Write `config.json`, `model.safetensors` and (when `card`, unless a README.md exists) the
    model card to a folder, which `s2d.load(folder)` reads back; with `push_to_hub`, upload it to
    `repo_id` (default: the folder's name) and return the commit URL.

    `config` must be the model's own config when given: the architecture is always described by
    `model.config`, so that the weights and config.json agree.
    """
    if config is not None and _config_dict(config) != model.config.to_dict():
        raise ValueError("save_pretrained(config=...) differs from the model's own config; s2d always saves "
                         "model.config so that the weights and config.json agree")
    from huggingface_hub import ModelCard

    save_directory = Path(save_directory)
    save_directory.mkdir(parents=True, exist_ok=True)
    # every file is written to an exclusive temporary beside it and renamed into place (s2d.io.files):
    # nothing planted at a temporary name or at the final one (a symlink) is ever written through
    save_weights(model, save_directory / WEIGHTS_NAME)
    atomic_write_text(save_directory / CONFIG_NAME, model.config.to_json() + "\n")
    model_card_kwargs = dict(model_card_kwargs or {})
    if card and not os.path.lexists(save_directory / CARD_NAME):
        atomic_write_text(save_directory / CARD_NAME, str(ModelCard(model_card(model, **model_card_kwargs))))
    if push_to_hub:
        return push_model(model, repo_id or save_directory.name, model_card_kwargs=model_card_kwargs,
                          **push_to_hub_kwargs)
    return None


def push_model(model: "nn.Module", repo_id: str, *, config: Any = None,
               commit_message: str = "Push model using huggingface_hub.", private: bool | None = None,
               token: str | None = None, branch: str | None = None, create_pr: bool | None = None,
               allow_patterns: list[str] | str | None = None, ignore_patterns: list[str] | str | None = None,
               delete_patterns: list[str] | str | None = None,
               model_card_kwargs: dict[str, Any] | None = None) -> str:
    """Upload config.json, model.safetensors and a model card naming `repo_id` in one commit
    (the repo is created if needed); returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id=repo_id, private=private, exist_ok=True).repo_id
    card_kwargs = {"repo_id": repo_id, **(model_card_kwargs or {})}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / repo_id
        save_model(model, folder, config=config, model_card_kwargs=card_kwargs)
        return api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=folder, commit_message=commit_message,
                                 revision=branch, create_pr=create_pr, allow_patterns=allow_patterns,
                                 ignore_patterns=ignore_patterns, delete_patterns=delete_patterns)


def _config_dict(config: Any) -> dict:
    if hasattr(config, "to_dict"):
        return config.to_dict()
    if isinstance(config, dict):
        return json.loads(json.dumps(config))
    from dataclasses import asdict
    return json.loads(json.dumps(asdict(config)))
