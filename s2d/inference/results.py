"""The results file of a collection run: one record per video, appended as videos finish.

`ResultsFile("out.jsonl", topk, model=identity)` (or `.ndjson`, `.csv`) knows which videos an
earlier run recorded (`done`), so a second run over the same inputs skips them. Its guarantees:

- **Nothing is changed before the file is known to be this run's.** Opening reads and checks every
  record (fields and types, file:line named on failure; all of one model; this run's top-k and,
  once `check_model` is called, this run's model); any doubt is an error and the file is left as
  it was. A user's JSON or CSV file given as `--output` is refused, untouched.
- **A record is in the file whole, or not at all.** An append is one `O_APPEND` write loop and an
  fsync, rolled back if it fails, and runs with Ctrl-C and SIGTERM held until its bookkeeping
  (`records`) is done. A last record cut short by a crash (a tail that can only be the start of
  a record) is dropped at the next write, and its video redone; any other tail is refused.
- `forget_failures` (`--retry-failed`) rewrites the file through `s2d.io.files.atomic_write`.

A record names its model (`model_identity`: the model's name and its weights' sha256 prefix) and,
in JSON lines, its `topk`. JSON lines hold `Prediction.to_dict()` with `path`, `model` and `topk`
first (non-ASCII and undecodable file names are `\\u` escapes); CSV (RFC 4180: CRLF, fields with
line breaks quoted, undecodable file-name bytes written as they are) holds `path, error,
num_frames, label_1, prob_1, …, label_k, prob_k, model`. Probabilities keep 6 decimals. Records
are matched to inputs by absolute path. Concurrent writers are kept out by the caller
(`s2d.io.files.OutputLock`).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from s2d.io.files import atomic_write, deferred_signals

__all__ = ["ResultsFile", "FORMATS", "model_identity", "path_key", "results_format"]

#: Output formats by file suffix (`.json` is not one: a JSON file is one document, not lines).
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}

#: Decimals of the probabilities written.
DIGITS = 6

#: How every JSON-lines record starts (a torn last line must be a prefix of this, or start with it).
JSON_START = b'{"path": "'

#: What a file that fails its checks is told to do.
ADVICE = "choose another --output, or repair the file"


def path_key(path: str | os.PathLike) -> str:
    """The identity of a video across runs: its absolute, normalised path."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def results_format(path: str | os.PathLike) -> str:
    """The format of a results file by its suffix ("jsonl" or "csv"); ValueError for any other."""
    found = FORMATS.get(Path(path).suffix.lower())
    if found is None:
        raise ValueError(f"{path}: the results file must end in .jsonl or .csv (or .ndjson, JSON lines too; "
                         "not .json, which names one JSON document, not a record a line)")
    return found


def model_identity(model: Any, reference: str) -> str:
    """Which model made a record: `reference` (a folder by its own name) and `sha256:` + the first
    12 hex digits of its weights file (the zoo index's checksum, else the file hashed); an untrained
    model (`model.pretrained` false) by its config's sha256 instead, its weights being random; an
    exported graph (`s2d.inference.exported`) by its own `identity`, its file's name and sha256."""
    if getattr(model, "identity", None):
        return model.identity
    name = reference[len("local-dir:"):] if reference.startswith("local-dir:") else reference
    if os.path.isdir(name):
        name = Path(name).resolve().name
    source = getattr(model, "weights_source", None)
    if getattr(model, "pretrained", False) and source is not None and (source.sha256 or source.path):
        digest = source.sha256 or _file_sha256(source.path)
        return f"{name} sha256:{digest[:12]}"
    config = hashlib.sha256(model.config.to_json().encode()).hexdigest()
    return f"{name} untrained (config sha256:{config[:12]})"


