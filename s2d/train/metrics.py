"""Training metrics: running sums, top-k accuracy, and the JSONL / CSV logs in `out_dir`.

`metrics.jsonl` gets one JSON object per record (`"kind"`: `"step"` every `log_every` steps,
`"epoch"` after every epoch, with the validation metrics when validation ran). `steps.csv` and
`epochs.csv` hold the same records with fixed columns, for spreadsheets and plotting.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import torch

from s2d.io.files import atomic_write_text

#: Sums kept per step interval and per epoch (all reduced over ranks before logging).
SUM_KEYS = ("samples", "loss", "dnet_top1", "dnet_top5", "snet_samples", "snet_top1", "snet_top5", "grad_norm",
            "steps", "sampled", "centre_t", "stride_t", "centre_x", "centre_y", "stride_x", "stride_y")

STEP_FIELDS = ("kind", "epoch", "stage", "step", "epoch_step", "lr", "loss", "dnet_top1", "dnet_top5",
               "snet_top1", "snet_top5", "grad_norm", "centre_t", "stride_t", "centre_x", "centre_y",
               "stride_x", "stride_y", "samples_per_s")
EPOCH_FIELDS = STEP_FIELDS[:-1] + ("val_dnet_top1", "val_dnet_top5", "val_snet_top1", "val_snet_top5",
                                   "val_samples", "val_failed", "best_val_dnet_top1", "seconds")


class Meter:
    """Float64 running sums of `SUM_KEYS` on one device; `state_dict` is a tensor."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.sums = torch.zeros(len(SUM_KEYS), dtype=torch.float64, device=device)

    def add(self, values: dict[str, torch.Tensor | float]) -> None:
        """Add one step's sums (keys of `SUM_KEYS`; missing keys add 0)."""
        update = torch.zeros_like(self.sums)
        for key, value in values.items():
            update[SUM_KEYS.index(key)] = value.detach().to(torch.float64) if torch.is_tensor(value) else value
        self.sums += update

    def reset(self) -> None:
        """Zero every sum (a new interval or epoch)."""
        self.sums.zero_()

    def state_dict(self) -> torch.Tensor:
        """The sums as a CPU tensor (saved in the trainer state)."""
        return self.sums.detach().cpu().clone()

    def load_state_dict(self, sums: torch.Tensor) -> None:
        """Inverse of `state_dict`."""
        self.sums.copy_(sums.to(self.sums.device))

    @staticmethod
    def summary(sums: torch.Tensor) -> dict[str, float | None]:
        """Means from (rank-reduced) sums: per-sample losses/accuracies (%), per-step grad norm,
        per-sample sampling statistics (None where nothing was counted)."""
        s = dict(zip(SUM_KEYS, sums.tolist()))
        n, n_snet, n_sampled, steps = s["samples"], s["snet_samples"], s["sampled"], s["steps"]
        out: dict[str, float | None] = {"loss": s["loss"] / n if n else None}
        for key in ("dnet_top1", "dnet_top5"):
            out[key] = 100.0 * s[key] / n if n else None
        for key in ("snet_top1", "snet_top5"):  # models without a synopsis net count no such samples
            out[key] = 100.0 * s[key] / n_snet if n_snet else None
        for key in ("centre_t", "stride_t", "centre_x", "centre_y", "stride_x", "stride_y"):
            out[key] = s[key] / n_sampled if n_sampled else None
        out["grad_norm"] = s["grad_norm"] / steps if steps else None
        return out


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Iterable[int] = (1, 5)) -> list[torch.Tensor]:
    """Number of rows whose target is among the top-k logits, for each k (k capped at the class count)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hit = top == target[:, None]
    return [hit[:, :min(k, kmax)].any(1).sum() for k in ks]


def sampling_stats(params: Any) -> dict[str, torch.Tensor]:
    """Per-batch sums of the sampling parameters: temporal centre/stride (frames, per video) and
    spatial centres/strides (pixels, averaged over the output frames of each video)."""
    return {"sampled": float(params.centre_t.shape[0]), "centre_t": params.centre_t.float().sum(), "stride_t": params.stride_t.float().sum(),
            "centre_x": params.centre_x.float().mean(1).sum(), "centre_y": params.centre_y.float().mean(1).sum(),
            "stride_x": params.stride_x.float().mean(1).sum(), "stride_y": params.stride_y.float().mean(1).sum()}


def _append(path: Path) -> io.TextIOWrapper:
    """`path` opened to append text, never through a symbolic link planted at the name (the log
    names are fixed, so a link there would make the run write wherever it points)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    return open(fd, "a", encoding="utf-8", newline="")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class MetricsLog:
    """Append-only JSONL + CSV logs; `truncate(step)` drops records past a checkpoint's step."""

    def __init__(self, out_dir: str | os.PathLike):
        out_dir = Path(out_dir)
        self.jsonl = out_dir / "metrics.jsonl"
        self.csv = {"step": (out_dir / "steps.csv", STEP_FIELDS), "epoch": (out_dir / "epochs.csv", EPOCH_FIELDS)}

    def write(self, record: dict[str, Any]) -> None:
        """Append a record to the JSONL log and to the CSV of its kind."""
        record = {k: _clean(v) for k, v in record.items()}
        with _append(self.jsonl) as handle:
            handle.write(json.dumps(record) + "\n")
        path, fields = self.csv[record["kind"]]
        with _append(path) as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
            if handle.tell() == 0:  # a new (or emptied) file
                writer.writeheader()
            writer.writerow({k: ("" if record.get(k) is None else record.get(k)) for k in fields})

    def records(self) -> list[dict[str, Any]]:
        """Every record logged so far, in order."""
        if not self.jsonl.exists():
            return []
        records = []
        for line in self.jsonl.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:  # a line cut short by a killed process: the resumed run logs it again
                continue
        return records

    def truncate(self, step: int) -> None:
        """Keep only records up to global step `step` (a resumed run rewrites what came after)."""
        kept = [r for r in self.records() if int(r.get("step", 0)) <= step]
        atomic_write_text(self.jsonl, "".join(json.dumps(r) + "\n" for r in kept))
        for kind, (path, fields) in self.csv.items():
            rows = [r for r in kept if r.get("kind") == kind]
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            for r in rows:
                writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
            if rows or path.exists():
                atomic_write_text(path, buf.getvalue())


def epoch_line(record: dict[str, Any], epochs: int, val: Any = None) -> str:
    """One line on an epoch's record (and its validation result, an `EvalResult`)."""

    def fmt(x: float | None, unit: str = "") -> str:
        return "-" if x is None else f"{x:.4g}{unit}"

    text = (f"epoch {record['epoch']}/{epochs} (stage {record['stage']}) loss {fmt(record['loss'])} "
            f"top1 {fmt(record['dnet_top1'], '%')} (snet {fmt(record['snet_top1'], '%')}) lr {record['lr']:.3g}")
    if val is not None:
        text += (f" | val top1 {fmt(val.dnet_top1, '%')} top5 {fmt(val.dnet_top5, '%')} "
                 f"(snet {fmt(val.snet_top1, '%')}) on {val.samples}")
    return text
