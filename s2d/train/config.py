"""Training configuration: a tree of dataclasses that round-trips through JSON and validates itself.

A `TrainConfig` holds everything a run needs, so `out_dir/train_config.json` alone reproduces it:

```json
{
  "model": {"name": "s2dnet-tsm-sthv2", "overrides": {}, "init": "init/sthv2-imagenet"},
  "data": {"kind": "ssv2", "root": "/data/sthv2/videos",
           "args": {"classes": "/data/sthv2/labels.json"},
           "train": {"json_file": "/data/sthv2/train.json"},
           "val": {"json_file": "/data/sthv2/validation.json"}, "workers": 8},
  "stages": {"stage1_epochs": 40, "stage2_epochs": 80},
  "optim": {"lr": 0.001, "ref_batch": 64, "weight_decay": 0.001, "clip_grad": 20.0,
            "lr_ratios": {"locator": 0.1}},
  "batch_size": 64, "out_dir": "runs/sthv2", "amp": "bf16"
}
```

`load_config(path, ["optim.lr=0.01", "model.overrides.sampler.size=48"])` applies dotted
overrides before validation; values are parsed as JSON when they parse (numbers, `true`,
`null`, lists, objects) and taken as strings otherwise (`data.root=/x`). Mistyped keys and
values of the wrong type raise `TrainConfigError` naming the key, the expected type and, for a
misspelt key, the closest valid ones.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from s2d.train.errors import TrainConfigError
from s2d.train.errors import check as _check
from s2d.train.errors import suggest as _suggest
from s2d.train.phase_config import PhasesSection
from s2d.train.values import build as _build
from s2d.train.values import dataclass_of as _dataclass_of
from s2d.train.values import hints as _hints
from s2d.train.values import is_dict_type as _is_dict_type
from s2d.train.values import parse_json as _parse_json
from s2d.train.values import parse_value as _parse_value
from s2d.train.values import read_json_file
from s2d.train.values import type_name as _type_name

#: Seeds every generator of a run accepts (numpy's global RNG takes 32 bits).
SEED_RANGE = (0, 2**32 - 1)


@dataclass
class ModelSection:
    """Which network to train: a zoo name and config overrides (as `s2d.create(name, **overrides)`:
    sub-configs given as partial dicts are merged into the named variant's), and optionally `init`,
    the weights it starts from: a zoo name, `hf-hub:org/repo`, a model folder, a `.safetensors`
    file, or `torchvision:`/`pytorchvideo:`/`slowfast:` checkpoint file(s) whose backbones are
    converted as the run starts (ImageNet backbones, as the paper). With `name` null the architecture is `init`'s own. When the training data
    has other classes than `init`, its class-dependent layers start anew (`s2d.load(..., labels=)`).
    `freeze`: parameter-name prefixes (`synopsis`, `locator`, `detail.backbone`, ... or a
    comma-separated string) that stay fixed for the whole run, their BatchNorm statistics included."""

    name: str | None = "s2dnet-tsm-sthv2"
    overrides: dict[str, Any] = field(default_factory=dict)
    init: str | None = None
    freeze: list[str] = field(default_factory=list)

    def validate(self) -> None:
        """The name must be registered (or `init` name the model) and the overrides must fit."""
        from s2d.hub.registry import get_config

        if isinstance(self.freeze, str):
            self.freeze = [p.strip() for p in self.freeze.split(",") if p.strip()]
        _check(isinstance(self.freeze, list) and all(isinstance(p, str) and p for p in self.freeze),
               f"model.freeze must be parameter-name prefixes (a list, or names separated by commas), "
               f"got {self.freeze!r}")
        if self.name is None:  # the architecture is model.init's (checked when the run starts)
            return
        try:
            get_config(self.name, **self.overrides)
        except (KeyError, ValueError, TypeError) as err:
            raise TrainConfigError(f"model: {err}") from None


@dataclass
class DataSection:
    """Datasets by kind (see `s2d.train.datasets`) and their arguments.

    The train split is built from `{**args, **train}`, the validation split from
    `{**args, **val}`; `val = None` turns validation off. `root`, when set, is passed as the
    datasets' `root` argument (the folder their relative paths are taken from).
    """

    kind: str = "list"
    root: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    val: dict[str, Any] | None = None
    workers: int = 4  # DataLoader worker processes per rank
    val_clips: int = 1  # temporal views averaged at validation (datasets that offer views)
    val_every: int = 1  # validate every this many epochs (and after the last)
    val_batch_size: int | None = None  # per-rank; default: the training batch per rank

    def validate(self) -> None:
        """Counts must be positive and `kind` registered (import paths are checked when used)."""
        _check(self.workers >= 0, "data.workers must be >= 0")
        _check(self.val_clips >= 1, "data.val_clips must be >= 1")
        _check(self.val_every >= 1, "data.val_every must be >= 1")
        _check(self.val_batch_size is None or self.val_batch_size >= 1, "data.val_batch_size must be >= 1")
        if ":" not in self.kind:
            from s2d.train.datasets import available_datasets

            known = available_datasets()
            if self.kind not in known:
                raise TrainConfigError(f"data.kind {self.kind!r} is not a known dataset{_suggest(self.kind, known)} "
                                       f"(known: {', '.join(known)}; or 'package.module:factory')")

    def split_args(self, split: str) -> dict[str, Any]:
        """Arguments of one split: shared `args`, then the split's own, with `root` when set."""
        own = self.train if split == "train" else self.val
        merged = dict(self.args)
        if self.root is not None:
            merged["root"] = self.root
        merged.update(own or {})
        return merged


@dataclass
class StagesSection:
    """The supplement's two-stage recipe: `stage1_epochs` with θ frozen (the detail net sees
    centre crops of uniform frames), then `stage2_epochs` end to end.

    `stage1_clips` / `stage2_clips`, when set, give the lengths in clips instead (for procedural
    data, whose epochs are `data.args.size` fresh clips each): a whole number of epochs each.
    """

    stage1_epochs: int = 40
    stage2_epochs: int = 80
    stage1_clips: int | None = None
    stage2_clips: int | None = None

    def validate(self) -> None:
        """Non-negative epoch counts, at least one epoch in all."""
        _check(self.stage1_epochs >= 0 and self.stage2_epochs >= 0, "stages: epoch counts must be >= 0")
        for name in ("stage1_clips", "stage2_clips"):
            value = getattr(self, name)
            _check(value is None or value >= 0, f"stages.{name} must be >= 0 or null")
        if self.stage1_clips is None and self.stage2_clips is None:
            _check(self.stage1_epochs + self.stage2_epochs >= 1, "stages: at least one epoch must be trained")

    def in_epochs(self, epoch_clips: int) -> "StagesSection":
        """These stages with clip counts turned into epochs of `epoch_clips` clips."""
        epochs = {}
        for stage in (1, 2):
            clips = getattr(self, f"stage{stage}_clips")
            if clips is None:
                epochs[stage] = getattr(self, f"stage{stage}_epochs")
                continue
            _check(clips % epoch_clips == 0, f"stages.stage{stage}_clips={clips} is not a whole number of epochs of "
                   f"{epoch_clips} clips (the training set's size, e.g. data.args.size)")
            epochs[stage] = clips // epoch_clips
        _check(epochs[1] + epochs[2] >= 1, "stages: at least one epoch must be trained")
        return StagesSection(epochs[1], epochs[2])

    @property
    def epochs(self) -> int:
        """Epochs of both stages together (the length of the cosine schedule)."""
        return self.stage1_epochs + self.stage2_epochs

    def stage_of(self, epoch: int) -> int:
        """1 or 2, for a 0-based epoch."""
        return 1 if epoch < self.stage1_epochs else 2


@dataclass
class OptimSection:
    """SGD with momentum (`name="sgd"`, the paper's) or AdamW (`"adamw"`: betas 0.9, 0.999,
    decoupled weight decay), cosine decay after an optional linear warm-up.

    `lr` is the learning rate for a global batch of `ref_batch` videos; the run uses
    `lr * batch_size / ref_batch` (linear scaling). `lr_ratios` multiply the learning rate of
    parameters whose name starts with a key (the locator trains at 0.1×, as the official
    SAMPLER_LR_RATIO). Biases and normalisation parameters get no weight decay unless
    `decay_bias_and_norm`. Gradients are clipped to a total norm of `clip_grad` (None: off);
    parameters under a prefix of `clip_grad_groups` are clipped apart, to their own norm.
    The warm-up lasts `warmup_epochs` or a `warmup_fraction` of the schedule's steps; with
    `restart_per_stage` each stage runs a warm-up + cosine schedule of its own.
    """

    name: str = "sgd"
    lr: float = 0.001
    ref_batch: int = 64
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-3
    decay_bias_and_norm: bool = False
    warmup_epochs: float = 0.0
    warmup_fraction: float = 0.0
    restart_per_stage: bool = False
    warmup_start_factor: float = 0.01  # warm-up starts at this fraction of the peak lr
    min_lr_ratio: float = 0.0  # cosine ends at this fraction of the peak lr
    clip_grad: float | None = 20.0
    lr_ratios: dict[str, float] = field(default_factory=lambda: {"locator": 0.1})
    clip_grad_groups: dict[str, float] = field(default_factory=dict)

    def validate(self) -> None:
        """Ranges of the optimiser settings."""
        _check(self.name in ("sgd", "adamw"), f"optim.name must be 'sgd' or 'adamw', got {self.name!r}")
        _check(self.lr > 0, "optim.lr must be > 0")
        _check(0 <= self.warmup_fraction < 1, "optim.warmup_fraction must lie in [0, 1)")
        _check(not (self.warmup_fraction and self.warmup_epochs),
               "optim: set warmup_epochs or warmup_fraction, not both")
        for prefix, clip in self.clip_grad_groups.items():
            _check(isinstance(clip, (int, float)) and not isinstance(clip, bool) and clip > 0,
                   f"optim.clip_grad_groups[{prefix!r}] must be a number > 0, got {clip!r}")
        _check(self.ref_batch >= 1, "optim.ref_batch must be >= 1")
        _check(0 <= self.momentum < 1, "optim.momentum must lie in [0, 1)")
        _check(not self.nesterov or self.momentum > 0, "optim.nesterov needs momentum > 0")
        _check(self.weight_decay >= 0, "optim.weight_decay must be >= 0")
        _check(self.warmup_epochs >= 0, "optim.warmup_epochs must be >= 0")
        _check(0 < self.warmup_start_factor <= 1, "optim.warmup_start_factor must lie in (0, 1]")
        _check(0 <= self.min_lr_ratio <= 1, "optim.min_lr_ratio must lie in [0, 1]")
        _check(self.clip_grad is None or self.clip_grad > 0, "optim.clip_grad must be > 0 or null")
        for prefix, ratio in self.lr_ratios.items():
            _check(isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and ratio >= 0,
                   f"optim.lr_ratios[{prefix!r}] must be a number >= 0, got {ratio!r}")


@dataclass
class TrainConfig:
    """A whole training run. `batch_size` is the GLOBAL batch (split evenly over ranks)."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    stages: StagesSection = field(default_factory=StagesSection)
    optim: OptimSection = field(default_factory=OptimSection)
    phases: PhasesSection = field(default_factory=PhasesSection)
    batch_size: int = 64
    out_dir: str = "runs/s2d"
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when available), "cuda" or "cpu"
    amp: str = "none"  # "bf16" or "fp16" autocast on CUDA ("fp16" adds a GradScaler); CPU runs in fp32
    bn: str = "train"  # "frozen": BatchNorm layers stay in eval mode (fixed running statistics)
    cudnn_benchmark: bool = True
    deterministic: bool = False  # deterministic kernels (needed for bit-exact resume on GPU)
    tf32: bool = True  # TF32 matmuls/convolutions on Ampere+ GPUs
    find_unused_parameters: bool = False  # DDP option, for models with branches left unused
    log_every: int = 20  # steps between step records in the metrics log
    progress: bool = True  # tqdm progress bar on rank 0
    resume: bool = False  # continue from out_dir's checkpoint (start fresh when there is none)
    threads: int | None = None  # torch CPU threads per process (None: torch's default)
    flush_denormal: bool = False  # CPU: flush denormal floats to zero (tiny early gradients run slowly otherwise)

    def validate(self) -> "TrainConfig":
        """Check every section and the cross-section rules; returns self."""
        for section in (self.model, self.data, self.stages, self.optim, self.phases):
            section.validate()
        _check(self.batch_size >= 1, "batch_size must be >= 1")
        _check(bool(self.out_dir), "out_dir must be set")
        _check(self.device in ("auto", "cuda", "cpu") or self.device.startswith("cuda:"),
               f"device must be 'auto', 'cuda' or 'cpu', got {self.device!r}")
        _check(self.amp in ("none", "bf16", "fp16"), f"amp must be 'none', 'bf16' or 'fp16', got {self.amp!r}")
        _check(self.bn in ("train", "frozen"), f"bn must be 'train' or 'frozen', got {self.bn!r}")
        _check(self.log_every >= 1, "log_every must be >= 1")
        _check(self.threads is None or self.threads >= 1, "threads must be >= 1 or null")
        _check(SEED_RANGE[0] <= self.seed <= SEED_RANGE[1], f"seed must lie in [0, 2**32-1], got {self.seed}")
        peak = self.optim.lr * self.batch_size / self.optim.ref_batch
        _check(math.isfinite(peak), f"optim.lr {self.optim.lr:g} scaled by batch_size/ref_batch is not a finite "
                                    "learning rate")
        return self

    # -- (de)serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self) -> str:
        """Indented JSON text (what `out_dir/train_config.json` holds)."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Build and validate a config from a (partial) dict; missing keys take their defaults."""
        return _build(cls, data, "").validate()

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        """Inverse of `to_json`."""
        return cls.from_dict(_parse_json(text, "config"))


def load_config(source: str | os.PathLike | dict[str, Any], overrides: Iterable[str] = ()) -> TrainConfig:
    """A validated `TrainConfig` from a JSON file, a recipe name (`s2d.train.recipes`) or a dict,
    with dotted `key=value` overrides applied first."""
    if isinstance(source, dict):
        data = json.loads(json.dumps(source))
    else:
        path = Path(source)
        if path.is_file():
            data = read_json_file(str(path))
        else:
            from s2d.train.recipes import RECIPES

            if str(source) not in RECIPES:
                raise TrainConfigError(f"{source}: no such config file, and not a recipe name "
                                       f"(recipes: {', '.join(sorted(RECIPES))})")
            data = json.loads(json.dumps(RECIPES[str(source)]))
    if not isinstance(data, dict):
        raise TrainConfigError(f"{source}: a training config must be a JSON object")
    for item in overrides:
        apply_override(data, item)
    return TrainConfig.from_dict(data)


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one `dotted.key=value` override to a config dict in place.

    Keys inside dataclass sections must exist; keys below dict-valued fields (`model.overrides`,
    `data.args`, `data.train`, `data.val`, `optim.lr_ratios`, `optim.clip_grad_groups`) are free
    and created as needed.
    """
    if "=" not in item:
        raise TrainConfigError(f"override {item!r} is not of the form key=value")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise TrainConfigError(f"override {item!r}: empty key component")
    value = _parse_value(text, f"override {key.strip()!r}")
    cls: type | None = TrainConfig
    node = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        path = ".".join(parts[:depth + 1])
        if cls is not None:
            hints = _hints(cls)
            if part not in hints:
                raise TrainConfigError(f"override {key!r}: unknown key {path!r}{_suggest(part, hints)}")
            if last:
                node[part] = value
                return
            inner = _dataclass_of(hints[part])
            if inner is None and not _is_dict_type(hints[part]):
                raise TrainConfigError(f"override {key!r}: {path!r} is a {_type_name(hints[part])}, "
                                       "it has no sub-keys")
            child = node.get(part)
            if child is None and part not in node and inner is None:
                child = _default_of(cls, part)  # add to a mapping's default rather than replace it
            cls = inner
            if child is None:
                child = node[part] = {}
            elif part not in node:
                node[part] = child
            elif not isinstance(child, dict):
                raise TrainConfigError(f"override {key!r}: {path!r} holds {child!r}, not a mapping")
            node = child
        else:  # free-form dict: create intermediate levels
            if last:
                node[part] = value
                return
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise TrainConfigError(f"override {key!r}: {path!r} holds {child!r}, not a mapping")
            node = child


# -- helpers -----------------------------------------------------------------------------------------

def _default_of(cls: type, name: str) -> Any:
    """A JSON copy of a dataclass field's default value (None when it has none)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default_factory is not dataclasses.MISSING:
                return json.loads(json.dumps(f.default_factory()))
            if f.default is not dataclasses.MISSING:
                return json.loads(json.dumps(f.default))
    return None
