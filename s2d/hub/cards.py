"""Model cards: the README.md (with Hub front matter) of a model, rendered from its config and
measured figures, never typed in.

`render_model_card` takes the config, its parameters and GMACs (`s2d.models.flops.Complexity`), and
optionally the index entry, a recorded evaluation and recorded latencies; `s2d.hub.zoo_folder` gathers
those for the zoo's folder, and `model.save_pretrained` measures them on the model it saves.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from s2d.hub._index import ZooEntry
from s2d.models.clip import clip_spec
from s2d.models.config import BaselineConfig, S2DConfig
from s2d.models.flops import Complexity

PAPER_URL = "https://arxiv.org/abs/2207.09429"
OFFICIAL_CODE_URL = "https://github.com/aliyun/Synopsis-to-Detail-Network"

#: label list → (Hub dataset tag, display name)
DATASETS = {
    "sthv2": ("something-something-v2", "Something-Something V2"),
    "sthv1": ("something-something-v1", "Something-Something V1"),
    "kinetics400": ("kinetics-400", "Kinetics-400"),
    "minikinetics200": ("mini-kinetics-200", "Mini-Kinetics-200"),
    "synth16": (None, "s2d.synth (synthetic detail benchmark)"),  # generated on the fly, not a Hub dataset
}


def dataset_of(labels: str | tuple[str, ...] | None, unnamed: str) -> tuple[str | None, str]:
    """(Hub dataset id or None, readable name) of a config's `labels`; `unnamed` when it names none."""
    if isinstance(labels, str):
        return DATASETS.get(labels, (None, labels))
    return None, ("its own classes" if labels else unnamed)


ARCH_NAMES = {"tsm_mobilenet_v2": "TSM-MobileNetV2", "tsm_resnet50": "TSM-ResNet-50", "x3d_xs": "X3D-XS",
              "x3d_s": "X3D-S", "x3d_m": "X3D-M", "x3d_l": "X3D-L", "x3d_tiny": "X3D-tiny"}

S2DNET_BIBTEX = """@inproceedings{liang2022s2dnet,
  title     = {Delving into Details: Synopsis-to-Detail Networks for Video Recognition},
  author    = {Liang, Shuxian and Shen, Xu and Huang, Jianqiang and Hua, Xian-Sheng},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2022}
}"""
TSM_BIBTEX = """@inproceedings{lin2019tsm,
  title     = {TSM: Temporal Shift Module for Efficient Video Understanding},
  author    = {Lin, Ji and Gan, Chuang and Han, Song},
  booktitle = {IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2019}
}"""
X3D_BIBTEX = """@inproceedings{feichtenhofer2020x3d,
  title     = {X3D: Expanding Architectures for Efficient Video Recognition},
  author    = {Feichtenhofer, Christoph},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2020}
}"""


@dataclass
class Latency:
    """One recorded per-video latency of a model (a `models/.../per_video_latency` bench row)."""

    ms: float  # median per video
    batch: int | None
    dtype: str | None
    hardware: str
    mode: str  # bench mode: "full" or "quick" ("tiny" runs shrink the models and are not used)
    date: str | None = None  # when the benchmark ran


# -- rendering -----------------------------------------------------------------------------------------

def fmt_params(params: int) -> str:
    return f"{params / 1e6:.2f} M"


def fmt_gmacs(gmacs: float) -> str:
    return f"{gmacs:.3f}"


def _parts(config: S2DConfig | BaselineConfig, cx: Complexity) -> list[tuple[str, int, float]]:
    """(component, params, GMACs) rows; for a baseline the backbone is total minus classifier."""
    if config.kind == "s2dnet":
        c = config
        rows = [(f"synopsis net ({ARCH_NAMES.get(c.synopsis.arch, c.synopsis.arch)}, "
                 f"{c.synopsis.frames}×{c.synopsis.size}²)", "synopsis"),
                ("location & scale module", "locator"),
                ("context vector m", "context"),
                (f"detail sampler (Gaussian filterbanks → {c.sampler.frames}×{c.sampler.size}²)", "sampler"),
                (f"detail net ({ARCH_NAMES.get(c.detail.arch, c.detail.arch)}, fusion and classifier included)",
                 "detail")]
        out = [(label, cx.params_by_part.get(key, 0), cx.gmacs_by_part.get(key, 0.0)) for label, key in rows]
        if "fusion" in cx.gmacs_by_part:
            out.append((f"  of which context fusion ({', '.join(c.fusion.stages)})", cx.params_by_part["fusion"],
                        cx.gmacs_by_part["fusion"]))
        return out
    fc_p, fc_g = cx.params_by_part.get("fc", 0), cx.gmacs_by_part.get("fc", 0.0)
    return [(f"backbone ({ARCH_NAMES.get(config.arch, config.arch)}, {config.frames}×{config.size}²)",
             cx.params - fc_p, cx.gmacs - fc_g), ("classifier", fc_p, fc_g)]


