"""Markdown tables of the `deploy` section: latency by path, the S2DNet / baseline ratios, accuracy per
precision and the allocator comparison (called by `s2d.bench.markdown`)."""
from __future__ import annotations

from typing import Any


def _fmt(value: Any) -> str:
    """Four significant digits (ms figures span 0.1 to 10,000)."""
    return "" if value is None else f"{value:.4g}"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"] + \
        ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in body]


def _err(value: float | None) -> str:
    return "" if value is None else f"{value:.1e}"


def latency_table(rows: list[dict[str, Any]]) -> list[str]:
    """Model × path: per-video ms (p20–p80), speedup over optimised eager, max relative logit error; one
    column group per batch."""
    from s2d.bench.deploy_paths import PATH_LABELS, PATHS

    lat = {(r["model"], r["path"], r["batch"]): r for r in rows if r["id"].endswith("/per_video_latency")
           and "path" in r}
    ups = {(r["model"], r["path"], r["batch"]): r["value"] for r in rows if r["id"].startswith("deploy/speedup/")}
    if not lat:
        return []
    batches = sorted({b for _, _, b in lat})
    models = list(dict.fromkeys(m for m, _, _ in lat))
    head = ["Model", "Path"]
    for b in batches:
        head += [f"b{b} ms/video (p20–p80)", f"b{b} vs optimised", f"b{b} max rel. err"]
    body = []
    for model in models:
        for path in PATHS:
            if not any((model, path, b) in lat for b in batches):
                continue
            cells = [model, PATH_LABELS[path]]
            for b in batches:
                r = lat.get((model, path, b))
                if r is None:
                    cells += ["–", "", ""]
                    continue
                up = ups.get((model, path, b))
                cells += [f"{_fmt(r['value'])} ({_fmt(r.get('p20'))}–{_fmt(r.get('p80'))})",
                          "1 (baseline)" if path == "optimized" else (f"{up:.2f}x" if up is not None else ""),
                          _err(r.get("rel_err"))]
            body.append(cells)
    title = ("**Per-video latency by path (same inputs, interleaved), speedup over optimised eager, largest "
             "relative logit error against eager fp32**")
    details = {(r["model"], r["path"]): r["description"] for r in lat.values() if r.get("description")}
    notes = [f"- {model}, {PATH_LABELS[path]}: {text}" for (model, path), text in details.items()]
    return [title, ""] + _table(head, body) + [""] + (notes + [""] if notes else [])


def ratio_table(rows: list[dict[str, Any]]) -> list[str]:
    """Path × batch: the S2DNet / baseline per-video latency ratio."""
    from s2d.bench.deploy_paths import PATH_LABELS, PATHS

    ratios = {(r["path"], r["batch"]): r for r in rows if r["id"].startswith("deploy/ratio/")}
    if not ratios:
        return []
    title = next(iter(ratios.values()))["group"].split(" · ")[0]
    batches = sorted({b for _, b in ratios})
    body = [[PATH_LABELS[p]] + [f"{ratios[(p, b)]['value']:.3f}" if (p, b) in ratios else "–" for b in batches]
            for p in PATHS if any((p, b) in ratios for b in batches)]
    return [f"**{title} per-video latency ratio, per path (lower is better)**", ""] + \
        _table(["Path"] + [f"batch {b}" for b in batches], body) + [""]


def accuracy_table(rows: list[dict[str, Any]]) -> list[str]:
    acc = [r for r in rows if r["id"].startswith("deploy/accuracy/")]
    if not acc:
        return []
    body = [[r["name"], f"{r['value']:.2f}", f"{r['delta_vs_fp32']:+.2f}", f"{r['agreement_pct']:.1f}%",
             _err(r.get("rel_err")), r.get("description", "")] for r in acc]
    return [f"**{acc[0]['group']}: top-1 per precision / path**", ""] + \
        _table(["Path", "top-1 (%)", "vs fp32 (points)", "same answer as fp32", "max rel. logit err", "Notes"],
               body) + [""]


def allocator_table(rows: list[dict[str, Any]]) -> list[str]:
    alloc = [r for r in rows if r["id"].startswith("deploy/allocator/")]
    if not alloc:
        return []
    ratios = {r["model"]: r["value"] for r in alloc if r["metric"] == "speedup"}
    body = []
    for r in alloc:
        if r["metric"] != "latency":
            continue
        ratio = ratios.get(r["model"]) if r["allocator"] == "kept" else None
        spread = f"{_fmt(r['value'])} ({_fmt(r['p20'])}–{_fmt(r['p80'])})"
        body.append([r["model"], r["allocator"], r["process"], spread,
                     f"{r['minor_faults_per_call']:,.0f}", f"{r['sys_s_per_call']:.2f}",
                     f"{ratio:.2f}x" if ratio is not None else ""])
    return [f"**{alloc[0]['group']}: glibc default vs freed memory kept**", ""] + \
        _table(["Model", "Allocator", "Process", "ms/video (p20–p80)", "minor faults / call", "system s / call",
                "default / kept"], body) + [""]


def deploy_summary(rows: list[dict[str, Any]]) -> list[str]:
    """Every table of the section, in order."""
    return latency_table(rows) + ratio_table(rows) + accuracy_table(rows) + allocator_table(rows)
