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
from s2d.io.files import atomic_write_text

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


def allocator_state() -> str:
    """How glibc treated freed memory in this run (`s2d.inference.allocator`)."""
    from s2d.inference import allocator

    if getattr(allocator, "_applied", None):
        return "freed memory kept (s2d.inference.allocator)"
    return "default"


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None



def run_options(bench: Any) -> dict[str, Any]:
    """The options that change what a run measures (`--resume` refuses a document made with others)."""
    return {"compile": bench.compile, "batches": list(bench.model_batches) if bench.model_batches else None,
            "compile_model": bool(getattr(bench, "compile_model", False))}

def build_meta(bench: Bench, argv: list[str], sections: Iterable[str], threads: int, started: _dt.datetime,
               elapsed_s: float, load_start: list[float] | None, probe_start: float | None,
               pending: Iterable[str] = (), git: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `meta` object of the JSON document (see `s2d.bench`); `sections` are the ones measured,
    `pending` those asked for and not measured yet (a run in progress or interrupted)."""
    from s2d.bench.timing import parallel_probe_ms

    return {
        "date": started.isoformat(timespec="seconds"),
        "mode": bench.mode,
        "device": device_info(bench.device),
        "threads": threads,
        "allocator": allocator_state(),
        "options": run_options(bench),
        "versions": versions(),
        "git": git if git is not None else git_revision(),
        "argv": list(argv),
        "sections": list(sections),
        "pending": list(pending),
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
    """Write `doc` to `path` atomically (a temporary file in the same folder, then `os.replace`), so
    an interrupted write leaves the previous document whole."""
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=False) + "\n")


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


def merge_sections(doc: dict[str, Any], rerun: dict[str, Any], history: str = "reruns") -> dict[str, Any]:
    """`doc` with the sections measured by `rerun` replaced by the re-measured rows.

    Rows, skips and shapes of the re-run sections come from `rerun`; everything else from `doc`,
    whose metadata gains a `history` entry (`reruns` for `--update`, `resumes` for `--resume`:
    sections, date, commit, load, probe, argv) so the report says which numbers were measured when.
    `pending` keeps the sections either document still waits for that neither has measured.
    """
    sections = rerun["meta"]["sections"]
    meta = dict(doc["meta"])
    new = rerun["meta"]
    meta["sections"] = [s for s in SECTIONS if s in set(meta["sections"]) | set(sections)]
    meta["pending"] = [s for s in SECTIONS if s in set(meta.get("pending", [])) | set(new.get("pending", []))
                       and s not in meta["sections"]]
    meta["skipped"] = [x for x in meta.get("skipped", []) if x["section"] not in sections] + new.get("skipped", [])
    meta["notes"] = list(dict.fromkeys(list(meta.get("notes", [])) + list(new.get("notes", []))))
    meta["shapes"] = {**meta.get("shapes", {}), **new.get("shapes", {})}
    meta[history] = list(meta.get(history, [])) + [{
        "sections": sections, "date": new.get("date"), "git": new.get("git"), "argv": new.get("argv"),
        "loadavg_start": new.get("loadavg_start"), "loadavg_end": new.get("loadavg_end"),
        "parallel_probe_ms": new.get("parallel_probe_ms"), "elapsed_s": new.get("elapsed_s")}]
    if history == "resumes":  # one run in several sittings: its time is their sum
        meta["elapsed_s"] = round((meta.get("elapsed_s") or 0) + (new.get("elapsed_s") or 0), 1)
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