def _front_matter(config: S2DConfig | BaselineConfig, evaluation: dict | None) -> str:
    family = config.family
    tags = ["s2d", "video-classification", "action-recognition", family,
            "s2dnet" if config.kind == "s2dnet" else "baseline", "pytorch_model_hub_mixin", "model_hub_mixin"]
    lines = ["---", "library_name: s2d", "pipeline_tag: video-classification", "license: apache-2.0"]
    hub_dataset = dataset_of(config.labels, "")[0]
    if hub_dataset:
        lines += ["datasets:", f"- {hub_dataset}"]
    if evaluation is not None:
        lines += ["metrics:", "- accuracy"]
    lines += ["tags:"] + [f"- {t}" for t in tags] + ["---"]
    return "\n".join(lines)


def _title_and_intro(config, name: str | None) -> list[str]:
    dataset = dataset_of(config.labels, "an unnamed label set")[1]
    title = name or ("S2DNet" if config.kind == "s2dnet" else "Video classifier")
    if config.kind == "s2dnet":
        c = config
        intro = (f"An S2DNet (Synopsis-to-Detail Network, Liang et al., ECCV 2022) for {dataset} "
                 f"({c.num_classes} classes), implemented in the `s2d` library. A light synopsis net "
                 f"({ARCH_NAMES.get(c.synopsis.arch, c.synopsis.arch)}) looks at {c.synopsis.frames} frames of "
                 f"{c.synopsis.size}² and guesses the top-{c.topk} actions; from its features and that guess, a "
                 f"location & scale module decides where and how widely to look; a Gaussian filterbank sampler "
                 f"cuts a {c.sampler.frames}×{c.sampler.size}² detail volume out of the full {c.dense_frames}-frame "
                 f"{c.dense_size}² clip; the detail net ({ARCH_NAMES.get(c.detail.arch, c.detail.arch)}), "
                 f"conditioned on the synopsis through a context vector fused after "
                 f"{', '.join(c.fusion.stages) or 'no stage'}, makes the prediction.")
    else:
        intro = (f"A single-network baseline ({ARCH_NAMES.get(config.arch, config.arch)}) for {dataset} "
                 f"({config.num_classes} classes): {config.frames} frames spread uniformly over the clip, "
                 f"resized to {config.size}², one backbone, no synopsis or sampler. It is the comparison point "
                 f"for the S2DNet models of the `s2d` library.")
    return [f"# {title}", "", intro, "",
            f"Paper: [{PAPER_URL}]({PAPER_URL}) · official code: [{OFFICIAL_CODE_URL}]({OFFICIAL_CODE_URL}) "
            f"(this is an independent implementation; checkpoints of the official code, TSM family, "
            f"convert with `python -m s2d convert official`)."]


def _input_section(config) -> list[str]:
    c = config
    spec = clip_spec(c)
    mean = ", ".join(f"{v:g}" for v in c.mean)
    std = ", ".join(f"{v:g}" for v in c.std)
    lines = ["## Input clip", "",
             f"- `frames`: `[B, {c.dense_frames}, 3, {c.dense_size}, {c.dense_size}]` RGB, **uint8** (0-255); "
             f"optional `num_frames` `[B]` gives the valid length of shorter, padded videos.",
             f"- Preprocessing: {c.dense_frames} frames spread uniformly over the whole video (short videos repeat "
             f"their last frame), short side resized to {spec.short_side}, centre crop {spec.crop_size}×{spec.crop_size} "
             f"(`model.predict(path)` and `s2d.io.read_clip(path, s2d.models.clip.clip_spec(model.config))` do this).",
             f"- Normalisation happens inside the model for uint8 input: mean ({mean}), std ({std}) on [0, 1] "
             f"values. Float input is taken as already normalised."]
    if c.kind == "s2dnet":
        lines.append(f"- Inside: the synopsis sees {c.synopsis.frames} uniformly spaced frames resized (nearest) "
                     f"to {c.synopsis.size}²; the detail net sees the sampled {c.sampler.frames}×{c.sampler.size}² "
                     f"volume.")
    else:
        lines.append(f"- Inside: {c.frames} uniformly spaced frames resized (nearest) to {c.size}².")
    return lines


