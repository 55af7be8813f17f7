"""Where a model comes from: `resolve` a name or path to a source, `locate` its config and weights
file (downloading them through the Hub cache when needed), `attach` the weights to a built model.

Accepted references:

- a **zoo name** (`s2d.list_models()`, e.g. `"s2dnet-tsm-sthv2"`): the weights come from the repo
  zoo folder's `<name>/model.safetensors` (`zoo_dir()`) when that file exists, else from the Hugging Face Hub
  repo and pinned revision recorded in the zoo index (`s2d/hub/zoo_index.json`), through the Hub
  cache (`hf_hub_download`; `HF_HUB_OFFLINE=1` means cache only). Either way the file's sha256
  and size must match the index.
- **`hf-hub:org/repo[@revision]`**: any s2d model repo on the Hub (checked against the index when
  the repo and revision are the ones it pins).
- a **local folder** holding `config.json` + `model.safetensors` (what `model.save_pretrained(dir)`
  or `hf download <repo> --local-dir DIR` leaves); `local-dir:DIR` forces this reading. A folder named
  like a zoo model wins over the zoo model, with a logged notice naming both; `zoo:NAME` forces the zoo.

A zoo model's `config.json` (its folder's, or the Hub repo's at the pinned revision) is checked
against the index's `config_sha256` too: the weights compute what they were trained for only with the
config they were trained with.

Nothing here builds a model: `s2d.load` builds one from the located config (`s2d.hub.builder`), and
`Model.from_pretrained` builds its own class.
"""
from __future__ import annotations

import difflib
import logging
import os
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from s2d.hub._hf import download_command, hub_file
from s2d.hub._index import ZooEntry, load_index
from s2d.hub.cards import render_config
from s2d.hub.errors import ChecksumError, NoWeightsError, UnknownModelError, WeightsUnavailableError, ZooError
from s2d.hub.registry import MODELS, get_config
from s2d.hub.weights import CONFIG_NAME, WEIGHTS_NAME, config_from_file, load_file_into, read_config, sha256_bytes

if TYPE_CHECKING:
    from torch import nn

    from s2d.models.config import BaselineConfig, S2DConfig

logger = logging.getLogger(__name__)

#: Environment variable that points `zoo_dir()` somewhere else than the installed zoo folders.
ZOO_DIR_ENV = "S2D_ZOO_DIR"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_repo_id(text: str) -> bool:
    """Whether `text` has the form of a Hub repo id, `org/name`."""
    return bool(_REPO_ID.match(text))


def zoo_dir() -> Path:
    """The zoo folder: `$S2D_ZOO_DIR`, else the installed `s2d_zoo` package (the checkout's `zoo/`
    in an editable install, its copy with the bundled weights in a wheel)."""
    override = os.environ.get(ZOO_DIR_ENV)
    if override:
        return Path(override)
    return Path(resources.files("s2d_zoo"))


def known_names() -> list[str]:
    """Registered model names plus names that only exist in the zoo index."""
    return sorted(set(MODELS) | set(load_index()))


