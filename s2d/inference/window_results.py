"""The results file of a windowed run: one record per window, keyed by (video, window), resumable.

`WindowResultsFile` is `s2d.inference.results.ResultsFile` (same checks before anything changes, same
all-or-nothing appends, same torn-record handling and `--retry-failed`) with the window's fields in
every record: `window` (its index), `start_s`, `end_s` (seconds), `start_frame`, `end_frame` (frames
`[start, end)`), `final` (the video's last window) and `plan` (the run's window and hop: a file holds
one plan, as it holds one model). A video that cannot be read is one record with
`window` null and its `error`. A rerun skips the windows recorded, and a video whose last window (or
failure) is recorded is not read again. CSV columns: `path, window, start_s, end_s, start_frame,
end_frame, final, plan, error, num_frames, label_1, prob_1, …, label_k, prob_k, model`.
"""
from __future__ import annotations

from typing import Any

from s2d.inference.results import ADVICE, DIGITS, ResultsFile, path_key
from s2d.inference.timeline import Scored

__all__ = ["WINDOW_FIELDS", "WindowResultsFile"]

#: The fields a window record adds to a video record, in the order CSV gives them.
WINDOW_FIELDS = ("window", "start_s", "end_s", "start_frame", "end_frame", "final", "plan")


class WindowResultsFile(ResultsFile):
    """`ResultsFile` of window records; see the module docstring."""

    windowed = True

    def _read(self) -> None:
        self.columns = (["path", *WINDOW_FIELDS, "error", "num_frames"]
                        + [f"{w}_{i}" for i in range(1, self.topk + 1) for w in ("label", "prob")] + ["model"])
        super()._read()

    # -- checks --------------------------------------------------------------------------------
    def _check_jsonl(self, record: Any, where: str) -> None:
        super()._check_jsonl(record, where)
        missing = [key for key in WINDOW_FIELDS if key not in record]
        if missing:
            raise ValueError(f"{where}: a record without {', '.join(map(repr, missing))}; not a results file of "
                             f"windows (a collection run's file, or another program's? {ADVICE})")
        failed = record["window"] is None
        checks = {"window": failed or _count(record["window"]),
                  "start_s": _seconds(record["start_s"]), "end_s": _seconds(record["end_s"]),
                  "start_frame": _count(record["start_frame"]), "end_frame": _count(record["end_frame"]),
                  "final": isinstance(record["final"], bool),
                  "plan": isinstance(record["plan"], str) and bool(record["plan"])}
        wrong = [key for key, ok in checks.items() if not ok]
        if wrong:
            raise ValueError(f"{where}: {wrong[0]} {record[wrong[0]]!r} is not a valid window field; {ADVICE}")
        if failed != (record["error"] is not None):
            raise ValueError(f"{where}: a record must have a window or an error, not both or neither; {ADVICE}")

    def _check_row(self, row: list[str], where: str) -> list[str]:
        if len(row) != len(self.columns):
            raise ValueError(f"{where}: {len(row)} cells, expected {len(self.columns)} ({', '.join(self.columns[:4])},"
                             f"...); {ADVICE}")
        cells = dict(zip(self.columns, row))
        counts = ("start_frame", "end_frame", "num_frames") + (("window",) if cells["window"] else ())
        problems = [c for c in counts if not cells[c].isdigit()]
        problems += [c for c in ("start_s", "end_s") if not _seconds(_float(cells[c]))]
        problems += [] if cells["final"] in ("", "1") else ["final"]
        problems += [] if bool(cells["window"]) != bool(cells["error"]) else ["window"]
        problems += [] if cells["path"] and cells["model"] else ["path"]
        problems += [] if cells["plan"] else ["plan"]
        for i in range(1, self.topk + 1):
            label, prob = cells[f"label_{i}"], cells[f"prob_{i}"]
            if (label == "") != (prob == "") or (prob and not 0 <= _float(prob) <= 1):
                problems.append(f"label_{i}")
        if problems:
            raise ValueError(f"{where}: {problems[0]} {cells[problems[0]]!r} is not valid in a window record; "
                             f"{ADVICE}")
        return row

    def _row(self, record: dict[str, Any]) -> list[str]:
        labels = record["labels"]
        window = record["window"]
        cells = [record["path"], "" if window is None else str(window), f"{record['start_s']:.{DIGITS}f}",
                 f"{record['end_s']:.{DIGITS}f}", str(record["start_frame"]), str(record["end_frame"]),
                 "1" if record["final"] else "", record["plan"], record["error"] or "", str(record["num_frames"])]
        for i in range(self.topk):
            cells += [labels[i]["label"], f"{labels[i]['prob']:.{DIGITS}f}"] if i < len(labels) else ["", ""]
        return cells + [record["model"]]

    def check_plan(self, plan: str) -> None:
        """Refuse (ValueError naming both) a file whose windows were cut by another window or hop."""
        other = next((r["plan"] for r in self.records if r["plan"] != plan), None)
        if other is not None:
            raise ValueError(f"{self.path}: holds the windows of {other!r}, not of this run's {plan!r}; choose "
                             "another --output, or the --window and --hop that wrote it")

    # -- what is recorded ----------------------------------------------------------------------
    def done(self) -> set[tuple[str, int | None]]:  # type: ignore[override]
        """(absolute path, window) of every record; a failure's window is None."""
        return {(path_key(r["path"]), _window(r["window"])) for r in self.records}

    def finished(self) -> set[str]:
        """Absolute paths of the videos whose last window, or whose failure, is recorded."""
        return {path_key(r["path"]) for r in self.records if r.get("error") or r["final"] in (True, "1")}

    def windows(self, path: str) -> dict[int, Scored]:
        """The recorded windows of `path`, as the timeline reads them (CSV records carry no sampling)."""
        key = path_key(path)
        out = {}
        for r in self.records:
            if path_key(r["path"]) != key or r.get("error"):
                continue
            if self.format == "csv":
                r = {**r, "sampling": None,
                     "labels": [{"label": r[f"label_{i}"], "prob": float(r[f"prob_{i}"])}
                                for i in range(1, self.topk + 1) if r[f"label_{i}"]]}
            scored = Scored.of(r)
            out[scored.window] = scored
        return out


def _window(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < float("inf")
