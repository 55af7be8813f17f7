"""S2DNet: synopsis → top-k → locator → detail sampler → detail net with context fusion.

`S2DNet.forward(frames, num_frames)` takes the dense clip `[B, T, 3, H, W]` of its config (T =
`dense_frames`, H = W = `dense_size`; uint8, normalised here with the config's mean/std, or finite
float, taken as already normalised) with each video's valid frame count, and returns `S2DOutput`.

`S2DNet.backend` ("auto" | "torch" | "triton" | "reference", `S2D_BACKEND` overriding "auto")
is resolved once per forward and picks the kernels of every op on one path: the context
(`s2d_kernels.context`), the sampler and the fusion. "reference" runs the official algebra
throughout (dense sampler, `[s ; g]` and broadcast concatenations); the others gather the k
top-k weight columns and add per-video context terms, with the same parameters, outputs and
gradients.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s2d.models.clip import check_clip, uniform_view
from s2d.models.config import S2DConfig
from s2d.models.detail import DetailNet
from s2d.models.fusion import ContextEncoder
from s2d.models.labels import class_names
from s2d.models.limits import map_size
from s2d.models.locator import Locator
from s2d.models.pretrained import PretrainedMixin
from s2d.models.sampler import DetailSampler, SamplingWindow, centre_crop_params, fixed_stride
from s2d.models.smoothing import ShiftProbe, moved, random_signs, surrogate_loss, window_of
from s2d.models.synopsis import SynopsisNet
from s2d_kernels.backend import resolve_backend
from s2d_kernels.sampler import RawSampling


@dataclass
class S2DOutput:
    """Everything a forward pass decides: final logits, the synopsis, and where it looked."""

    logits: torch.Tensor  # [B, K] detail-net logits (the prediction)
    snet_logits: torch.Tensor  # [B, K]
    topk: torch.Tensor  # [B, k] synopsis top-k class indices
    topk_vector: torch.Tensor  # [B, K] k-hot (or masked softmax) vector s
    params: SamplingWindow  # where the sampler looked (scaled; + the raw locator outputs)
    detail: torch.Tensor | None = None  # V̂ when requested
    detail_layout: str = "btchw"  # layout of `detail`: "btchw" [B, T_d, 3, S, S] or "bcthw" [B, 3, T_d, S, S]
    shift_probe: ShiftProbe | None = None  # training with locator.gradient="smoothed"
    synopsis_features: torch.Tensor | None = None  # [B, E_s] pooled synopsis features g, when requested
    detail_features: torch.Tensor | None = None  # [B, E_d] detail features averaged over time, when requested


class S2DNet(nn.Module, PretrainedMixin):
    """The synopsis-to-detail network of Liang et al., ECCV 2022."""

    config_kind = "s2dnet"

    def __init__(self, config: S2DConfig):
        super().__init__()
        self.config = config
        c = config
        K = c.num_classes
        stage = c.locator.feature_stage
        self.synopsis = SynopsisNet(c.synopsis, K, stage)
        backbone = self.synopsis.backbone
        channels = backbone.feature_dim if stage is None else backbone.stage_channels[stage]
        self.locator = Locator(c.locator, channels, K, c.synopsis.frames, map_size(c.synopsis.size, stage),
                               c.sampler.frames)
        self.context = ContextEncoder(K, self.synopsis.backbone.embed_dim, c.fusion.context_dim)
        self.detail = DetailNet(c.detail, c.fusion, K, c.sampler.frames)
        self.sampler = DetailSampler(c.sampler, c.mean, c.std, self.detail.backbone.layout)
        self.freeze_sampler = False
        self.set_freeze_sampler(False)
        self.backend = "auto"
        self.labels: tuple[str, ...] | None = class_names(c.labels)

    def class_axes(self) -> dict[str, tuple[int, int]]:
        """The parameters indexed by class: name → (dim, first index) of its `num_classes` class
        positions: the classifiers' rows (dim 0), and the columns reading the synopsis' top-k vector
        s (dim 1: the locator's conv takes `[features ; s]`, the context vector's layer `[s ; g]`)."""
        features = self.locator.conv.in_channels - self.config.num_classes
        return {"synopsis.fc.weight": (0, 0), "synopsis.fc.bias": (0, 0), "locator.conv.weight": (1, features),
                "context.fc.weight": (1, 0), "detail.fc.weight": (0, 0), "detail.fc.bias": (0, 0)}

    # -- training stages -------------------------------------------------------------------
    def set_freeze_sampler(self, frozen: bool = True) -> "S2DNet":
        """Stage 1 of the supplement's recipe: θ frozen, the detail net sees centre crops of
        uniform frames. Stage 2 (`frozen=False`) trains everything end to end."""
        self.freeze_sampler = frozen
        for p in self.locator.parameters():
            p.requires_grad_(not frozen)
        if self.config.locator.fixed_stride_px is not None:  # the stride head's output is not used
            self.locator.spatial_stride.weight.requires_grad_(False)
        self.locator.train(self.training and not frozen)
        return self

    def train(self, mode: bool = True) -> "S2DNet":
        from s2d.inference.optimize import check_trainable

        check_trainable(self, mode)
        super().train(mode)
        if self.freeze_sampler:
            self.locator.eval()
        return self

    # -- forward -------------------------------------------------------------------------------
    def synopsis_clip(self, frames: torch.Tensor, num_frames: torch.Tensor) -> torch.Tensor:
        """The SNet input: uniform frames, normalised, resized (nearest) to the synopsis size."""
        c = self.config
        return uniform_view(frames, num_frames, c.synopsis.frames, c.synopsis.size, c.mean, c.std)

    def forward(self, frames: torch.Tensor, num_frames: torch.Tensor | None = None,
                return_detail: bool = False, look_at: RawSampling | None = None,
                return_features: bool = False) -> S2DOutput:
        """Classify dense clips; `look_at` (raw sampling parameters) overrides where the detail
        sampler looks, for probing the detail net at chosen windows. `return_features` adds the
        pooled synopsis and detail features (for downstream work; the other outputs are unchanged)."""
        c = self.config
        num_frames = check_clip(frames, num_frames, min_batch=2 if self.training else 1,
                                dense=(c.dense_frames, c.dense_size))
        B, _, _, H, W = frames.shape
        backend = resolve_backend(self.backend, frames.device)
        syn = self.synopsis(self.synopsis_clip(frames, num_frames))
        idx, s, m = self.context(syn.logits, syn.pooled, c.topk, c.topk_scheme, backend)
        if look_at is not None:
            raw = look_at
        elif self.freeze_sampler:
            raw = centre_crop_params(B, c.sampler.frames, W, H, c.sampler.size, frames.device)
        else:
            raw = self.locator(syn.feature_map, s)
            if c.locator.fixed_stride_px is not None:
                raw = fixed_stride(raw, c.locator.fixed_stride_px, W, H, c.sampler.size)
        probe = None
        view = raw
        if self.training and look_at is None and not self.freeze_sampler and c.locator.gradient == "smoothed":
            # the window learns from loss differences (see s2d.models.smoothing), not through the sampler
            view = RawSampling(*(p.detach() for p in raw.as_tuple()))
            probe = self._shift_probe(frames, num_frames, raw, m, s, idx, backend)
        volume = self.sampler(frames, num_frames, view, backend=backend)
        features = None
        if return_features:
            logits, features = self.detail(volume, m, s, idx, backend=backend, return_features=True)
        else:
            logits = self.detail(volume, m, s, idx, backend=backend)
        window = SamplingWindow.from_raw(raw, num_frames, H, W, c.sampler.size)
        return S2DOutput(logits, syn.logits, idx, s, window, volume if return_detail else None, self.sampler.layout,
                         probe, syn.pooled if return_features else None, features)

    @torch.no_grad()
    def _shift_probe(self, frames, num_frames, raw, m, s, idx, backend: str) -> ShiftProbe:
        """The detail net's logits at the locator's windows moved by ± random steps (s2d.models.smoothing)."""
        c = self.config
        H, W = frames.shape[-2:]
        signs = random_signs(frames.shape[0], frames.device)
        logits = []
        for sign in (1.0, -1.0):
            view = moved(raw, num_frames, sign * signs, c.locator.smooth_px, W, H, c.sampler.size)
            volume = self.sampler(frames, num_frames, view, backend=backend)
            logits.append(self.detail(volume, m, s, idx, backend=backend))
        with torch.enable_grad():
            window = window_of(raw, num_frames, W, H, c.sampler.size)
        return ShiftProbe(window, logits[0], logits[1], signs, c.locator.smooth_px)

    def predict(self, video, topk: int | None = None, device=None):
        """Classify a video file or a uint8 clip `[T, H, W, 3]`: see `s2d.inference.predict.predict`."""
        from s2d.inference.predict import predict
        return predict(self, video, topk=topk, device=device)

    def optimize_for_inference(self, **options) -> "S2DNet":
        """A faster eval-only copy with the same outputs: see `s2d.inference.optimize.optimize_for_inference`."""
        from s2d.inference.optimize import optimize_for_inference
        return optimize_for_inference(self, **options)

    def loss(self, out: S2DOutput, target: torch.Tensor) -> torch.Tensor:
        """Training loss: CE(detail) + snet_loss_weight · CE(synopsis) (plus, with
        `locator.gradient="smoothed"`, a zero-valued term carrying the centres' gradient)."""
        loss = F.cross_entropy(out.logits, target) + self.config.snet_loss_weight * F.cross_entropy(out.snet_logits, target)
        if out.shift_probe is not None:
            loss = loss + surrogate_loss(out.shift_probe, target)
        return loss
