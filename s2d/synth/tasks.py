"""The tasks over the synthetic clips: which colours and glyphs a task shows and how they name its classes.

Both tasks draw their clips with the same generator (`s2d.synth.benchmark.sample_params`: the
same objects, motion, pause near the centre, clutter and noise, 16×128² by default); a task only
decides which object colour and which glyph each clip shows and what the class is.

- `benchmark` (16 classes, `synth16`): colour × horizontal/vertical bars, the task the shipped
  `s2dnet-x3d-synth` was trained on. Its clips are unchanged by the existence of other tasks.
- `transfer` (8 classes): colour *group* × diagonal bars, a task that model has never seen. The
  four colours form two groups, cool (green, blue) and warm (red, yellow); the glyphs are
  period-4 diagonal bars, falling (\\) or rising (/), in luminance or in red-green (glyph ids
  4-7, `s2d.synth.appearance`), which the benchmark never shows. Where to look is the same
  problem (the object pauses near the centre and carries the glyph while it pauses); what to
  read there is new.

Why the transfer glyphs cannot leak either: the benchmark's proof needs only that every glyph's
4×4 tile holds A, B, C, D four times each, which the diagonal tiles do. A view sampling every
4th pixel lands on one tile position for the whole pause, so it shows a flat A, B, C or D,
uniformly distributed over the random tile phase whatever the glyph
(`s2d.synth.views.no_leak_check` verifies it, across all eight glyphs at once). The colour names
the group and says nothing of the glyph: every (colour, glyph) pair is equally frequent.
Why fine strides read them: each diagonal tile has frequency 1/4 cycle/px along each axis, as
the bars do, so a detail window needs a stride below 2 px; at 2 px rising and falling bars alias
into the same 1-pixel checker. Their frequency vector (1/4, ±1/4) is √2 longer than the bars', so
a Gaussian sampler keeps less of it (σ = 0.5 px: 54% against 73%; σ = 1 px: 9% against 29%).

Labels are exactly balanced in both tasks: every block of `len(cells)` (16) consecutive clip
indices holds every (colour, glyph) cell once, so the transfer task's 8 classes twice each, every
colour of a group equally often. The transfer task seeds its generators with one more word than
the benchmark, so its clips never repeat a benchmark clip's motion, clutter or noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from s2d.synth.appearance import GLYPH_NAMES, GLYPH_SHORT, OBJECT_SHORT, OBJECTS

__all__ = ["BENCHMARK", "TASKS", "TRANSFER", "TRANSFER_CLASSES", "TRANSFER_FOLDERS", "Task", "get_task"]


@dataclass(frozen=True)
class Task:
    """A class structure over the shared clip generator: coarse classes (groups of object colours)
    × fine classes (glyphs); class `group * len(glyphs) + glyph`."""

    name: str
    groups: tuple[str, ...]  # the coarse classes' names
    members: tuple[tuple[int, ...], ...]  # the object colours (indices into OBJECTS) of each coarse class
    group_short: tuple[str, ...]  # folder-safe names of the coarse classes
    glyphs: tuple[int, ...]  # the fine classes: glyph ids (s2d.synth.appearance.glyph_tile)
    stream: tuple[int, ...] = ()  # words appended to every generator seed of a clip; () is the benchmark's
    label_list: str | None = None  # the shipped label list with these class names, if any
    numbered_folders: bool = False  # prefix folder names with the label so that they sort in label order

    @cached_property
    def classes(self) -> tuple[str, ...]:
        """Class names, by label: "<group> / <glyph>"."""
        return tuple(f"{g} / {GLYPH_NAMES[k]}" for g in self.groups for k in self.glyphs)

    @cached_property
    def folders(self) -> tuple[str, ...]:
        """Folder-safe short class names (no spaces, no `/`), by label; they sort in label order, so
        a class-folder scan (`s2d.data.prepare_list`) numbers the classes as the task does."""
        names = [f"{g}_{GLYPH_SHORT[k]}" for g in self.group_short for k in self.glyphs]
        return tuple(f"{i:02d}_{n}" for i, n in enumerate(names)) if self.numbered_folders else tuple(names)

    @cached_property
    def cells(self) -> tuple[tuple[int, int, int], ...]:
        """`(object colour, glyph id, label)` of every cell of the balanced design: each colour with
        each glyph, once per block of `len(cells)` clips."""
        n = len(self.glyphs)
        return tuple((kind, glyph, g * n + j) for g, kinds in enumerate(self.members) for kind in kinds
                     for j, glyph in enumerate(self.glyphs))


#: The benchmark (`s2d.synth.benchmark`): 4 colours × 4 bars. Its colours do not sort by name, so
#: its folders carry the label as a prefix ("00_red_luma-h").
BENCHMARK = Task("benchmark", OBJECTS, ((0,), (1,), (2,), (3,)), OBJECT_SHORT, (0, 1, 2, 3),
                 label_list="synth16", numbered_folders=True)
#: The transfer task: 2 colour groups × 4 diagonal bars, on clips of their own.
TRANSFER = Task("transfer", ("cool object", "warm object"), ((1, 2), (0, 3)), ("cool", "warm"), (4, 5, 6, 7),
                stream=(0x7A5F,))
TASKS: dict[str, Task] = {t.name: t for t in (BENCHMARK, TRANSFER)}
TRANSFER_CLASSES: tuple[str, ...] = TRANSFER.classes
TRANSFER_FOLDERS: tuple[str, ...] = TRANSFER.folders


def get_task(task: str | Task) -> Task:
    """The task named `task` ("benchmark" or "transfer"); a `Task` is returned as it is."""
    if isinstance(task, Task):
        return task
    if task not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {task!r}")
    return TASKS[task]
