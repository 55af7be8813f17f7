"""Training checkpoints: a loadable model folder plus the trainer's state, written atomically.

`out_dir` holds

- `config.json` + `model.safetensors`: the model, so the folder loads like a zoo model
  (`s2d.load(out_dir)`, `python -m s2d eval --model out_dir`);
- `trainer_state.pt`: optimizer, scheduler and GradScaler states, the RNG states of every rank
  (torch, CUDA, numpy, Python), epoch, position inside the epoch, global step, metric
  accumulators and the best validation metric. It holds only tensors and plain containers of
  numbers and strings, so it is read with `torch.load(weights_only=True)`.

Every file is written to a temporary name and moved into place with `os.replace`, so a crash
leaves either the old or the new file. The weights carry the global step in their safetensors
metadata and the state names it too: a pair from different steps is refused on resume.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

STATE_NAME = "trainer_state.pt"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
TRAIN_CONFIG_NAME = "train_config.json"
FORMAT_VERSION = 1


class CheckpointMismatchError(RuntimeError):
    """The files of a checkpoint do not belong together, or do not fit this run."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)` for a temporary file beside `path`, then move it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:  # the data reaches the disk before the rename makes it visible
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write` of a UTF-8 text file."""
    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    atomic_write(path, write)


def save_model_folder(model: nn.Module, folder: str | os.PathLike, step: int | None = None) -> None:
    """`config.json` (the model config) + `model.safetensors` (with the step in its metadata)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    atomic_write_text(folder / CONFIG_NAME, model.config.to_json() + "\n")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt"}
    if step is not None:
        metadata["step"] = str(step)
    atomic_write(folder / WEIGHTS_NAME, lambda tmp: save_file(state, tmp, metadata=metadata))


def weights_step(path: str | os.PathLike) -> int | None:
    """The training step recorded in a safetensors file's metadata (None when absent)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    return int(meta["step"]) if "step" in meta else None


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """`torch.save` the trainer state atomically."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """The trainer state, read with `weights_only=True` (nothing but tensors and plain values)."""
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise CheckpointMismatchError(f"{path}: not an s2d trainer state of format {FORMAT_VERSION}")
    return state


# -- RNG states as tensors ---------------------------------------------------------------------------

def capture_rng(device: torch.device) -> dict[str, Any]:
    """This process's RNG states (torch CPU, CUDA of `device`, numpy, Python) as tensors and numbers."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_has_gauss": int(np_state[3]),
        "numpy_gauss": float(np_state[4]),
        "python_version": int(version),
        "python_state": torch.tensor(internal, dtype=torch.int64),
        "python_gauss": None if gauss is None else float(gauss),
    }
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    """Inverse of `capture_rng`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    random.setstate((state["python_version"], tuple(int(v) for v in state["python_state"].tolist()),
                     state["python_gauss"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
