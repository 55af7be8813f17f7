"""Pictures of where the model looked: a PNG contact sheet and an animated GIF.

Column j of the sheet shows the dense frame nearest the temporal grid point μ_t(j) with the
sampled region drawn on it (`s2d.models.sampler.sampled_box`: the extent of the sample points,
centre ± stride·(S−1)/2 per axis), above the detail frame V̂_j it
became; a strip under the header shows the temporal filter weights over the whole dense clip.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from s2d.inference.predict import Prediction
from s2d.io.files import atomic_write
from s2d.models.sampler import sampled_box
from s2d_kernels.sampler import RawSampling, filterbanks

THUMB = 112
COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230)]


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def detail_frames(detail: torch.Tensor, layout: str, mean, std) -> np.ndarray:
    """One video's V̂ (`[T_d, 3, S, S]` for layout "btchw", `[3, T_d, S, S]` for "bcthw") as
    uint8 `[T_d, S, S, 3]`, the normalisation undone."""
    if layout not in ("btchw", "bcthw"):
        raise ValueError(f"detail layout must be 'btchw' or 'bcthw', got {layout!r}")
    v = detail.float().cpu()
    if layout == "bcthw":
        v = v.transpose(0, 1)
    mean = torch.tensor(mean).view(1, 3, 1, 1)
    std = torch.tensor(std).view(1, 3, 1, 1)
    return (((v * std + mean).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1)).numpy()


def _detail_frames(pred: Prediction, config) -> np.ndarray:
    out = pred.outputs
    return detail_frames(out.detail[0], out.detail_layout, config.mean, config.std)


def _regions(pred: Prediction, config):
    """Per detail frame: source frame index, box (x0, y0, x1, y1) in dense pixels, temporal weights."""
    p = pred.outputs.params
    T = pred.clip.shape[0]
    H, W = pred.clip.shape[1:3]
    raw = RawSampling(*(t[:1].detach().float().cpu() for t in p.raw.as_tuple()))
    Ft, _, _ = filterbanks(torch.tensor([pred.num_frames]), raw, T, H, W, config.sampler.size,
                           config.sampler.temporal)
    Ft = Ft[0]
    boxes = sampled_box(p, config.sampler.size)[0].detach().float().cpu()
    out = []
    for j in range(Ft.shape[0]):
        src = int(Ft[j].argmax()) if float(Ft[j].sum()) > 0 else int(round(float(p.centre_t[0])))
        out.append((min(max(src, 0), T - 1), tuple(float(v) for v in boxes[j])))
    return out, Ft.sum(0).numpy()


def _short(name: str, n: int = 42) -> str:
    return name if len(name) <= n else name[: n - 3] + "..."


def _header_lines(pred: Prediction) -> list[str]:
    name = os.path.basename(pred.path) if pred.path else "clip"
    untrained = "" if pred.pretrained else "  -  UNTRAINED WEIGHTS: labels are meaningless"
    lines = [f"{name}  ({pred.num_frames} frames read)" + untrained]
    if pred.synopsis:
        lines.append("synopsis top-k: " + " | ".join(f"{_short(n)} {p:.2f}" for n, p in pred.synopsis))
    lines.append("prediction:     " + " | ".join(f"{_short(n)} {p:.2f}" for n, p in pred.labels))
    return lines


def _wrap(lines: list[str], font, width: int) -> list[str]:
    """Greedy word wrap of each line to `width` pixels."""
    out = []
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for line in lines:
        cur = ""
        for word in line.split(" "):
            trial = f"{cur} {word}" if cur else word
            if cur and draw.textlength(trial, font=font) > width:
                out.append(cur)
                cur = "    " + word
            else:
                cur = trial
        out.append(cur)
    return out


def _frame_with_box(frame: np.ndarray, box, colour, scale: float) -> Image.Image:
    img = Image.fromarray(frame).resize((round(frame.shape[1] * scale), round(frame.shape[0] * scale)))
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = (v * scale for v in box)
    d.rectangle([x0, y0, x1, y1], outline=colour, width=2)
    d.ellipse([(x0 + x1) / 2 - 2, (y0 + y1) / 2 - 2, (x0 + x1) / 2 + 2, (y0 + y1) / 2 + 2], fill=colour)
    return img


def contact_sheet(pred: Prediction, config) -> Image.Image:
    """The PNG picture of one S2DNet prediction (needs `pred.outputs.detail`)."""
    if pred.sampling is None or pred.outputs is None or pred.outputs.detail is None:
        raise ValueError("a contact sheet needs an S2DNet prediction made with the detail volume kept")
    clip = pred.clip.cpu().numpy()
    regions, weights = _regions(pred, config)
    vhat = _detail_frames(pred, config)
    T_d = len(regions)
    scale = THUMB / clip.shape[1]
    pad, strip_h = 6, 40
    width = max(pad + T_d * (THUMB + pad), 640)
    font = _font(13)
    header = _wrap(_header_lines(pred), font, width - 2 * pad)
    head = 18 * len(header) + 12
    height = head + strip_h + 2 * (THUMB + pad) + 40
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    d = ImageDraw.Draw(sheet)
    for i, line in enumerate(header):
        d.text((pad, pad + 18 * i), line, fill=(240, 240, 240), font=font)
    # temporal weights over the dense clip: one bar per dense frame, marks at the chosen frames
    T = clip.shape[0]
    bw = (sheet.width - 2 * pad) / T
    top = head
    wmax = max(float(weights.max()), 1e-6)
    for t in range(T):
        h = (strip_h - 22) * float(weights[t]) / wmax
        d.rectangle([pad + t * bw, top + strip_h - 10 - h, pad + (t + 1) * bw - 1, top + strip_h - 10],
                    fill=(120, 160, 220))
    for j, (src, _) in enumerate(regions):
        x = pad + (src + 0.5) * bw
        d.line([x, top + strip_h - 8, x, top + strip_h - 2], fill=COLOURS[j % len(COLOURS)], width=2)
    d.text((pad, top - 2), "temporal weights over the dense clip", fill=(160, 160, 160), font=_font(10))
    y1 = head + strip_h
    y2 = y1 + THUMB + pad + 14
    for j, (src, box) in enumerate(regions):
        colour = COLOURS[j % len(COLOURS)]
        x = pad + j * (THUMB + pad)
        sheet.paste(_frame_with_box(clip[src], box, colour, scale), (x, y1))
        d.text((x, y1 + THUMB + 1), f"j={j} <- t={src}", fill=colour, font=_font(10))
        sheet.paste(Image.fromarray(vhat[j]).resize((THUMB, THUMB), Image.NEAREST), (x, y2))
    d.text((pad, y2 + THUMB + 4),
           "top: dense frames with the sampled regions; bottom: detail frames V^ fed to the detail net",
           fill=(160, 160, 160), font=_font(10))
    return sheet


def animation(pred: Prediction, config) -> list[Image.Image]:
    """GIF frames: for each detail frame, its source frame with the region next to V̂_j."""
    clip = pred.clip.cpu().numpy()
    regions, _ = _regions(pred, config)
    vhat = _detail_frames(pred, config)
    size = 2 * THUMB
    scale = size / clip.shape[1]
    frames = []
    for j, (src, box) in enumerate(regions):
        img = Image.new("RGB", (2 * size + 18, size + 24), (24, 24, 24))
        img.paste(_frame_with_box(clip[src], box, COLOURS[j % len(COLOURS)], scale), (6, 6))
        img.paste(Image.fromarray(vhat[j]).resize((size, size), Image.NEAREST), (size + 12, 6))
        ImageDraw.Draw(img).text((6, size + 8), f"detail frame {j} from dense frame {src}", fill=(230, 230, 230),
                                 font=_font(11))
        frames.append(img)
    return frames


def save_visualisation(pred: Prediction, config, out_dir: str | os.PathLike, stem: str | None = None) -> list[Path]:
    """Write `<stem>.png` (contact sheet) and `<stem>.gif` into `out_dir`; returns their paths.
    Each is written through `atomic_write` (an exclusive temporary file renamed into place), so no
    half-written picture is left and no file planted beside them is written through."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or (Path(pred.path).stem if pred.path else "clip")
    png, gif = out_dir / f"{stem}.png", out_dir / f"{stem}.gif"
    sheet = contact_sheet(pred, config)
    frames = animation(pred, config)
    atomic_write(png, lambda tmp: sheet.save(tmp, format="PNG"))
    atomic_write(gif, lambda tmp: frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                                                 duration=400, loop=0))
    return [png, gif]
