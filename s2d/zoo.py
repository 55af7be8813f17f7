"""Pretrained models: `s2d.load(name_or_path)` and the zoo of named models.

`load` accepts

- a **zoo name** (`s2d.list_models()`, e.g. `"s2dnet-tsm-sthv2"`): the weights come from the repo
  checkout's `zoo/<name>/model.safetensors` when that file exists, else from the Hugging Face Hub
  repo and pinned revision recorded in the zoo index (`s2d/zoo_index.json`), through the Hub
  cache (`hf_hub_download`; `HF_HUB_OFFLINE=1` means cache only). Either way the file's sha256
  and size must match the index.
- **`hf-hub:org/repo[@revision]`**: any s2d model repo on the Hub (checked against the index when
  the repo and revision are the ones it pins).
- a **local folder** holding `config.json` + `model.safetensors` (what `model.save_pretrained(dir)`
  or `hf download <repo> --local-dir DIR` leaves); `local-dir:DIR` forces this reading.

Loading is strict: every missing, unexpected or wrongly shaped key is named. Failures raise a
`ZooError` subclass whose message says what to run. The returned model is in eval mode, on
`device`, with its label names (`model.labels`) and `model.weights_source` (where the weights came
from: name, repo, revision, sha256, file).
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from s2d.hub import (CONFIG_NAME, WEIGHTS_NAME, ChecksumError, ConfigFileError, CorruptWeightsError, HubError,
                     NoWeightsError, UnknownModelError, WeightsMismatchError, WeightsUnavailableError, ZooError,
                     build_from_folder, config_from_file, download_command, hub_file, load_file_into, sha256_file)
from s2d.zoo_index import ZooEntry, load_index

__all__ = ["load", "resolve", "zoo_dir", "known_names", "zoo_status", "WeightsSource", "ZooError",
           "UnknownModelError", "NoWeightsError", "WeightsUnavailableError", "HubError", "ChecksumError",
           "CorruptWeightsError", "ConfigFileError", "WeightsMismatchError"]

#: Environment variable that points `zoo_dir()` somewhere else than the checkout's `zoo/`.
ZOO_DIR_ENV = "S2D_ZOO_DIR"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def zoo_dir() -> Path:
    """The zoo folder: `$S2D_ZOO_DIR`, else `zoo/` beside the `s2d` package (a repo checkout)."""
    override = os.environ.get(ZOO_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "zoo"


def known_names() -> list[str]:
    """Registered model names plus names that only exist in the zoo index."""
    from s2d.registry import MODELS

    return sorted(set(MODELS) | set(load_index()))


@dataclass
class WeightsSource:
    """Where a loaded model's weights came from (`model.weights_source`)."""

    kind: str  # "local" (a folder), "zoo" (zoo/<name>/), "hub" (Hugging Face cache / download), "bundled" (zoo/<name>/ expected, missing)
    name: str | None = None  # zoo name, when loaded by name
    path: str | None = None  # the weights file (or folder, before loading)
    repo_id: str | None = None
    revision: str | None = None
    sha256: str | None = None  # the sha256 the zoo index records (None: not published under a name)
    size: int | None = None
    verified: bool = False  # the file matched the zoo index
    commit: str | None = None  # the Hub commit the revision resolved to (Hub downloads)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _display_path(path: Path) -> str:
    """`path` relative to the working directory when it lies below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def parse_hub_spec(spec: str) -> tuple[str, str | None]:
    """`hf-hub:org/repo[@rev]` → (repo_id, revision or None)."""
    body = spec[len("hf-hub:"):]
    repo_id, _, rev = body.partition("@")
    if not _REPO_ID.match(repo_id):
        raise UnknownModelError(f"{spec!r}: expected hf-hub:org/repo or hf-hub:org/repo@revision")
    return repo_id, (rev or None)


def _entry_for_repo(repo_id: str, revision: str) -> tuple[str | None, ZooEntry | None]:
    """The index entry (and its name) pinning `repo_id` at commit `revision`, if any."""
    for name, entry in load_index().items():
        if entry.repo_id == repo_id and revision == entry.revision:
            return name, entry
    return None, None


def resolve(name_or_path: str | os.PathLike, revision: str | None = None) -> WeightsSource:
    """Decide where `name_or_path` loads from, without touching the network or reading weights.

    Order: explicit `local-dir:` / `hf-hub:` prefixes; an existing folder (unless it is a bare zoo
    name whose folder holds no weights); a zoo name (its `zoo/<name>/` weights when present and
    `revision` is the pinned one, else its Hub repo); otherwise `UnknownModelError`.
    """
    if isinstance(name_or_path, os.PathLike):
        return WeightsSource("local", path=str(Path(name_or_path)))
    if not isinstance(name_or_path, str) or not name_or_path:
        raise UnknownModelError(f"expected a model name, hf-hub:org/repo or a folder, got {name_or_path!r}")
    spec = name_or_path
    if spec.startswith("local-dir:"):
        return WeightsSource("local", path=spec[len("local-dir:"):])
    if spec.startswith("hf-hub:"):
        repo_id, rev = parse_hub_spec(spec)
        if rev and revision and rev != revision:
            raise ZooError(f"{spec!r} names revision {rev!r} but revision={revision!r} was passed; give one")
        rev = rev or revision  # None: the repo's main branch, checked after download if the index pins it
        name, entry = _entry_for_repo(repo_id, rev) if rev else (None, None)
        return WeightsSource("hub", name=name, repo_id=repo_id, revision=rev,
                             sha256=entry.sha256 if entry else None, size=entry.size if entry else None)
    names = known_names()
    is_name = spec in names
    if os.path.isdir(spec) and not (is_name and not (Path(spec) / WEIGHTS_NAME).is_file()):
        return WeightsSource("local", path=spec)
    if is_name:
        entry = load_index().get(spec)
        pinned = revision is None or (entry is not None and revision == entry.revision)
        local = zoo_dir() / spec / WEIGHTS_NAME
        if pinned and local.is_file():
            return WeightsSource("zoo", name=spec, path=str(local), repo_id=entry.repo_id if entry else None,
                                 revision=entry.revision if entry else None, sha256=entry.sha256 if entry else None,
                                 size=entry.size if entry else None)
        if entry is None:
            return WeightsSource("hub", name=spec, revision=revision)  # no repo: pretrained loading refuses
        if entry.bundled:
            if revision is not None:
                raise ZooError(f"{spec!r} ships with the source tree (zoo/{spec}/), it has no Hub revisions; "
                               f"got revision={revision!r}")
            return WeightsSource("bundled", name=spec, path=str(local), sha256=entry.sha256, size=entry.size)
        return WeightsSource("hub", name=spec, repo_id=entry.repo_id, revision=revision or entry.revision,
                             sha256=entry.sha256 if pinned else None, size=entry.size if pinned else None)
    if os.sep in spec or "/" in spec or spec.startswith((".", "~")):
        if _REPO_ID.match(spec) and not os.path.exists(spec):
            raise UnknownModelError(f"{spec!r} is not a local folder. To load the Hub repo of that name, write "
                                    f"'hf-hub:{spec}'.")
        raise UnknownModelError(f"{spec!r}: no such folder (an s2d model folder holds {CONFIG_NAME} and "
                                f"{WEIGHTS_NAME})")
    close = difflib.get_close_matches(spec, names, n=3, cutoff=0.5)
    quoted = [repr(c) for c in close]
    listed = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else "".join(quoted)
    hint = f" Did you mean {listed}?" if close else ""
    raise UnknownModelError(f"unknown model {spec!r}.{hint} Known models: {', '.join(names)} "
                            f"(`python -m s2d zoo list`); also accepted: hf-hub:org/repo[@rev] or a folder.")


def _no_weights(name: str) -> NoWeightsError:
    return NoWeightsError(
        f"{name!r} has no published weights yet, so s2d.load refuses it (`python -m s2d zoo list` shows which "
        f"models have weights).\n"
        f"- untrained architecture: s2d.create({name!r}) or s2d.load({name!r}, pretrained=False)\n"
        f"- train it: `python -m s2d train --help`\n"
        f"- ImageNet / Kinetics backbone initialisation: `python -m s2d convert --help`\n"
        f"- weights you trained: s2d.load('path/to/folder'), or put model.safetensors in "
        f"{_display_path(zoo_dir() / name)}/")


def load(name_or_path: str | os.PathLike, *, pretrained: bool = True, revision: str | None = None,
         device: str | torch.device | None = None, strict: bool = True) -> nn.Module:
    """A model by zoo name, `hf-hub:org/repo[@rev]` or local folder, in eval mode on `device`.

    `pretrained=False` builds the architecture only (random init) from the same config.
    `revision` overrides the zoo index's pinned revision (no checksum is known for other
    revisions). `strict=False` loads what fits and warns about the rest; keep it True unless you
    are deliberately loading a partial checkpoint. Raises a `ZooError` subclass on any failure.
    """
    return _load(name_or_path, pretrained=pretrained, revision=revision, device=device, strict=strict)


def _load(name_or_path: str | os.PathLike, *, pretrained: bool, revision: str | None,
          device: str | torch.device | None, strict: bool, force_download: bool = False,
          token: str | bool | None = None, cache_dir: str | os.PathLike | None = None,
          local_files_only: bool = False) -> nn.Module:
    from s2d.registry import MODELS, build_model, get_config

    src = resolve(name_or_path, revision)
    if src.kind == "local":
        folder = Path(src.path).expanduser()
        if not folder.is_dir():
            raise UnknownModelError(f"{folder}: no such folder")
        model = build_from_folder(folder, weights=pretrained, strict=strict, source=str(folder))
        if pretrained:
            src.path = str(folder / WEIGHTS_NAME)
    elif src.kind == "zoo":
        folder = Path(src.path).parent
        local_dir = _display_path(folder)
        if src.repo_id:
            fix = (f"If you put your own weights there, load them by path: s2d.load({local_dir!r}). To restore the "
                   f"published file: {download_command(src.repo_id, src.revision, local_dir)} --force-download")
        elif src.sha256:  # bundled with the source tree
            fix = (f"If you put your own weights there, load them by path: s2d.load({local_dir!r}). To restore the "
                   f"shipped file: git checkout -- {local_dir}/{WEIGHTS_NAME}")
        else:
            fix = ""
        config = config_from_file(folder / CONFIG_NAME) if (folder / CONFIG_NAME).is_file() else get_config(src.name)
        model = build_model(config)
        if pretrained:
            load_file_into(model, src.path, strict=strict, expected_sha256=src.sha256, expected_size=src.size,
                           source=f"{src.name}@{src.revision}" if src.revision else src.name, fix=fix)
            src.verified = src.sha256 is not None
    elif src.kind == "bundled":
        folder = Path(src.path).parent
        config = config_from_file(folder / CONFIG_NAME) if (folder / CONFIG_NAME).is_file() else get_config(src.name)
        model = build_model(config)
        if pretrained:
            local_dir = _display_path(Path(src.path).parent)
            if not Path(src.path).is_file():
                raise WeightsUnavailableError(
                    f"{src.name!r}: its weights ship with the s2d source tree as {local_dir}/{WEIGHTS_NAME}, and "
                    f"this installation has no such file (a wheel carries no zoo/ folder). Use a source checkout "
                    f"(pip install -e .), or set ${ZOO_DIR_ENV} to a folder holding {src.name}/{WEIGHTS_NAME}.")
            load_file_into(model, src.path, strict=strict, expected_sha256=src.sha256, expected_size=src.size,
                           source=src.name, fix=f"Restore the file from the repository: git checkout -- {local_dir}")
            src.verified = True
    else:
        if src.repo_id is None and pretrained:
            raise _no_weights(src.name)
        if src.name in MODELS and not pretrained and (src.repo_id is None or revision is None):
            model = build_model(get_config(src.name))  # the registry is the architecture's source of truth
        else:
            model = _load_from_hub(src, pretrained=pretrained, strict=strict, force_download=force_download,
                                   token=token, cache_dir=cache_dir, local_files_only=local_files_only)
    if not pretrained:
        src = None
    elif src.size is None:
        src.size = Path(src.path).stat().st_size
    model.weights_source = src
    model.eval()
    if device is not None:
        model.to(device)
    return model


def _load_from_hub(src: WeightsSource, *, pretrained: bool, strict: bool, force_download: bool,
                   token: str | bool | None, cache_dir: str | os.PathLike | None, local_files_only: bool) -> nn.Module:
    from s2d.registry import build_model

    if src.name:
        hint = _display_path(zoo_dir() / src.name)
        then = (f"s2d.load({src.name!r}) reads it there (copy the folder to {hint} if you fetched it elsewhere)"
                if src.revision is None or src.sha256 is not None else f"load it with s2d.load({hint!r})")
    else:
        hint = src.repo_id.split("/")[1]
        then = f"load it with s2d.load({hint!r})"
    kwargs = dict(revision=src.revision, local_dir_hint=hint, then=then, force_download=force_download, token=token,
                  cache_dir=cache_dir, local_files_only=local_files_only)
    config_path = hub_file(src.repo_id, CONFIG_NAME, **kwargs)
    model = build_model(config_from_file(config_path))
    if pretrained:
        weights = hub_file(src.repo_id, WEIGHTS_NAME, **kwargs)
        snapshot = Path(weights).parent.name  # the cache stores files under snapshots/<commit>/
        src.commit = snapshot if re.fullmatch(r"[0-9a-f]{40}", snapshot) else None
        if src.sha256 is None and src.commit is not None:  # a branch that points at a pinned commit
            _, entry = _entry_for_repo(src.repo_id, src.commit)
            if entry is not None:
                src.sha256, src.size = entry.sha256, entry.size
        rev = f" --revision {src.revision}" if src.revision else ""
        fix = (f"Re-download it: hf download {src.repo_id} {WEIGHTS_NAME}{rev} --force-download "
               f"(or drop the cached copy: hf cache rm model/{src.repo_id}).")
        where = f"{src.repo_id}@{src.revision or 'main'}"
        load_file_into(model, weights, strict=strict, expected_sha256=src.sha256, expected_size=src.size,
                       source=f"{src.name} ({where})" if src.name else where, fix=fix)
        src.verified = src.sha256 is not None
        src.path = weights
    return model


@dataclass
class ZooStatus:
    """One row of `python -m s2d zoo list`."""

    name: str
    kind: str  # "s2dnet" or "baseline"
    published: ZooEntry | None  # index entry
    local: bool  # zoo/<name>/model.safetensors exists
    cached: bool  # the pinned weights are in the Hugging Face cache


def zoo_status() -> list[ZooStatus]:
    """Publication and local availability of every known model (no network access)."""
    from huggingface_hub import try_to_load_from_cache

    from s2d.registry import MODELS

    index = load_index()
    rows = []
    for name in known_names():
        entry = index.get(name)
        cached = False
        if entry is not None and not entry.bundled:
            hit = try_to_load_from_cache(entry.repo_id, WEIGHTS_NAME, revision=entry.revision)
            cached = isinstance(hit, str)
        kind = MODELS[name].kind if name in MODELS else "?"
        rows.append(ZooStatus(name, kind, entry, (zoo_dir() / name / WEIGHTS_NAME).is_file(), cached))
    return rows


@dataclass
class PublishResult:
    """What `publish` uploaded (or, in a dry run, would upload) and the index entry to record."""

    name: str
    repo_id: str
    files: list[str]
    sha256: str
    size: int
    revision: str | None = None  # the commit created on the Hub (None in a dry run)
    commit_url: str | None = None

    def entry(self) -> ZooEntry | None:
        """The zoo index entry (None in a dry run: there is no commit to pin yet)."""
        return ZooEntry(self.repo_id, self.revision, self.sha256, self.size) if self.revision else None


def _stage_weights(name: str, weights: str | os.PathLike | None, config, dest: Path) -> None:
    """Copy (or convert) the weights to publish into `dest`, after a strict load into `config`'s model."""
    import shutil

    from s2d.convert import load_checkpoint_file
    from s2d.hub import load_weights, read_weights, save_weights
    from s2d.registry import build_model

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
        shutil.copyfile(path, dest)
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

    from s2d.cards import measure_config, read_eval, render_config, render_zoo_card
    from s2d.registry import MODELS, get_config
    from s2d.zoo_index import record_entry

    if name not in MODELS:
        raise UnknownModelError(f"{name!r} is not a registered model; publish registered names only "
                                f"({', '.join(sorted(MODELS))})")
    if not _REPO_ID.match(repo_id):
        raise ZooError(f"--repo-id must be 'org/name', got {repo_id!r}")
    config = get_config(name)
    with tempfile.TemporaryDirectory(prefix=f"s2d-publish-{name}-") as tmp:
        stage = Path(tmp)
        _stage_weights(name, weights, config, stage / WEIGHTS_NAME)
        (stage / CONFIG_NAME).write_text(render_config(config), encoding="utf-8")
        (stage / "README.md").write_text(render_zoo_card(name, measure_config(config), repo_id=repo_id),
                                         encoding="utf-8")
        if read_eval(name) is not None:
            (stage / "eval.json").write_bytes((zoo_dir() / name / "eval.json").read_bytes())
        result = PublishResult(name, repo_id, sorted(p.name for p in stage.iterdir()),
                               sha256_file(stage / WEIGHTS_NAME), (stage / WEIGHTS_NAME).stat().st_size)
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
