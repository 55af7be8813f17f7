"""Reading the text files users hand us (lists, annotations, configs, class names): UTF-8 and JSON
errors become a `ValueError` that names the file and where it went wrong, never a codec traceback
or a `RecursionError` from a deeply nested document."""
from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["read_utf8", "loads_json", "read_json", "shown"]


def read_utf8(path: str | os.PathLike, *, what: str = "the file") -> str:
    """The text of `path`, which must be UTF-8: otherwise a `ValueError` naming the file, the line and
    the byte (a Latin-1 or UTF-16 export, say). `what` says what must be UTF-8 in the message."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ValueError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at line {line}, byte offset "
                         f"{err.start}); {what} must be UTF-8: convert it (e.g. iconv -t UTF-8)") from None


def loads_json(text: str, source: str | os.PathLike, *, shape: str = "") -> Any:
    """`text` as JSON; a `ValueError` naming `source` when it is not valid or nests too deeply to read
    (`shape`, e.g. "a config is a few levels deep", says what was expected)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{source}: not valid JSON ({err})") from None
    except RecursionError:
        raise ValueError(f"{source}: JSON nested too deeply to read{f' ({shape})' if shape else ''}") from None


def read_json(path: str | os.PathLike, *, what: str = "the file", shape: str = "") -> Any:
    """`read_utf8` then `loads_json`."""
    return loads_json(read_utf8(path, what=what), path, shape=shape)


def shown(path: str | os.PathLike) -> str:
    """`path` for a terminal line: undecodable bytes and line breaks as escapes (printing the raw
    name would fail, or split the line)."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return text.replace("\n", "\\n").replace("\r", "\\r")