def _accuracy_section(name: str | None, has_weights: bool, evaluation: dict | None) -> list[str]:
    lines = ["## Accuracy", ""]
    if evaluation is not None:
        videos = f" ({evaluation['videos']:,} videos)" if evaluation.get("videos") else ""
        lines += ["| dataset | split | views | top-1 | top-5 |", "|---|---|---|---|---|",
                  f"| {evaluation['dataset']} | {evaluation['split']}{videos} | {evaluation['views']} | "
                  f"{evaluation['top1']:.2f} | {evaluation['top5']:.2f} |"]
        if evaluation.get("log"):
            lines += ["", f"Evaluation log: {evaluation['log']}"]
    elif not has_weights:
        lines.append("**No weights yet**: this model has not been trained and published, so there is no accuracy "
                     "to report. The architecture is available untrained (`s2d.create"
                     f"(\"{name or '<name>'}\")`); `s2d.load` refuses it with a `NoWeightsError` until weights are "
                     "published, and `python -m s2d predict` runs it untrained, with a warning.")
    elif name:
        lines.append(f"No evaluation has been recorded for these weights yet (`zoo/{name}/eval.json`).")
    else:
        lines.append("No evaluation has been recorded for these weights.")
    return lines


def _complexity_section(config, cx: Complexity) -> list[str]:
    c = config
    shape = f"{c.dense_frames}×3×{c.dense_size}×{c.dense_size}"
    lines = ["## Parameters and compute", "",
             f"- Parameters: **{cx.params:,}** ({fmt_params(cx.params)})",
             f"- Compute: **{fmt_gmacs(cx.gmacs)} GMACs** per video (one {shape} uint8 clip, batch 1)"
             + (f", the detail sampler included ({fmt_gmacs(cx.gmacs_by_part.get('sampler', 0.0))} GMACs)"
                if c.kind == "s2dnet" else ""),
             "", "| component | params | GMACs |", "|---|---:|---:|"]
    lines += [f"| {label} | {p:,} | {fmt_gmacs(g)} |" for label, p, g in _parts(config, cx)]
    lines += ["", "Counted with `torch.utils.flop_counter.FlopCounterMode` (total / 2 = multiply-accumulates) on "
              "the dense reference path, by `s2d.models.flops.measure`. Multi-view testing multiplies these by the number "
              "of views."]
    return lines


def _latency_section(latencies: list[Latency]) -> list[str]:
    lines = ["## Latency", ""]
    if not latencies:
        return lines + ["Not measured yet (`python -m s2d.bench --json bench/cpu-results.json` records it)."]
    lines += ["| hardware | batch | dtype | ms per video (median) |", "|---|---:|---|---:|"]
    lines += [f"| {lat.hardware} | {lat.batch if lat.batch is not None else '-'} | {lat.dtype or '-'} | "
              f"{lat.ms:.1f} |" for lat in latencies]
    when = f", run of {latencies[0].date}" if latencies[0].date else ""
    return lines + ["", "Random uint8 input of the dense clip shape, eval mode, `python -m s2d.bench` "
                    f"({latencies[0].mode} mode{when}; recorded in `bench/cpu-results.json`)."]


def _usage_section(config, name: str | None, repo_id: str | None, has_weights: bool) -> list[str]:
    c = config
    ref = name or (f"hf-hub:{repo_id}" if repo_id else "path/to/folder")
    clip = f"torch.zeros(1, {c.dense_frames}, 3, {c.dense_size}, {c.dense_size}, dtype=torch.uint8)"
    lines = ["## Usage", ""]
    if has_weights:
        lines += ["```python", "import torch", "import s2d", "",
                  f"model = s2d.load(\"{ref}\")  # eval mode, labels attached, strict loading",
                  "pred = model.predict(\"clip.mp4\")  # top-5 label names + probabilities + where it looked", "",
                  f"frames = {clip}  # [B, T, 3, H, W] RGB",
                  "with torch.no_grad():", "    probs = model(frames).logits.softmax(-1)",
                  "print([model.labels[i] for i in probs[0].topk(5).indices])", "```"]
        if repo_id:
            dest = f"zoo/{name}" if name else repo_id.split("/")[1]
            lines += ["", "Offline use: fetch the repo once, then load it by name (in a checkout, `zoo/<name>/` is "
                      "found automatically) or by folder:", "", "```",
                      f"hf download {repo_id} --local-dir {dest}   # older huggingface_hub: huggingface-cli download",
                      "```"]
    else:
        lines += ["No weights are published yet. The architecture, randomly initialised:", "", "```python",
                  "import torch", "import s2d", "",
                  f"model = s2d.create(\"{ref}\").eval()",
                  f"frames = {clip}  # [B, T, 3, H, W] RGB",
                  "with torch.no_grad():", "    logits = model(frames).logits", "```"]
    return lines