@dataclass
class WeightsSource:
    """Where a loaded model's weights came from (`model.weights_source`)."""

    #: "local" (a folder), "zoo" (zoo/<name>/), "hub" (Hugging Face cache / download), "bundled" (shipped in the
    #: zoo folder, missing)
    kind: str
    name: str | None = None  # zoo name, when loaded by name
    path: str | None = None  # the weights file (or folder, before loading)
    repo_id: str | None = None
    revision: str | None = None
    sha256: str | None = None  # the sha256 the zoo index records (None: not published under a name)
    size: int | None = None
    verified: bool = False  # the weights file matched the zoo index
    config_sha256: str | None = None  # the config.json sha256 the zoo index records (None: not recorded)
    config_verified: bool = False  # config.json matched the zoo index (False: unchecked, see config_sha256)
    commit: str | None = None  # the Hub commit the revision resolved to (Hub downloads)
    reinitialised: list[str] | None = None  # loaded onto new classes: the parameters that start fresh

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

    Order: explicit `local-dir:` / `zoo:` / `hf-hub:` prefixes; an existing folder (unless it is a bare
    zoo name whose folder holds no weights; a folder that shadows a zoo name is logged); a zoo name (its
    `zoo/<name>/` weights when present and `revision` is the pinned one, else its Hub repo); otherwise
    `UnknownModelError`.
    """
    if isinstance(name_or_path, os.PathLike):
        return WeightsSource("local", path=str(Path(name_or_path)))
    if not isinstance(name_or_path, str) or not name_or_path:
        raise UnknownModelError(f"expected a model name, hf-hub:org/repo or a folder, got {name_or_path!r}")
    spec = name_or_path
    if spec.startswith("local-dir:"):
        return WeightsSource("local", path=spec[len("local-dir:"):])
    if spec.startswith("zoo:"):
        name = spec[len("zoo:"):]
        if name not in known_names():
            raise UnknownModelError(f"{spec!r}: {name!r} is not a zoo model; known: {', '.join(known_names())}")
        return _resolve_name(name, revision)
    if spec.startswith("hf-hub:"):
        repo_id, rev = parse_hub_spec(spec)
        if rev and revision and rev != revision:
            raise ZooError(f"{spec!r} names revision {rev!r} but revision={revision!r} was passed; give one")
        rev = rev or revision  # None: the repo's main branch, checked after download if the index pins it
        name, entry = _entry_for_repo(repo_id, rev) if rev else (None, None)
        return WeightsSource("hub", name=name, repo_id=repo_id, revision=rev, sha256=entry.sha256 if entry else None,
                             size=entry.size if entry else None, config_sha256=entry.config_sha256 if entry else None)
    names = known_names()
    is_name = spec in names
    if os.path.isdir(spec) and not (is_name and not (Path(spec) / WEIGHTS_NAME).is_file()):
        if not is_name:
            return WeightsSource("local", path=spec)
        if Path(spec).resolve() != (zoo_dir() / spec).resolve():  # not the zoo folder itself (run from zoo/)
            logger.warning("loading the local folder ./%s, not the zoo model %s; pass zoo:%s for the zoo model, or "
                           "./%s to load the folder without this notice", spec, spec, spec, spec)
            return WeightsSource("local", path=spec)
    if is_name:
        return _resolve_name(spec, revision)
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


def _resolve_name(name: str, revision: str | None) -> WeightsSource:
    """A zoo name's source: its `zoo/<name>/` weights when present and `revision` is the pinned one, else
    its Hub repo (or its bundled file, reported missing when loaded)."""
    entry = load_index().get(name)
    pinned = revision is None or (entry is not None and revision == entry.revision)
    local = zoo_dir() / name / WEIGHTS_NAME
    checked = dict(sha256=entry.sha256, size=entry.size, config_sha256=entry.config_sha256) if entry and pinned else {}
    if pinned and local.is_file():
        return WeightsSource("zoo", name=name, path=str(local), repo_id=entry.repo_id if entry else None,
                             revision=entry.revision if entry else None, **checked)
    if entry is None:
        return WeightsSource("hub", name=name, revision=revision)  # no repo: pretrained loading refuses
    if entry.bundled:
        if revision is not None:
            raise ZooError(f"{name!r} ships with s2d (its zoo folder {name}/), it has no Hub revisions; "
                           f"got revision={revision!r}")
        return WeightsSource("bundled", name=name, path=str(local), **checked)
    return WeightsSource("hub", name=name, repo_id=entry.repo_id, revision=revision or entry.revision, **checked)


def _no_weights(name: str) -> NoWeightsError:
    return NoWeightsError(
        f"{name!r} has no published weights yet, so s2d.load refuses it (`python -m s2d zoo list` shows which "
        f"models have weights).\n"
        f"- untrained architecture: s2d.create({name!r}) or s2d.load({name!r}, pretrained=False)\n"
        f"- train it: `python -m s2d train --help`\n"
        f"- ImageNet / Kinetics backbone initialisation: `python -m s2d convert --help`\n"
        f"- weights you trained: s2d.load('path/to/folder'), or put model.safetensors in "
        f"{_display_path(zoo_dir() / name)}/")


@dataclass
class Located:
    """A model found but not built: its config and, for pretrained loading, the weights file with
    how to describe it in messages (`label`) and how to repair it when it fails its checks (`fix`)."""

    config: "S2DConfig | BaselineConfig"
    source: WeightsSource
    weights: str | None = None  # None: the architecture only
    label: str = "weights"
    fix: str = ""


def locate(name_or_path: str | os.PathLike, *, pretrained: bool = True, revision: str | None = None,
           force_download: bool = False, token: str | bool | None = None,
           cache_dir: str | os.PathLike | None = None, local_files_only: bool = False) -> Located:
    """The config of `name_or_path` and, when `pretrained`, its weights file, fetched into the Hub
    cache when it lives on the Hub (the keyword arguments are `hf_hub_download`'s). Checks that
    need no model happen here: missing folders, files and published weights raise a `ZooError`."""
    src = resolve(name_or_path, revision)
    if src.kind == "local":
        folder = Path(src.path).expanduser()
        if not folder.is_dir():
            raise UnknownModelError(f"{folder}: no such folder")
        located = Located(read_config(folder), src, label=str(folder))
        if pretrained:
            path = folder / WEIGHTS_NAME
            if not path.is_file():
                raise NoWeightsError(f"{folder} has {CONFIG_NAME} but no {WEIGHTS_NAME}. Download the weights into "
                                     f"it (`hf download <repo> --local-dir {folder}`), or load the untrained "
                                     f"architecture with pretrained=False.")
            located.weights = src.path = str(path)
        return located
    if src.kind in ("zoo", "bundled"):
        folder = Path(src.path).parent
        path = folder / CONFIG_NAME
        config = config_from_file(path) if path.is_file() else get_config(src.name)
        located = Located(config, src)
        if pretrained:
            located.weights = src.path
            located.label, located.fix = _zoo_checks(src, _display_path(folder))
            # without the file, the registered config is what the weights get: check it as its file would be
            text = path.read_bytes() if path.is_file() else render_config(config).encode()
            _verify_config(src, text, path if path.is_file() else f"the registered config of {src.name}",
                           located.label, located.fix)
        return located
    if src.repo_id is None and pretrained:
        raise _no_weights(src.name)
    if src.name in MODELS and not pretrained and (src.repo_id is None or revision is None):
        return Located(get_config(src.name), src)  # the registry is the architecture's source of truth
    return _locate_on_hub(src, pretrained=pretrained, force_download=force_download, token=token,
                          cache_dir=cache_dir, local_files_only=local_files_only)


_RESTORE_BUNDLED = ("To restore the shipped file, reinstall s2d (pip install --force-reinstall --no-deps s2d) or, "
                    "in a checkout, git checkout -- zoo/")


def _zoo_checks(src: WeightsSource, local_dir: str) -> tuple[str, str]:
    """(label, fix) of a zoo folder's weights; a bundled file that is missing is refused here."""
    if src.kind == "bundled":
        if not Path(src.path).is_file():
            raise WeightsUnavailableError(
                f"{src.name!r}: its weights ship with s2d as {local_dir}/{WEIGHTS_NAME}, and there is no such "
                f"file. Reinstall s2d (pip install --force-reinstall --no-deps s2d; in a checkout: git checkout -- "
                f"zoo/{src.name}), or unset ${ZOO_DIR_ENV} if it points elsewhere.")
        return src.name, _RESTORE_BUNDLED
    if src.repo_id:
        fix = (f"If you put your own weights or config there, load them by path: s2d.load({local_dir!r}). To restore "
               f"the published file: {download_command(src.repo_id, src.revision, local_dir)} --force-download")
    elif src.sha256:  # bundled with the package
        fix = (f"If you put your own weights or config there, load them by path: s2d.load({local_dir!r}). "
               f"{_RESTORE_BUNDLED}")
    else:
        fix = ""
    return (f"{src.name}@{src.revision}" if src.revision else src.name), fix


def _locate_on_hub(src: WeightsSource, *, pretrained: bool, force_download: bool, token: str | bool | None,
                   cache_dir: str | os.PathLike | None, local_files_only: bool) -> Located:
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
    located = Located(config_from_file(config_path), src)
    if pretrained:
        weights = hub_file(src.repo_id, WEIGHTS_NAME, **kwargs)
        snapshot = Path(weights).parent.name  # the cache stores files under snapshots/<commit>/
        src.commit = snapshot if re.fullmatch(r"[0-9a-f]{40}", snapshot) else None
        if src.sha256 is None and src.commit is not None:  # a branch that points at a pinned commit
            _, entry = _entry_for_repo(src.repo_id, src.commit)
            if entry is not None:
                src.sha256, src.size, src.config_sha256 = entry.sha256, entry.size, entry.config_sha256
        rev = f" --revision {src.revision}" if src.revision else ""
        where = f"{src.repo_id}@{src.revision or 'main'}"
        located.weights = src.path = weights
        located.label = f"{src.name} ({where})" if src.name else where
        located.fix = (f"Re-download it: hf download {src.repo_id} {WEIGHTS_NAME}{rev} --force-download "
                       f"(or drop the cached copy: hf cache rm model/{src.repo_id}).")
        _verify_config(src, Path(config_path).read_bytes(), config_path, located.label,
                       f"Re-download it: hf download {src.repo_id} {CONFIG_NAME}{rev} --force-download.")
    return located


def _verify_config(src: WeightsSource, data: bytes, where: str | Path, label: str, fix: str) -> None:
    """`ChecksumError` when the config's bytes differ from the sha256 the zoo index records (the weights
    are only right with the values they were trained with); a logged notice when the index records none
    for verified weights, which then are all that is verified."""
    if src.config_sha256 is None:
        if src.sha256 is not None:
            logger.warning("%s: the zoo index records no config sha256 for %s; only its weights are verified, not "
                           "%s", label, label, where)
        return
    actual = sha256_bytes(data)
    if actual != src.config_sha256:
        raise ChecksumError(f"sha256 mismatch for {where} ({label}):\n  expected {src.config_sha256}\n  got      "
                            f"{actual}\nThe config was edited or is not the published one; the weights compute what "
                            f"they were trained for only with the config they were trained with.\n{fix}")
    src.config_verified = True


def attach(model: "nn.Module", located: Located, *, strict: bool = True,
           device: str | torch.device | None = None, trained_for: "S2DConfig | BaselineConfig | None" = None
           ) -> "nn.Module":
    """Load the located weights (if any) into `model`, built from `located.config` (or, onto other
    classes, from `trained_for` with its classes changed: see `s2d.hub.transfer`): checksum, strict load,
    `model.weights_source` recorded (None without weights); then eval mode, on `device`."""
    src = located.source if located.weights is not None else None
    if src is not None:
        renewed = load_file_into(model, located.weights, strict=strict, expected_sha256=src.sha256,
                                 expected_size=src.size, source=located.label, fix=located.fix,
                                 trained_for=trained_for)
        src.reinitialised = renewed if trained_for is not None else None
        src.verified = src.sha256 is not None
        if src.size is None:
            src.size = Path(located.weights).stat().st_size
    model.weights_source = src
    model.eval()
    if device is not None:
        model.to(device)
    return model
