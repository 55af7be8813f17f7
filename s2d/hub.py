"""Hugging Face Hub integration: the model mixin and the strict, checksummed loading behind `s2d.load`.

`S2DHubMixin` builds on `huggingface_hub.PyTorchModelHubMixin`, so every s2d model has
`save_pretrained(dir)`, `push_to_hub(repo_id)` and `Model.from_pretrained(name_or_path)`. A saved
model is a folder (or Hub repo) with

    config.json         the model config, `config.to_dict()` (its `kind` picks S2DNet or VideoClassifier)
    model.safetensors   the state dict (safetensors only, never pickles)
    README.md           a model card (see `s2d.cards`)

Two choices differ from the mixin's defaults, on purpose: loading is always strict (the mixin loads
with `strict=False`, which lets a wrong checkpoint pass silently), and every failure raises a
`ZooError` that says what is wrong and what to run to fix it.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin

from s2d.convert import CheckpointError, load_state_dict_strict

if TYPE_CHECKING:
    from torch import nn

    from s2d.config import BaselineConfig, S2DConfig

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
PAPER_URL = "https://arxiv.org/abs/2207.09429"
OFFICIAL_CODE_URL = "https://github.com/aliyun/Synopsis-to-Detail-Network"


# -- errors --------------------------------------------------------------------------------------

class ZooError(RuntimeError):
    """Any failure to find, fetch, verify or load model weights. The message says what to do."""


class UnknownModelError(ZooError):
    """A name that is neither a registered model, a zoo entry, a local directory nor `hf-hub:...`."""


class NoWeightsError(ZooError):
    """The model exists but no weights have been published for it."""


class WeightsUnavailableError(ZooError):
    """The weights are published but neither cached nor downloadable now (offline, no network)."""


class HubError(ZooError):
    """The Hub answered, but the repo, revision or file is missing or refused."""


class ChecksumError(ZooError):
    """A weights file whose sha256 or size differs from the one recorded in the zoo index."""


class CorruptWeightsError(ZooError):
    """A weights file that is not a readable safetensors file."""


class ConfigFileError(ZooError):
    """A missing or invalid `config.json`."""


class WeightsMismatchError(ZooError, CheckpointError):
    """Weights whose keys or shapes do not fit the model; the message names every key at fault."""


# -- files ---------------------------------------------------------------------------------------

_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, memoised per (path, size, mtime) so repeated loads hash once."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                digest.update(chunk)
        _SHA_MEMO[key] = digest.hexdigest()
    return _SHA_MEMO[key]


def verify_file(path: str | Path, sha256: str | None, size: int | None, *, source: str, fix: str) -> None:
    """Raise `ChecksumError` when `path` differs in size or sha256 from the expected values.

    `source` names what the file should be (model and revision), `fix` says how to repair it.
    """
    path = Path(path)
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ChecksumError(f"{path} has {actual_size:,} bytes, but the zoo index records {size:,} for {source}: "
                            f"the file is truncated or not the published one.\n{fix}")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256.lower():
            raise ChecksumError(f"sha256 mismatch for {path} ({source}):\n  expected {sha256}\n  got      {actual}\n"
                                f"The file is corrupted or not the published one.\n{fix}")


def read_config(folder: str | Path) -> "S2DConfig | BaselineConfig":
    """The model config stored in `folder/config.json` (written by `save_pretrained`)."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise ConfigFileError(f"{path}: no such file. An s2d model folder holds {CONFIG_NAME} and {WEIGHTS_NAME} "
                              "(what model.save_pretrained(dir) or `hf download <repo> --local-dir DIR` leaves).")
    return config_from_file(path)


def config_from_file(path: str | Path) -> "S2DConfig | BaselineConfig":
    """Parse a `config.json` file into an `S2DConfig` or `BaselineConfig`."""
    from s2d.config import ConfigError, config_from_dict

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigFileError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: expected a JSON object, got {type(data).__name__}")
    try:
        return config_from_dict(data)
    except (ConfigError, TypeError) as err:
        raise ConfigFileError(f"{path} is not a valid s2d model config: {err}") from err


def read_weights(path: str | Path, *, fix: str = "") -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file on CPU; `CorruptWeightsError` if it cannot be parsed."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ZooError(f"{path}: no such weights file")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        hint = f"\n{fix}" if fix else ""
        raise CorruptWeightsError(f"{path} is not a valid safetensors file ({err}); it is corrupted or truncated."
                                  f"{hint}") from err


