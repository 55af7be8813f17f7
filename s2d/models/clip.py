"""The clip a model reads, and the rules that make it.

Videos decode as uint8 `[T, H, W, 3]`; models read `[B, T, 3, H, W]` (`channels_first`). A model
checks its input with `check_clip`, and its reduced views (the synopsis net's, a baseline's) are
`uniform_view`: uniformly spread frames, normalised, resized with the legacy nearest mode.
`clip_spec` is the `s2d.io.ClipSpec` that cuts such a dense clip out of a video file.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from s2d_kernels.sampler import normalize_frames

if TYPE_CHECKING:
    from s2d.io import ClipSpec

#: The test-time resize: short side 256 for a 224² crop, unless a config sets `resize_ratio`.
RESIZE_RATIO = 256 / 224


def channels_first(frames: torch.Tensor) -> torch.Tensor:
    """`[..., T, H, W, 3]` (decoded frames) → `[..., T, 3, H, W]` (the model layout), as a view."""
    return frames.movedim(-1, -3)


def check_clip(frames: torch.Tensor, num_frames: Any, min_batch: int = 1,
               dense: tuple[int, int] | None = None) -> torch.Tensor:
    """Validate a dense clip batch and return `num_frames` as a long tensor `[B]` (all frames valid when None).

    `min_batch` is 2 for a model in training mode whose BatchNorm needs statistics over videos.
    `dense` = (dense_frames, dense_size) of the model's config: the clip must be exactly that, shorter
    videos padded to it with their lengths in `num_frames` (an int, integers or an integer tensor, each in
    1..T). The checks that read values (lengths in range, finite float pixels) run eagerly only: under
    `torch.compile` they are left out of the graph."""
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a torch.Tensor [B, T, 3, H, W], got {type(frames).__name__}")
    if frames.dim() != 5 or frames.shape[2] != 3:
        raise ValueError(f"frames must be [B, T, 3, H, W], got shape {tuple(frames.shape)}")
    if frames.numel() == 0:
        raise ValueError(f"frames has an empty dimension (shape {tuple(frames.shape)}); B, T, H and W must be >= 1")
    if frames.dtype not in (torch.uint8, torch.float32):
        raise TypeError(f"frames must be uint8 (0..255, normalised by the model) or float32 (already normalised "
                        f"with the model's mean and std), got {frames.dtype}")
    B, T = frames.shape[:2]
    if dense is not None and tuple(frames.shape[1:]) != (dense[0], 3, dense[1], dense[1]):
        T_d, S = dense
        raise ValueError(f"frames must be the model's dense clip [B, {T_d}, 3, {S}, {S}] (its config's dense_frames "
                         f"and dense_size), got shape {tuple(frames.shape)}; pad a shorter video to {T_d} frames "
                         f"and give its length in num_frames (s2d.io.read_clip with clip_spec(model.config) cuts "
                         f"such clips from video files)")
    if B < min_batch:
        raise ValueError(f"a model in training mode needs at least {min_batch} videos per batch (its BatchNorm "
                         f"takes statistics over them), got {B}; call model.eval() to classify one video")
    counts = frame_counts(num_frames, B, T, frames.device)
    if not torch.compiler.is_compiling():
        if bool((counts < 1).any()) or bool((counts > T).any()):
            raise ValueError(f"num_frames must lie in [1, {T}], got {counts.tolist()}")
        if frames.is_floating_point() and not bool(torch.isfinite(frames).all()):
            raise ValueError("frames hold NaN or infinite values; float frames are pixels already normalised "
                             "with the model's mean and std, and must be finite")
    return counts


def frame_counts(num_frames: Any, batch: int, length: int, device: torch.device) -> torch.Tensor:
    """`num_frames` (None: every video has all `length` frames; an int: every video has that many; or one
    integer per video) as a long tensor `[batch]`. Floats and booleans are refused, not truncated."""
    if num_frames is None:
        return torch.full((batch,), length, dtype=torch.long, device=device)

    def what() -> str:  # built only on failure: formatting `batch` would fix it to one value under torch.compile
        return (f"num_frames must be an int or one integer per video (a list or an integer tensor of {batch}), "
                f"each the count of valid frames in 1..{length}")

    if isinstance(num_frames, (bool, float)):
        raise TypeError(f"{what()}, got {num_frames!r}")
    if isinstance(num_frames, int):
        return torch.full((batch,), num_frames, dtype=torch.long, device=device)
    try:
        counts = torch.as_tensor(num_frames)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{what()}, got {type(num_frames).__name__}") from None
    if counts.dtype == torch.bool or counts.is_floating_point() or counts.is_complex():
        raise TypeError(f"{what()}, got {counts.dtype} values")
    counts = counts.to(device=device, dtype=torch.long).reshape(-1)
    if counts.shape != (batch,):
        raise ValueError(f"num_frames must have one entry per video ({batch}), got shape {tuple(counts.shape)}")
    return counts


def uniform_indices(num_frames: torch.Tensor, count: int) -> torch.Tensor:
    """`[B, count]` frame indices `linspace(0, n-1, count)` truncated, per video's valid length n.

    Vectorised replica of `torch.linspace`'s float32 arithmetic (step from both ends, meeting
    halfway), so the indices equal the official per-video `linspace(...).long()` bit for bit.
    """
    end = num_frames.to(torch.float32)[:, None] - 1
    if count == 1:
        return torch.zeros_like(end, dtype=torch.long)
    i = torch.arange(count, device=num_frames.device)
    step = end / (count - 1)
    values = torch.where(i < count // 2, step * i.to(torch.float32), end - step * (count - 1 - i).to(torch.float32))
    return values.long()


def uniform_sample(frames: torch.Tensor, num_frames: torch.Tensor, count: int) -> torch.Tensor:
    """Gather `count` uniformly spread frames of each video: `[B, T, ...]` → `[B, count, ...]`."""
    idx = uniform_indices(num_frames, count)
    return torch.gather(frames, 1, idx.view(*idx.shape, *([1] * (frames.dim() - 2))).expand(
        -1, -1, *frames.shape[2:]))


def resize_nearest(x: torch.Tensor, size: int) -> torch.Tensor:
    """`[B, T, C, H, W]` → `[B, T, C, size, size]` with the legacy `nearest` mode (official SNet input)."""
    B, T = x.shape[:2]
    if x.shape[-2:] == (size, size):
        return x
    if torch.compiler.is_exporting():
        # ONNX's Resize places some legacy-nearest samples one pixel off (224 → 128): gather the rows and
        # columns torch reads instead, so that exported graphs see the same synopsis input
        rows, cols = (torch.tensor(nearest_sources(n, size), device=x.device) for n in x.shape[-2:])
        return x.index_select(-2, rows).index_select(-1, cols)
    y = F.interpolate(x.reshape(B * T, *x.shape[2:]), size=size)
    return y.view(B, T, *y.shape[1:])


def nearest_sources(length: int, size: int) -> list[int]:
    """The input index each of `size` outputs reads in the legacy `nearest` resize of `length` inputs,
    in torch's own float32 arithmetic (`min(floor(i · (length / size)), length - 1)`)."""
    if size == length:
        return list(range(size))
    if size == 2 * length:
        return [i >> 1 for i in range(size)]
    scale = np.float32(length) / np.float32(size)
    return [min(int(np.floor(np.float32(i) * scale)), length - 1) for i in range(size)]


def uniform_view(frames: torch.Tensor, num_frames: torch.Tensor, count: int, size: int,
                 mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """A reduced network's input: `count` uniform frames, normalised (uint8 input), resized
    (nearest) to `size`: `[B, T, 3, H, W]` → float `[B, count, 3, size, size]`."""
    clip = uniform_sample(frames, num_frames, count)
    return resize_nearest(normalize_frames(clip, mean, std), size)


def clip_spec(config: Any, *, crop: str = "center") -> "ClipSpec":
    """The `ClipSpec` of a model config's dense clip: `dense_frames` spread over the whole video,
    short side scaled by the config's `resize_ratio` (`RESIZE_RATIO` unless the config says
    otherwise), `dense_size` crop. A config without those fields gets the paper-scale 32 × 224²."""
    from s2d.io import ClipSpec

    frames = getattr(config, "dense_frames", 32)
    size = getattr(config, "dense_size", 224)
    ratio = getattr(config, "resize_ratio", RESIZE_RATIO)
    return ClipSpec(num_frames=frames, short_side=max(size, round(size * ratio)), crop_size=size, crop=crop)
