"""The model a run trains: its config (a zoo name with overrides, or the model `model.init` names),
its classes (the training data's, when the data names them), its initial weights, and the parts
`model.freeze` keeps fixed.

A fine-tuning run starts from a trained model on data with other classes: the model is built for
the data's classes and `init`'s weights load onto it with the class-dependent layers re-initialised
(`s2d.hub.transfer`), so the classifier learns the new classes while the rest starts trained.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from torch import nn

from s2d.train.checkpoint import WEIGHTS_NAME
from s2d.train.config import ModelSection
from s2d.train.errors import TrainConfigError

if TYPE_CHECKING:
    from s2d.hub._sources import Located


def _converted(source: str) -> tuple[str, list[str]] | None:
    """(layout, files) when `model.init` is `torchvision:`/`pytorchvideo:`/`slowfast:` checkpoint
    file(s) of another layout (comma-separated), converted into the backbones as the run starts."""
    from s2d.hub.convert import BACKBONE_SOURCES

    layout, sep, files = source.partition(":")
    if not sep or layout not in BACKBONE_SOURCES:
        return None
    return layout, [f for f in files.split(",") if f]


def _init_file(source: str) -> Path | None:
    """The `.safetensors` file `model.init` names directly (or a folder holding only weights), or
    None when it names a model (a zoo name, `hf-hub:`, a folder with `config.json`)."""
    path = Path(source).expanduser()
    if path.is_dir() and not (path / "config.json").is_file() and (path / WEIGHTS_NAME).is_file():
        return path / WEIGHTS_NAME
    return path if path.suffix == ".safetensors" else None


def locate_init(source: str) -> "Located":
    """The model `model.init` names (zoo name, `hf-hub:`, folder): its config and weights file."""
    from s2d.hub._sources import locate
    from s2d.hub.errors import ZooError

    try:
        return locate(source, pretrained=True)
    except ZooError as err:
        raise TrainConfigError(f"model.init {source!r}: {err}") from None


def run_config(section: ModelSection) -> tuple[Any, "Located | None"]:
    """The architecture to train: the zoo name's config with the overrides, or, with `name` null,
    `init`'s own config with them; and `init` as located then (None otherwise), so that
    `build_run_model` does not look it up a second time."""
    from s2d.hub.registry import apply_overrides, get_config

    if section.name is None and not section.init:
        raise TrainConfigError("model.name is null, so model.init must name the model to start from (a zoo name, "
                               "hf-hub:org/repo or a model folder)")
    try:
        if section.name is not None:
            return get_config(section.name, **section.overrides), None
        if _init_file(section.init) is not None or _converted(section.init) is not None:
            raise TrainConfigError(f"model.init {section.init}: a weights file holds no architecture; give "
                                   "model.name too, or a model folder (config.json + model.safetensors)")
        located = locate_init(section.init)
        return apply_overrides(located.config, **section.overrides), located
    except (KeyError, ValueError, TypeError) as err:
        raise TrainConfigError(f"model: {err}") from None


def data_classes(dataset: Any) -> list[str] | None:
    """The class names a training set defines (class folders do: `defines_classes`), else None:
    datasets read with the model's own label list leave the model's classes as they are."""
    return list(dataset.classes) if getattr(dataset, "defines_classes", False) else None


def for_data_classes(config: Any, classes: Sequence[str] | None) -> Any:
    """`config` for the classes the training data defines (None: keep the model's)."""
    from s2d.hub.factory import with_classes
    from s2d.models.labels import class_names

    if not classes or class_names(config.labels) == tuple(classes):
        return config
    return with_classes(config, None, list(classes))


def build_run_model(section: ModelSection, config: Any, located: "Located | None" = None) -> nn.Module:
    """The model of `config` with `section.init`'s weights (onto new classes where they differ);
    `located`: `init` as `run_config` found it, if it did."""
    from s2d.hub.builder import build_model
    from s2d.hub.weights import load_file_into

    model = build_model(config)
    if not section.init:
        return model
    converted = _converted(section.init)
    if converted is not None:
        from s2d.hub.convert import CheckpointError, init_backbones

        try:
            init_backbones(model, *converted)
        except (CheckpointError, OSError) as err:
            raise TrainConfigError(f"model.init {section.init}: {err}") from None
        return model
    direct = _init_file(section.init)
    if direct is not None:
        if not direct.is_file():
            raise TrainConfigError(f"model.init: {direct} does not exist (give a model folder, a zoo name or a "
                                   ".safetensors file)")
        load_file_into(model, direct, strict=True, source=f"model.init {section.init}")
        return model
    located = located or locate_init(section.init)
    trained_for = None if _same_classes(located.config, config) else located.config
    load_file_into(model, located.weights, strict=True, expected_sha256=located.source.sha256,
                   expected_size=located.source.size, source=f"model.init {section.init}", fix=located.fix,
                   trained_for=trained_for)
    return model


def _same_classes(a: Any, b: Any) -> bool:
    from s2d.models.labels import class_names

    return a.num_classes == b.num_classes and class_names(a.labels) == class_names(b.labels)


def frozen_prefixes(model: nn.Module, prefixes: Sequence[str]) -> list[str]:
    """`prefixes`, checked: each must name at least one parameter (or a module above some)."""
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(n == prefix or n.startswith(prefix + ".") for n in names):
            tops = sorted({n.split(".")[0] for n in names})
            raise TrainConfigError(f"model.freeze: {prefix!r} names no parameter of the model (its parts: "
                                   f"{', '.join(tops)}; deeper names such as detail.backbone work too; "
                                   f"model.freeze=[] freezes nothing)")
    return list(prefixes)


def freeze(model: nn.Module, prefixes: Sequence[str]) -> None:
    """No gradients for the parameters under `prefixes` (after any stage switch turned them on)."""
    for name, p in model.named_parameters():
        if any(name == q or name.startswith(q + ".") for q in prefixes):
            p.requires_grad_(False)


def frozen_modules_eval(model: nn.Module, prefixes: Sequence[str]) -> None:
    """Frozen parts run in eval mode: fixed BatchNorm statistics and no dropout."""
    for name, module in model.named_modules():
        if name and any(name == q or name.startswith(q + ".") for q in prefixes):
            module.eval()
