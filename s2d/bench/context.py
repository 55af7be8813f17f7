"""The state one benchmark run shares between its sections: device, mode, timer settings, rows.

Sections append rows through `Bench.add` (which fixes the row schema, see `s2d.bench`) and
record what they could not measure through `Bench.skip`, so a missing backend or a failing
`torch.compile` shows up as a stated reason rather than a silent gap.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import torch

from s2d.bench.timing import TimerSettings, Timing

#: Sections in the order they run and print.
SECTIONS = ("kernels", "sampler", "models", "parts", "decode", "predict", "flops", "deploy")

#: Sections a run without `--only` measures. `sampler` (the CPU sampler paths called directly, on
#: two clocks) repeats part of `kernels`, and `parts` (an S2DNet's time by part) is an analysis of
#: one `models` ratio: both only run when `--only` names them, so a full run stays as long as it was;
#: so does `deploy` (CPU inference paths, precisions and allocator settings compared).
DEFAULT_SECTIONS = ("kernels", "models", "decode", "predict", "flops")

#: Model batch sizes per mode when `--batches` is not given (the same on CPU and GPU; 16 is the
#: paper's Table 3 batch). `--help` quotes these, so the two cannot drift apart.
MODEL_BATCHES: dict[str, tuple[int, ...]] = {"full": (1, 16), "quick": (1,), "tiny": (1, 2)}

#: Benchmark modes: "full" (the published numbers), "quick" (a few minutes on a laptop CPU),
#: "tiny" (seconds: shrunken shapes and models, for tests).
MODES = ("full", "quick", "tiny")


@dataclass(frozen=True)
class ModeSettings:
    """Timer settings per kind of measurement for one mode."""

    kernels: TimerSettings
    models: TimerSettings
    decode: TimerSettings


MODE_SETTINGS = {
    "full": ModeSettings(kernels=TimerSettings(warmup=2, min_reps=3, max_reps=15, budget_s=8.0),
                         models=TimerSettings(warmup=2, min_reps=3, max_reps=10, budget_s=20.0),
                         decode=TimerSettings(warmup=2, min_reps=5, max_reps=30, budget_s=5.0)),
    "quick": ModeSettings(kernels=TimerSettings(warmup=1, min_reps=3, max_reps=10, budget_s=0.5),
                          models=TimerSettings(warmup=1, min_reps=2, max_reps=3, budget_s=1.0),
                          decode=TimerSettings(warmup=1, min_reps=3, max_reps=10, budget_s=1.0)),
    "tiny": ModeSettings(kernels=TimerSettings(warmup=1, min_reps=2, max_reps=3, budget_s=0.02),
                         models=TimerSettings(warmup=1, min_reps=2, max_reps=2, budget_s=0.02),
                         decode=TimerSettings(warmup=1, min_reps=2, max_reps=3, budget_s=0.02)),
}


def short_reason(err: BaseException, limit: int = 240) -> str:
    """`Type: first line of the message`, shortened: a skip reason fit for a table cell."""
    text = str(err).strip().splitlines()
    msg = f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


@dataclass
class Bench:
    """One run: where it runs, how hard it tries, and what it found."""

    device: torch.device
    mode: str = "full"
    compile: bool = True
    compile_model: bool = False  # deploy section: time optimize_for_inference(compile=True) as well
    model_batches: tuple[int, ...] | None = None
    verbose: bool = True
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shapes: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> ModeSettings:
        return MODE_SETTINGS[self.mode]

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def log(self, message: str) -> None:
        """Progress line on stderr (stdout carries the table)."""
        if self.verbose:
            print(f"[s2d.bench] {message}", file=sys.stderr, flush=True)

    def add(self, id: str, section: str, group: str, name: str, metric: str, value: float | int,
            unit: str, better: str | None = None, timing: Timing | None = None, scale: float = 1.0,
            **extra: Any) -> dict[str, Any]:
        """Append a row. With `timing`, `value` is ignored in favour of the timing's median
        (times `scale`, e.g. 1e3 for ms) and p20 / p80 / n / first call / peak memory are filled in."""
        if any(r["id"] == id for r in self.rows):
            raise ValueError(f"duplicate benchmark row id {id!r}")
        row: dict[str, Any] = {"id": id, "section": section, "group": group, "name": name, "metric": metric,
                               "value": value, "unit": unit, "better": better}
        if timing is not None:
            row["value"] = timing.median_s * scale
            row["p20"] = timing.p20_s * scale
            row["p80"] = timing.p80_s * scale
            row["n"] = timing.n
            if timing.first_call_s is not None:
                row["first_call_s"] = timing.first_call_s
            if timing.peak_mem_bytes is not None:
                row["peak_mem_mb"] = timing.peak_mem_bytes / 2**20
        row.update({k: v for k, v in extra.items() if v is not None})
        self.rows.append(row)
        return row

    def skip(self, id: str, section: str, reason: str) -> None:
        """Record a measurement (or a whole group, `id` ending in `/*`) that was not made, and why."""
        self.skipped.append({"id": id, "section": section, "reason": reason})
        self.log(f"skipped {id}: {reason}")

    def value(self, id: str) -> float | None:
        """The value of an already recorded row, or None."""
        for r in self.rows:
            if r["id"] == id:
                return r["value"]
        return None
