"""Reporting: run metadata, the JSON document (schema 1, described in `s2d.bench`) and the
`--base` comparison. The markdown tables are rendered by `s2d.bench.markdown`."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Iterable

import torch

from s2d.bench.context import SECTIONS, Bench

SCHEMA = 1


# -- metadata ----------------------------------------------------------------------------------
def host_cpu() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else `platform.processor()`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (affinity-aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def git_revision(start: Path | None = None) -> dict[str, Any]:
    """`{"revision", "dirty"}` of the checkout holding the s2d package (None when not a checkout)."""
    root = start or Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return {"revision": None, "dirty": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=30)
        return {"revision": rev.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}


def versions() -> dict[str, str | None]:
    """Versions of the software whose speed is measured."""
    import s2d

    out: dict[str, str | None] = {"python": platform.python_version(), "torch": torch.__version__,
                                  "s2d": getattr(s2d, "__version__", None)}
    for name in ("triton", "torchvision", "numpy", "av", "decord"):
        try:
            module = __import__(name)
            out[name] = str(getattr(module, "__version__", "unknown"))
        except Exception:
            out[name] = None
    out["cuda"] = torch.version.cuda
    return out


def device_info(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {"type": device.type, "host_cpu": host_cpu(), "cores": usable_cores(),
                            "platform": platform.platform()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, capability=f"{props.major}.{props.minor}",
                    memory_gb=round(props.total_memory / 2**30, 1))
    else:
        info["name"] = info["host_cpu"]
    return info


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def build_meta(bench: Bench, argv: list[str], sections: Iterable[str], threads: int, started: _dt.datetime,
               elapsed_s: float, load_start: list[float] | None, probe_start: float | None) -> dict[str, Any]:
    """The `meta` object of the JSON document (see `s2d.bench`)."""
    from s2d.bench.timing import parallel_probe_ms

    return {
        "date": started.isoformat(timespec="seconds"),
        "mode": bench.mode,
        "device": device_info(bench.device),
        "threads": threads,
        "versions": versions(),
        "git": git_revision(),
        "argv": list(argv),
        "sections": list(sections),
        "shapes": bench.shapes,
        "skipped": bench.skipped,
        "notes": bench.notes,
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "parallel_probe_ms": {"start": probe_start, "end": round(parallel_probe_ms(), 3)},
        "elapsed_s": round(elapsed_s, 1),
    }


def make_document(meta: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema": SCHEMA, "meta": meta, "rows": rows}


def write_json(doc: dict[str, Any], path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


def validate_document(doc: Any) -> list[str]:
    """Problems with a benchmark document (empty when it matches schema 1)."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["document is not a JSON object"]
    if doc.get("schema") != SCHEMA:
        problems.append(f"schema is {doc.get('schema')!r}, expected {SCHEMA}")
    if not isinstance(doc.get("meta"), dict):
        problems.append("meta is missing or not an object")
    rows = doc.get("rows")
    if not isinstance(rows, list):
        return problems + ["rows is missing or not a list"]
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.append(f"row {i} is not an object")
            continue
        for key, types in (("id", str), ("section", str), ("name", str), ("metric", str), ("unit", str)):
            if not isinstance(row.get(key), types):
                problems.append(f"row {i} field {key!r} is missing or not a {types.__name__}")
        if not isinstance(row.get("value"), (int, float)) or isinstance(row.get("value"), bool):
            problems.append(f"row {i} ({row.get('id')}) value is not a number")
        if row.get("id") in seen:
            problems.append(f"row id {row.get('id')!r} repeats")
        seen.add(row.get("id"))
    return problems


