"""Pooled features for downstream work: one safetensors file per video (`predict --features DIR`).

`predict_many(model, videos, features=True)` fills `Prediction.features` with each video's pooled
features (float32, `[E]`): for S2DNet the synopsis net's `synopsis` (g, its backbone averaged over
time) and the detail net's `detail` (its backbone on V̂, averaged over time, before dropout); for a
single-network baseline its `backbone`. A forward pass sees each video alone (no batch statistics
in eval), so the features do not depend on the batch size, the worker count or the world size
beyond float rounding.

`write_features(folder, prediction, model=identity, config=...)` writes them as
`<stem>-<hash>.safetensors`: the file stem (made safe) and 12 hex digits of the sha256 of the video's
path key (`s2d.inference.results.path_key`), so two videos with one stem, or odd bytes in a name,
get distinct files, and the same video always the same one. The safetensors metadata holds what a
temporal-localisation user needs to place the features in the video: the path, the model, the
frames read, the clip's dense frames, the synopsis and detail frames, and the sampling window
(`centre_t`, `stride_t` in frames of the dense clip). Files are written atomically
(`s2d.io.files.atomic_write`); a file of that name holding another video's or another model's
features is never replaced (`FeaturesConflictError`).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from torch import nn

from s2d.inference.predict import Prediction
from s2d.inference.results import path_key
from s2d.io.files import atomic_write

__all__ = ["FEATURES_FORMAT", "FeaturesConflictError", "check_features", "features_name", "read_features",
           "supports_features", "write_features"]

#: The `format` entry of every features file's metadata.
FEATURES_FORMAT = "s2d-features/1"
#: Characters kept from a video's stem in its features file name (others become "_").
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FeaturesConflictError(ValueError):
    """A features file of the wanted name already holds another video's or another model's features."""


def supports_features(model: nn.Module) -> bool:
    """Whether `model`'s forward can return pooled features (`return_features=`); an exported graph cannot."""
    try:
        return "return_features" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def features_name(video: str | os.PathLike) -> str:
    """The features file name of `video`: its stem made safe (at most 60 characters) and 12 hex digits of
    the sha256 of its path key, so that distinct videos never share a name."""
    key = path_key(video)
    stem = _UNSAFE.sub("_", Path(os.fsdecode(key)).stem.encode("ascii", "replace").decode()).strip("._")[:60]
    digest = hashlib.sha256(os.fsencode(key)).hexdigest()[:12]
    return f"{stem or 'video'}-{digest}.safetensors"


def _key_text(video: str | os.PathLike) -> str:
    """The path key of `video` as metadata text (UTF-8; undecodable bytes as backslash escapes)."""
    return os.fsencode(path_key(video)).decode("utf-8", "backslashreplace")


def _metadata(pred: Prediction, model: str, config: Any) -> dict[str, str]:
    """The safetensors metadata of one video's features (all values are strings)."""
    meta = {"format": FEATURES_FORMAT, "path": _key_text(pred.path), "model": model, "num_frames": str(pred.num_frames),
            "dense_frames": str(config.dense_frames), "kind": str(config.kind)}
    if config.kind == "s2dnet":
        meta.update(synopsis_frames=str(config.synopsis.frames), detail_frames=str(config.sampler.frames))
    else:
        meta["frames"] = str(config.frames)
    if pred.sampling is not None:
        meta["sampling"] = json.dumps(pred.sampling)
    return meta


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a features file (its header only); ValueError when it is not a safetensors file."""
    from safetensors import safe_open

    try:
        with safe_open(os.fspath(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as err:  # noqa: BLE001 - any unreadable header: not our file
        raise ValueError(f"{path}: not a safetensors file ({err})") from None


def read_features(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, str]]:
    """A features file's tensors (name -> float32 `[E]`) and metadata."""
    from safetensors.torch import load_file

    return load_file(os.fspath(path)), read_metadata(path)


def _conflict(target: Path, key: str, model: str) -> str | None:
    """Why `target` may not be written with `key`'s features of `model` (None: absent, or a redo of the same)."""
    if not target.exists() and not target.is_symlink():
        return None
    if target.is_symlink() or not target.is_file():
        return f"{target}: exists and is not a features file; remove it or choose another --features folder"
    try:
        meta = read_metadata(target)
    except ValueError as err:
        return f"{err}; remove it or choose another --features folder"
    if meta.get("format") != FEATURES_FORMAT or meta.get("path") != key:
        return (f"{target}: holds the features of {meta.get('path', 'another file')!r}, not of {key!r}; "
                "choose another --features folder")
    if meta.get("model") != model:
        return (f"{target}: holds features of model {meta.get('model')!r}, not of {model!r}; choose another "
                "--features folder")
    return None


def check_features(folder: str | os.PathLike, videos: Iterable[str | os.PathLike], model: str,
                   net: nn.Module | None = None) -> str | None:
    """Why `--features folder` cannot take the features of `videos` by `model` (None when it can): `net`
    cannot return features, a file is in the way of the folder, or a file of one of the names holds
    another video's or model's features."""
    if net is not None and not supports_features(net):
        return f"--features: a {type(net).__name__} has no pooled features (an exported graph); give the model itself"
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        return f"--features {folder}: exists and is not a folder"
    if not folder.is_dir():
        return None
    for video in videos:
        problem = _conflict(folder / features_name(video), _key_text(video), model)
        if problem:
            return problem
    return None


def write_features(folder: str | os.PathLike, pred: Prediction, *, model: str, config: Any) -> Path:
    """Write `pred.features` to `folder/features_name(pred.path)` atomically, with its metadata; returns the
    path. Raises `FeaturesConflictError` when that file holds another video's or model's features."""
    from safetensors.torch import save_file

    if pred.features is None or pred.path is None:
        raise ValueError(f"{pred.path}: no features to write (predict with features=True)")
    target = Path(folder) / features_name(pred.path)
    problem = _conflict(target, _key_text(pred.path), model)
    if problem:
        raise FeaturesConflictError(problem)
    tensors = {name: t.contiguous() for name, t in pred.features.items()}
    meta = _metadata(pred, model, config)
    atomic_write(target, lambda tmp: save_file(tensors, tmp, metadata=meta))
    return target