def _file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ResultsFile:
    """Append-only record file with resume; see the module docstring for what it guarantees.

    `topk` fixes the labels per record (and the CSV columns); `model` (`model_identity`) is checked
    against the records now, or later by `check_model`, and is needed to append."""

    #: Whether the records are of windows (`s2d.inference.window_results`) rather than whole videos.
    windowed = False

    def __init__(self, path: str | os.PathLike, topk: int = 5, model: str | None = None) -> None:
        self.path = Path(path)
        self.format = results_format(self.path)
        if self.path.is_symlink():
            raise ValueError(f"{self.path}: is a symbolic link; give the results file itself")
        if self.path.exists() and not self.path.is_file():
            raise ValueError(f"{self.path}: exists and is not a file")
        self.topk = topk
        self.columns = (["path", "error", "num_frames"]
                        + [f"{w}_{i}" for i in range(1, topk + 1) for w in ("label", "prob")] + ["model"])
        self.model: str | None = None
        self.file_model: str | None = None  # the model of the records already there
        self.records: list[dict[str, Any]] = []
        self._size = 0  # bytes in the file as last read or written
        self._end = 0  # bytes of complete records (and header); a torn record follows
        self._read()
        if model is not None:
            self.check_model(model)

    def check_model(self, model: str) -> None:
        """Refuse (ValueError naming both) a file holding another model's records; else adopt `model`."""
        if self.file_model is not None and self.file_model != model:
            raise ValueError(f"{self.path}: holds the results of model {self.file_model!r}, not of this run's "
                             f"{model!r}; choose another --output, or the --model that wrote it")
        self.model = model

    # -- reading -------------------------------------------------------------------------------
    def _read(self) -> None:
        """Read and check the file (changing nothing): its records, and where a torn record starts."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        self._size = len(data)
        if self.format == "jsonl":
            self._read_jsonl(data)
        else:
            self._read_csv(data)

    def _read_jsonl(self, data: bytes) -> None:
        start, number = 0, 0
        while (stop := data.find(b"\n", start)) >= 0:
            number += 1
            line = data[start:stop]
            try:
                record = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                raise ValueError(f"{self.path}:{number}: not UTF-8 text; not a results file ({ADVICE})") from None
            except json.JSONDecodeError as err:
                raise ValueError(f"{self.path}:{number}: not a JSON record ({err.msg}); {ADVICE}") from None
            self._take(record, f"{self.path}:{number}")
            start = stop + 1
        self._end = start
        tail = data[start:]
        if not tail:
            return
        where = f"{self.path}:{number + 1}"
        try:  # a whole record whose newline was cut off is a torn record too; anything else that parses is not
            record = json.loads(tail.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if not (tail.startswith(JSON_START) or JSON_START.startswith(tail)):
                raise ValueError(f"{where}: the last line is incomplete and is not the start of a record; "
                                 f"not a results file of s2d predict ({ADVICE})") from None
        else:
            self._check_jsonl(record, where)
            self._same_model(record["model"], where)

    def _read_csv(self, data: bytes) -> None:
        text = data.decode("utf-8", "surrogateescape")
        lines = _Lines(text)
        reader = csv.reader(lines, strict=True)
        end, header = 0, False
        while True:
            first = lines.number + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                if lines.exhausted:  # the file ends inside a quoted field: a torn record
                    break
                raise ValueError(f"{self.path}:{first}: not CSV ({err}); {ADVICE}") from None
            if not lines.whole:  # the file ends without the record's line break: a torn record
                break
            where = f"{self.path}:{first}"
            if not header:
                self._check_header(row, where)
                header = True
            else:
                self._take(dict(zip(self.columns, self._check_row(row, where))), where)
            end = lines.consumed
        self._end = len(text[:end].encode("utf-8", "surrogateescape"))
        tail = text[end:]
        if not tail:
            return
        where = f"{self.path}:{text.count(chr(10), 0, end) + 1}"
        if header:  # a record cut short has at most the columns' cells
            try:
                plausible = len(next(csv.reader(_Lines(tail)), [])) <= len(self.columns)
            except csv.Error:
                plausible = False
        else:  # the header itself was cut short
            plausible = self._csv_line(self.columns).startswith(tail.encode("utf-8", "surrogateescape"))
        if not plausible:
            raise ValueError(f"{where}: the last line is incomplete and is not the start of a record; "
                             f"not a results file of s2d predict ({ADVICE})")

    def _check_header(self, row: list[str], where: str) -> None:
        if row == self.columns:
            return
        pairs = row[3:-1]
        if (row[:3] == self.columns[:3] and row[-1:] == ["model"] and len(pairs) % 2 == 0
                and pairs == [f"{w}_{i}" for i in range(1, len(pairs) // 2 + 1) for w in ("label", "prob")]):
            raise ValueError(f"{self.path}: its columns are those of a top-{len(pairs) // 2} run, this run is "
                             f"top-{self.topk}; pass the same --topk or choose another --output")
        if row[:3] == self.columns[:3] and "model" not in row:
            raise ValueError(f"{where}: written by an earlier s2d, whose records do not name their model; "
                             "choose another --output")
        shown = ",".join(row[:6])[:80]
        raise ValueError(f"{where}: the header {shown!r} is not that of an s2d predict results file "
                         f"({','.join(self.columns[:5])},...,model); {ADVICE}")

    def _check_row(self, row: list[str], where: str) -> list[str]:
        if len(row) != len(self.columns):
            raise ValueError(f"{where}: {len(row)} cells, expected {len(self.columns)} ({', '.join(self.columns[:4])},"
                             f"...); {ADVICE}")
        if not row[0]:
            raise ValueError(f"{where}: no path; {ADVICE}")
        if not row[2].isdigit():
            raise ValueError(f"{where}: num_frames {row[2]!r} is not a count; {ADVICE}")
        for i in range(self.topk):
            label, prob = row[3 + 2 * i], row[4 + 2 * i]
            if (label == "") != (prob == "") or (prob and not _probability(prob)):
                raise ValueError(f"{where}: label_{i + 1}/prob_{i + 1} {label!r}, {prob!r} are not a label and "
                                 f"a probability; {ADVICE}")
        if not row[-1]:
            raise ValueError(f"{where}: no model; {ADVICE}")
        return row

    def _check_jsonl(self, record: Any, where: str) -> None:
        """Raise ValueError (naming `where`) unless `record` is a JSON-lines record of this schema."""
        if not isinstance(record, dict):
            raise ValueError(f"{where}: a {type(record).__name__}, not a record of s2d predict; {ADVICE}")
        missing = [key for key in ("path", "model", "topk", "labels", "num_frames", "error") if key not in record]
        if missing:
            raise ValueError(f"{where}: a record without {', '.join(map(repr, missing))}; not a results file of "
                             f"this version of s2d predict ({ADVICE})")
        topk = record["topk"] if _count(record["topk"]) and record["topk"] >= 1 else None
        problems = {"path": _text(record["path"]), "model": _text(record["model"]), "topk": topk is not None,
                    "labels": _label_list(record["labels"]) and len(record["labels"]) <= (topk or self.topk),
                    "synopsis": record.get("synopsis") is None or _label_list(record["synopsis"]),
                    "sampling": record.get("sampling") is None or isinstance(record["sampling"], dict),
                    "num_frames": _count(record["num_frames"]),
                    "error": record["error"] is None or isinstance(record["error"], str)}
        wrong = [key for key, ok in problems.items() if not ok]
        if wrong:
            key = wrong[0]
            raise ValueError(f"{where}: {key} {_clip(record.get(key))} is not {_EXPECTED[key]}; {ADVICE}")
        if record["topk"] != self.topk:
            raise ValueError(f"{where}: a top-{record['topk']} record, this run is top-{self.topk}; pass the same "
                             "--topk or choose another --output")
        if "window" in record and not self.windowed:
            raise ValueError(f"{where}: a record of one window of a video (predict --window); this run records whole "
                             "videos: choose another --output")

    def _take(self, record: Any, where: str) -> None:
        """Check one complete record and keep it."""
        if self.format == "jsonl":
            self._check_jsonl(record, where)
        self._same_model(record["model"], where)
        self.records.append(record)

    def _same_model(self, model: str, where: str) -> None:
        if self.file_model is None:
            self.file_model = model
        elif model != self.file_model:
            raise ValueError(f"{where}: a record of model {model!r} among records of {self.file_model!r}; the file "
                             f"mixes two models' results ({ADVICE})")

    def done(self) -> set[str]:
        """Absolute paths of the videos already recorded (successes and failures)."""
        return {path_key(r["path"]) for r in self.records}

    def failed(self) -> set[str]:
        """Absolute paths of the videos recorded as failures."""
        return {path_key(r["path"]) for r in self.records if r.get("error")}

    # -- writing -------------------------------------------------------------------------------
    def forget_failures(self) -> int:
        """Rewrite the file without its failure records (so they are tried again); returns how many.
        The rewrite is atomic (`atomic_write`): a crash keeps the old file or the new, never a mix."""
        self._writable()
        kept = [r for r in self.records if not r.get("error")]
        dropped = len(self.records) - len(kept)
        if dropped:
            self.rewrite(kept)
        return dropped

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the file's records by `records` (as read from this or another results file of this
        model and top-k), atomically (`atomic_write`): a crash keeps the old file or the new, never a mix.
        Used to drop failures and to merge the part files of a distributed run (`s2d.inference.distributed`)."""
        self._writable()
        head = self._csv_line(self.columns) if self.format == "csv" else b""
        data = head + b"".join(self._line(r) for r in records)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as handle:
                handle.write(data)

        with deferred_signals():
            atomic_write(self.path, write)
            self.records = list(records)
            self._size = self._end = len(data)

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records (`Prediction.to_dict()`) with this run's model and top-k; returns how many.

        All or nothing: one `O_APPEND` write loop, fsync'ed, truncated back if it fails; Ctrl-C and
        SIGTERM wait until the records are also in `records`."""
        self._writable()
        stamped = [self._stamped(r) for r in records]
        if not stamped:
            return 0
        data = b"".join(self._line(r) for r in stamped)
        with deferred_signals():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
            try:
                size = os.fstat(fd).st_size
                if size != self._size:
                    raise ValueError(f"{self.path}: changed by another program since this run read it "
                                     f"({self._size} bytes, now {size}); stop the other writer and run again")
                if self._end < size:  # drop the record a crash cut short; its video is being redone
                    os.ftruncate(fd, self._end)
                    self._size = self._end
                if self._end == 0 and self.format == "csv":
                    data = self._csv_line(self.columns) + data
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                except BaseException:
                    os.ftruncate(fd, self._end)  # leave no partial record behind
                    raise
            finally:
                os.close(fd)
            self._remember(stamped, self._end + len(data))
        return len(stamped)

    def _remember(self, records: list[dict[str, Any]], size: int) -> None:
        """The bookkeeping of an append: `records` are now in the file, which is `size` bytes."""
        self.records.extend(records)
        self._size = self._end = size

    def _writable(self) -> None:
        if self.model is None:
            raise ValueError(f"{self.path}: opened without a model identity; records need one (check_model)")

    def _stamped(self, record: dict[str, Any]) -> dict[str, Any]:
        """`record` as written: path, model and top-k first, probabilities rounded, checked as on reading."""
        out = {"path": record["path"], "model": self.model, "topk": self.topk}
        out.update((k, v) for k, v in record.items() if k not in out)
        for key in ("labels", "synopsis"):
            if out.get(key):
                out[key] = [{**item, "prob": round(float(item["prob"]), DIGITS)} for item in out[key]]
        self._check_jsonl(out, f"{self.path}: a record of {record.get('path')!r}")
        if self.format == "csv":
            return dict(zip(self.columns, self._row(out)))
        return out

    def _row(self, record: dict[str, Any]) -> list[str]:
        """The CSV cells of a stamped record."""
        labels = record["labels"]
        cells = [record["path"], record["error"] or "", str(record["num_frames"])]
        for i in range(self.topk):
            cells += [labels[i]["label"], f"{labels[i]['prob']:.{DIGITS}f}"] if i < len(labels) else ["", ""]
        return cells + [record["model"]]

    def _line(self, record: dict[str, Any]) -> bytes:
        """One record as the file holds it (JSON is ASCII: any file name survives as escapes)."""
        if self.format == "csv":
            return self._csv_line([record.get(c, "") for c in self.columns])
        return (json.dumps(record) + "\n").encode("ascii")

    @staticmethod
    def _csv_line(cells: list[Any]) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerow(cells)
        return out.getvalue().encode("utf-8", "surrogateescape")


class _Lines:
    """The lines of `text` (split at "\\n" only, kept) for `csv.reader`, counting what it consumed."""

    def __init__(self, text: str) -> None:
        self.text, self.consumed, self.number = text, 0, 0
        self.whole = True  # the last line given ended with its line break
        self.exhausted = False

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.consumed >= len(self.text):
            self.exhausted = True
            raise StopIteration
        stop = self.text.find("\n", self.consumed)
        stop = len(self.text) if stop < 0 else stop + 1
        line = self.text[self.consumed:stop]
        self.consumed, self.number, self.whole = stop, self.number + 1, line.endswith("\n")
        return line


_EXPECTED = {"path": "a non-empty string", "model": "a non-empty string", "topk": "a count >= 1",
             "labels": "a list of at most topk {label, prob} objects", "synopsis": "null or a list of {label, prob}",
             "sampling": "null or an object", "num_frames": "a count", "error": "null or a string"}


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _label_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, dict) and isinstance(item.get("label"), str) and _probability(item.get("prob"))
        for item in value)


def _probability(value: Any) -> bool:
    """Whether `value` (a number, or a CSV cell) is a probability."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def _clip(value: Any, n: int = 60) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."
