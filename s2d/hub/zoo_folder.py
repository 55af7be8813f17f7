"""Model cards and the zoo folder, generated from configs and measured figures so they never drift.

`python -m s2d zoo cards` writes, for every registered model, `zoo/<name>/config.json` (the
config `save_pretrained` would write) and `zoo/<name>/README.md` (the Hub model card), plus the
index `zoo/README.md`; `--check` only compares and exits non-zero when a file is stale.

Every figure on a card is measured or read, never typed in:

- parameters and GMACs: `s2d.models.flops.measure` on the model built from the config (FlopCounterMode
  total / 2 on the dense reference path, one video of the config's dense input), split by
  component, the detail sampler included;
- accuracy: `zoo/<name>/eval.json` when an evaluation has been recorded there, as
  `{"dataset": str, "split": str, "top1": float, "top5": float, "views": str, "videos": int,
  "log": str}` (top-1/top-5 in percent; `videos`, `log` optional); otherwise the card says that no
  weights are published yet (or that they are not evaluated yet);
- latency: the per-video latencies `python -m s2d.bench` recorded for this model in
  `bench/cpu-results.json` (its schema-1 JSON document); otherwise "not measured yet";
- weights: the zoo index (`s2d/hub/zoo_index.json`).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Iterable

import torch

from s2d.hub._index import load_index
from s2d.hub._sources import zoo_dir
from s2d.hub.builder import build_model
from s2d.hub.cards import ARCH_NAMES, Latency, dataset_of, fmt_gmacs, fmt_params, render_config, render_model_card
from s2d.hub.registry import MODELS, get_config
from s2d.hub.weights import WEIGHTS_NAME
from s2d.io.files import atomic_write_text
from s2d.models.config import BaselineConfig, S2DConfig
from s2d.models.flops import Complexity, measure


def repo_root() -> Path:
    """The folder holding the zoo folder: in a checkout, where `bench/` lives too."""
    return zoo_dir().parent


def bench_results_path() -> Path:
    return repo_root() / "bench" / "cpu-results.json"


# -- measured and recorded figures -----------------------------------------------------------------

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
    path = (zoo or zoo_dir()) / name / "eval.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("dataset", "split", "top1", "top5", "views"):
        if key not in data:
            raise ValueError(f"{path}: missing {key!r} (see s2d.hub.zoo_folder for the format)")
    return data


_MEASURED: dict[str, Complexity] = {}


def measure_config(config: S2DConfig | BaselineConfig) -> Complexity:
    """Parameters and GMACs of the architecture a config describes (random init, CPU).

    Memoised per architecture: configs that differ only in their label list (e.g. the SSv1 and
    SSv2 variants) are measured once.
    """
    key = json.dumps({**config.to_dict(), "labels": None}, sort_keys=True)
    if key not in _MEASURED:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = build_model(config)
        _MEASURED[key] = measure(model)
    return copy.deepcopy(_MEASURED[key])


# -- the zoo folder ----------------------------------------------------------------------------------

def render_zoo_card(name: str, complexity: Complexity, *, repo_id: str | None = None) -> str:
    """The card of registered model `name` with its index entry, evaluation and latency."""
    entry = load_index().get(name)
    return render_model_card(get_config(name), complexity=complexity, name=name, repo_id=repo_id, entry=entry,
                             evaluation=read_eval(name), latencies=read_latency(name))


def render_zoo_index(complexities: dict[str, Complexity]) -> str:
    """`zoo/README.md`: the table of models and how to fetch and load them."""
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
        dataset = dataset_of(c.labels, "-")[1]
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
                     f"{fmt_params(cx.params)} | {fmt_gmacs(cx.gmacs)} | {weights} |")
    lines += ["", "GMACs per video for the dense input, the detail sampler included (see each card for the split).",
              "", "## Download and load", "",
              "```python", "import s2d", "s2d.list_models(pretrained=True)   # names with published weights",
              "model = s2d.load(\"<name>\")         # Hub download into the Hugging Face cache, pinned and checked",
              "```", "",
              "Offline, or to keep the weights with the checkout:", "", "```",
              "hf download <org>/<repo> --revision <commit> --local-dir zoo/<name>",
              "# huggingface_hub < 0.34: huggingface-cli download <org>/<repo> --revision <commit> "
              "--local-dir zoo/<name>", "```", "",
              "`s2d.load(\"<name>\")` then reads `zoo/<name>/model.safetensors` and `config.json` (both checked "
              "against their sha256 in `s2d/hub/zoo_index.json`; `zoo:<name>` names the zoo model even where a "
              "folder of that name is in the working directory); any folder with `config.json` + "
              "`model.safetensors` loads with `s2d.load(\"path/to/folder\")`. With `HF_HUB_OFFLINE=1` only the "
              "cache and local folders are used. `python -m s2d zoo list` shows what is published, cached and "
              "present locally.", "",
              "## Publishing", "",
              "```", "python -m s2d zoo publish <name> --repo-id <org>/<repo> [--weights model.safetensors] "
              "[--dry-run]", "```", "",
              "uploads config, card and weights and prints the revision, sha256 and size to record in "
              "`s2d/hub/zoo_index.json` (`--record` writes them).", ""]
    return "\n".join(lines)


def zoo_files(complexities: dict[str, Complexity], zoo: Path) -> dict[Path, str]:
    """Every generated file of the zoo folder and its expected content."""
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
            atomic_write_text(path, files[path])
    return stale
