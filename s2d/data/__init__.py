"""Map-style datasets that decode clips straight from raw video files.

Every dataset yields one dict per sample:

- `frames`: uint8 `[T, H, W, 3]` RGB clip (`ClipSpec.num_frames`, `ClipSpec.crop_size`);
- `num_frames`: int, distinct frames in the clip (the rest repeat the last; 0 marks a sample
  that could not be read under `on_error="record"`);
- `label`: int class index (-1 when the annotation has no label, e.g. a test split);
- `index`: int position of the sample in the dataset;
- `path`: str video file;
- `error`: None, or the reason the video could not be read (`on_error="record"`).

`collate` stacks such samples into a batch dict with `frames [B, T, H, W, 3]` uint8,
`num_frames [B]` long, `labels [B]` long, `indices [B]` long and the lists `paths`, `errors`.

Unreadable videos follow the dataset's `on_error` policy:

- `"raise"`: the `VideoError` propagates;
- `"skip"` (training): the next readable sample is returned instead, and a
  `SkippedVideoWarning` names the file, the reason and a running count;
- `"record"` (evaluation): a placeholder sample (zero frames, `num_frames = 0`, `error` set) is
  returned and `(path, reason)` is appended to `dataset.failures`.

With DataLoader workers every worker holds its own copy of the dataset, so `skipped` and
`failures` count per worker and stay empty in the main process; read failures from the batches
(`batch["errors"]`, `batch["paths"]`) there, and `drop_failed` removes such rows.

Modules: `dataset` (`VideoDataset`, class lists, `collate`), `annotations` (list files, Kinetics
CSV, Something-Something V2 JSON), `folders` (`ROOT/<class>/<video>` class folders:
`VideoFolderDataset`, `scan_class_folders`) and `prepare` (`prepare_list`).
"""
from __future__ import annotations

from s2d.data.annotations import KineticsCSVDataset, SomethingV2Dataset, VideoListDataset, parse_list_line
from s2d.data.dataset import SkippedVideoWarning, VideoDataset, collate, drop_failed, load_classes
from s2d.data.folders import ClassFolders, VideoFolderDataset, scan_class_folders
from s2d.data.prepare import PrepareReport, prepare_list

__all__ = [
    "VideoDataset",
    "VideoListDataset",
    "VideoFolderDataset",
    "ClassFolders",
    "scan_class_folders",
    "KineticsCSVDataset",
    "SomethingV2Dataset",
    "SkippedVideoWarning",
    "collate",
    "drop_failed",
    "load_classes",
    "parse_list_line",
    "prepare_list",
    "PrepareReport",
]
