"""Synthetic clips written as a user's data looks: `ROOT/<class>/<split>_<index>.mp4` class folders.

`write_folder` renders clips `start .. start+count-1` of a task's split and writes each as an
H.264 mp4 (`s2d.synth.benchmark.write_video`, 8 fps) into the folder of its class, named by the
task's folder-safe class names (`Task.folders`), so that `python -m s2d data prepare ROOT` and
every class-folder reader see a standard video dataset whose sorted class folders number the
classes as the task does (all of them get a folder). It never replaces a file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from s2d.synth.benchmark import SyntheticDetailDataset, clip_label, write_video
from s2d.synth.tasks import Task, get_task

__all__ = ["folder_plan", "write_folder"]


def folder_plan(root: str | os.PathLike, task: str | Task, split: str, count: int, seed: int = 0,
                start: int = 0) -> list[tuple[int, Path]]:
    """`(clip index, file path)` of every clip `write_folder` would write, without rendering any."""
    task = get_task(task)
    if count < 1 or start < 0:
        raise ValueError(f"count must be >= 1 and start >= 0, got count={count}, start={start}")
    root = Path(root)
    return [(i, root / task.folders[clip_label(seed, split, i, task)] / f"{split}_{i:05d}.mp4")
            for i in range(start, start + count)]


def write_folder(root: str | os.PathLike, task: str | Task, split: str, count: int, seed: int = 0, start: int = 0,
                 *, lossless: bool = True, progress: Callable[[int, Path], None] | None = None) -> dict[str, int]:
    """Write clips `start .. start+count-1` of `task`'s `split` under `seed` as
    `root/<class folder>/<split>_<index:05d>.mp4`; returns the clips written per class folder
    (every class of the task, in label order, zeros included). Every class gets its folder, even
    one that no clip falls in, so that a folder scan finds all the task's classes in label order.

    Refuses (FileExistsError naming it) when any of these files exists already, before writing
    anything. `lossless=True` keeps the glyphs' one-pixel colours exact (see `write_video`);
    `lossless=False` writes ordinary yuv420p files, whose chroma subsampling smears the red-green
    glyphs. `progress(index, path)` is called after each file.
    """
    task = get_task(task)
    plan = folder_plan(root, task, split, count, seed, start)
    for _, path in plan:
        if path.exists() or path.is_symlink():
            raise FileExistsError(f"{path} exists; refusing to overwrite it (choose another folder, --start or --seed)")
    for name in task.folders:
        (Path(root) / name).mkdir(parents=True, exist_ok=True)
    data = SyntheticDetailDataset(split, start + count, seed=seed, task=task)
    written = {name: 0 for name in task.folders}
    for index, path in plan:
        write_video(path, data[index]["frames"], fps=8, lossless=lossless)
        written[path.parent.name] += 1
        if progress is not None:
            progress(index, path)
    return written