def load_weights(model: "nn.Module", state: Mapping[str, torch.Tensor], *, strict: bool = True,
                 source: str = "checkpoint") -> None:
    """Load `state` into `model`. Strict: `WeightsMismatchError` naming every missing, unexpected
    and shape-mismatched key. Non-strict: load what fits and warn with the same list."""
    try:
        load_state_dict_strict(model, state, source)
    except CheckpointError as err:
        if strict:
            raise WeightsMismatchError(f"{err}\nThe weights do not belong to this architecture: check the "
                                       f"config.json next to them, or convert the checkpoint with "
                                       f"`python -m s2d convert`.") from None
        own = model.state_dict()
        fitting = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
        model.load_state_dict(fitting, strict=False)
        warnings.warn(f"loaded with strict=False; {len(own) - len(fitting)} model tensors keep their "
                      f"initial values.\n{err}", stacklevel=3)


def build_from_folder(folder: str | Path, *, weights: bool = True, strict: bool = True,
                      expected_sha256: str | None = None, expected_size: int | None = None,
                      source: str | None = None, fix: str = "") -> "nn.Module":
    """Model from a folder holding `config.json` (+ `model.safetensors` when `weights`)."""
    from s2d.registry import build_model

    folder = Path(folder)
    config = read_config(folder)
    model = build_model(config)
    if weights:
        path = folder / WEIGHTS_NAME
        if not path.is_file():
            raise NoWeightsError(f"{folder} has {CONFIG_NAME} but no {WEIGHTS_NAME}. Download the weights into it "
                                 f"(`hf download <repo> --local-dir {folder}`), or load the untrained architecture "
                                 f"with pretrained=False.")
        load_file_into(model, path, strict=strict, expected_sha256=expected_sha256, expected_size=expected_size,
                       source=source or str(folder), fix=fix)
    return model


def load_file_into(model: "nn.Module", path: str | Path, *, strict: bool = True, expected_sha256: str | None = None,
                   expected_size: int | None = None, source: str = "weights", fix: str = "") -> None:
    """Verify (when a checksum is known), read and strictly load a safetensors file into `model`."""
    if expected_sha256 is not None or expected_size is not None:
        verify_file(path, expected_sha256, expected_size, source=source, fix=fix)
    state = read_weights(path, fix=fix)
    check_finite(state, path)
    load_weights(model, state, strict=strict, source=f"{path} ({source})")


