"""Converters from other checkpoint layouts into s2d models, with strict, named-key errors.

- `convert_official`: checkpoints of the official S2DNet code (TSM family; `SNet.model.base_model...`,
  tonylins MobileNetV2 layout, `.net` on shifted convs) → `S2DNet` state dict.
- `load_checkpoint_file`: reads `.safetensors`, or `.pth` / `.pth.tar` with `weights_only=True`
  (never unpickles arbitrary objects), unwrapping `state_dict` / `model` and `module.` prefixes.
- `load_state_dict_strict`: `load_state_dict` that names every missing, unexpected and
  shape-mismatched key instead of a generic error.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

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
        return load_file(str(path))
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


def load_state_dict_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load `state` into `model`, raising `CheckpointError` that lists every key problem."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        lines = [f"{source} does not match {type(model).__name__}:"]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
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
