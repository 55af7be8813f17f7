"""Scoring on the synthetic detail benchmark: accuracy, and for an S2DNet where it looked (glyph in
view, window-to-glyph distance). One function for the demo and the benchmark script."""
from __future__ import annotations

from typing import Iterable

import torch

from s2d.data import collate
from s2d.models.clip import channels_first
from s2d.models.sampler import window_params
from s2d.synth.benchmark import SyntheticDetailDataset
from s2d.synth.views import where_it_looked

LOOKS = ("locator", "centre", "fixed")


@torch.no_grad()
def score_synthetic(model: torch.nn.Module, data: SyntheticDetailDataset, indices: Iterable[int],
                    look: str = "locator", stride: float | None = None, device: str = "cpu",
                    batch_size: int = 32) -> dict[str, float]:
    """Top-1/top-5 (%) of `model` on clips `indices` of `data` (in memory, no video files); for an
    S2DNet also its synopsis top-1/top-5, the glyph-in-view rate (% of detail frames showing the
    glyph) and the mean window-to-glyph distance (px). `look`: "locator" (the model's own windows),
    "centre" (stage 1's fixed centre crop) or "fixed" (a centred window at `stride` px). Unrounded."""
    if look not in LOOKS:
        raise ValueError(f"look must be one of {', '.join(LOOKS)}, got {look!r}")
    if (look == "fixed") != (stride is not None):
        raise ValueError("stride is given for look='fixed', and only then")
    indices = list(indices)
    if not indices:
        raise ValueError("no clips to score")
    config = model.config
    is_s2d = getattr(config, "kind", "") == "s2dnet"
    was_training = model.training
    was_frozen = getattr(model, "freeze_sampler", False)
    if is_s2d:
        model.set_freeze_sampler(look == "centre")
    model.eval()
    top1 = top5 = s_top1 = s_top5 = in_view = shown = 0
    distance: list[float] = []
    try:
        for i in range(0, len(indices), batch_size):
            chunk = indices[i:i + batch_size]
            batch = collate([data[j] for j in chunk])
            frames = channels_first(batch["frames"]).to(device)
            labels = batch["labels"].to(device)
            kwargs = {}
            if look == "fixed":
                mid = torch.full((len(chunk),), (config.dense_size - 1) / 2, device=device)
                kwargs["look_at"] = window_params(mid, mid, torch.full_like(mid, stride), config.sampler.frames,
                                                  config.dense_size, config.dense_size, config.sampler.size)
            out = model(frames, batch["num_frames"].to(device), **kwargs)
            top1 += int((out.logits.argmax(1) == labels).sum())
            top5 += int((out.logits.topk(min(5, out.logits.shape[1]), 1).indices == labels[:, None]).any(1).sum())
            if not is_s2d:
                continue
            s_top1 += int((out.snet_logits.argmax(1) == labels).sum())
            s_top5 += int((out.snet_logits.topk(min(5, out.snet_logits.shape[1]), 1).indices
                           == labels[:, None]).any(1).sum())
            truth = [data.params(j) for j in chunk]
            for clip in where_it_looked(out.params, truth, config.dense_frames, config.sampler.size):
                shown += sum(clip["glyph_shown"])
                in_view += sum(o and g for o, g in zip(clip["on_object"], clip["glyph_shown"]))
            focus = torch.tensor([p.glyph_centre() for p in truth])
            params = out.params
            distance += torch.hypot(params.centre_x.mean(1).cpu() - focus[:, 0],
                                    params.centre_y.mean(1).cpu() - focus[:, 1]).tolist()
    finally:
        if is_s2d:
            model.set_freeze_sampler(was_frozen)
        model.train(was_training)
    n = len(indices)
    result = {"clips": n, "top1": 100 * top1 / n, "top5": 100 * top5 / n}
    if is_s2d:
        result.update({"synopsis_top1": 100 * s_top1 / n, "synopsis_top5": 100 * s_top5 / n,
                       "glyph_in_view": 100 * in_view / max(1, shown),
                       "window_to_glyph_px": sum(distance) / len(distance)})
    return result
