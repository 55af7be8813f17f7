"""Model files on disk: `config.json` + `model.safetensors`, checked and loaded strictly.

A saved s2d model is a folder (or Hub repo) holding

    config.json         the model config, `config.to_dict()` (its `kind` picks S2DNet or VideoClassifier)
    model.safetensors   the state dict (safetensors only, never pickles)
    README.md           a model card (see `s2d.hub.cards`)

Loading is always strict (every missing, unexpected or mis-shaped key is named), a file is
checked against a known sha256 and size when one is recorded, NaN or infinite weights and weights
of another kind of number than the model's (integer, boolean, complex) are refused, and a config
must name every key. Failures raise the `s2d.hub.errors` family.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import torch

from s2d.hub.convert import CheckpointError, dtype_fits, load_state_dict_strict
from s2d.hub.errors import ChecksumError, ConfigFileError, CorruptWeightsError, WeightsMismatchError, ZooError
from s2d.io.files import atomic_write

if TYPE_CHECKING:
    from torch import nn

    from s2d.models.config import BaselineConfig, S2DConfig

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"

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


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data` (a config file's bytes)."""
    return hashlib.sha256(data).hexdigest()


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
    """Parse a `config.json` file into an `S2DConfig` or `BaselineConfig`. Every key must be there:
    a missing one is an error naming the file and the keys, never a silent default."""
    from s2d.models.config import ConfigError, config_from_dict, missing_keys

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigFileError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: expected a JSON object, got {type(data).__name__}")
    missing = missing_keys(data)
    if missing:
        raise ConfigFileError(f"{path} is not a valid s2d model config: missing keys {', '.join(missing)}. A saved "
                              f"config names every key (a default might not be what the weights were trained with); "
                              f"add them with the model's values")
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
        fitting = {k: v for k, v in state.items()
                   if k in own and tuple(v.shape) == tuple(own[k].shape) and dtype_fits(v, own[k])}
        model.load_state_dict(fitting, strict=False)
        warnings.warn(f"loaded with strict=False; {len(own) - len(fitting)} model tensors keep their "
                      f"initial values.\n{err}", stacklevel=3)


def load_file_into(model: "nn.Module", path: str | Path, *, strict: bool = True, expected_sha256: str | None = None,
                   expected_size: int | None = None, source: str = "weights", fix: str = "",
                   trained_for: "S2DConfig | BaselineConfig | None" = None) -> list[str]:
    """Verify (when a checksum is known), read and strictly load a safetensors file into `model`.
    `trained_for`: the config the file was trained with, when `model` has other classes; its
    class-dependent parameters are re-initialised (`s2d.hub.transfer`) and their names returned."""
    if expected_sha256 is not None or expected_size is not None:
        verify_file(path, expected_sha256, expected_size, source=source, fix=fix)
    state = read_weights(path, fix=fix)
    check_finite(state, path)
    check_dtypes(model, state, path)
    renewed: list[str] = []
    if trained_for is not None:
        from s2d.hub.transfer import adapt_to_classes

        state, renewed = adapt_to_classes(model, state, trained_for, source=f"{path} ({source})")
    load_weights(model, state, strict=strict, source=f"{path} ({source})")
    return renewed


def check_finite(state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """`CorruptWeightsError` naming the tensors that hold NaN or infinity: such a model predicts
    NaN probabilities, so it is refused at load rather than discovered in the output."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CorruptWeightsError(f"{path}: {len(bad)} of {len(state)} tensors hold NaN or infinite values "
                                  f"({shown}); the weights are corrupted (a diverged training run?)")


def check_dtypes(model: "nn.Module", state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """`CorruptWeightsError` naming the tensors whose kind of number differs from the model's (integer,
    boolean or complex weights would be cast into values no training produced, and NaN probabilities)."""
    own = model.state_dict()
    bad = [f"{k} ({v.dtype}; expected {own[k].dtype})" for k, v in state.items()
           if k in own and not dtype_fits(v, own[k])]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CorruptWeightsError(f"{path}: {len(bad)} of {len(state)} tensors are not of the model's kind of "
                                  f"number: {shown}; the file was edited or not written by save_pretrained")


def save_weights(model: "nn.Module", path: str | Path) -> None:
    """Write `model.state_dict()` as safetensors (CPU, contiguous; shared tensors are refused), atomically
    (`s2d.io.files.atomic_write`: an exclusive temporary beside `path`, renamed onto it).
    A model from `optimize_for_inference` is refused: its folded weights fit no checkpoint layout."""
    from safetensors.torch import save_file

    if getattr(model, "inference_only", False):
        from s2d.inference.optimize import InferenceOnlyError

        raise InferenceOnlyError("this model was optimised for inference (BatchNorm folded): save the original "
                                 "model's weights instead")

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