def merge_sections(doc: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
    """`doc` with the sections measured by `rerun` replaced by the re-measured rows.

    Rows, skips and shapes of the re-run sections come from `rerun`; everything else from `doc`,
    whose metadata gains a `reruns` entry (sections, date, commit, load, probe, argv) so the
    report says which numbers were measured when.
    """
    sections = rerun["meta"]["sections"]
    meta = dict(doc["meta"])
    new = rerun["meta"]
    meta["sections"] = [s for s in SECTIONS if s in set(meta["sections"]) | set(sections)]
    meta["skipped"] = [x for x in meta.get("skipped", []) if x["section"] not in sections] + new.get("skipped", [])
    meta["notes"] = list(dict.fromkeys(list(meta.get("notes", [])) + list(new.get("notes", []))))
    meta["shapes"] = {**meta.get("shapes", {}), **new.get("shapes", {})}
    meta["reruns"] = list(meta.get("reruns", [])) + [{
        "sections": sections, "date": new.get("date"), "git": new.get("git"), "argv": new.get("argv"),
        "loadavg_start": new.get("loadavg_start"), "loadavg_end": new.get("loadavg_end"),
        "parallel_probe_ms": new.get("parallel_probe_ms"), "elapsed_s": new.get("elapsed_s")}]
    kept = [r for r in doc["rows"] if r["section"] not in sections]
    rows = sorted(kept + rerun["rows"], key=lambda r: SECTIONS.index(r["section"]) if r["section"] in SECTIONS
                  else len(SECTIONS))  # stable: order within a section is kept
    return make_document(meta, rows)


# -- --base ------------------------------------------------------------------------------------
def load_document(path: str | os.PathLike) -> dict[str, Any]:
    """Read a benchmark JSON, refusing files of another schema."""
    doc = json.loads(Path(path).read_text())
    problems = validate_document(doc)
    if problems:
        raise ValueError(f"{path} is not an s2d.bench schema-{SCHEMA} document: {'; '.join(problems[:3])}")
    return doc


def apply_base(rows: list[dict[str, Any]], base: dict[str, Any], base_path: str) -> dict[str, Any]:
    """Add `base` (the earlier value) and `vs_base` to rows whose id the earlier run also has.

    `vs_base` is a speedup (> 1: better now): base/value for lower-is-better rows, value/base for
    higher-is-better rows; absent for counts (params, GMACs). Returns a summary for the metadata.
    """
    old = {r["id"]: r for r in base["rows"]}
    matched = 0
    for row in rows:
        prev = old.get(row["id"])
        if prev is None:
            continue
        matched += 1
        row["base"] = prev["value"]
        better = row.get("better")
        if better == "lower" and row["value"] > 0:
            row["vs_base"] = prev["value"] / row["value"]
        elif better == "higher" and prev["value"] > 0:
            row["vs_base"] = row["value"] / prev["value"]
    meta = base.get("meta", {})
    return {"path": str(base_path), "date": meta.get("date"), "git": meta.get("git"),
            "device": (meta.get("device") or {}).get("name"), "mode": meta.get("mode"),
            "matched_rows": matched, "unmatched_rows": len(rows) - matched}
<<<<<<< HEAD


# -- markdown ----------------------------------------------------------------------------------
def fmt(value: Any, unit: str = "") -> str:
    """Human formatting: integers with thousands separators, floats to 3-4 significant digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (unit == "params" and float(value).is_integer()):
        return f"{int(value):,}"
    v = float(value)
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 10:
        return f"{v:.2f}"
    if a >= 0.01:
        return f"{v:.3f}"
    return f"{v:.2e}"


def _notes(row: dict[str, Any]) -> str:
    parts = []
    if "first_call_s" in row and row.get("metric") == "latency":
        parts.append(f"first call {fmt(row['first_call_s'])} s")
    if "peak_mem_mb" in row:
        parts.append(f"peak {fmt(row['peak_mem_mb'])} MiB")
    if "gbps" in row:
        parts.append(f"{fmt(row['gbps'])} GB/s, {fmt(row['roofline_pct'])}% of copy BW")
    for key, val in (row.get("reference") or {}).items():
        parts.append(f"{key.replace('_', ' ')}: {fmt(val)}")
    return "; ".join(parts)


def _probe(meta: dict[str, Any]) -> str:
    probe = meta.get("parallel_probe_ms") or {}
    return f"{fmt(probe.get('start'))} ms at start, {fmt(probe.get('end'))} ms at end"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in body]
    return lines


def rows_table(rows: list[dict[str, Any]], with_base: bool) -> list[str]:
    """The generic per-group table: name, value, unit, p20, p80, n, notes [, base, vs base]."""
    header = ["Benchmark", "Value", "Unit", "p20", "p80", "n", "Notes"]
    if with_base:
        header += ["Base", "vs base"]
    body = []
    for r in rows:
        cells = [r["name"], fmt(r["value"], r["unit"]), r["unit"], fmt(r.get("p20")), fmt(r.get("p80")),
                 str(r.get("n", "")), _notes(r)]
        if with_base:
            cells += [fmt(r.get("base"), r["unit"]),
                      (f"{r['vs_base']:.2f}x" if "vs_base" in r else "")]
        body.append(cells)
    return _table(header, body)


def flops_summary(rows: list[dict[str, Any]]) -> list[str]:
    """Variant × (params, GMACs, GMACs w/o fusion, official and paper counts) table, and the
    per-component split."""
    by_id = {r["id"]: r for r in rows}
    variants = []
    for r in rows:
        if r["section"] == "flops" and r.get("model") not in variants:
            variants.append(r.get("model"))
    out = ["**Totals against the published counts** (params; GMACs per video for the model's dense clip)", ""]
    body = []
    for v in variants:
        p, g, x = by_id.get(f"flops/{v}/total/params"), by_id.get(f"flops/{v}/total/gmacs"), \
            by_id.get(f"flops/{v}/excl_fusion/gmacs")
        refs: dict[str, float] = {}
        for r in (p, g, x):
            if r:
                refs.update(r.get("reference") or {})
        body.append([v, fmt(p["value"], "params") if p else "", fmt(g["value"]) if g else "",
                     fmt(x["value"]) if x else "",
                     fmt(int(refs["official_params"]), "params") if "official_params" in refs else "",
                     fmt(refs.get("official_gmacs")), fmt(refs.get("official_gmacs_excl_fusion")),
                     fmt(refs.get("paper_params_m")), fmt(refs.get("paper_gflops")),
                     fmt(refs.get("paper_latency_ms_v100_b16"))])
    out += _table(["Variant", "Params", "GMACs", "GMACs w/o fusion", "Official params", "Official GMACs",
                   "Official w/o fusion", "Paper params (M)", "Paper GFLOPs", "Paper ms (V100, b16)"], body)
    from s2d.bench.complexity import PARTS

    out += ["", "**Per component** (params / GMACs; fusion is included in detail)", ""]
    body = []
    for v in variants:
        cells = [v]
        for part in PARTS:
            p, g = by_id.get(f"flops/{v}/{part}/params"), by_id.get(f"flops/{v}/{part}/gmacs")
            cells.append(f"{p['value'] / 1e6:.3f}M / {fmt(g['value']) if g else '–'}" if p else "–")
        body.append(cells)
    out += _table(["Variant", *PARTS], body)
    return out


def _with_spread(value: float | None, p20: float | None, p80: float | None) -> str:
    """A median with its p20–p80 range, e.g. `34.6 (33.1–36.2)`."""
    if value is None:
        return ""
    return f"{fmt(value)} ({fmt(p20)}–{fmt(p80)})" if p20 is not None and p80 is not None else fmt(value)


def kernels_summary(rows: list[dict[str, Any]]) -> list[str]:
    """Pivot of the kernel latencies: one line per (op, pass, input), one column per
    implementation, then each implementation's speedup over the baseline (the per-video loop for
    the sampler, the broadcast-concat reference for the fusion)."""
    from s2d.bench.kernels import PASS_LABELS, SAMPLER_IMPLS

    out: list[str] = []
    for op, baseline, order in (("sampler", "per_video", list(SAMPLER_IMPLS)),
                                ("fusion", "reference", ["reference", "torch", "triton"])):
        lat = [r for r in rows if r["id"].startswith(f"kernels/{op}/") and r["metric"] == "latency"]
        if not lat:
            continue
        impls = [i for i in order if any(r.get("backend") == i for r in lat)]
        keys: list[tuple[str, ...]] = []
        cell: dict[tuple[tuple[str, ...], str], float] = {}
        spread: dict[tuple[tuple[str, ...], str], tuple[float | None, float | None]] = {}
        for r in lat:
            key = tuple(r["id"].split("/")[2:-1])  # sampler: (pass, dtype); fusion: (layer, pass, dtype)
            if key not in keys:
                keys.append(key)
            cell[(key, r["backend"])] = r["value"]
            spread[(key, r["backend"])] = (r.get("p20"), r.get("p80"))
        others = [i for i in impls if i != baseline]
        label = "per-video loop" if baseline == "per_video" else baseline
        head = (["Pass", "Input"] if op == "sampler" else ["Layer", "Pass", "dtype"]) + \
            [f"{i} (ms)" for i in impls] + [f"{i} vs {label}" for i in others]
        body = []
        for key in keys:
            names = list(key)
            names[-2] = PASS_LABELS.get(names[-2], names[-2])
            base = cell.get((key, baseline))
            vals = [_with_spread(cell.get((key, i)), *spread.get((key, i), (None, None))) for i in impls]
            ups = [f"{base / cell[(key, i)]:.2f}x" if base and (key, i) in cell else "" for i in others]
            body.append(names + vals + ups)
        out += [f"**{op}: median latency (p20–p80) and speedups of the medians (same run)**", ""] + _table(head, body) + [""]
    return out


SECTION_TITLES = {"kernels": "Kernels", "models": "Models", "decode": "Decode", "predict": "Predict (end to end)",
                  "flops": "FLOPs and parameters"}


#: Fewer timed runs than this make a median a rough indication only.
MIN_RELIABLE_RUNS = 5
#: Another process's load (1-min load average before the run) above this share of the cores.
BUSY_LOAD_SHARE = 0.5
#: The parallel-region probe is ≈0.05 ms on an idle machine; above this, others hold the cores.
BUSY_PROBE_MS = 1.0
#: p80 / p20 above this: the runs of a row disagree too much for its median to be trusted.
WIDE_SPREAD = 1.5


def reliability_warnings(doc: dict[str, Any]) -> list[str]:
    """Why the figures of `doc` may not be trusted (too few runs, a busy machine, wide spread); [] if none."""
    meta, rows = doc["meta"], doc["rows"]
    warnings: list[str] = []
    timed = [r for r in rows if isinstance(r.get("n"), int)]
    if timed:
        fewest = min(r["n"] for r in timed)
        if fewest < MIN_RELIABLE_RUNS:
            warnings.append(f"medians of as few as {fewest} timed runs (under {MIN_RELIABLE_RUNS}): indicative only; "
                            "a full run (without --quick) repeats more")
    cores = (meta.get("device") or {}).get("cores") or 0
    load = meta.get("loadavg_start")
    if cores and load and load[0] > BUSY_LOAD_SHARE * cores:
        warnings.append(f"busy machine: load average {load[0]} on {cores} cores before the run started; other "
                        "processes shared the cores, so latencies and ratios are distorted")
    probe = meta.get("parallel_probe_ms") or {}
    slow_probe = [v for v in (probe.get("start"), probe.get("end")) if isinstance(v, (int, float)) and v > BUSY_PROBE_MS]
    if slow_probe:
        warnings.append(f"busy cores: the parallel-region probe took {fmt(max(slow_probe))} ms (≈0.05 ms when idle)")
    wide = [r["name"] for r in timed if r.get("p20") and r.get("p80") and r["p80"] / r["p20"] > WIDE_SPREAD]
    if wide:
        warnings.append(f"{len(wide)} of {len(timed)} timed rows spread more than {WIDE_SPREAD}x between p20 and p80 "
                        f"(e.g. {wide[0]})")
    return warnings


def render_markdown(doc: dict[str, Any]) -> str:
    """The whole report as markdown."""
    meta, rows = doc["meta"], doc["rows"]
    dev, ver, git = meta["device"], meta["versions"], meta.get("git") or {}
    rev = git.get("revision") or "unknown"
    rev = f"{rev[:12]}{' (with uncommitted changes)' if git.get('dirty') else ''}"
    lines = [f"# s2d benchmark — {dev.get('name')} ({dev['type']})", "",
             f"- **Machine**: {dev.get('host_cpu')}, {dev.get('cores')} cores, {dev.get('platform')}"
             + (f"; GPU {dev['name']} (sm {dev.get('capability')}, {dev.get('memory_gb')} GB)" if dev["type"] == "cuda" else ""),
             f"- **Threads**: {meta['threads']} (`torch.get_num_threads()`)",
             f"- **Date**: {meta['date']} · **commit** {rev} · **mode** {meta['mode']} · {meta.get('elapsed_s')} s",
             "- **Versions**: " + ", ".join(f"{k} {v}" for k, v in ver.items() if v),
             f"- **Load average** (1/5/15 min) at start {meta.get('loadavg_start')}, at end {meta.get('loadavg_end')}; "
             f"parallel-region probe {_probe(meta)} (≈0.05 ms idle, several ms when other processes hold the cores)",
             "- Timings: warm-up excluded (first call reported separately), median of repeated runs with p20 / p80"
             + ("; CUDA events, L2 flushed per run" if dev["type"] == "cuda" else "; wall clock"),
             ]
    for warning in reliability_warnings(doc):
        lines.append(f"- **Unreliable figures**: {warning}")
    for rerun in meta.get("reruns", []):
        probe = rerun.get("parallel_probe_ms") or {}
        lines.append(f"- **Re-measured** {', '.join(rerun['sections'])} on {rerun.get('date')} (load average at "
                     f"start {rerun.get('loadavg_start')}, at end {rerun.get('loadavg_end')}; parallel-region probe "
                     f"{fmt(probe.get('start'))} / {fmt(probe.get('end'))} ms); these rows replace the earlier measurements")
    if meta.get("base"):
        b = meta["base"]
        lines.append(f"- **Base**: {b['path']} ({b.get('date')}, {b.get('device')}, commit "
                     f"{((b.get('git') or {}).get('revision') or 'unknown')[:12]}), {b['matched_rows']} rows matched; "
                     "vs base > 1 means better now")
    with_base = bool(meta.get("base"))
    for section in meta["sections"]:
        sec_rows = [r for r in rows if r["section"] == section]
        lines += ["", f"## {SECTION_TITLES.get(section, section)}", ""]
        shape = meta.get("shapes", {})
        if section == "kernels":
            for key in ("sampler", "fusion"):
                if key in shape:
                    val = shape[key]
                    lines.append(f"- {key} shape: {', '.join(val) if isinstance(val, list) else val}")
        if section == "models":
            seen: dict[str, str] = {}
            for r in sec_rows:
                if r.get("model") and r.get("description"):
                    seen.setdefault(r["model"], f"{r['description']}, input {r.get('input')}")
            lines += [f"- `{k}`: {v}" for k, v in seen.items()]
        if section == "decode" and "decode" in shape:
            lines.append(f"- synthetic video: {shape['decode']}")
        if section == "predict" and "predict" in shape:
            lines.append(f"- {shape['predict']}")
        if not sec_rows:
            lines.append("_No measurements (see skipped)._")
        if section == "kernels" and sec_rows:
            lines += [""] + kernels_summary(sec_rows)
        if section == "flops" and sec_rows:
            lines += flops_summary(sec_rows)
            if not with_base:
                sec_rows = []
            else:
                lines += ["", "**All rows**"]
        groups: list[str] = []
        for r in sec_rows:
            if r.get("group") not in groups:
                groups.append(r.get("group"))
        for g in groups:
            lines += ["", f"### {g}", ""]
            lines += rows_table([r for r in sec_rows if r.get("group") == g], with_base)
        skipped = [s for s in meta.get("skipped", []) if s["section"] == section]
        if skipped:
            lines += ["", "Not measured:", ""]
            lines += [f"- `{s['id']}`: {s['reason']}" for s in skipped]
    if meta.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in meta["notes"]]
    return "\n".join(lines) + "\n"
=======
>>>>>>> arch
