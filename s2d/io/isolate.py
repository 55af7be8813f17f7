"""Running code that may crash the process (a native decoder on a hostile file) in child processes.

A decoder that aborts (`std::bad_alloc`), segfaults or is killed for its memory takes its whole
process down; `isolated_map` calls a function on each item in a child process of its own, so such
a crash becomes that item's failure, with the signal or exit code as the reason, and the caller
goes on.
"""
from __future__ import annotations

import multiprocessing
import pickle
import signal
import sys
from collections import deque
from typing import Any, Callable, Iterable

#: Seconds a child may take beyond its own time limit before it is killed.
GRACE_S = 30.0


def death_reason(exitcode: int | None) -> str:
    """Why a child process ended without an answer, from its exit code (negative: the signal)."""
    if exitcode is None:
        return "the decoding process did not finish in time and was killed"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return f"the decoder crashed (its process was killed by signal {name})"
    return f"the decoder crashed (its process exited with code {exitcode})"


def _child(fn: Callable[[Any], Any], item: Any, conn: Any) -> None:
    try:
        answer = (True, fn(item))
    except BaseException as err:  # reported to the parent as this item's failure
        answer = (False, f"{type(err).__name__}: {err}")
    try:
        payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as err:  # noqa: BLE001 - an answer that cannot travel is a failure too
        payload = pickle.dumps((False, f"the result cannot be sent back ({type(err).__name__}: {err})"))
    conn.send_bytes(payload)
    conn.close()


def _context() -> Any:
    """fork on Linux (cheap, and the child sees the caller's state, as DataLoader workers do there);
    elsewhere the platform's default (spawn on macOS, where forking a threaded process is unsafe)."""
    return multiprocessing.get_context("fork" if sys.platform == "linux" else None)


def _collect(process: Any, conn: Any, timeout_s: float | None) -> tuple[Any, str | None]:
    """The child's answer as `(value, None)`, or `(None, reason)` when it failed, died or ran too long."""
    try:
        timed_out = not conn.poll(timeout_s)  # True as soon as the child answers or dies (end of file)
        if timed_out:
            process.kill()
        else:
            try:
                ok, value = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):  # the child died before answering
                pass
            else:
                process.join()
                return (value, None) if ok else (None, value)
        process.join()
        return None, death_reason(None if timed_out else process.exitcode)
    finally:
        conn.close()


def isolated_map(fn: Callable[[Any], Any], items: Iterable[Any], *, parallel: int = 1,
                 timeout_s: float | None = None) -> list[tuple[Any, str | None]]:
    """`[(fn(item), None)]` for each item, computed in a child process each, at most `parallel` at a time.

    An item whose child raises gets `(None, "ExceptionType: message")`, one whose child dies (a
    signal, an exit) or outlives `timeout_s` + `GRACE_S` seconds gets `(None, reason)` naming the
    signal or exit code. Results come in the order of `items`; `fn` and the results must pickle
    where fork is not available.
    """
    ctx = _context()
    limit = None if timeout_s is None else timeout_s + GRACE_S
    running: deque[tuple[Any, Any]] = deque()
    results: list[tuple[Any, str | None]] = []

    def start(item: Any) -> None:
        receive, send = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_child, args=(fn, item, send), daemon=True, name="s2d-isolated-decode")
        process.start()
        send.close()  # the child holds the only writing end: its death reads as end of file
        running.append((process, receive))

    try:
        for item in items:
            start(item)
            if len(running) >= max(1, parallel):
                results.append(_collect(*running.popleft(), limit))
        while running:
            results.append(_collect(*running.popleft(), limit))
    finally:
        for process, conn in running:  # interrupted: leave no child behind
            process.kill()
            process.join()
            conn.close()
    return results
