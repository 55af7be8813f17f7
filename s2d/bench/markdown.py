"""The markdown report of a benchmark document: a header (machine, threads, date, commit,
versions), one table per group of every section, summary tables for the FLOP counts against the
published numbers and the kernels, reliability warnings, the skipped measurements and the notes."""
from __future__ import annotations

from typing import Any


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
    if "min" in row and row.get("metric") == "latency":
        parts.append(f"min {fmt(row['min'])} ms")
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


def parts_summary(rows: list[dict[str, Any]]) -> list[str]:
    """Per S2DNet: each part's median latency (p20–p80), its share of the S2DNet and its ratio to the
    baseline, then the total, the baseline and the baseline at the detail input."""
    from s2d.bench.parts import PARTS

    by_id = {r["id"]: r for r in rows}
    out: list[str] = []
    for model in dict.fromkeys(r["model"] for r in rows if r.get("part") == "total"):
        ratios = {"baseline": 1.0, "baseline_at_detail":
                  (by_id.get(f"parts/{model}/ratio/baseline_at_detail_over_baseline") or {}).get("value")}
        body = []
        for key in (*PARTS, "rest", "total", "baseline", "baseline_at_detail"):
            r = by_id.get(f"parts/{model}/{key}/latency")
            if r is None:
                continue
            over = r.get("over_baseline", ratios.get(key))
            body.append([key if r.get("part") else r["name"], _with_spread(r["value"], r.get("p20"), r.get("p80")),
                         f"{100 * r['share']:.1f}%" if "share" in r else ("100%" if key == "total" else ""),
                         "" if over is None else f"{over:.3f}"])
        group = next(r["group"] for r in rows if r.get("model") == model)
        out += [f"**{group}: median ms (p20–p80) by part, same run**", ""]
        out += _table(["Part", "ms", "share of the S2DNet", "/ baseline"], body) + [""]
    return out


SECTION_TITLES = {"kernels": "Kernels", "sampler": "Sampler paths (CPU, wall and CPU clock)", "models": "Models",
                  "parts": "S2DNet time by part", "decode": "Decode", "predict": "Predict (end to end)",
                  "flops": "FLOPs and parameters", "deploy": "Deployment paths (CPU)"}


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
             f"- **Threads**: {meta['threads']} (`torch.get_num_threads()`) · "
             f"**allocator** {meta.get('allocator', 'default')}",
             f"- **Date**: {meta['date']} · **commit** {rev} · **mode** {meta['mode']} · {meta.get('elapsed_s')} s",
             "- **Versions**: " + ", ".join(f"{k} {v}" for k, v in ver.items() if v),
             f"- **Load average** (1/5/15 min) at start {meta.get('loadavg_start')}, at end {meta.get('loadavg_end')}; "
             f"parallel-region probe {_probe(meta)} (≈0.05 ms idle, several ms when other processes hold the cores)",
             "- Timings: warm-up excluded (first call reported separately), median of repeated runs with p20 / p80"
             + ("; CUDA events, L2 flushed per run" if dev["type"] == "cuda" else "; wall clock"),
             ]
    for warning in reliability_warnings(doc):
        lines.append(f"- **Unreliable figures**: {warning}")
    if meta.get("pending"):
        lines.append(f"- **Incomplete**: not measured yet: {', '.join(meta['pending'])} (rerun with `--resume` "
                     "and the same `--json` to measure them)")
    for resume in meta.get("resumes", []):
        lines.append(f"- **Resumed** on {resume.get('date')}: {', '.join(resume['sections']) or 'nothing'} measured "
                     f"then (load average at start {resume.get('loadavg_start')}, at end {resume.get('loadavg_end')})")
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
        if section == "sampler" and "sampler_paths" in shape:
            lines.append(f"- shape: {shape['sampler_paths']}")
        if section == "parts" and "parts" in shape:
            lines.append(f"- {shape['parts']}")
        if section == "decode" and "decode" in shape:
            lines.append(f"- synthetic video: {shape['decode']}")
        if section == "predict" and "predict" in shape:
            lines.append(f"- {shape['predict']}")
        if not sec_rows:
            lines.append("_No measurements (see skipped)._")
        if section == "kernels" and sec_rows:
            lines += [""] + kernels_summary(sec_rows)
        if section == "deploy" and "deploy" in shape:
            lines += [f"- {shape['deploy']}"] + ([f"- accuracy: {shape['deploy_accuracy']}"]
                                                  if "deploy_accuracy" in shape else [])
        if section in ("parts", "deploy") and sec_rows:  # a summary; every row only beside a --base
            if section == "parts":
                summary = parts_summary
            else:
                from s2d.bench.deploy_report import deploy_summary as summary
            lines += [""] + summary(sec_rows)
            if not with_base:
                sec_rows = []
            else:
                lines += ["**All rows**"]
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
