"""Video in, answer out: `predict(model, video)` → labels with probabilities and where it looked.

The model's own config says how to read a video (dense clip length and size, normalisation), so a
prediction needs nothing but the path. Attached to the models as `model.predict(...)`.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from s2d.models.clip import channels_first, clip_spec, frame_counts


@dataclass
class Prediction:
    """One video's answer. Label lists are `(name, probability)` pairs, best first."""

    labels: list[tuple[str, float]]
    synopsis: list[tuple[str, float]] | None = None  # the synopsis net's top-k (S2DNet only)
    sampling: dict[str, Any] | None = None  # where the detail sampler looked (frames, pixels)
    num_frames: int = 0  # distinct frames read (the clip repeats the last one when shorter)
    path: str | None = None
    pretrained: bool = False
    error: str | None = None  # why the video could not be read (then `labels` is empty)
    outputs: Any = field(default=None, repr=False, compare=False)  # the raw model outputs
    clip: torch.Tensor | None = field(default=None, repr=False, compare=False)  # uint8 [T, H, W, 3]
    # pooled features when asked for (`predict_many(features=True)`): name -> float32 [E] ("synopsis" and
    # "detail" for S2DNet, "backbone" for a single-network baseline); see `s2d.inference.features`
    features: dict[str, torch.Tensor] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("outputs"), d.pop("clip"), d.pop("features")
        d["labels"] = [{"label": n, "prob": p} for n, p in self.labels]
        if self.synopsis is not None:
            d["synopsis"] = [{"label": n, "prob": p} for n, p in self.synopsis]
        return d


def class_names(model: nn.Module) -> list[str]:
    labels = getattr(model, "labels", None)
    return list(labels) if labels else [f"class {i}" for i in range(model.config.num_classes)]


def _top(probs: torch.Tensor, names: list[str], k: int) -> list[tuple[str, float]]:
    p, i = probs.topk(min(k, probs.numel()))
    return [(names[j], float(q)) for q, j in zip(p.tolist(), i.tolist())]


@torch.no_grad()
def predict(model: nn.Module, video: str | os.PathLike | torch.Tensor, topk: int | None = None,
            num_frames: int | None = None, device: str | torch.device | None = None,
            keep_detail: bool = False) -> Prediction:
    """Classify one video: a file path (decoded with `s2d.io.read_clip`) or a uint8 clip
    `[T, H, W, 3]` already at the model's dense size, T up to its `dense_frames` (a shorter clip is padded;
    `num_frames`, default T, counts its valid frames). `topk` labels are listed, at most the model's class
    count (default: 5, or all classes of a model with fewer). Runs in
    eval mode on `device` (default: the model's). `keep_detail` keeps V̂ in `outputs.detail` (for
    `s2d.inference.viz`)."""
    topk = default_topk(model.config.num_classes) if topk is None else topk
    check_topk(topk, model.config.num_classes)
    path = None
    if isinstance(video, (str, os.PathLike)):
        from s2d.io import read_clip

        path = os.fspath(video)
        clip = read_clip(path, clip_spec(model.config))
        frames, n = clip.frames, clip.num_frames
    else:
        frames, n = _dense_clip(torch.as_tensor(video), num_frames, model.config)
    was_training = model.training
    model.eval()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    try:
        x = channels_first(frames)[None].to(device)
        extra = {"return_detail": True} if keep_detail and model.config.kind == "s2dnet" else {}
        out = model(x, torch.tensor([n], device=device), **extra)
    finally:
        model.train(was_training)
    pred = prediction_from_outputs(model, out, 0, topk, int(n), path)
    pred.outputs, pred.clip = out, frames
    return pred


def check_topk(topk: int, num_classes: int | None = None) -> None:
    """Raise ValueError unless `topk` is an integer >= 1 and, when the model's `num_classes` is given, at
    most that: a model ranks its own classes only, so a larger k is a mistake (or a memory bomb), not a request."""
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        raise ValueError(f"topk must be an integer >= 1, got {topk!r}")
    if num_classes is not None and topk > num_classes:
        raise ValueError(f"topk must lie in [1, {num_classes}] (the model's num_classes), got {topk}")


def default_topk(num_classes: int) -> int:
    """The labels listed when no k is given: 5, or every class of a model with fewer."""
    return min(5, num_classes)


def _dense_clip(frames: torch.Tensor, num_frames: Any, config: Any) -> tuple[torch.Tensor, int]:
    """A uint8 clip `[T, H, W, 3]` at the model's dense size, padded to its `dense_frames` by repeating the
    last frame (as `s2d.io.read_clip` pads a short video), and its count of valid frames."""
    size, length = config.dense_size, config.dense_frames
    if frames.dim() != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1 or tuple(frames.shape[1:3]) != (size, size):
        raise ValueError(f"a clip must be uint8 [T, {size}, {size}, 3] (1 <= T <= {length}, the model's dense "
                         f"clip; s2d.io.read_clip cuts one from a video), got shape {tuple(frames.shape)}")
    if frames.dtype != torch.uint8:
        raise TypeError(f"a clip must be uint8 (0..255), got {frames.dtype}")
    T = frames.shape[0]
    if T > length:
        raise ValueError(f"a clip has at most the model's dense_frames={length} frames, got {T}; "
                         f"s2d.io.read_clip(path, clip_spec(model.config)) spreads that many over a video")
    n = int(frame_counts(T if num_frames is None else num_frames, 1, T, frames.device)[0])
    if not 1 <= n <= T:
        raise ValueError(f"num_frames must lie in [1, {T}] (the clip's frames), got {n}")
    if T < length:
        frames = torch.cat([frames, frames[-1:].expand(length - T, -1, -1, -1)])
    return frames, n


def prediction_from_outputs(model: nn.Module, out: Any, row: int, topk: int, num_frames: int,
                            path: str | None) -> Prediction:
    """The `Prediction` of video `row` of a batched forward's outputs (labels, synopsis, window): its
    `topk` best labels, all of them when the model has fewer classes (callers check k with `check_topk`)."""
    names = class_names(model)
    pred = Prediction(_top(out.logits[row].float().softmax(-1).cpu(), names, topk), num_frames=num_frames, path=path,
                      pretrained=bool(getattr(model, "pretrained", False)))
    if hasattr(out, "snet_logits"):
        pred.synopsis = _top(out.snet_logits[row].float().softmax(-1).cpu(), names, model.config.topk)
        p = out.params
        pred.sampling = {"centre_t": float(p.centre_t[row]), "stride_t": float(p.stride_t[row]),
                         **{k: getattr(p, k)[row].tolist() for k in ("centre_x", "centre_y", "stride_x", "stride_y")}}
    pooled = {name: getattr(out, key, None) for name, key in
              (("synopsis", "synopsis_features"), ("detail", "detail_features"), ("backbone", "features"))}
    if any(v is not None for v in pooled.values()):  # asked for (`return_features`): this video's, float32, on CPU
        pred.features = {name: v[row].detach().float().cpu().clone() for name, v in pooled.items() if v is not None}
    return pred
