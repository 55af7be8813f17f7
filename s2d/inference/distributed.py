"""A collection run over many processes (`torchrun ... -m s2d predict ... --output FILE`): each video
recorded exactly once, in input order, whatever the world size, crashes included.

- **Dynamic sharing.** The videos still to do (`pending`, the same list on every rank) are claimed
  in small chunks with an atomic counter in torch.distributed's store (`store.add`): a rank that
  drew long videos claims less, none stays idle while work is left, and no video is claimed twice.
- **Part files.** Each rank appends its records to its own part file beside the output
  (`.results.jsonl.part-R.jsonl`, a `ResultsFile` locked by that rank), flushed batch by batch.
- **Merge.** At the end rank 0 (which holds the output's `OutputLock` for the whole run) merges the
  output and every part into the output, in input order, atomically (`ResultsFile.rewrite`), then
  removes the parts. A part left by a run that died is evidence of done work: the next run (any
  world size, one process included) merges it first, so what a killed rank recorded is kept and
  what it claimed without recording is redone.
- **Failures.** Ranks beat a heartbeat counter in the store; waits (for rank 0's start, for the
  others at the end) give up on a rank whose heartbeat stopped for `rank_timeout_s`, and the run
  exits non-zero saying to run the same command again. SIGTERM (torchrun stopping the ranks after
  one died) records what is finished and stops.

CPU ranks use gloo and split a node's cores (`cpu_share`); CUDA ranks use one GPU per local rank.
In Python, under an initialised process group (or in one process):

    session = Session.join("cpu")
    session.start("results.jsonl", topk=5, model=model_identity(model, "name"), videos=videos)
    for pred in predict_many(model, session.claims(), part_size=session.chunk):
        session.record([pred.to_dict()])
    session.finish(videos)
    session.close()
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from s2d.inference.results import ResultsFile, path_key
from s2d.io.files import OutputBusyError, OutputLock, deferred_signals
from s2d.io.text import shown

__all__ = ["Session", "Stopped", "collect_shared", "cpu_share", "merge_parts", "part_files", "part_path", "run_shared",
           "wanted"]

#: Seconds without a heartbeat after which a rank is taken for dead.
RANK_TIMEOUT_S = 120.0
#: Seconds between heartbeats (and progress updates on rank 0).
BEAT_S = 1.0
#: Batches per worker claimed at a time.
CLAIM_BATCHES = 2
#: Test-only: `RANK` makes that rank, after its first claim, hold it until the other ranks have claimed
#: everything else (a straggler on purpose, whose share the others must take, deterministically).
HOLD_ENV = "S2D_PREDICT_TEST_HOLD"


class Stopped(BaseException):
    """SIGTERM arrived (torchrun stops every rank when one fails): what is finished is recorded, then the rank stops."""


def part_path(output: str | os.PathLike, rank: int) -> Path:
    """Rank `rank`'s part file of `output` (hidden, beside it, with its suffix: a results file too)."""
    output = Path(output)
    return output.with_name(f".{output.name}.part-{rank}{output.suffix}")


def part_files(output: str | os.PathLike) -> list[Path]:
    """The part files of `output` present now (left by a run that stopped, or this run's), by rank."""
    output = Path(output)
    pattern = re.compile(rf"\.{re.escape(output.name)}\.part-(\d+){re.escape(output.suffix)}")
    try:
        names = os.listdir(output.parent if str(output.parent) else ".")
    except OSError:
        return []
    found = [(int(m.group(1)), output.with_name(n)) for n in names if (m := pattern.fullmatch(n))]
    return [p for _, p in sorted(found)]


def wanted(output: str | os.PathLike | None) -> bool:
    """Whether a run must go the shared way: launched by torchrun with several ranks, or resuming an
    output that has part files of an earlier shared run."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 or (dist.is_available() and dist.is_initialized()):
        return True
    return output is not None and bool(part_files(output))


def cpu_share() -> int:
    """The cores of this node for one rank: all of them split between the node's ranks (`LOCAL_WORLD_SIZE`)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def merge_parts(output: ResultsFile, order: Iterable[str], *, drop_failed: bool = False,
                skip_busy: bool = False) -> int:
    """Merge the part files of `output` (checked like it: same model, same top-k) into it, in the order of
    `order` (records of other videos first, as they were), each video once; then remove the parts.
    Returns how many records the parts added. `drop_failed` also drops failure records (`--retry-failed`).
    A part still locked by a live writer is an error (`OutputBusyError`), or left alone with `skip_busy`.
    The output is rewritten atomically, and only when something changes."""
    locks, parts = [], []
    try:
        for path in part_files(output.path):
            try:
                locks.append(OutputLock(path, what="part file").acquire())
            except OutputBusyError:
                if skip_busy:
                    continue
                raise
            try:
                parts.append((path, ResultsFile(path, topk=output.topk, model=output.model)))
            except ValueError as err:
                raise ValueError(f"{err} (a part file of an earlier run on {output.path})") from None
        records = list(output.records)
        seen = {path_key(r["path"]) for r in records}
        added = 0
        for _, part in parts:
            for record in part.records:
                key = path_key(record["path"])
                if key not in seen:
                    seen.add(key)
                    records.append(record)
                    added += 1
        kept = [r for r in records if not (drop_failed and r.get("error"))]
        place = {key: i for i, key in enumerate(map(path_key, order))}
        kept.sort(key=lambda r: place.get(path_key(r["path"]), -1))
        if parts or kept != output.records:
            output.rewrite(kept)
        with deferred_signals():
            for path, _ in parts:
                path.unlink(missing_ok=True)
        return added
    finally:
        for lock in locks:
            lock.release()


