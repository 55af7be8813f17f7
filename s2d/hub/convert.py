"""Converters from other checkpoint layouts into s2d models, with strict, named-key errors.

- `convert_official`: checkpoints of the official S2DNet code (TSM family; `SNet.model.base_model...`,
  tonylins MobileNetV2 layout, `.net` on shifted convs) → `S2DNet` state dict.
- `load_checkpoint_file`: reads `.safetensors`, or `.pth` / `.pth.tar` with `weights_only=True`
  (never unpickles arbitrary objects), unwrapping `state_dict` / `model` and `module.` prefixes.
- `load_state_dict_strict`: `load_state_dict` that names every missing, unexpected and
  shape-mismatched key instead of a generic error.
- Backbone initialisation: `convert_torchvision` (ImageNet ResNet-50 / MobileNetV2 → TSM
  backbones), `convert_pytorchvideo_x3d` and `convert_slowfast_x3d` (Kinetics X3D → our X3D
  backbones, pytorchvideo layout), loaded with `load_backbone_weights`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, NamedTuple

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model: names the file and the keys at fault."""


def load_checkpoint_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, unwrapped to a flat `name -> tensor` dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as err:  # SafetensorError (a damaged header), OSError, or a bad dtype
            raise CheckpointError(f"{path}: not a valid safetensors file ({err}); it is corrupted or "
                                  "truncated") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # refuse anything weights_only cannot read
        raise CheckpointError(f"{path}: cannot be read as a weights-only checkpoint ({err}). s2d never unpickles "
                              "arbitrary objects; re-save the state dict with torch.save(model.state_dict()) or "
                              "as safetensors.") from err
    return unwrap_state_dict(obj, str(path))