def _training_section(config) -> list[str]:
    c = config
    if c.kind != "s2dnet":
        return ["## Training", "",
                f"A comparison baseline, trained as in its original paper ({'TSM' if c.family == 'tsm' else 'X3D'}). "
                "Backbone initialisation from ImageNet (TSM, `python -m s2d convert torchvision`) or Kinetics "
                "(X3D, `python -m s2d convert pytorchvideo|slowfast`) checkpoints is supported."]
    if c.labels == "synth16":
        return ["## Training recipe", "",
                "Trained from scratch on CPU by `python bench/synthetic/run.py` (seeded; every clip generated on the "
                "fly, none repeated), which also trains the baselines it is compared with. The recipe, the figures "
                "and where it departs from the paper's are in `bench/synthetic/results.md`: synopsis and detail "
                "nets first alone (the paper starts from pretrained nets), then the paper's two stages (θ frozen "
                "on centre crops, then end to end); AdamW, cosine schedule, loss CE(detail net) + "
                f"{c.snet_loss_weight:g}·CE(synopsis net), V̂ gradient normalisation."]
    tsm = c.family == "tsm"
    lr, e1, e2 = ("0.001", 40, 80) if tsm else ("0.005", 50, 100)
    init = ("backbones initialised from ImageNet weights (`python -m s2d convert torchvision`)" if tsm else
            "backbones initialised randomly")
    return ["## Training recipe", "",
            "Supplement §3 of the paper:", "",
            f"- Two stages, {e1} + {e2} epochs: first the location & scale parameters θ are frozen and the detail "
            f"net is fed the centre crop of uniform frames (all else trains jointly); then everything trains end "
            f"to end.",
            f"- SGD, momentum 0.9, initial learning rate {lr} with a cosine schedule, weight decay 1e-3, batch "
            f"size 64, dropout 0.5; {init}.",
            f"- Loss: CE(detail net) + {c.snet_loss_weight:g}·CE(synopsis net)."]


def _citation_section(config) -> list[str]:
    entries = [S2DNET_BIBTEX]
    if config.kind != "s2dnet":
        entries.append(TSM_BIBTEX if config.family == "tsm" else X3D_BIBTEX)
    return ["## Citation", "", "```bibtex", "\n\n".join(entries), "```", "",
            f"Official S2DNet code: {OFFICIAL_CODE_URL}"]


def render_model_card(config: S2DConfig | BaselineConfig, *, complexity: Complexity, name: str | None = None,
                      repo_id: str | None = None, entry: ZooEntry | None = None, has_weights: bool | None = None,
                      evaluation: dict | None = None, latencies: Iterable[Latency] = ()) -> str:
    """The model card (README.md with YAML front matter) of a model described by `config`.

    `has_weights` defaults to "published": an index `entry`, or a `repo_id` being published to.
    """
    if entry is not None and repo_id is None:
        repo_id = entry.repo_id
    if has_weights is None:
        has_weights = repo_id is not None or entry is not None
    sections = [_front_matter(config, evaluation), "", *_title_and_intro(config, name), "",
                *_input_section(config), "", *_accuracy_section(name, has_weights, evaluation), "",
                *_complexity_section(config, complexity), "", *_latency_section(list(latencies)), "",
                *_usage_section(config, name, repo_id, has_weights), "", *_training_section(config), "",
                *_citation_section(config)]
    return "\n".join(sections) + "\n"


def render_config(config: S2DConfig | BaselineConfig) -> str:
    """`config.json` exactly as `save_pretrained` writes it."""
    return config.to_json() + "\n"


def card_numbers(text: str) -> dict[str, Any]:
    """Parameters and total GMACs as printed on a card (what the tests compare with the model)."""
    params = re.search(r"- Parameters: \*\*([\d,]+)\*\*", text)
    gmacs = re.search(r"- Compute: \*\*([\d.]+) GMACs\*\*", text)
    return {"params": int(params.group(1).replace(",", "")) if params else None,
            "gmacs": float(gmacs.group(1)) if gmacs else None}
