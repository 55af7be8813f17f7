"""Model cards and the zoo folder, generated from configs and measured figures so they never drift.

`python -m s2d zoo cards` writes, for every registered model, `zoo/<name>/config.json` (the
config `save_pretrained` would write) and `zoo/<name>/README.md` (the Hub model card), plus the
index `zoo/README.md`; `--check` only compares and exits non-zero when a file is stale.

Every figure on a card is measured or read, never typed in:

- parameters and GMACs: `s2d.flops.measure` on the model built from the config (FlopCounterMode
  total / 2 on the dense reference path, one video of the config's dense input), split by
  component, the detail sampler included;
- accuracy: `zoo/<name>/eval.json` when an evaluation has been recorded there, as
  `{"dataset": str, "split": str, "top1": float, "top5": float, "views": str, "videos": int,
  "log": str}` (top-1/top-5 in percent; `videos`, `log` optional); otherwise the card says that no
  weights are published yet (or that they are not evaluated yet);
- latency: the per-video latencies `python -m s2d.bench` recorded for this model in
  `bench/cpu-results.json` (its schema-1 JSON document); otherwise "not measured yet";
- weights: the zoo index (`s2d/zoo_index.json`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from s2d.config import BaselineConfig, S2DConfig
from s2d.flops import Complexity
from s2d.hub import OFFICIAL_CODE_URL, PAPER_URL, WEIGHTS_NAME
from s2d.zoo_index import ZooEntry, load_index

#: label list → (Hub dataset tag, display name)
DATASETS = {
    "sthv2": ("something-something-v2", "Something-Something V2"),
    "sthv1": ("something-something-v1", "Something-Something V1"),
    "kinetics400": ("kinetics-400", "Kinetics-400"),
    "minikinetics200": ("mini-kinetics-200", "Mini-Kinetics-200"),
    "synth16": (None, "s2d.synth (synthetic detail benchmark)"),  # generated on the fly, not a Hub dataset
}
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


def repo_root() -> Path:
    """The checkout holding the `s2d` package (where `zoo/` and `bench/` live)."""
    return Path(__file__).resolve().parent.parent


def bench_results_path() -> Path:
    return repo_root() / "bench" / "cpu-results.json"


# -- measured and recorded figures -----------------------------------------------------------------

@dataclass
class Latency:
    """One recorded per-video latency of a model (a `models/.../per_video_latency` bench row)."""

    ms: float  # median per video
    batch: int | None
    dtype: str | None
    hardware: str
    mode: str  # bench mode: "full" or "quick" ("tiny" runs shrink the models and are not used)
    date: str | None = None  # when the benchmark ran


def _hardware(meta: dict) -> str:
    device = meta.get("device") or {}
    name = device.get("name") or device.get("host_cpu") or "unrecorded hardware"
    if device.get("type") == "cpu":
        details = [f"{device['cores']} cores" if device.get("cores") else None,
                   f"{meta['threads']} threads" if meta.get("threads") else None]
        details = [d for d in details if d]
        return f"{name} ({', '.join(details)})" if details else str(name)
    return str(name)


def read_latency(name: str, path: Path | None = None) -> list[Latency]:
    """Per-video latencies of `name` in the `python -m s2d.bench` JSON document (schema 1, see
    `s2d.bench`) at `bench/cpu-results.json`; empty when the file or the rows are missing.

    Rows of `--tiny` runs are skipped: they time shrunken models, not this one.
    """
    path = path or bench_results_path()
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        return []
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    mode = str(meta.get("mode", "full"))
    if mode == "tiny":
        return []
    out = []
    for row in doc["rows"]:
        if not (isinstance(row, dict) and row.get("model") == name and row.get("metric") == "latency"
                and str(row.get("id", "")).endswith("/per_video_latency") and row.get("unit") == "ms"
                and isinstance(row.get("value"), (int, float))):
            continue
        batch = row.get("batch")
        date = str(meta["date"])[:10] if meta.get("date") else None
        out.append(Latency(float(row["value"]), int(batch) if isinstance(batch, int) else None,
                           row.get("dtype"), _hardware(meta), mode, date))
    return sorted(out, key=lambda lat: (lat.batch or 0, lat.dtype or ""))


def read_eval(name: str, zoo: Path | None = None) -> dict | None:
    """The evaluation recorded in `zoo/<name>/eval.json`, or None."""
    from s2d.zoo import zoo_dir

    path = (zoo or zoo_dir()) / name / "eval.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("dataset", "split", "top1", "top5", "views"):
        if key not in data:
            raise ValueError(f"{path}: missing {key!r} (see s2d.cards for the format)")
    return data


_MEASURED: dict[str, Complexity] = {}


def measure_config(config: S2DConfig | BaselineConfig) -> Complexity:
    """Parameters and GMACs of the architecture a config describes (random init, CPU).

    Memoised per architecture: configs that differ only in their label list (e.g. the SSv1 and
    SSv2 variants) are measured once.
    """
    import copy

    import torch

    from s2d.flops import measure
    from s2d.registry import build_model

    key = json.dumps({**config.to_dict(), "labels": None}, sort_keys=True)
    if key not in _MEASURED:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = build_model(config)
        _MEASURED[key] = measure(model)
    return copy.deepcopy(_MEASURED[key])


# -- rendering -----------------------------------------------------------------------------------------

def _m(params: int) -> str:
    return f"{params / 1e6:.2f} M"


def _g(gmacs: float) -> str:
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
    if DATASETS.get(config.labels, (None,))[0]:
        lines += ["datasets:", f"- {DATASETS[config.labels][0]}"]
    if evaluation is not None:
        lines += ["metrics:", "- accuracy"]
    lines += ["tags:"] + [f"- {t}" for t in tags] + ["---"]
    return "\n".join(lines)


def _title_and_intro(config, name: str | None) -> list[str]:
    dataset = DATASETS.get(config.labels, (None, config.labels or "an unnamed label set"))[1]
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
    from s2d.clip import clip_spec

    c = config
    spec = clip_spec(c)
    mean = ", ".join(f"{v:g}" for v in c.mean)
    std = ", ".join(f"{v:g}" for v in c.std)
    lines = ["## Input clip", "",
             f"- `frames`: `[B, {c.dense_frames}, 3, {c.dense_size}, {c.dense_size}]` RGB, **uint8** (0-255); "
             f"optional `num_frames` `[B]` gives the valid length of shorter, padded videos.",
             f"- Preprocessing: {c.dense_frames} frames spread uniformly over the whole video (short videos repeat "
             f"their last frame), short side resized to {spec.short_side}, centre crop {spec.crop_size}×{spec.crop_size} "
             f"(`model.predict(path)` and `s2d.io.read_clip(path, s2d.clip.clip_spec(model.config))` do this).",
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
             f"- Parameters: **{cx.params:,}** ({_m(cx.params)})",
             f"- Compute: **{_g(cx.gmacs)} GMACs** per video (one {shape} uint8 clip, batch 1)"
             + (f", the detail sampler included ({_g(cx.gmacs_by_part.get('sampler', 0.0))} GMACs)"
                if c.kind == "s2dnet" else ""),
             "", "| component | params | GMACs |", "|---|---:|---:|"]
    lines += [f"| {label} | {p:,} | {_g(g)} |" for label, p, g in _parts(config, cx)]
    lines += ["", "Counted with `torch.utils.flop_counter.FlopCounterMode` (total / 2 = multiply-accumulates) on "
              "the dense reference path, by `s2d.flops.measure`. Multi-view testing multiplies these by the number "
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


def render_zoo_card(name: str, complexity: Complexity, *, repo_id: str | None = None) -> str:
    """The card of registered model `name` with its index entry, evaluation and latency."""
    from s2d.registry import get_config

    entry = load_index().get(name)
    return render_model_card(get_config(name), complexity=complexity, name=name, repo_id=repo_id, entry=entry,
                             evaluation=read_eval(name), latencies=read_latency(name))


def render_zoo_index(complexities: dict[str, Complexity]) -> str:
    """`zoo/README.md`: the table of models and how to fetch and load them."""
    from s2d.registry import get_config

    index = load_index()
    lines = ["# Model zoo", "",
             "One folder per model: `config.json` (the architecture) and `README.md` (its model card, also the Hub "
             "card); `model.safetensors` appears once the weights are downloaded. Generated by "
             "`python -m s2d zoo cards` from the configs and measured figures; `--check` verifies they are "
             "current.", "",
             "| model | dataset | synopsis → detail | dense input | params | GMACs | weights |",
             "|---|---|---|---|---:|---:|---|"]
    for name in sorted(complexities):
        c, cx = get_config(name), complexities[name]
        dataset = DATASETS.get(c.labels, (None, c.labels or "-"))[1]
        if c.kind == "s2dnet":
            nets = (f"{ARCH_NAMES.get(c.synopsis.arch, c.synopsis.arch)} {c.synopsis.frames}×{c.synopsis.size}² → "
                    f"{ARCH_NAMES.get(c.detail.arch, c.detail.arch)} {c.sampler.frames}×{c.sampler.size}²")
        else:
            nets = f"{ARCH_NAMES.get(c.arch, c.arch)} {c.frames}×{c.size}² (baseline)"
        entry = index.get(name)
        if entry is None:
            weights = "no weights yet"
        elif entry.bundled:
            weights = f"in this repository ([{name}/{WEIGHTS_NAME}]({name}/{WEIGHTS_NAME}))"
        else:
            weights = f"[{entry.repo_id}](https://huggingface.co/{entry.repo_id})"
        lines.append(f"| [{name}]({name}/README.md) | {dataset} | {nets} | {c.dense_frames}×{c.dense_size}² | "
                     f"{_m(cx.params)} | {_g(cx.gmacs)} | {weights} |")
    lines += ["", "GMACs per video for the dense input, the detail sampler included (see each card for the split).",
              "", "## Download and load", "",
              "```python", "import s2d", "s2d.list_models(pretrained=True)   # names with published weights",
              "model = s2d.load(\"<name>\")         # Hub download into the Hugging Face cache, pinned and checked",
              "```", "",
              "Offline, or to keep the weights with the checkout:", "", "```",
              "hf download <org>/<repo> --revision <commit> --local-dir zoo/<name>",
              "# huggingface_hub < 0.34: huggingface-cli download <org>/<repo> --revision <commit> "
              "--local-dir zoo/<name>", "```", "",
              "`s2d.load(\"<name>\")` then reads `zoo/<name>/model.safetensors` (checked against the sha256 in "
              "`s2d/zoo_index.json`); any folder with `config.json` + `model.safetensors` loads with "
              "`s2d.load(\"path/to/folder\")`. With `HF_HUB_OFFLINE=1` only the cache and local folders are used. "
              "`python -m s2d zoo list` shows what is published, cached and present locally.", "",
              "## Publishing", "",
              "```", "python -m s2d zoo publish <name> --repo-id <org>/<repo> [--weights model.safetensors] "
              "[--dry-run]", "```", "",
              "uploads config, card and weights and prints the revision, sha256 and size to record in "
              "`s2d/zoo_index.json` (`--record` writes them).", ""]
    return "\n".join(lines)


def zoo_files(complexities: dict[str, Complexity], zoo: Path) -> dict[Path, str]:
    """Every generated file of the zoo folder and its expected content."""
    from s2d.registry import get_config

    files = {zoo / "README.md": render_zoo_index(complexities)}
    for name, cx in complexities.items():
        files[zoo / name / "config.json"] = render_config(get_config(name))
        files[zoo / name / "README.md"] = render_zoo_card(name, cx)
    return files


def sync_cards(names: Iterable[str] | None = None, *, check: bool = False, zoo: Path | None = None,
               complexities: dict[str, Complexity] | None = None) -> list[Path]:
    """Write (or with `check`, only compare) the generated zoo files; return those that were stale.

    `names` limits the per-model files to those models (the index always covers all of them).
    """
    from s2d.registry import MODELS, get_config
    from s2d.zoo import zoo_dir

    zoo = zoo or zoo_dir()
    complexities = dict(complexities or {})
    for name in sorted(MODELS):
        if name not in complexities:
            complexities[name] = measure_config(get_config(name))
    files = zoo_files(complexities, zoo)
    if names is not None:
        wanted = {zoo / "README.md"} | {zoo / n / f for n in names for f in ("config.json", "README.md")}
        files = {p: t for p, t in files.items() if p in wanted}
    stale = [p for p, text in files.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if not check:
        for path in stale:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[path], encoding="utf-8")
    return stale


def card_numbers(text: str) -> dict[str, Any]:
    """Parameters and total GMACs as printed on a card (what the tests compare with the model)."""
    import re

    params = re.search(r"- Parameters: \*\*([\d,]+)\*\*", text)
    gmacs = re.search(r"- Compute: \*\*([\d.]+) GMACs\*\*", text)
    return {"params": int(params.group(1).replace(",", "")) if params else None,
            "gmacs": float(gmacs.group(1)) if gmacs else None}