def _digest(paths: list[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(os.fsencode(path) + b"\0")
    return digest.hexdigest()


class Session:
    """One rank's part in a shared collection run; see the module docstring."""

    def __init__(self, env: Any, store: Any, rank_timeout_s: float = RANK_TIMEOUT_S) -> None:
        self.env, self.rank, self.world = env, env.rank, env.world_size
        self.rank_timeout_s = rank_timeout_s
        generation = (int(store.add("s2d-predict/sessions", 1)) - 1) // self.world  # every rank joins each session
        self.store = dist.PrefixStore(f"s2d-predict/{generation}", store)
        self.pending: list[str] = []
        self.chunk = 1
        self.started = self.ended = False
        self.output: ResultsFile | None = None
        self.part: ResultsFile | None = None
        self._locks: list[OutputLock] = []  # rank 0: the output's
        self._part_lock: OutputLock | None = None
        self._stop = threading.Event()
        self._bar: Any = None
        self._sigterm: Any = None
        self._threads = torch.get_num_threads()  # restored by `close`
        self._beat = threading.Thread(target=self._beating, name="s2d-heartbeat", daemon=True)
        self._beat.start()

    # -- joining and leaving ---------------------------------------------------------------------
    @classmethod
    def join(cls, device: str = "cpu", rank_timeout_s: float = RANK_TIMEOUT_S) -> Session:
        """Join torchrun's process group (gloo on CPU, NCCL with one GPU per local rank; an initialised group
        is used as it is), or make a world of one; split the CPU cores between the node's ranks."""
        from s2d.train.distributed import setup  # the process group setup training uses

        env = setup(device)
        store = dist.distributed_c10d._get_default_store() if env.distributed else dist.HashStore()
        session = cls(env, store, rank_timeout_s)
        if env.device.type == "cpu":
            torch.set_num_threads(cpu_share())
        if threading.current_thread() is threading.main_thread():
            session._sigterm = signal.signal(signal.SIGTERM, _raise_stopped)
        return session

    def close(self) -> None:
        """Leave: a rank that never finished tells the others not to wait for it; locks released, group left."""
        if not self.ended:
            self._set(f"end/{self.rank}", "stopped" if self.started else "absent")
        self._stop.set()
        if self._bar is not None:
            self._bar.close()
        for lock in [self._part_lock, *reversed(self._locks)]:
            if lock is not None:
                lock.release()
        self._locks.clear()
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)
            self._sigterm = None
        from s2d.train.distributed import teardown

        teardown(self.env)
        torch.set_num_threads(self._threads)

    def _set(self, key: str, value: str) -> None:
        with contextlib.suppress(Exception):  # the store is gone (its host died): nobody is left to tell
            self.store.set(key, value)

    def _beating(self) -> None:
        while not self._stop.wait(BEAT_S):
            try:
                self.store.add(f"beat/{self.rank}", 1)
                if self._bar is not None:
                    self._show(self.totals()[0])
            except Exception:  # noqa: BLE001 - the store is gone: the main thread finds out on its next call
                return

    def _show(self, counts: list[int]) -> None:
        self._bar.n = sum(counts)
        self._bar.set_postfix_str(" ".join(f"r{r}={c}" for r, c in enumerate(counts)))

    def _wait(self, ready: Callable[[], bool], ranks: Iterable[int]) -> set[int]:
        """Wait until `ready()`, or until every rank of `ranks` that is not done has stopped beating for
        `rank_timeout_s`; returns the ranks taken for dead (empty when ready)."""
        seen = {r: (-1, time.monotonic()) for r in ranks}
        while not ready():
            now, dead = time.monotonic(), set()
            for r, (beat, since) in seen.items():
                value = int(self.store.add(f"beat/{r}", 0))
                if value != beat:
                    seen[r] = (value, now)
                elif now - since > self.rank_timeout_s and not self.store.check([f"end/{r}"]):
                    dead.add(r)
            if dead and all(r in dead or self.store.check([f"end/{r}"]) for r in seen):
                return dead
            time.sleep(0.2)
        return set()

    # -- the run -------------------------------------------------------------------------------------
    def start(self, output: str | os.PathLike, *, topk: int, model: str, videos: list[str],
              retry_failed: bool = False, batch_size: int = 1, workers: int = 0,
              check: Callable[[list[str]], str | None] | None = None) -> list[str]:
        """Start the run (collective): rank 0 locks `output`, merges parts left by an earlier run into it
        (dropping failures with `retry_failed`) and checks; every rank then knows `pending` (the videos of
        `videos` not yet recorded, in input order) and locks its own part file. `check(pending)` (rank 0)
        may refuse the run with a reason. Raises ValueError, with the same reason on every rank."""
        self.chunk = max(1, CLAIM_BATCHES * batch_size * max(1, workers))
        if self.rank == 0:
            try:
                self._locks.append(OutputLock(output, what="results file").acquire())
                self.output = ResultsFile(output, topk=topk, model=model)
                merge_parts(self.output, videos, drop_failed=retry_failed)
                self.pending = self._pending(videos)
                problem = check(self.pending) if check is not None else None
                if problem:
                    raise ValueError(problem)
            except (ValueError, OutputBusyError) as err:
                self._set("start", json.dumps({"error": str(err)}))
                raise ValueError(str(err)) from None
            self._set("start", json.dumps({"digest": _digest(self.pending), "count": len(self.pending)}))
        else:
            if self._wait(lambda: self.store.check(["start"]), [0]):
                raise ValueError("rank 0 stopped before the run started; run the same command again")
            answer = json.loads(self.store.get("start"))
            if "error" in answer:
                raise ValueError(answer["error"])
            self.output = ResultsFile(output, topk=topk, model=model)
            self.pending = self._pending(videos)
            if _digest(self.pending) != answer["digest"]:
                raise ValueError(f"rank {self.rank} sees {len(self.pending)} videos to do, rank 0 {answer['count']}: "
                                 "every rank must see the same inputs and --output (a file system all nodes share)")
        path = part_path(output, self.rank)
        self._part_lock = OutputLock(path, what="part file").acquire()
        self.part = ResultsFile(path, topk=topk, model=model)
        self.started = True
        return self.pending

    def _pending(self, videos: list[str]) -> list[str]:
        done = self.output.done()
        return [v for v in videos if path_key(v) not in done]

    def progress(self) -> None:
        """Show a bar of the whole run on this rank (rank 0), with each rank's count, updated every beat."""
        from tqdm import tqdm

        self._bar = tqdm(total=len(self.pending), desc=f"predict ({self.world} rank(s))", unit="video",
                         dynamic_ncols=True)

    def claims(self) -> Iterator[str]:
        """This rank's share of `pending`, claimed `chunk` videos at a time as it asks for them."""
        hold = os.environ.get(HOLD_ENV, "").strip() == str(self.rank) and self.world > 1
        total = len(self.pending)
        while True:
            end = int(self.store.add("next", self.chunk))
            first = end - self.chunk
            if first >= total:
                return
            if hold:  # tests only: a straggler on purpose (bounded: the others may die)
                others = [r for r in range(self.world) if r != self.rank]
                self._wait(lambda: int(self.store.add("next", 0)) >= total, others)
                hold = False
            yield from self.pending[first:min(end, total)]

    def record(self, records: list[dict[str, Any]]) -> None:
        """Append `records` to this rank's part file and empty the list, as one step that SIGTERM waits for."""
        with deferred_signals():
            self.part.append(records)
            count, failed = len(records), sum(1 for r in records if r.get("error"))
            records.clear()
        self.store.add(f"count/{self.rank}", count)
        self.store.add("failed", failed)

    def finish(self, order: list[str]) -> tuple[set[int], int]:
        """End this rank's part; on rank 0, wait for the other ranks (or their silence), then merge the
        parts into the output in the order of `order`. Returns (on rank 0; else an empty set and 0) the
        ranks that stopped before their end and how many of `pending` are still not recorded."""
        self._part_lock.release()  # this rank writes its part no more (and rank 0 merges it)
        self._set(f"end/{self.rank}", "done")
        self.ended = True
        if self.rank != 0:
            return set(), 0
        others = range(1, self.world)
        dead = self._wait(lambda: self.store.check([f"end/{r}" for r in others]), others)
        stopped = {r for r in others if r not in dead and self.store.get(f"end/{r}") != b"done"}
        if self._bar is not None:
            self._show(self.totals()[0])
            self._bar.close()
            self._bar = None
        merge_parts(self.output, order, skip_busy=True)
        missing = len(self._pending(self.pending))
        return dead | stopped, missing

    def totals(self) -> tuple[list[int], int]:
        """(videos recorded by each rank, failures among them) in this run so far."""
        return [int(self.store.add(f"count/{r}", 0)) for r in range(self.world)], int(self.store.add("failed", 0))


def _raise_stopped(signum: int, frame: Any) -> None:
    raise Stopped()


def run_shared(args: Any, collect: Callable[[Any], int]) -> int:
    """`s2d.cli.predict.run` for a shared run: join the group (this rank's device in `args.device`), run
    `collect(args)` (which hands over to `collect_shared`), leave; SIGTERM ends it with status 143."""
    try:
        session = Session.join(args.device)
    except ValueError as err:  # a device that does not exist here
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.device, args.shared = str(session.env.device), session
    try:
        return collect(args)
    except Stopped:
        print(f"rank {session.rank}: stopped (SIGTERM); run the same command again (any number of processes) to "
              "finish", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        session.close()


def collect_shared(args: Any, model: Any, videos: list[str], unreadable: list[tuple[str, str]]) -> int:
    """`python -m s2d predict` under torchrun (or resuming from part files): the checked run of
    `s2d.cli.predict.collect` with the videos shared between the ranks; returns the exit status."""
    from tqdm import tqdm

    from s2d.inference.batch_predict import default_batch_size, predict_many
    from s2d.inference.features import check_features, write_features
    from s2d.inference.results import model_identity

    session: Session = args.shared
    rank = session.rank
    if not args.output or args.vis or args.json:
        print("error: a run over several processes (torchrun) records its videos with --output FILE, and takes no "
              "--vis or --json", file=sys.stderr)
        return 2
    identity = model_identity(model, args.model)
    batch_size = args.batch_size or default_batch_size(args.device)
    share = cpu_share()
    workers = args.workers if args.workers is not None else (share // 2 if session.env.device.type == "cpu" else
                                                              max(1, min(8, share)))
    check = (lambda pending: check_features(args.features, pending, identity, model)) if args.features else None
    try:
        pending = session.start(args.output, topk=args.topk, model=identity, videos=videos,
                                retry_failed=args.retry_failed, batch_size=batch_size, workers=workers, check=check)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if rank == 0:
        if len(videos) > len(pending):
            print(f"{args.output}: {len(videos) - len(pending)} of {len(videos)} videos already recorded, skipped",
                  file=sys.stderr)
        if pending:
            session.progress()
    failures: list[tuple[str, str]] = []
    records: list[dict] = []
    try:
        preds = predict_many(model, session.claims(), topk=args.topk, batch_size=batch_size, workers=workers,
                             device=session.env.device, optimize=args.optimize, backend=args.decoder,
                             threads=max(1, share - workers), features=bool(args.features), part_size=session.chunk)
        try:
            for pred in preds:
                if args.features and pred.error is None:
                    write_features(args.features, pred, model=identity, config=model.config)
                records.append(pred.to_dict())
                if len(records) >= batch_size:
                    session.record(records)
                if pred.error is not None:
                    failures.append((pred.path, pred.error))
                    tqdm.write(f"skipped {shown(pred.path)}: {pred.error}", file=sys.stderr)
        finally:
            if records:
                session.record(records)
    except Stopped:
        print(f"rank {rank}: stopped (SIGTERM); what it finished is recorded; run the same command again "
              "(any number of processes) to do the rest", file=sys.stderr)
        return 128 + signal.SIGTERM
    lost, missing = session.finish(videos)
    if failures:
        print(f"{len(failures)} videos failed on rank {rank}:", file=sys.stderr)
    for path, reason in failures:
        print(f"  {shown(path)}: {reason}", file=sys.stderr)
    if rank == 0:
        counts, failed = session.totals()
        print(f"{args.output}: {sum(counts)} videos recorded by {session.world} rank(s) (per rank: "
              f"{', '.join(map(str, counts))}; {failed} failed)", file=sys.stderr)
    if missing:
        gone = (f"rank(s) {', '.join(map(str, sorted(lost)))} stopped before the run was done; " if lost else
                "the other ranks' part files are not here (is --output on a file system all nodes share?); ")
        print(f"error: {gone}{missing} videos are not recorded in {args.output}; run the same command again "
              "(any number of processes) to finish", file=sys.stderr)
        return 1
    for folder, reason in unreadable:
        print(f"{shown(folder)}: cannot be read ({reason}); its videos were not predicted", file=sys.stderr)
    return 1 if failures or unreadable else 0
