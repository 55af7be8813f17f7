"""Datasets by name, so a training config can say `"kind": "kinetics"` and give its arguments.

Built in:

- `"list"`: `s2d.data.VideoListDataset` (`list_file`, `root`, ...);
- `"kinetics"`: `s2d.data.KineticsCSVDataset` (`csv_file`, `root`, `classes`, `drop_unknown`, ...);
- `"ssv2"`: `s2d.data.SomethingV2Dataset` (`json_file`, `root`, `classes`, `drop_unknown`, ...);
- `"folder"`: `s2d.data.VideoFolderDataset`, class folders `root/<class>/<video>`: the classes
  are the training folder's (sorted names), and the model trained on them carries them as its
  labels; the val split is `val_root` when given, else `val_fraction` (0.1) of each class's
  videos held out of `root` with `split_seed`; other splits (`--split test`) read all of `root`;
- `"synth"` (alias `"synthetic"`): `s2d.synth.benchmark.SyntheticDetailDataset` clips (`size`, `seed`,
  `frames`, `resolution`, `noise_std`, `num_distractors`, `spread`, `start`, `task`), procedural: each
  training epoch reads `size` fresh clips, and samples carry the glyph's `focus` (x, y).

For the video datasets, `clip` (a dict of `s2d.io.ClipSpec` fields) says how clips are cut; by
default `dense_frames` frames spread uniformly over the video, the short side resized to
`dense_size · resize_ratio` (256/224 unless the model's config says otherwise), a random `dense_size`² crop for training and the centre crop otherwise.
`classes` defaults to the model's shipped label list, and `on_error` to "skip" for training and
"record" for evaluation (unreadable videos are then reported, not counted). Other arguments go
to the dataset class unchanged.

`register_dataset(name, factory)` adds a kind; `factory(split, model_config, **args)` returns a
map-style dataset whose samples are dicts like `s2d.data`'s (`frames` uint8 `[T, H, W, 3]`,
`num_frames`, `label`, ...). A kind of the form `"package.module:attr"` imports `attr` and calls
`attr(split=split, **args)`. A `split` among the arguments names the split to read instead
(`data.val.split=test`; for `eval`, `--split test` does the same).

Procedural datasets (clips generated from an index, never repeating) define
`for_epoch(epoch) -> Dataset` (the clips that epoch reads: `s2d.train.loader.SeededSamples`
asks for them) and `range(start, count) -> Dataset`, which the pre-training phases use to read
clips no stage reads; other datasets are cycled through by the phases instead.

Temporal views (multi-clip evaluation): a dataset offers them through a method
`get_view(index, view, num_views) -> sample`. Video datasets with stride sampling have them
built in: view v of n starts at frame `round(v · (frames − span) / (n − 1))`, evenly covering the
video (X3D/SlowFast testing). Uniformly sampled clips already span the whole video and have no
other views.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from typing import TYPE_CHECKING, Any, Callable

from torch.utils.data import Dataset

from s2d.train.errors import TrainConfigError

if TYPE_CHECKING:
    from s2d.io import ClipSpec

#: factory(split, model_config, **args) -> Dataset
DatasetFactory = Callable[..., Dataset]

_REGISTRY: dict[str, DatasetFactory] = {}


def register_dataset(name: str, factory: DatasetFactory, *, overwrite: bool = False) -> None:
    """Make `factory(split, model_config, **args)` available as data kind `name`."""
    if not name or ":" in name:
        raise ValueError(f"dataset name must be non-empty and contain no ':', got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"dataset {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def unregister_dataset(name: str) -> None:
    """Remove a registered kind (no error when it is absent)."""
    _REGISTRY.pop(name, None)


def available_datasets() -> list[str]:
    """Registered data kinds, sorted."""
    return sorted(_REGISTRY)


def dataset_keys(kind: str) -> list[str]:
    """The arguments a registered kind takes (from its factory's signature); `...` when it passes
    further keyword arguments on to its dataset class."""
    keys = []
    for p in inspect.signature(_REGISTRY[kind]).parameters.values():
        if p.kind is p.KEYWORD_ONLY:
            keys.append(p.name if p.default is p.empty or p.default is None else f"{p.name}={p.default!r}")
        elif p.kind is p.VAR_KEYWORD:
            keys.append("...")
    return keys


def build_dataset(kind: str, split: str, args: dict[str, Any], model_config: Any = None, *,
                  allow_code: bool = False) -> Dataset:
    """The `split` ("train", "val", ...) dataset of a kind, built from its arguments (a `split`
    among them takes precedence).

    A `module:attribute` kind imports and runs Python code, so it needs `allow_code=True` (the
    command line's `--allow-code`): a config file alone never makes s2d import code."""
    args = dict(args)
    split = str(args.pop("split", split))
    if ":" in kind:
        if not allow_code:
            raise TrainConfigError(f"data.kind {kind!r} names Python code to import (module:attribute); it is "
                                   "imported only when asked on the command line with --allow-code "
                                   f"(known kinds that need no code: {', '.join(available_datasets())})")
        module_name, _, attr = kind.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise TrainConfigError(f"data.kind {kind!r}: cannot import it ({err})") from None
        call = lambda: factory(split=split, **args)  # noqa: E731
    elif kind not in _REGISTRY:
        raise TrainConfigError(f"unknown data kind {kind!r} (known: {', '.join(available_datasets())})")
    else:
        factory = _REGISTRY[kind]
        args = _checked_arguments(kind, split, factory, args)
        call = lambda: factory(split, model_config, **args)  # noqa: E731
    try:
        return call()
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        raise TrainConfigError(f"data kind {kind!r} ({split} split): {_unknown_argument(err)}; it takes "
                               f"{_arguments(factory)}") from None
    except (OSError, ValueError) as err:  # a missing list file, an unreadable annotation file
        if isinstance(err, TrainConfigError):
            raise
        raise TrainConfigError(f"data kind {kind!r} ({split} split): {err}") from None


def _checked_arguments(kind: str, split: str, factory: Callable[..., Any], args: dict[str, Any]) -> dict[str, Any]:
    """`args` checked against the types `factory` declares for them (strictly: 5.9 or true is no
    integer, a number must be finite), so a wrong value is named before any data is read."""
    import typing

    from s2d.train.values import coerce

    try:
        declared = typing.get_type_hints(factory)
    except Exception:  # annotations that do not resolve: the factory checks its own arguments
        return args
    return {name: coerce(declared[name], value, f"data kind {kind!r} ({split} split): {name}")
            if name in declared else value for name, value in args.items()}


def _unknown_argument(err: TypeError) -> str:
    match = re.search(r"unexpected keyword argument '([^']+)'", str(err))
    return f"unknown argument {match.group(1)!r}" if match else str(err)


def _arguments(factory: Callable[..., Any]) -> str:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return "other arguments"
    names = [p.name for p in params if p.kind == p.KEYWORD_ONLY or
             (p.kind == p.POSITIONAL_OR_KEYWORD and p.name not in ("split", "model_config", "self"))]
    return ", ".join(names) if names else "no arguments"


# -- clip specs and the video datasets ---------------------------------------------------------------

def split_clip_spec(split: str, model_config: Any, clip: dict[str, Any] | None) -> "ClipSpec":
    """The `ClipSpec` of a split: the model's dense clip (`s2d.models.clip.clip_spec`, a random crop for
    training), updated by `clip`."""
    from s2d.io import ClipSpec
    from s2d.models.clip import clip_spec

    values = dataclasses.asdict(clip_spec(model_config, crop="random" if split == "train" else "center"))
    if clip:
        names = {f.name for f in dataclasses.fields(ClipSpec)}
        unknown = sorted(set(clip) - names)
        if unknown:
            raise TrainConfigError(f"data clip: unknown ClipSpec fields {unknown} (valid: {sorted(names)})")
        values.update(clip)
    try:
        spec = ClipSpec(**values)
    except (TypeError, ValueError) as err:
        raise TrainConfigError(f"data clip: {err}") from None
    check_dense_clip("data clip", ("num_frames", spec.num_frames), ("crop_size", spec.crop_size), model_config)
    return spec


def check_dense_clip(where: str, frames: tuple[str, int], size: tuple[str, int], model_config: Any) -> None:
    """Refuse, before any training, a split whose clips are not the model's dense clip (the model
    takes exactly `dense_frames` x `dense_size`², the clip it will read when it predicts)."""
    want = (getattr(model_config, "dense_frames", None), getattr(model_config, "dense_size", None))
    if None in want or (frames[1], size[1]) == want:
        return
    raise TrainConfigError(f"{where}: {frames[0]}={frames[1]}, {size[0]}={size[1]} make clips of {frames[1]} x "
                           f"{size[1]}² but the model reads {want[0]} x {want[1]}²; set model.overrides.dense_frames="
                           f"{frames[1]} and model.overrides.dense_size={size[1]}, or leave these to the model")


def _required(kind: str, split: str, **values: Any) -> None:
    for name, value in values.items():
        if value is None:
            section = "train" if split == "train" else "val"
            raise TrainConfigError(f"data kind {kind!r} needs {name!r} for the {split} split (in a training "
                                   f"config data.args.{name} or data.{section}.{name}; for eval {name}=...)")


def _video_kwargs(split: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("on_error", "skip" if split == "train" else "record")
    return kwargs


def _default_classes(model_config: Any, classes: Any) -> Any:
    if classes is None and getattr(model_config, "labels", None):
        from s2d.models.labels import class_names

        return list(class_names(model_config.labels))
    return classes


def _list_dataset(split: str, model_config: Any, *, list_file: str | None = None, root: str | None = None,
                  clip: dict[str, Any] | None = None, **kwargs: Any) -> Dataset:
    from s2d.data import VideoListDataset

    _required("list", split, list_file=list_file)
    return VideoListDataset(list_file, root, split_clip_spec(split, model_config, clip), **_video_kwargs(split, kwargs))


def _folder_dataset(split: str, model_config: Any, *, root: str | None = None, val_root: str | None = None,
                    val_fraction: float = 0.1, split_seed: int = 0, classes: Any = None,
                    clip: dict[str, Any] | None = None, **kwargs: Any) -> Dataset:
    """`ROOT/<class>/<video>`: the train split defines the classes (sorted folder names), which the
    model then carries; other splits map their folders onto the model's classes."""
    from s2d.data import VideoFolderDataset

    _required("folder", split, root=root)
    if split != "train":
        classes = _default_classes(model_config, classes)
    return VideoFolderDataset(root, split_clip_spec(split, model_config, clip), split=split, val_root=val_root,
                              val_fraction=val_fraction, seed=split_seed, classes=classes,
                              **_video_kwargs(split, kwargs))


def _kinetics_dataset(split: str, model_config: Any, *, csv_file: str | None = None, root: str | None = None,
                      classes: Any = None, clip: dict[str, Any] | None = None, **kwargs: Any) -> Dataset:
    from s2d.data import KineticsCSVDataset

    classes = _default_classes(model_config, classes)
    _required("kinetics", split, csv_file=csv_file, root=root, classes=classes)
    return KineticsCSVDataset(csv_file, root, split_clip_spec(split, model_config, clip), classes,
                              **_video_kwargs(split, kwargs))


def _ssv2_dataset(split: str, model_config: Any, *, json_file: str | None = None, root: str | None = None,
                  classes: Any = None, clip: dict[str, Any] | None = None, **kwargs: Any) -> Dataset:
    from s2d.data import SomethingV2Dataset

    classes = _default_classes(model_config, classes)
    _required("ssv2", split, json_file=json_file, root=root, classes=classes)
    return SomethingV2Dataset(json_file, root, split_clip_spec(split, model_config, clip), classes,
                              **_video_kwargs(split, kwargs))


class ProceduralClips(Dataset):
    """`size` clips of an endless indexed source (a `SyntheticDetailDataset`), from `start` on;
    epoch e reads the `size` clips after epoch e−1's, so no clip is read twice."""

    def __init__(self, source: Any, start: int, size: int):
        self.source, self.start, self.size = source, int(start), int(size)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.size:
            raise IndexError(f"sample index {index} out of range for {self.size} samples")
        return self.source[self.start + index]

    def params(self, index: int) -> Any:
        """The source's ground truth of sample `index`."""
        return self.source.params(self.start + index)

    def for_epoch(self, epoch: int) -> "ProceduralClips":
        """The clips of training epoch `epoch`."""
        return ProceduralClips(self.source, self.start + epoch * self.size, self.size)

    def range(self, start: int, count: int) -> "ProceduralClips":
        """`count` clips from `start` clips after this dataset's first."""
        return ProceduralClips(self.source, self.start + start, count)


def _synth_dataset(split: str, model_config: Any, *, size: int = 1024, seed: int = 0, frames: int | None = None,
                   resolution: int | None = None, noise_std: float = 6.0, num_distractors: int = 3,
                   spread: int = 24, start: int = 0, task: str = "benchmark") -> Dataset:
    """`s2d.synth` clips `start .. start+size-1` of `split` (of `task`: "benchmark" or "transfer");
    `frames` and `resolution` default to the model's dense input."""
    from s2d.synth.benchmark import SyntheticDetailDataset

    if size < 1 or start < 0:
        raise TrainConfigError(f"data kind 'synth': size must be >= 1 and start >= 0, got size={size}, start={start}")
    frames = frames or getattr(model_config, "dense_frames", None) or 16
    resolution = resolution or getattr(model_config, "dense_size", None) or 128
    check_dense_clip("data kind 'synth'", ("frames", frames), ("resolution", resolution), model_config)
    try:
        source = SyntheticDetailDataset(split, 2**62, seed=seed, frames=frames, resolution=resolution,
                                        noise_std=noise_std, num_distractors=num_distractors, spread=spread,
                                        task=task)
    except ValueError as err:
        raise TrainConfigError(f"data kind 'synth': {err}") from None
    return ProceduralClips(source, start, size)


def phase_dataset(dataset: Dataset, start: int, count: int) -> Dataset:
    """`count` training samples for a phase: clips `start ..` of a procedural dataset, else the
    dataset's samples cycled through in order."""
    if callable(getattr(dataset, "range", None)):
        return dataset.range(start, count)
    from torch.utils.data import Subset

    return Subset(dataset, [i % len(dataset) for i in range(count)])


register_dataset("list", _list_dataset)
register_dataset("kinetics", _kinetics_dataset)
register_dataset("ssv2", _ssv2_dataset)
register_dataset("folder", _folder_dataset)
register_dataset("synth", _synth_dataset)
register_dataset("synthetic", _synth_dataset)


# -- temporal views ------------------------------------------------------------------------------------

def supports_views(dataset: Dataset) -> bool:
    """Whether `get_view` can cut several temporal views of a sample from this dataset."""
    if callable(getattr(dataset, "get_view", None)):
        return True
    from s2d.data import VideoDataset

    return isinstance(dataset, VideoDataset) and dataset.spec.sampling == "stride"


def get_view(dataset: Dataset, index: int, view: int, num_views: int) -> dict[str, Any]:
    """Sample `index` as temporal view `view` of `num_views` (`num_views == 1`: the sample itself)."""
    if num_views == 1:
        return dataset[index]
    if callable(getattr(dataset, "get_view", None)):
        return dataset.get_view(index, view, num_views)
    if not supports_views(dataset):
        raise ValueError(f"{type(dataset).__name__} offers no temporal views; evaluate it with clips=1 "
                         "(uniformly sampled clips already cover the whole video)")
    return _video_view(dataset, index, view, num_views)


def _video_view(dataset: Any, index: int, view: int, num_views: int) -> dict[str, Any]:
    """View `view` of a stride-sampled video: starts spread evenly from the first to the last frame."""
    import torch

    from s2d.io import VideoError, probe, read_clip

    path, label = dataset.samples[index]
    spec = dataset.spec
    try:
        info = probe(path, backend=dataset.backend, timeout_s=dataset.timeout_s)
        span = (spec.num_frames - 1) * spec.stride + 1
        start = round(view * max(0, info.num_frames - span) / (num_views - 1))
        clip = read_clip(path, dataclasses.replace(spec, start=start), backend=dataset.backend,
                         max_pixels=dataset.max_pixels, timeout_s=dataset.timeout_s)
    except VideoError as err:
        if dataset.on_error == "raise":
            raise
        dataset.failures.append((path, err.reason))
        t, c = spec.num_frames, spec.crop_size
        return {"frames": torch.zeros(t, c, c, 3, dtype=torch.uint8), "num_frames": 0, "label": label,
                "index": index, "path": path, "error": err.reason}
    return {"frames": clip.frames, "num_frames": clip.num_frames, "label": label, "index": index,
            "path": path, "error": None}
