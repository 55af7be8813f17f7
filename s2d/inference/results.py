"""A results file of a collection run: one record per video, appended as videos finish.

`ResultsFile("out.jsonl")` (or `.csv`) knows which videos an earlier run already recorded
(`done`), so a second run over the same inputs skips them: a crash or Ctrl-C loses at most the
batch in flight, and no video is written twice. Appends are flushed and fsync'ed per batch; a
last line cut short by a crash is dropped (and its video redone) when the file is reopened.

JSON lines hold `Prediction.to_dict()` (labels, synopsis, sampling window, frames read, error);
CSV holds `path, error, num_frames, label_1, prob_1, …, label_k, prob_k`. Probabilities are
written with 6 decimals. Records are matched to inputs by absolute path.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

__all__ = ["ResultsFile", "FORMATS"]

#: Output formats by file suffix.
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}

#: Decimals of the probabilities written.
DIGITS = 6


def path_key(path: str | os.PathLike) -> str:
    """The identity of a video across runs: its absolute, normalised path."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


class ResultsFile:
    """Append-only record file with resume. `topk` fixes the CSV columns (checked on reopening)."""

    def __init__(self, path: str | os.PathLike, topk: int = 5) -> None:
        self.path = Path(path)
        self.format = FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise ValueError(f"{self.path}: the results file must end in .jsonl or .csv")
        if self.path.exists() and not self.path.is_file():
            raise ValueError(f"{self.path}: exists and is not a file")
        self.topk = topk
        self.columns = ["path", "error", "num_frames"] + [f"{w}_{i}" for i in range(1, topk + 1) for w in ("label", "prob")]
        self.records: list[dict[str, Any]] = self._read()

    # -- reading -------------------------------------------------------------------------------
    def _read(self) -> list[dict[str, Any]]:
        """The complete records already in the file; a torn last line (crash mid-write) is cut off."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:  # drop the partial record; its video is redone
                handle.truncate(data.rfind(b"\n") + 1)
            data = data[: data.rfind(b"\n") + 1]
        text = data.decode("utf-8")
        if self.format == "jsonl":
            records = []
            for number, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{self.path}:{number}: not a JSON record ({err.msg}); "
                                     "choose another --output or repair the file") from None
                if not isinstance(record, dict) or "path" not in record:
                    raise ValueError(f"{self.path}:{number}: a record without a 'path'")
                records.append(record)
            return records
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            return []
        if rows[0] != self.columns:
            raise ValueError(f"{self.path}: its columns ({', '.join(rows[0][:8])}...) are not those of this run "
                             f"(top-{self.topk}); pass the same --topk or choose another --output")
        return [dict(zip(self.columns, row)) for row in rows[1:] if row]

    def done(self) -> set[str]:
        """Absolute paths of the videos already recorded (successes and failures)."""
        return {path_key(r["path"]) for r in self.records}

    def failed(self) -> set[str]:
        """Absolute paths of the videos recorded as failures."""
        return {path_key(r["path"]) for r in self.records if r.get("error")}

    def forget_failures(self) -> int:
        """Rewrite the file without its failure records (so they are tried again); returns how many.
        The rewrite goes through a temporary file and a rename, so a crash keeps the old file."""
        kept = [r for r in self.records if not r.get("error")]
        dropped = len(self.records) - len(kept)
        if dropped:
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                if self.format == "csv":
                    handle.write(self._csv_line(self.columns))
                    handle.writelines(self._csv_line([r.get(c, "") for c in self.columns]) for r in kept)
                else:
                    handle.writelines(json.dumps(r) + "\n" for r in kept)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            self.records = kept
        return dropped

    # -- writing -------------------------------------------------------------------------------
    def row(self, record: dict[str, Any]) -> list[Any]:
        """The CSV row of a `Prediction.to_dict()` record."""
        labels = record.get("labels") or []
        cells: list[Any] = [record["path"], record.get("error") or "", record.get("num_frames", 0)]
        for i in range(self.topk):
            if i < len(labels):
                cells += [labels[i]["label"], f"{labels[i]['prob']:.{DIGITS}f}"]
            else:
                cells += ["", ""]
        return cells

    @staticmethod
    def _csv_line(cells: list[Any]) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(cells)
        return out.getvalue()

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records (`Prediction.to_dict()`), flushed and fsync'ed; returns how many."""
        lines = []
        records = list(records)
        for record in records:
            record = _rounded(record)
            lines.append(self._csv_line(self.row(record)) if self.format == "csv" else json.dumps(record) + "\n")
        if not lines:
            return 0
        new = not self.path.exists() or self.path.stat().st_size == 0
        if new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8", newline="") as handle:
            if new and self.format == "csv":
                handle.write(self._csv_line(self.columns))
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
        self.records.extend(records)
        return len(lines)


def _rounded(record: dict[str, Any]) -> dict[str, Any]:
    """`record` with its label probabilities rounded to `DIGITS` decimals."""
    out = dict(record)
    for key in ("labels", "synopsis"):
        if out.get(key):
            out[key] = [{**item, "prob": round(float(item["prob"]), DIGITS)} for item in out[key]]
    return out
