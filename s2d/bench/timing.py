"""Timers for the benchmark: wall clock on CPU, CUDA events on GPU, reported as quantiles.

Every measurement follows one protocol so that rows are comparable across backends:

1. the first call is timed on its own (`Timing.first_call_s`): it holds one-off costs such as
   `torch.compile` tracing, Triton compilation / autotuning and lazy allocator growth, which users
   pay once and which must not pollute the steady-state numbers;
2. further warm-up calls are run untimed;
3. timed repetitions follow. Their count adapts to the cost of one call: enough to fill
   `budget_s`, never fewer than `min_reps` nor more than `max_reps`;
4. the samples are summarised by their median and 20th / 80th percentiles.

A measurement may consist of several *phases* run back to back in each repetition (for example a
forward then a backward pass); each phase is timed separately and the sum is reported as well,
so forward, backward and forward+backward figures come from the very same repetitions.
Implementations that are compared with each other are timed *interleaved* (`time_interleaved`):
one repetition of each in turn, so a burst of load from other processes does not land on one
side of a ratio only.

On CUDA the L2 cache is flushed before every repetition (as `triton.testing.do_bench` does) and
CUDA events bracket every phase; the peak allocated memory over the measurement is recorded
(inputs included, the flush buffer excluded).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

#: Quantiles reported for every timing (p20, median, p80).
QUANTILES = (0.2, 0.5, 0.8)


def quantile(samples: Sequence[float], q: float) -> float:
    """The `q`-quantile of `samples` with linear interpolation between order statistics
    (NumPy's default "linear" method), so p50 of an even count is the mean of the middle two."""
    if not samples:
        raise ValueError("quantile of an empty sample")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must lie in [0, 1], got {q}")
    xs = sorted(samples)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class Timing:
    """Steady-state samples of one timed phase, in seconds, plus the one-off first call."""

    samples_s: list[float]
    first_call_s: float | None = None
    peak_mem_bytes: int | None = None

    @property
    def n(self) -> int:
        return len(self.samples_s)

    @property
    def median_s(self) -> float:
        return quantile(self.samples_s, 0.5)

    @property
    def p20_s(self) -> float:
        return quantile(self.samples_s, 0.2)

    @property
    def p80_s(self) -> float:
        return quantile(self.samples_s, 0.8)


@dataclass(frozen=True)
class TimerSettings:
    """How many calls to make: `warmup` untimed calls (the first of which is timed on its own as
    the first call), then between `min_reps` and `max_reps` timed ones, aiming at `budget_s`."""

    warmup: int = 1
    min_reps: int = 3
    max_reps: int = 10
    budget_s: float = 5.0

    def reps_for(self, estimate_s: float) -> int:
        """Timed repetitions for a call that takes about `estimate_s` seconds."""
        if estimate_s <= 0:
            return self.max_reps
        return int(min(self.max_reps, max(self.min_reps, math.ceil(self.budget_s / estimate_s))))


class _L2Flusher:
    """Overwrites a buffer larger than the L2 cache, so every repetition starts cold."""

    def __init__(self, device: torch.device, nbytes: int = 256 * 1024 * 1024):
        self.buffer = torch.empty(nbytes // 4, dtype=torch.int32, device=device)
        self.nbytes = self.buffer.numel() * self.buffer.element_size()

    def __call__(self) -> None:
        self.buffer.zero_()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Candidate:
    """One thing to time: `phases` run in order per repetition, `setup` untimed before each
    repetition, all inside `context()` (e.g. `torch.no_grad`, autocast) when given."""

    phases: Sequence[Callable[[], Any]]
    setup: Callable[[], Any] | None = None
    context: Callable[[], contextlib.AbstractContextManager] | None = None


class _Runner:
    """Runs one candidate once, returning per-phase seconds (CUDA events or wall clock)."""

    def __init__(self, cand: Candidate, device: torch.device, flush: _L2Flusher | None):
        if not cand.phases:
            raise ValueError("a timing candidate needs at least one phase")
        self.cand, self.device, self.flush = cand, device, flush

    def _context(self) -> contextlib.AbstractContextManager:
        return self.cand.context() if self.cand.context is not None else contextlib.nullcontext()

    def first_call(self) -> float:
        """Host seconds of one call, synchronised: compile / autotune time is host time."""
        with self._context():
            if self.cand.setup is not None:
                self.cand.setup()
            _sync(self.device)
            start = time.perf_counter()
            for phase in self.cand.phases:
                phase()
            _sync(self.device)
            return time.perf_counter() - start

    def once(self) -> list[float]:
        phases = self.cand.phases
        with self._context():
            if self.cand.setup is not None:
                self.cand.setup()
            if self.flush is not None:
                self.flush()
                torch.cuda.synchronize(self.device)
                events = [torch.cuda.Event(enable_timing=True) for _ in range(len(phases) + 1)]
                events[0].record()
                for i, phase in enumerate(phases):
                    phase()
                    events[i + 1].record()
                torch.cuda.synchronize(self.device)
                return [events[i].elapsed_time(events[i + 1]) / 1e3 for i in range(len(phases))]
            stamps = [time.perf_counter()]
            for phase in phases:
                phase()
                stamps.append(time.perf_counter())
            return [stamps[i + 1] - stamps[i] for i in range(len(phases))]


def time_interleaved(candidates: dict[str, Candidate], device: torch.device | str,
                     settings: TimerSettings) -> dict[str, list[Timing] | BaseException]:
    """Time several candidates with their repetitions interleaved (round robin, the starting
    candidate rotating every round), so that load from other processes that drifts during the
    measurement hits all of them alike and their ratios stay fair.

    Each candidate first gets its first call and warm-up on its own (on CUDA its peak memory is
    taken there). The number of rounds follows the mean per-candidate cost. Returns, per name,
    one `Timing` per phase followed by the total when there are several phases, or the exception
    the candidate raised (it is then left out of later rounds).
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    flush = _L2Flusher(device) if cuda else None
    runners: dict[str, _Runner] = {}
    first: dict[str, float] = {}
    estimate: dict[str, float] = {}
    peak: dict[str, int | None] = {}
    results: dict[str, list[Timing] | BaseException] = {}
    for name, cand in candidates.items():
        try:
            runner = _Runner(cand, device, flush)
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            first[name] = estimate[name] = runner.first_call()
            for _ in range(max(0, settings.warmup - 1)):
                estimate[name] = sum(runner.once())
            # Peak allocated memory, inputs included, the L2-flush buffer excluded.
            peak[name] = int(torch.cuda.max_memory_allocated(device)) - flush.nbytes if flush is not None else None
            runners[name] = runner
        except Exception as err:  # reported to the caller, the other candidates go on
            results[name] = err
    samples: dict[str, list[list[float]]] = {name: [] for name in runners}
    if runners:
        reps = settings.reps_for(sum(estimate[n] for n in runners) / len(runners))
        order = list(runners)
        for r in range(reps):
            for name in order[r % len(order):] + order[: r % len(order)]:
                if name in results:
                    continue
                try:
                    samples[name].append(runners[name].once())
                except Exception as err:
                    results[name] = err
    for name, runner in runners.items():
        if name in results:
            continue
        n_phases = len(runner.cand.phases)
        rows = samples[name]
        timings = [Timing([s[i] for s in rows], first[name], peak[name]) for i in range(n_phases)]
        if n_phases > 1:
            timings.append(Timing([sum(s) for s in rows], first[name], peak[name]))
        results[name] = timings
    return {name: results[name] for name in candidates}


def time_phases(phases: Sequence[Callable[[], Any]], device: torch.device | str,
                settings: TimerSettings, setup: Callable[[], Any] | None = None) -> list[Timing]:
    """Time `phases` run in order in every repetition; `setup` runs untimed before each one.

    Returns one `Timing` per phase, followed by the total over all phases when there are
    several. Exceptions from the callables propagate.
    """
    result = time_interleaved({"only": Candidate(phases, setup)}, device, settings)["only"]
    if isinstance(result, BaseException):
        raise result
    return result


def time_call(fn: Callable[[], Any], device: torch.device | str, settings: TimerSettings,
              setup: Callable[[], Any] | None = None) -> Timing:
    """Time a single callable (see `time_phases`)."""
    return time_phases([fn], device, settings, setup)[0]


def copy_bandwidth(device: torch.device | str, nbytes: int = 1 << 30, reps: int = 10) -> float:
    """Achieved device-to-device copy bandwidth in bytes/s (read + write counted), the yardstick
    of the roofline column: a kernel moving B bytes in t seconds reaches (B/t) / this."""
    device = torch.device(device)
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    settings = TimerSettings(warmup=2, min_reps=reps, max_reps=reps, budget_s=0.0)
    timing = time_call(lambda: dst.copy_(src), device, settings)
    return 2.0 * nbytes / timing.median_s


def parallel_probe_ms(reps: int = 15) -> float:
    """Median milliseconds of one small multi-threaded CPU op (a 256 Ki-element uint8 → float
    conversion): about 0.05 ms on an idle machine, several ms when other processes hold the cores
    and every parallel region waits for a scheduler slice. Recorded at the start and end of a run
    so readers can tell a disturbed run from a quiet one."""
    x = torch.zeros(1 << 18, dtype=torch.uint8)
    x.float()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        x.float()
        samples.append(time.perf_counter() - start)
    return quantile(samples, 0.5) * 1e3


def time_two_clocks(candidates: dict[str, Candidate],
                    settings: TimerSettings) -> dict[str, tuple[Timing, Timing] | BaseException]:
    """CPU only: time candidates interleaved as `time_interleaved` does, each call on the wall clock
    and on this process's CPU clock (all threads), which other jobs on a shared machine disturb far less.

    Returns, per name, `(wall, cpu)` Timings of the whole call (phases summed), or the exception
    the candidate raised (it is then left out of later rounds).
    """
    results: dict[str, tuple[Timing, Timing] | BaseException] = {}
    samples: dict[str, tuple[list[float], list[float]]] = {}
    first: dict[str, tuple[float, float]] = {}

    def once(cand: Candidate) -> tuple[float, float]:
        with cand.context() if cand.context is not None else contextlib.nullcontext():
            if cand.setup is not None:
                cand.setup()
            wall, cpu = time.perf_counter(), time.process_time()
            for phase in cand.phases:
                phase()
            return time.perf_counter() - wall, time.process_time() - cpu

    for name, cand in candidates.items():
        try:
            first[name] = once(cand)
            for _ in range(max(0, settings.warmup - 1)):
                once(cand)
            samples[name] = ([], [])
        except Exception as err:  # reported to the caller, the other candidates go on
            results[name] = err
    order = list(samples)
    reps = settings.reps_for(sum(first[n][0] for n in order) / len(order)) if order else 0
    for r in range(reps):
        for name in order[r % len(order):] + order[: r % len(order)]:
            if name in results:
                continue
            try:
                wall, cpu = once(candidates[name])
            except Exception as err:
                results[name] = err
                continue
            samples[name][0].append(wall)
            samples[name][1].append(cpu)
    for name in order:
        if name not in results:
            results[name] = (Timing(samples[name][0], first[name][0]), Timing(samples[name][1], first[name][1]))
    return {name: results[name] for name in candidates}