def check_finite(state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """`CorruptWeightsError` naming the tensors that hold NaN or infinity: such a model predicts
    NaN probabilities, so it is refused at load rather than discovered in the output."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CorruptWeightsError(f"{path}: {len(bad)} of {len(state)} tensors hold NaN or infinite values "
                                  f"({shown}); the weights are corrupted (a diverged training run?)")


def save_weights(model: "nn.Module", path: str | Path) -> None:
    """Write `model.state_dict()` as safetensors (CPU, contiguous; shared tensors are refused).
    A model from `optimize_for_inference` is refused: its folded weights fit no checkpoint layout."""
    from safetensors.torch import save_file

    if getattr(model, "inference_only", False):
        from s2d.optimize import InferenceOnlyError

        raise InferenceOnlyError("this model was optimised for inference (BatchNorm folded): save the original "
                                 "model's weights instead")

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})


# -- Hub downloads -------------------------------------------------------------------------------

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


# -- the mixin -------------------------------------------------------------------------------------

class S2DHubMixin(PyTorchModelHubMixin, library_name="s2d", pipeline_tag="video-classification",
                  license="apache-2.0", paper_url=PAPER_URL, repo_url=OFFICIAL_CODE_URL,
                  tags=["video-classification", "action-recognition", "s2d"]):
    """Hub methods for s2d models (`S2DNet`, `VideoClassifier`): `save_pretrained`, `push_to_hub`,
    `from_pretrained`, all on `config.json` (= `config.to_dict()`) + `model.safetensors`.

    `from_pretrained` accepts everything `s2d.load` does (zoo name, `hf-hub:org/repo[@rev]`, bare
    repo id, local folder), always loads strictly and returns the model in eval mode.
    """

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write `config.json` and `model.safetensors` (the mixin then adds the model card)."""
        save_directory = Path(save_directory)
        (save_directory / CONFIG_NAME).write_text(self.config.to_json() + "\n", encoding="utf-8")
        save_weights(self, save_directory / WEIGHTS_NAME)

    def save_pretrained(self, save_directory: str | Path, *, config: Any = None, repo_id: str | None = None,
                        push_to_hub: bool = False, model_card_kwargs: dict[str, Any] | None = None,
                        card: bool = True, **push_to_hub_kwargs: Any) -> str | None:
        """Save `config.json`, `model.safetensors` and (when `card`) a model card `README.md` to a
        folder, which `s2d.load(folder)` reads back. An existing README.md is left alone.

        `config` is accepted for the mixin's interface but must be this model's config: the
        architecture is always described by `self.config`.
        """
        if config is not None and _config_dict(config) != self.config.to_dict():
            raise ValueError("save_pretrained(config=...) differs from the model's own config; s2d always saves "
                             "model.config so that the weights and config.json agree")
        save_directory = Path(save_directory)
        if not card:  # a placeholder stops the mixin from rendering a card; removed right after
            save_directory.mkdir(parents=True, exist_ok=True)
            placeholder = not (save_directory / CARD_NAME).exists()
            if placeholder:
                (save_directory / CARD_NAME).write_text("", encoding="utf-8")
            try:
                return super().save_pretrained(save_directory, repo_id=repo_id, push_to_hub=push_to_hub,
                                               model_card_kwargs=model_card_kwargs, **push_to_hub_kwargs)
            finally:
                if placeholder:
                    (save_directory / CARD_NAME).unlink(missing_ok=True)
        return super().save_pretrained(save_directory, repo_id=repo_id, push_to_hub=push_to_hub,
                                       model_card_kwargs=model_card_kwargs, **push_to_hub_kwargs)

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The s2d model card for this model's config, with parameters and GMACs measured on it."""
        from s2d.cards import render_model_card
        from s2d.flops import measure

        device = next(self.parameters()).device
        c = self.config
        frames = torch.zeros(1, c.dense_frames, 3, c.dense_size, c.dense_size, dtype=torch.uint8, device=device)
        source = getattr(self, "weights_source", None)
        name = kwargs.get("name") or (source.name if source is not None else None)
        return ModelCard(render_model_card(c, name=name, repo_id=kwargs.get("repo_id"), has_weights=True,
                                           complexity=measure(self, frames)))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *, force_download: bool = False,
                        token: str | bool | None = None, cache_dir: str | Path | None = None,
                        local_files_only: bool = False, revision: str | None = None, map_location: str = "cpu",
                        strict: bool = True, **model_kwargs: Any):
        """Load a pretrained model (see `s2d.load`): strict, checksummed, eval mode, on `map_location`.

        Called on `S2DNet` or `VideoClassifier`, the stored config must describe that class;
        called on the mixin itself, any s2d model loads.
        """
        if model_kwargs:
            raise TypeError(f"unexpected arguments {sorted(model_kwargs)}: the architecture comes from config.json")
        from s2d.zoo import _load

        model = _load(pretrained_model_name_or_path, pretrained=True, revision=revision, device=map_location,
                      strict=strict, force_download=force_download, token=token, cache_dir=cache_dir,
                      local_files_only=local_files_only)
        if not isinstance(model, cls):
            raise ZooError(f"{pretrained_model_name_or_path} holds a {type(model).__name__} "
                           f"(config kind {model.config.kind!r}), not a {cls.__name__}; load it with s2d.load()")
        return model

    def push_to_hub(self, repo_id: str, *, model_card_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> str:
        """Upload config.json, model.safetensors and a model card naming `repo_id` to the Hub
        (creates the repo if needed; returns the commit URL). Record the commit and sha256 in the
        zoo index to publish it under a name (`python -m s2d zoo publish` does both)."""
        card_kwargs = {"repo_id": repo_id, **(model_card_kwargs or {})}
        return super().push_to_hub(repo_id, model_card_kwargs=card_kwargs, **kwargs)


def _config_dict(config: Any) -> dict:
    if hasattr(config, "to_dict"):
        return config.to_dict()
    if isinstance(config, dict):
        return json.loads(json.dumps(config))
    from dataclasses import asdict
    return json.loads(json.dumps(asdict(config)))
