"""From window labels to a timeline: smoothing over neighbouring windows, and segments (label, start, end,
mean probability), the form temporal-localisation tools consume.

Both work on the windows as recorded (`Scored.of`: a `WindowPrediction` or its record), whose
probabilities are the top-k labels; a class outside a window's top-k counts as 0 there, so smoothing
is exact for classes that make every top-k, and close otherwise (the error is at most the k-th
probability). Each works as a stream: a window is smoothed once its later neighbours are known, a
segment is given once the label changes, so a long video never needs its whole timeline in memory.

Windows overlap; each frame belongs to the window whose centre lies nearest (`boundary`), so segments
tile the video without overlap, and the annotated video (`s2d.inference.annotate`) labels each frame
with the same window.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Scored", "Segment", "boundary", "segments", "smooth"]


@dataclass(frozen=True)
class Scored:
    """One window's span and label probabilities (label -> probability)."""

    window: int
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    probs: dict[str, float]
    sampling: dict[str, Any] | None = None

    @staticmethod
    def of(item: Any) -> Scored:
        """From a `WindowPrediction` or its record (`to_dict()`, or a JSON-lines record read back)."""
        get = item.get if isinstance(item, dict) else lambda key: getattr(item, key)
        labels = get("labels") or []
        probs = {}
        for entry in labels:  # (name, p) pairs of a prediction, {label, prob} objects of a record
            name, p = (entry["label"], entry["prob"]) if isinstance(entry, dict) else entry
            probs[name] = float(p)
        return Scored(int(get("window")), float(get("start_s")), float(get("end_s")), int(get("start_frame")),
                      int(get("end_frame")), probs, get("sampling"))

    @property
    def label(self) -> str | None:
        """The most probable label (the first of the most probable on a tie), None without labels."""
        return max(self.probs, key=self.probs.__getitem__) if self.probs else None

    @property
    def centre_frame(self) -> float:
        return (self.start_frame + self.end_frame - 1) / 2

    @property
    def centre_s(self) -> float:
        return (self.start_s + self.end_s) / 2


@dataclass(frozen=True)
class Segment:
    """A run of windows with one label: the frames `[start_frame, end_frame)`, seconds `[start_s, end_s)`,
    the mean of the label's probability over its windows (`prob`) and the windows it spans."""

    label: str
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    prob: float
    first_window: int
    last_window: int

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "start_s": round(self.start_s, 6), "end_s": round(self.end_s, 6),
                "start_frame": self.start_frame, "end_frame": self.end_frame, "prob": round(self.prob, 6),
                "windows": [self.first_window, self.last_window]}


def boundary(before: Scored, after: Scored) -> tuple[int, float]:
    """Where `after` takes over from `before`: the first frame nearer `after`'s centre (a frame halfway
    stays with `before`), and the time halfway between their centres."""
    middle = (before.centre_frame + after.centre_frame) / 2
    return math.floor(middle) + 1, (before.centre_s + after.centre_s) / 2


def smooth(windows: Iterable[Scored], size: int) -> Iterator[Scored]:
    """The centred moving average of the windows' probabilities over `size` neighbouring windows (the
    earlier side gets `(size-1)//2`, the later `size//2`; fewer at the ends), in order. `size` 1 is none."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"smoothing takes a window count >= 1, got {size!r}")
    before, after = (size - 1) // 2, size // 2
    seen: deque[Scored] = deque()  # up to `before` done windows, the current one, up to `after` later ones
    current = 0  # position in `seen` of the next window to give

    def averaged(i: int) -> Scored:
        group = list(seen)[max(0, i - before): i + after + 1]
        total: dict[str, float] = {}
        for w in group:
            for name, p in w.probs.items():
                total[name] = total.get(name, 0.0) + p
        probs = {name: p / len(group) for name, p in total.items()}
        ranked = dict(sorted(probs.items(), key=lambda item: -item[1]))
        return replace(seen[i], probs=ranked)

    for w in windows:
        seen.append(w)
        if len(seen) - 1 - current >= after:
            yield averaged(current)
            current += 1
            if current > before:
                seen.popleft()
                current -= 1
    while current < len(seen):
        yield averaged(current)
        current += 1


def segments(windows: Iterable[Scored]) -> Iterator[Segment]:
    """Consecutive windows with the same most probable label, as segments, in order (windows without
    labels are passed over)."""
    run: list[Scored] = []
    start: tuple[int, float] = (0, 0.0)
    previous: Scored | None = None
    for w in windows:
        if w.label is None:
            continue
        if previous is None:
            start = (w.start_frame, w.start_s)
        elif w.label != previous.label:
            cut = boundary(previous, w)
            yield _segment(run, start, cut)
            run, start = [], cut
        run.append(w)
        previous = w
    if run:
        yield _segment(run, start, (run[-1].end_frame, run[-1].end_s))


def _segment(run: list[Scored], start: tuple[int, float], end: tuple[int, float]) -> Segment:
    label = run[0].label
    assert label is not None
    prob = sum(w.probs[label] for w in run) / len(run)
    return Segment(label, start[1], end[1], start[0], end[0], prob, run[0].window, run[-1].window)
