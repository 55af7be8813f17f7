"""A faster eval model with the same outputs: `optimize_for_inference(model)`.

Inference-time rewrites that keep the logits (within float rounding):

- every BatchNorm is folded into the convolution or linear layer before it
  (`torch.nn.utils.fusion`), including convolutions wrapped by a temporal shift (the shift acts
  on the conv's input, so the conv itself can absorb the norm) and X3D's depthwise 3D convs; the
  locator's BatchNorm, which follows a ReLU, is folded into the linear layer after it;
- 2D convolution weights in channels-last memory format, so oneDNN runs the TSM backbones in
  NHWC without reordering every activation (3D convolutions stay contiguous: on CPU the
  channels-last-3d kernels are slower for X3D's depthwise convolutions);
- optionally (`compile=True`) `torch.compile` of the whole forward as one graph, synopsis,
  locator, sampler and detail net together, with the batch size dynamic (see `_compile_whole`).
  The first call compiles: with Inductor on a 2-core CPU about 2.5 min for `s2dnet-x3d-synth`,
  1.5 to 4 min for the tests' tiny TSM models, and again 1.5 min or so at the first batch of 1
  (a later process finds the kernels in Inductor's disk cache: ~30 s for `s2dnet-x3d-synth`);
  there the compiled model runs at about the folded eager one's speed (convolutions dominate).

The result is a new model, in eval mode for good: folded norms cannot learn, so `.train()`
raises and saving it as a checkpoint is refused. The model passed in is left untouched.
"""
from __future__ import annotations

import copy
from typing import Callable, Iterator

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

__all__ = ["optimize_for_inference", "fold_batchnorm", "check_trainable", "InferenceOnlyError"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class InferenceOnlyError(RuntimeError):
    """A model rewritten for inference was asked to train or to be saved as a checkpoint."""


def check_trainable(model: nn.Module, mode: bool = True) -> None:
    """Raise `InferenceOnlyError` when `mode` asks to train a model made by `optimize_for_inference`."""
    if mode and getattr(model, "inference_only", False):
        raise InferenceOnlyError(
            "this model was optimised for inference (BatchNorm folded into its convolutions) and cannot train; "
            "train the original model and call optimize_for_inference() again")


def _get(module: nn.Module, path: str) -> nn.Module | None:
    for name in path.split("."):
        module = getattr(module, name, None)
        if module is None:
            return None
    return module


def _set(module: nn.Module, path: str, value: nn.Module) -> None:
    *parents, name = path.split(".")
    for p in parents:
        module = getattr(module, p)
    setattr(module, name, value)


def _conv_host(module: nn.Module) -> tuple[nn.Module, str] | None:
    """Where the conv whose output `module` produces lives: itself, or a temporal shift's `.net`."""
    from s2d.models.backbones.temporal_shift import TemporalShift

    if isinstance(module, _CONV):
        return None, ""
    if isinstance(module, TemporalShift) and isinstance(module.net, _CONV):
        return module, "net"
    return None


def _fold_pair(parent: nn.Module, conv_path: str, bn_path: str) -> bool:
    """Fold `parent.<bn_path>` into `parent.<conv_path>` (a conv, a shifted conv or a linear layer)
    and replace the norm by an identity; False when the pair is not there."""
    conv, bn = _get(parent, conv_path), _get(parent, bn_path)
    if not isinstance(bn, _BN) or bn.running_mean is None or bn.running_var is None:
        return False
    if isinstance(conv, nn.Linear):
        if conv.out_features != bn.num_features:
            return False
        _set(parent, conv_path, fuse_linear_bn_eval(conv, bn))
    else:
        host = _conv_host(conv) if conv is not None else None
        if host is None:
            return False
        wrapper, attr = host
        inner = getattr(wrapper, attr) if wrapper is not None else conv
        if inner.out_channels != bn.num_features:
            return False
        fused = fuse_conv_bn_eval(inner, bn)
        if wrapper is not None:
            setattr(wrapper, attr, fused)
        else:
            _set(parent, conv_path, fused)
    _set(parent, bn_path, nn.Identity())
    return True


def _fold_locator_input_norm(locator: nn.Module) -> bool:
    """The locator runs `fc1(flatten(BN(ReLU(conv(x)))))`: its BN follows a ReLU, so it is folded
    forward into `fc1` (a per-channel affine map of fc1's input, channel-major when flattened)."""
    bn, fc = locator.conv_bn, locator.fc1
    if not isinstance(bn, _BN) or not isinstance(fc, nn.Linear) or fc.in_features % bn.num_features:
        return False
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps) if bn.affine else torch.rsqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else 0) - bn.running_mean * scale
    cells = fc.in_features // bn.num_features  # T·h·w positions per channel
    scale, shift = scale.repeat_interleave(cells), shift.repeat_interleave(cells)
    with torch.no_grad():
        bias = fc.bias + fc.weight @ shift if fc.bias is not None else fc.weight @ shift
        fused = nn.Linear(fc.in_features, fc.out_features, bias=True, device=fc.weight.device, dtype=fc.weight.dtype)
        fused.weight.copy_(fc.weight * scale[None, :])
        fused.bias.copy_(bias)
    locator.fc1 = fused.train(fc.training)
    locator.conv_bn = nn.Identity()
    return True


