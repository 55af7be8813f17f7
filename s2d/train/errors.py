"""The error type of training configurations and the small checks that raise it."""
from __future__ import annotations

import difflib
from typing import Iterable


class TrainConfigError(ValueError):
    """A training configuration that is malformed or inconsistent; the message names the key."""


def check(cond: bool, msg: str) -> None:
    """Raise `TrainConfigError(msg)` unless `cond`."""
    if not cond:
        raise TrainConfigError(msg)


def suggest(name: str, choices: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest of `choices`, or ""."""
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