def unwrap_state_dict(obj, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Find the tensor dict inside common wrappers (`state_dict`, `model`, `model_state`) and strip
    DataParallel/DDP `module.` prefixes."""
    for key in ("state_dict", "model_state", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{source}: no state dict of tensors found")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def _kind(t: torch.Tensor) -> str:
    if t.dtype == torch.bool:
        return "boolean"
    return "floating-point" if t.is_floating_point() else "complex" if t.is_complex() else "integer"


def dtype_fits(value: torch.Tensor, own: torch.Tensor) -> bool:
    """Whether a checkpoint tensor may load into a model tensor: the same kind of number (floating point
    of any precision for weights and statistics, integers for counters). Integer, boolean or complex
    weights would be cast silently into values no training produced (and NaN probabilities)."""
    return _kind(value) == _kind(own)


def load_state_dict_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load `state` into `model`, raising `CheckpointError` that lists every key problem (missing,
    unexpected, of another shape or of another kind of number than the model's)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    dtypes = sorted(f"{k}: checkpoint {state[k].dtype} vs model {_kind(own[k])} ({own[k].dtype})"
                    for k in set(own) & set(state) if not dtype_fits(state[k], own[k]))
    if missing or unexpected or shapes or dtypes:
        lines = [f"{source} does not match {type(model).__name__}:"]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes),
                             ("dtype mismatches", dtypes)):
            if items:
                shown = items[:20] + ([f"... and {len(items) - 20} more"] if len(items) > 20 else [])
                lines.append(f"  {title} ({len(items)}): " + ", ".join(shown))
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state, strict=True)


# -- official S2DNet (TSM family) ---------------------------------------------------------------

_LOCATOR = {"space_time_convs.0.0": "conv", "space_time_convs.1": "conv_bn", "space_time_convs.3.0": "fc1",
            "space_time_convs.4": "bn1", "space_time_convs.6.0": "fc2", "space_time_convs.7": "bn2",
            "fc_temporal_offset.0.0": "temporal_offset", "fc_temporal_stride.0.0": "temporal_stride",
            "fc_spatial_offset.0.0": "spatial_offset", "fc_spatial_stride.0.0": "spatial_stride"}
# tonylins MobileNetV2 inverted-residual indices → torchvision's nested layout
_MN2_EXPAND = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
_MN2_NO_EXPAND = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}


def convert_official(state: Mapping[str, torch.Tensor], fusion_stages: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Rename an official S2DNet state dict (TSM family) into this library's layout.

    `fusion_stages`: the model's fusion stages; the official `fusion_layers.i` follow the sorted
    stage order. Unknown keys are kept under their own name so the strict load names them.
    """
    state = unwrap_state_dict(dict(state))
    expanded_blocks = {m.group(1) for k in state
                       if (m := re.match(r"SNet\.model\.base_model\.features\.(\d+)\.conv\.6\.", k))}
    stages = sorted(fusion_stages)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key
        if m := re.match(r"SNet\.model\.base_model\.features\.(\d+)\.conv\.(\d+)\.(.*)$", key):
            block, idx, rest = m.groups()
            table = _MN2_EXPAND if block in expanded_blocks else _MN2_NO_EXPAND
            if idx in table:
                new = f"synopsis.backbone.features.{block}.conv.{table[idx]}.{rest}"
        elif key.startswith("SNet.model.base_model.features."):
            new = "synopsis.backbone." + key[len("SNet.model.base_model."):]
        elif key.startswith("SNet.model.new_fc."):
            new = "synopsis.fc." + key[len("SNet.model.new_fc."):]
        elif key.startswith("DNet.sampler."):
            rest = key[len("DNet.sampler."):]
            for src, dst in _LOCATOR.items():
                if rest.startswith(src + "."):
                    new = f"locator.{dst}.{rest[len(src) + 1:]}"
                    break
        elif key.startswith("DNet.model.base_model."):
            new = "detail.backbone." + key[len("DNet.model.base_model."):]
        elif key.startswith("DNet.model.new_fc."):
            new = "detail.fc." + key[len("DNet.model.new_fc."):]
        elif m := re.match(r"DNet\.model\.fusion_layers\.(\d+)\.0\.weight$", key):
            i = int(m.group(1))
            if i < len(stages):
                new = f"detail.fusion.{stages[i]}.weight"
        elif key.startswith("DNet.ctx_feature_layer.0."):
            new = "context.fc." + key[len("DNet.ctx_feature_layer.0."):]
        out[new] = value
    return out


def load_official_checkpoint(model: nn.Module, path_or_state, strict: bool = True) -> nn.Module:
    """Load an official S2DNet checkpoint (file path or state dict) into `model` (strict)."""
    source = str(path_or_state) if isinstance(path_or_state, (str, Path)) else "official state dict"
    state = load_checkpoint_file(path_or_state) if isinstance(path_or_state, (str, Path)) else path_or_state
    converted = convert_official(state, model.config.fusion.stages)
    if strict:
        load_state_dict_strict(model, converted, source)
    else:
        model.load_state_dict(converted, strict=False)
    return model


# -- backbone initialisation: torchvision (TSM), pytorchvideo and SlowFast (X3D) ------------------

class BackboneWeights(NamedTuple):
    """A converted backbone checkpoint: the backbone's state dict in our layout (keys of the target
    backbone module), the source classifier (`weight`, `bias`; empty when absent) and the detected
    source architecture."""

    backbone: dict[str, torch.Tensor]
    classifier: dict[str, torch.Tensor]
    arch: str  # "resnet50", "mobilenet_v2" or "x3d"


def _strip_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


def detect_torchvision_arch(state: Mapping[str, torch.Tensor]) -> str:
    """`"resnet50"` or `"mobilenet_v2"` from the keys of a torchvision ImageNet state dict."""
    if any(k.startswith("layer4.") for k in state) and "conv1.weight" in state:
        return "resnet50"
    if any(k.startswith("features.18.") for k in state):
        return "mobilenet_v2"
    raise CheckpointError("not a torchvision ResNet-50 or MobileNetV2 state dict (no 'layer4.*' / 'features.18.*' "
                          f"keys; first keys: {sorted(state)[:5]})")


def convert_torchvision(state: Mapping[str, torch.Tensor], target: nn.Module | None = None) -> BackboneWeights:
    """torchvision ImageNet ResNet-50 / MobileNetV2 weights → a TSM backbone's state dict.

    The TSM backbones keep torchvision's module names and wrap each shifted conv, so the only
    difference is an extra `.net` in those convs' keys; which convs carry it is read from `target`
    (a `TSMResNet50` or `TSMMobileNetV2`; without it the keys stay torchvision's and
    `load_backbone_weights` places them). The ImageNet classifier (`fc` / `classifier.1`) is
    returned separately. Keys that match nothing are kept so a strict load names them.
    """
    state = unwrap_state_dict(dict(state))
    arch = detect_torchvision_arch(state)
    head = ("fc.",) if arch == "resnet50" else ("classifier.1.",)
    classifier = {k.split(".")[-1]: v for k, v in state.items() if k.startswith(head)}
    plain = {k.replace(".net.", "."): k for k in target.state_dict()} if target is not None else {}
    backbone = {plain.get(k, k): v for k, v in state.items() if not k.startswith(head)}
    return BackboneWeights(backbone, classifier, arch)


def convert_pytorchvideo_x3d(state: Mapping[str, torch.Tensor]) -> BackboneWeights:
    """pytorchvideo `create_x3d` weights (hub `.pyth`: `model_state`, keys `blocks.*`) → our
    `X3DBackbone` state dict (the same keys under `net.`), classifier `blocks.5.proj` apart.

    Also accepts SlowFast's PTVX3D wrapper, which puts a `model.` prefix on every key.
    """
    state = _strip_prefix(unwrap_state_dict(dict(state)), "model.")
    classifier = {k.split(".")[-1]: v for k, v in state.items() if k.startswith("blocks.5.proj.")}
    backbone = {f"net.{k}": v for k, v in state.items() if not k.startswith("blocks.5.proj.")}
    return BackboneWeights(backbone, classifier, "x3d")


# SlowFast X3D (slowfast/models/video_model_builder.py `X3D`) → pytorchvideo names. SlowFast's stem
# calls the spatial 1×3×3 conv `conv_xy` and the temporal depthwise conv `conv`; pytorchvideo calls
# them `conv_t` and `conv_xy` (swapped meaning, kept as is in our layout).
_SLOWFAST_STEM = {"conv_xy": "conv.conv_t", "conv": "conv.conv_xy", "bn": "norm"}
_SLOWFAST_BLOCK = {"branch1": "branch1_conv", "branch1_bn": "branch1_norm", "branch2.a": "branch2.conv_a",
                   "branch2.a_bn": "branch2.norm_a", "branch2.b": "branch2.conv_b", "branch2.b_bn": "branch2.norm_b.0",
                   "branch2.se.fc1": "branch2.norm_b.1.block.0", "branch2.se.fc2": "branch2.norm_b.1.block.2",
                   "branch2.c": "branch2.conv_c", "branch2.c_bn": "branch2.norm_c"}
_SLOWFAST_HEAD = {"conv_5": "pool.pre_conv", "conv_5_bn": "pool.pre_norm", "lin_5": "pool.post_conv"}


def _slowfast_key(key: str) -> str | None:
    """pytorchvideo name of a SlowFast X3D key (None: the classifier; unchanged when unknown)."""
    if m := re.match(r"s1\.pathway0_stem\.(conv_xy|conv|bn)\.(\w+)$", key):
        return f"blocks.0.{_SLOWFAST_STEM[m.group(1)]}.{m.group(2)}"
    if m := re.match(r"s([2-5])\.pathway0_res(\d+)\.(.+)\.(\w+)$", key):
        stage, block, module, param = m.groups()
        if module in _SLOWFAST_BLOCK:
            return f"blocks.{int(stage) - 1}.res_blocks.{block}.{_SLOWFAST_BLOCK[module]}.{param}"
    if m := re.match(r"head\.(\w+)\.(\w+)$", key):
        if m.group(1) == "projection":
            return None
        if m.group(1) in _SLOWFAST_HEAD:
            return f"blocks.5.{_SLOWFAST_HEAD[m.group(1)]}.{m.group(2)}"
    return key


def convert_slowfast_x3d(state: Mapping[str, torch.Tensor], bn_eps: float = 1e-5) -> BackboneWeights:
    """SlowFast X3D weights (`{"model_state": ...}`, keys `s1.pathway0_stem.*`, `s2.pathway0_res0.*`,
    `head.*`) → our `X3DBackbone` state dict (pytorchvideo layout under `net.`).

    SlowFast gives every projection shortcut a BatchNorm (`branch1_bn`), pytorchvideo only those
    that change the channel count, so the first block of res2 (24 → 24 channels, stride 2) has one
    BN more in SlowFast. It is folded away exactly (for inference statistics): its scale
    `γ/√(σ²+ε)` multiplies the shortcut conv and its shift `β − μ·γ/√(σ²+ε)` is added to the bias of
    the block's last BN (`branch2.norm_c`), since the two branches are summed before the ReLU.
    `bn_eps` is SlowFast's `BN.EPS` (1e-5 by default).
    """
    state = unwrap_state_dict(dict(state))
    classifier = {k.split(".")[-1]: v for k, v in state.items() if k.startswith("head.projection.")}
    renamed = {new: v for k, v in state.items() if (new := _slowfast_key(k)) is not None}
    for key in [k for k in renamed if k.endswith(".branch1_conv.weight")]:
        block = key[: -len(".branch1_conv.weight")]
        w = renamed[key]
        if w.shape[0] != w.shape[1] or f"{block}.branch1_norm.weight" not in renamed:
            continue  # channels change: pytorchvideo keeps this BN too
        bn = {p: renamed.pop(f"{block}.branch1_norm.{p}", None)
              for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
        if bn["running_var"] is None or bn["running_mean"] is None:
            raise CheckpointError(f"SlowFast checkpoint: {block} shortcut BN lacks running statistics")
        scale = bn["weight"].double() / torch.sqrt(bn["running_var"].double() + bn_eps)
        shift = bn["bias"].double() - bn["running_mean"].double() * scale
        renamed[key] = (w.double() * scale.view(-1, 1, 1, 1, 1)).to(w.dtype)
        norm_c = f"{block}.branch2.norm_c.bias"
        if norm_c not in renamed:
            raise CheckpointError(f"SlowFast checkpoint: {norm_c} missing, cannot fold the shortcut BN of {block}")
        renamed[norm_c] = (renamed[norm_c].double() + shift).to(renamed[norm_c].dtype)
    return BackboneWeights({f"net.{k}": v for k, v in renamed.items()}, classifier, "x3d")


def backbone_parts(model: nn.Module) -> dict[str, nn.Module]:
    """The backbones a model holds, by part name: `synopsis` / `detail` (S2DNet) or `backbone`."""
    if hasattr(model, "synopsis") and hasattr(model, "detail"):
        return {"synopsis": model.synopsis.backbone, "detail": model.detail.backbone}
    return {"backbone": model.backbone}


def _part_arch(model: nn.Module, part: str) -> str:
    c = model.config
    if part == "synopsis":
        return c.synopsis.arch
    if part == "detail":
        return c.detail.arch
    return c.arch


_SOURCE_FITS = {"resnet50": ("tsm_resnet50",), "mobilenet_v2": ("tsm_mobilenet_v2",),
                "x3d": ("x3d_xs", "x3d_s", "x3d_m", "x3d_l", "x3d_tiny")}


def load_backbone_weights(model: nn.Module, weights: BackboneWeights, parts: str | tuple[str, ...] | None = None,
                          source: str = "checkpoint") -> list[str]:
    """Initialise backbone(s) of `model` (strictly, per backbone) from converted weights.

    `parts`: which backbones (`"synopsis"`, `"detail"`, `"backbone"`); by default every backbone of
    the checkpoint's architecture, which must be unambiguous (an X3D checkpoint fits both X3D
    backbones of an S2DNet: name the part). BN `num_batches_tracked` counters absent from old
    checkpoints start at 0. The source classifier initialises a baseline's `fc` when the class
    counts agree, and is dropped otherwise. Returns one line per action taken.
    """
    available = backbone_parts(model)
    if isinstance(parts, str):
        parts = tuple(p.strip() for p in parts.split(",") if p.strip())
    if not parts:
        fitting = tuple(p for p in available if _part_arch(model, p) in _SOURCE_FITS[weights.arch])
        if not fitting:
            raise CheckpointError(f"{source}: a {weights.arch} checkpoint fits no backbone of this model "
                                  f"({', '.join(f'{p}: {_part_arch(model, p)}' for p in available)})")
        if len(fitting) > 1 and weights.arch == "x3d":
            raise CheckpointError(f"{source}: an X3D checkpoint fits both {' and '.join(fitting)}; choose with "
                                  f"part=/--part")
        parts = fitting
    report = []
    for part in parts:
        if part not in available:
            raise CheckpointError(f"{source}: model has no backbone {part!r} (has: {', '.join(available)})")
        target = available[part]
        state = dict(weights.backbone)
        if weights.arch in ("resnet50", "mobilenet_v2"):
            plain = {k.replace(".net.", "."): k for k in target.state_dict()}
            state = {plain.get(k.replace(".net.", "."), k): v for k, v in state.items()}
        for key, value in target.state_dict().items():
            if key.endswith("num_batches_tracked") and key not in state:
                state[key] = torch.zeros_like(value)
        load_state_dict_strict(target, state, f"{source} → {part} ({_part_arch(model, part)})")
        report.append(f"{part}: {len(state)} tensors from the {weights.arch} checkpoint")
    fc = getattr(model, "fc", None)
    if weights.classifier:
        shape = tuple(weights.classifier["weight"].shape)
        if isinstance(fc, nn.Linear) and tuple(fc.weight.shape) == shape and "backbone" in parts:
            fc.load_state_dict(weights.classifier, strict=True)
            report.append(f"fc: classifier {shape[0]} classes from the checkpoint")
        else:
            report.append(f"classifier of the checkpoint ({shape[0]} classes) dropped: the model's own classifiers "
                          f"keep their initialisation")
    return report


#: Checkpoint layouts `init_backbones` converts, and their converters.
BACKBONE_SOURCES = ("torchvision", "pytorchvideo", "slowfast")


def init_backbones(model: nn.Module, source: str, paths: str | Path | list[str | Path],
                   parts: str | tuple[str, ...] | None = None, bn_eps: float = 1e-5) -> list[str]:
    """Initialise `model`'s backbone(s) from checkpoint file(s) of another layout (`source`, one of
    `BACKBONE_SOURCES`), converted on the way; returns one line per action (`load_backbone_weights`)."""
    if source not in BACKBONE_SOURCES:
        raise CheckpointError(f"unknown checkpoint layout {source!r}; known: {', '.join(BACKBONE_SOURCES)}")
    report: list[str] = []
    for path in paths if isinstance(paths, list) else [paths]:
        if source == "slowfast" and str(path).endswith(".pkl"):
            raise CheckpointError(f"{path}: Caffe2 .pkl checkpoints are not supported; use the PyTorch (.pyth) "
                                  "release of the model, or convert it with SlowFast first")
        state = load_checkpoint_file(path)
        if source == "pytorchvideo":
            weights = convert_pytorchvideo_x3d(state)
        elif source == "slowfast":
            weights = convert_slowfast_x3d(state, bn_eps=bn_eps)
        else:
            weights = convert_torchvision(state)
        report += load_backbone_weights(model, weights, parts, source=str(path))
    return report
