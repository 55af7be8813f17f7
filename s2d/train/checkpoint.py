"""Training checkpoints: complete step folders committed by one rename, and a loadable model folder.

`out_dir` holds

- `checkpoints/step-NNNNNNNNN/`: the last complete checkpoint, `config.json` + `model.safetensors`
  + `trainer_state.pt` (optimizer, scheduler and GradScaler states, the RNG states of every rank
  (torch, CUDA, numpy, Python), epoch, position inside the epoch, global step, metric
  accumulators and the best validation metric; only tensors and plain containers, so it is read
  with `torch.load(weights_only=True)`);
- `config.json` + `model.safetensors`: the model of that checkpoint, so the folder loads like a zoo
  model (`s2d.load(out_dir)`, `python -m s2d eval --model out_dir`).

A new step is written into a hidden folder beside the old one; its files reach the disk (fsync)
before a single `os.rename` makes it `step-N`. Only then is the model exported to the top level
(each file replaced atomically) and the older step removed. A process killed at any instant
therefore leaves the last complete step loadable and resumable. Files are created with the
permissions the umask gives, like any other file the user writes.
"""
from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from s2d.io.files import atomic_write, atomic_write_text, default_mode, fsync_dir, temp_folder
from s2d.train.config import TrainConfigError

STATE_NAME = "trainer_state.pt"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
TRAIN_CONFIG_NAME = "train_config.json"
CHECKPOINTS_DIR = "checkpoints"
FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"step-(\d+)")

# Fault injection for tests: called with the name of each point of `save_checkpoint` and the step
# ("written": the new step's files are on disk, not yet committed; "committed": renamed into
# place; "exported": the top-level model replaced; "pruned": older steps removed).
FAULT_HOOK: Callable[[str, int], None] | None = None


class CheckpointMismatchError(RuntimeError):
    """The files of a checkpoint do not belong together, are unreadable, or do not fit this run."""


def _fault(point: str, step: int) -> None:
    if FAULT_HOOK is not None:
        FAULT_HOOK(point, step)


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

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception as err:  # safetensors raises its own error type for a damaged header
        raise CheckpointMismatchError(f"{path}: not a readable safetensors file ({err})") from None
    return int(meta["step"]) if str(meta.get("step", "")).isdigit() else None


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """`torch.save` the trainer state atomically."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """The trainer state, read with `weights_only=True` (nothing but tensors and plain values)."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: torch raises several error types
        raise CheckpointMismatchError(f"{path}: cannot be read as an s2d trainer state ({type(err).__name__}: "
                                      f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise CheckpointMismatchError(f"{path}: not an s2d trainer state of format {FORMAT_VERSION}")
    return state


# -- step folders ------------------------------------------------------------------------------------

def _step_dirs(out_dir: Path) -> list[tuple[int, Path]]:
    root = out_dir / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = _STEP_DIR.fullmatch(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The folder of the newest committed checkpoint in `out_dir` (None when there is none)."""
    dirs = _step_dirs(Path(out_dir))
    return dirs[-1][1] if dirs else None


def _export(src: Path, dst: Path) -> None:
    """Replace `dst` by `src`'s content atomically: a hard link where the file system allows, a copy otherwise."""
    tmp_dir = temp_folder(dst)  # a private folder: the link's name cannot be planted
    try:
        try:
            os.link(src, tmp_dir / dst.name)
        except OSError:
            atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))
            return
        os.replace(tmp_dir / dst.name, dst)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def settle(step_dir: str | os.PathLike, out_dir: str | os.PathLike) -> None:
    """After `step_dir` is committed: make `out_dir`'s top-level `config.json` + `model.safetensors`
    its model, then remove the other steps and temporaries a killed process left behind."""
    step_dir, out_dir = Path(step_dir), Path(out_dir)
    step = int(step_dir.name.split("-")[1])
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        _export(step_dir / name, out_dir / name)
    fsync_dir(out_dir)
    _fault("exported", step)
    for other, path in _step_dirs(out_dir):
        if other != step:
            shutil.rmtree(path, ignore_errors=True)
    for stale in step_dir.parent.glob(".step-*.tmp"):  # folders of steps killed before their commit
        shutil.rmtree(stale, ignore_errors=True)
    _fault("pruned", step)


def save_checkpoint(out_dir: str | os.PathLike, model: nn.Module, state: dict[str, Any]) -> Path:
    """Write step `state["step"]` beside the previous checkpoint, commit it with one rename, export
    its model to `out_dir`'s top level and remove older steps. Returns the step folder."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    step = int(state["step"])
    root = out_dir / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:09d}"
    tmp = temp_folder(final)
    try:
        weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        (tmp / CONFIG_NAME).write_text(model.config.to_json() + "\n", encoding="utf-8")
        save_file(weights, str(tmp / WEIGHTS_NAME), metadata={"format": "pt", "step": str(step)})
        torch.save(state, str(tmp / STATE_NAME))
        for name in (CONFIG_NAME, WEIGHTS_NAME, STATE_NAME):
            default_mode(tmp / name)
            with open(tmp / name, "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(tmp)
        _fault("written", step)
        aside_tmp = None
        if final.exists():  # the same step written again (a resumed run that stopped at once)
            aside_tmp = temp_folder(final)
            os.rename(final, aside_tmp / final.name)
        os.rename(tmp, final)  # the commit
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if aside_tmp is not None:
        shutil.rmtree(aside_tmp, ignore_errors=True)
    _fault("committed", step)
    settle(final, out_dir)
    return final


def check_out_dir(out_dir: str | os.PathLike) -> None:
    """Refuse to start a run in `out_dir` when it is not a folder, or when it holds a model that no
    checkpoint of a run accounts for (a zoo folder, another run's export): training would replace it."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise TrainConfigError(f"out_dir {out} is a file, not a folder; choose a new or empty folder")
    if not out.is_dir():
        return
    found = [name for name in (WEIGHTS_NAME, CONFIG_NAME, "best") if (out / name).exists()]
    if found:
        raise TrainConfigError(f"out_dir {out} already holds {', '.join(found)} but no training checkpoint; "
                               "training would overwrite them: choose a new or empty folder")


def load_checkpoint(folder: str | os.PathLike) -> tuple[dict[str, Any], Path, dict[str, Any]]:
    """The trainer state, weights file and model config dict of a step folder, checked to belong together."""
    import json

    folder = Path(folder)
    state = load_state(folder / STATE_NAME)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file() or weights_step(weights) != state.get("step"):
        raise CheckpointMismatchError(f"{weights} is missing or from another step than {folder / STATE_NAME} "
                                      f"(step {state.get('step')})")
    try:
        config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CheckpointMismatchError(f"{folder / CONFIG_NAME}: cannot be read as a model config ({err})") from None
    return state, weights, config


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
