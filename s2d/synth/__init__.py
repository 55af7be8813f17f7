"""The synthetic detail benchmark: seeded clips whose class needs a well-placed detail window.

`benchmark.py` makes the clips (`SyntheticDetailDataset`, `render_clip`, `write_video`) from the
colours and glyph tiles of `appearance.py`; `tasks.py` defines the tasks over them (the benchmark,
and a transfer task with new glyphs and grouped colours); `folder.py` writes a task's clips as
class folders of mp4 files; `views.py` shows what reduced and sampled views of a clip see (the
no-leak check) and where a model looked; `score.py` scores a model on a split (accuracy, glyph in
view, window-to-glyph distance).
"""
from s2d.synth.benchmark import (CLASSES, DIRECTIONS, GLYPH_PERIOD, GLYPHS, LABEL_LIST, OBJECTS, SPLITS, ClipParams,
                                 SyntheticDetailDataset, clip_label, glyph_tile, render_clip, sample_params,
                                 write_label_list, write_video)
from s2d.synth.folder import folder_plan, write_folder
from s2d.synth.tasks import TASKS, TRANSFER_CLASSES, TRANSFER_FOLDERS, Task, get_task

__all__ = ["CLASSES", "DIRECTIONS", "GLYPHS", "GLYPH_PERIOD", "LABEL_LIST", "OBJECTS", "SPLITS", "TASKS",
           "TRANSFER_CLASSES", "TRANSFER_FOLDERS", "ClipParams", "SyntheticDetailDataset", "Task", "clip_label",
           "folder_plan", "get_task", "glyph_tile", "render_clip", "sample_params", "write_folder",
           "write_label_list", "write_video"]
