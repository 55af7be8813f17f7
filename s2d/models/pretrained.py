"""`save_pretrained`, `push_to_hub` and `from_pretrained` on s2d models.

The methods only forward: `s2d.hub._hf` saves and uploads, `s2d.hub._sources` finds and fetches. Neither
imports a model class, so the model modules import nothing of the loading layer when they load;
it is imported on first use of a method.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

_M = TypeVar("_M", bound="PretrainedMixin")


class PretrainedMixin:
    """Hub methods for s2d models (`S2DNet`, `VideoClassifier`), all on a folder or Hub repo of
    `config.json` (= `config.to_dict()`) + `model.safetensors` (+ a model card `README.md`)."""

    #: The `config.kind` this class is built from; `from_pretrained` refuses other kinds.
    config_kind: str = ""

    def save_pretrained(self, save_directory: str | Path, *, config: Any = None, repo_id: str | None = None,
                        push_to_hub: bool = False, model_card_kwargs: dict[str, Any] | None = None,
                        card: bool = True, **push_to_hub_kwargs: Any) -> str | None:
        """Save `config.json`, `model.safetensors` and (when `card`) a model card `README.md` to a
        folder, which `s2d.load(folder)` reads back; an existing README.md is left alone. With
        `push_to_hub`, also upload it (see `push_to_hub`). `config`, when given, must be this
        model's config: the architecture is always described by `self.config`."""
        from s2d.hub._hf import save_model

        return save_model(self, save_directory, config=config, repo_id=repo_id, push_to_hub=push_to_hub,
                          model_card_kwargs=model_card_kwargs, card=card, **push_to_hub_kwargs)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Upload config.json, model.safetensors and a model card naming `repo_id` to the Hub
        (creates the repo if needed; returns the commit URL). Keyword arguments are those of
        `huggingface_hub.ModelHubMixin.push_to_hub` (`commit_message`, `private`, `token`,
        `branch`, `create_pr`, ...). Record the commit and sha256 in the zoo index to publish it
        under a name (`python -m s2d zoo publish` does both)."""
        from s2d.hub._hf import push_model

        return push_model(self, repo_id, **kwargs)

    @classmethod
    def from_pretrained(cls: type[_M], pretrained_model_name_or_path: str | Path, *, force_download: bool = False,
                        token: str | bool | None = None, cache_dir: str | Path | None = None,
                        local_files_only: bool = False, revision: str | None = None, map_location: str = "cpu",
                        strict: bool = True, **model_kwargs: Any) -> _M:
        """Load a pretrained model of this class from anything `s2d.load` accepts (zoo name,
        `hf-hub:org/repo[@rev]`, local folder): strict, checksummed, eval mode, on `map_location`.
        The stored config must describe this class."""
        from s2d.hub._sources import attach, locate
        from s2d.hub.errors import ZooError

        if model_kwargs:
            raise TypeError(f"unexpected arguments {sorted(model_kwargs)}: the architecture comes from config.json")
        located = locate(pretrained_model_name_or_path, revision=revision, force_download=force_download,
                         token=token, cache_dir=cache_dir, local_files_only=local_files_only)
        kind = located.config.kind
        if kind != cls.config_kind:
            raise ZooError(f"{pretrained_model_name_or_path} holds a model of config kind {kind!r}, not a "
                           f"{cls.__name__}; load it with s2d.load()")
        return attach(cls(located.config), located, strict=strict, device=map_location)
