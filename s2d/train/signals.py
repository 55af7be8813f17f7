"""Stopping a training run on SIGTERM or Ctrl-C (SIGINT) the same way in every phase.

`StopSignals` holds the handlers of both signals for the whole of `train`. Outside a `polled()`
block (building the data and the model, restoring a checkpoint: nothing unsaved to lose) a signal
raises `RunInterrupted` at once. Inside one (pre-training phases, epochs, validation, checkpoint
writes) it only records the request: every loop polls it after each step or batch, the run saves
a checkpoint where it stands and returns. A second Ctrl-C stops at once even there (the last
committed checkpoint stays). DataLoader workers ignore both signals (`ignore_stop_signals`), so a
signal sent to the whole process group (Ctrl-C in a terminal, a scheduler) leaves the decision to
the main process instead of killing a worker mid-batch.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(BaseException):
    """A stop signal ended the run where nothing was left to save (a BaseException, like
    KeyboardInterrupt, so that no `except Exception` on the way mistakes it for a failure)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum


def signal_name(signum: int) -> str:
    """"SIGTERM", or "Ctrl-C (SIGINT)"."""
    return "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name


def exit_status(signum: int | None) -> int:
    """What a shell reports for a process ended by `signum` (128 + its number; SIGTERM when unknown)."""
    return 128 + int(signum or signal.SIGTERM)


def ignore_stop_signals(_worker_id: int = 0) -> None:
    """DataLoader `worker_init_fn`: leave SIGINT and SIGTERM to the main process, which finishes its
    step and stops the workers; otherwise a signal to the process group kills a worker mid-batch."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


class StopSignals:
    """SIGINT and SIGTERM handlers for a training run (`with StopSignals() as stop:`).

    `signum` is the first stop signal received (None: none yet). Handlers are installed only in
    the main thread (elsewhere Python cannot set them, and the run is stopped as any code is)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._polled = 0
        self._previous: dict[int, Any] = {}
        self._pid = os.getpid()

    @property
    def requested(self) -> bool:
        """Whether a stop signal has come."""
        return self.signum is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if os.getpid() != self._pid:  # a forked DataLoader worker before its worker_init_fn ran
            return
        again = self.signum is not None
        if not again:
            self.signum = signum
        if not self._polled or (again and signum == signal.SIGINT):
            raise RunInterrupted(self.signum)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @contextlib.contextmanager
    def polled(self) -> Iterator[None]:
        """Inside the block a signal is only recorded: the code polls `requested` and stops itself."""
        self._polled += 1
        try:
            yield
        finally:
            self._polled -= 1
