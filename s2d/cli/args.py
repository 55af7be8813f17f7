"""argparse types shared by the commands: each turns a bad value into a usage error (exit 2) that
names the option and what is allowed."""
from __future__ import annotations

import argparse
import math
from typing import Callable

__all__ = ["int_at_least", "int_in", "positive_int", "non_negative_int", "positive_seconds", "seed"]


def int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= `minimum`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value
    return parse


positive_int, non_negative_int = int_at_least(1), int_at_least(0)


def int_in(minimum: int, maximum: int) -> Callable[[str], int]:
    """argparse type: an integer in [`minimum`, `maximum`]."""
    def parse(text: str) -> int:
        value = int_at_least(minimum)(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"expected an integer in [{minimum}, {maximum}], got {value}")
        return value
    return parse


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0, got {text}")
    return value


def seed(text: str) -> int:
    """argparse type: a data seed in [0, 2**32-1] (what numpy and torch both accept)."""
    value = int_at_least(0)(text)
    if value > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32-1], got {value}")
    return value