def _pairs(module: nn.Module) -> Iterator[tuple[str, str]]:
    """(conv, norm) attribute paths of `module` whose forward feeds the conv straight into the norm."""
    import torchvision

    from s2d.models.backbones import tsm
    from s2d.models.backbones import x3d_blocks as x3d

    if isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward:
        # torchvision's Conv2dNormActivation, ResNet downsample, MobileNetV2 inverted residual bodies
        names = list(module._modules)
        for a, b in zip(names, names[1:]):
            yield a, b
    elif isinstance(module, torchvision.models.resnet.Bottleneck):
        yield from (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))
    elif isinstance(module, tsm.TSMResNet50):
        yield "conv1", "bn1"
    elif isinstance(module, x3d.X3DStem):
        yield "conv.conv_xy", "norm"  # the factorised stem's last conv (temporal, depthwise)
    elif isinstance(module, x3d.X3DBottleneck):
        yield from (("conv_a", "norm_a"), ("conv_b", "norm_b.0"), ("conv_c", "norm_c"))
    elif isinstance(module, x3d.X3DResBlock):
        yield "branch1_conv", "branch1_norm"
    elif isinstance(module, x3d.X3DProjectedPool):
        yield "pre_conv", "pre_norm"
    else:
        from s2d.models.locator import Locator

        if isinstance(module, Locator):
            yield from (("fc1", "bn1"), ("fc2", "bn2"))


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> int:
    """Fold, in place, every BatchNorm of `model` (in eval mode) that directly follows a conv or
    linear layer into it; returns how many were folded."""
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode (BatchNorm uses its running statistics)")
    from s2d.models.locator import Locator

    folded = 0
    for module in list(model.modules()):
        if isinstance(module, Locator) and _fold_locator_input_norm(module):
            folded += 1
        for conv_path, bn_path in list(_pairs(module)):
            folded += _fold_pair(module, conv_path, bn_path)
    return folded


def _channels_last_2d(model: nn.Module) -> int:
    """Put 2D conv weights in channels-last memory format; returns how many."""
    count = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
            count += 1
    return count


def _compile_whole(model: nn.Module, backend: str | Callable) -> None:
    """`torch.compile` the model's forward in place as one graph (`fullgraph`: a graph break raises
    instead of falling back to Python). `dynamic=True` leaves the batch size symbolic, so one
    compile serves every batch of 2 or more; the clip's other sizes are fixed by `check_clip`'s
    shape checks and the weights' by Dynamo, so they stay static. Batch 1 gets its own graph
    (Dynamo specialises sizes 0 and 1), and PyTorch's CPU convolutions may add one more where
    their algorithm choice depends on the batch (TSM's 2D convolutions at 16 frames in a batch)."""
    model.compile(fullgraph=True, dynamic=True, backend=backend)


def optimize_for_inference(model: nn.Module, *, channels_last: bool = True,
                           compile: bool | str | Callable = False) -> nn.Module:
    """A copy of `model` rewritten for fast inference with the same outputs: BatchNorm folded,
    2D convs in channels-last format, and with `compile` the whole forward `torch.compile`d as one graph.

    `compile`: False, True (Inductor) or another `torch.compile` backend, by name ("aot_eager", ...)
    or as a callable. The first call compiles (see the module docstring for the cost), and so does
    the first call with batch 1. The copy stays in eval mode: `.train()` raises `InferenceOnlyError`
    (folded norms cannot learn), as does saving it as a checkpoint. `model` itself is not modified.
    """
    if not (isinstance(compile, bool) or (isinstance(compile, str) and compile.strip()) or callable(compile)):
        raise TypeError(f"optimize_for_inference: compile must be True, False or a torch.compile backend (a name "
                        f"such as 'inductor' or 'aot_eager', or a callable), got {compile!r}")
    optimized = copy.deepcopy(model).eval()
    with torch.no_grad():
        optimized.folded_norms = fold_batchnorm(optimized)
        if channels_last:
            _channels_last_2d(optimized)
    if compile:
        _compile_whole(optimized, "inductor" if compile is True else compile)
    optimized.inference_only = True
    return optimized
