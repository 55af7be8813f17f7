"""What views see on the synthetic benchmark (`s2d.synth.benchmark`): reduced views are blind to the glyph
(`nearest_view`, `no_leak_check`), and where an S2DNet's detail view looked (`where_it_looked`)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import torch

from s2d.models.clip import channels_first, resize_nearest, uniform_sample
from s2d.models.sampler import sampled_box
from s2d.synth.benchmark import BORDER, GLYPH_PERIOD, ClipParams, render_clip
from s2d.synth.tasks import get_task

__all__ = ["nearest_view", "no_leak_check", "where_it_looked"]


def nearest_view(frames: torch.Tensor, count: int, size: int) -> torch.Tensor:
    """The frames a reduced network reads: `count` uniform frames (the synopsis rule) resized to
    `size` with the legacy nearest mode, as uint8 `[count, 3, size, size]` (the normalisation
    the models apply afterwards is per-channel affine and changes nothing here)."""
    clip = channels_first(frames)[None]
    clip = uniform_sample(clip, torch.tensor([frames.shape[0]]), count)
    return resize_nearest(clip.float(), size)[0].round().to(torch.uint8)


def no_leak_check(params: ClipParams, frames: int, resolution: int, views: Sequence[tuple[int, int]],
                  glyphs: Sequence[int] | None = None) -> bool:
    """Whether reduced views are blind to the glyph; `views` lists `(count, size)` pairs, each
    meaning `count` uniform frames nearest-resized to `size` (see `nearest_view`); `glyphs` are the
    glyph ids to tell apart, by default those of the clip's task (`params.task`).

    For each glyph, renders the clip under all 16 tile phases (every other choice, noise
    included, fixed) and collects each view's reduced clips. A view is blind when these
    collections are the same multiset for every glyph: then, with the phase uniform, every glyph
    induces exactly the same distribution of reduced clips, and no classifier of the reduced clip
    can beat chance among the glyphs. A stride that is not a multiple of the glyph period, or
    glyphs with different colour sets, make the check fail.
    """
    glyphs = list(get_task(params.task).glyphs if glyphs is None else glyphs)
    seen: list[list[list[bytes]]] = [[[] for _ in views] for _ in glyphs]
    for g, glyph in enumerate(glyphs):
        for px in range(GLYPH_PERIOD):
            for py in range(GLYPH_PERIOD):
                clip = torch.from_numpy(render_clip(replace(params, glyph=glyph, phase=(px, py)), frames, resolution))
                for v, (count, size) in enumerate(views):
                    seen[g][v].append(nearest_view(clip, count, size).numpy().tobytes())
    multisets = [[sorted(per_view) for per_view in per_glyph] for per_glyph in seen]
    return all(m == multisets[0] for m in multisets[1:])


def where_it_looked(sampling: Any, truth: Sequence[ClipParams], dense_frames: int, sampler_size: int,
                    max_stride: float = 2.0) -> list[dict[str, Any]]:
    """Score an S2DNet's sampling (`S2DOutput.params`, a `SamplingWindow`) against ground truth.

    Per clip and detail frame j: the input frame nearest the frame's temporal grid point μ_t(j),
    its spatial stride, and whether it is *on the glyph*: stride at most `max_stride` px (2 px
    resolves the period-4 glyph: two samples per period) with the object's glyph area (the interior)
    inside the region the frame covers (`s2d.models.sampler.sampled_box`, what the pictures draw).
    Returns one dict per clip with `frames` (source frame per detail frame), `stride` (px),
    `on_object` (bools) and `glyph_shown` (whether that source frame shows the glyph).
    """
    T_d = sampling.centre_x.shape[1]
    j = torch.arange(T_d, dtype=torch.float32) - (T_d - 1) / 2
    mu_t = sampling.centre_t.detach().float().cpu()[:, None] + j * sampling.stride_t.detach().float().cpu()[:, None]
    boxes = sampled_box(sampling, sampler_size).detach().float().cpu()  # [B, T_d, 4]
    sx, sy = sampling.stride_x.detach().float().cpu(), sampling.stride_y.detach().float().cpu()
    out = []
    for b, p in enumerate(truth):
        frames, strides, on, shown = [], [], [], []
        for k in range(T_d):
            t = int(min(max(round(float(mu_t[b, k])), 0), dense_frames - 1))
            x0, y0, x1, y1 = p.box(t)
            gx0, gy0, gx1, gy1 = x0 + BORDER, y0 + BORDER, x1 - BORDER - 1, y1 - BORDER - 1
            bx0, by0, bx1, by1 = (float(v) for v in boxes[b, k])
            inside = bx0 <= gx0 and gx1 <= bx1 and by0 <= gy0 and gy1 <= by1
            stride = max(float(sx[b, k]), float(sy[b, k]))
            frames.append(t)
            strides.append(stride)
            on.append(bool(inside and stride <= max_stride))
            shown.append(p.glyph_visible(t))
        out.append({"frames": frames, "stride": strides, "on_object": on, "glyph_shown": shown})
    return out
