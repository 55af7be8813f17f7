"""Weights onto a model with other classes (`s2d.load(name, num_classes=N)`): every class-independent
weight loads as it is, and exactly the class-dependent parts are re-initialised.

A model lists its class-indexed parameters in `class_axes()`. Classifier rows (dim 0: the synopsis
and detail classifiers) start fresh, from the new model's own initialisation. The input columns that
read the synopsis' k-hot top-k vector (dim 1: the locator's first conv and the context vector's
linear layer) all become the mean of the checkpoint's class columns, times k_before / k when the
class count forces a smaller top-k: the k-hot vector holds k ones whatever the classes, so each layer
receives from it what it received on average before, and the locator and the context fusion start
from their pretrained behaviour averaged over the guessed classes (zero columns would shift their
inputs, and the locator's BatchNorm statistics with them). The soft scheme's s sums to 1 either way.
Every other weight must fit exactly: a mismatch is still an error naming the key.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Mapping

import torch

from s2d.hub.errors import WeightsMismatchError

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)


def adapt_to_classes(model: "nn.Module", state: Mapping[str, torch.Tensor], trained_for: Any,
                     source: str = "checkpoint") -> tuple[dict[str, torch.Tensor], list[str]]:
    """`state` (weights of a model with config `trained_for`) rewritten for `model`'s classes, and
    the names of the parameters it re-initialised."""
    num_classes = model.config.num_classes
    scale = 1.0
    if getattr(model.config, "topk_scheme", "soft") == "hard":
        scale = trained_for.topk / model.config.topk
    own = model.state_dict()
    out = dict(state)
    renewed = []
    for key, (dim, start) in model.class_axes().items():
        if key not in state:
            continue  # the strict load that follows names it
        new, old = own[key], state[key]
        if dim == 0:
            out[key] = new.detach().clone()
            renewed.append(key)
            continue
        width = new.shape[dim] - num_classes  # the class-independent columns
        old_classes = old.shape[dim] - width if old.dim() == new.dim() else 0
        others_fit = old.dim() == new.dim() and all(a == b for d, (a, b) in enumerate(zip(old.shape, new.shape))
                                                    if d != dim)
        if old_classes < 1 or not others_fit:
            raise WeightsMismatchError(f"{source}: {key} has shape {tuple(old.shape)}, which does not fit "
                                       f"{tuple(new.shape)} with {num_classes} classes in dim {dim} from column "
                                       f"{start}: the weights do not belong to this architecture")
        head = old.narrow(dim, 0, start)
        classes = old.narrow(dim, start, old_classes)
        tail = old.narrow(dim, start + old_classes, old.shape[dim] - start - old_classes)
        mean = classes.mean(dim, keepdim=True).expand(*(num_classes if d == dim else n
                                                        for d, n in enumerate(classes.shape)))
        out[key] = torch.cat([head, mean * scale, tail], dim).to(new.dtype)
        renewed.append(key)
    logger.warning("loaded for %d new classes; re-initialised (class-dependent): %s", num_classes, ", ".join(renewed))
    return out, renewed
