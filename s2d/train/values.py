"""Values of a training config: JSON text parsed with errors naming the source, and each value
checked against its field's type annotation, naming the key.

Types are strict: a boolean is not an integer, 5.9 is not an integer, and a number must be
finite (JSON's `Infinity`/`NaN` and `1e999` parse, but no hyper-parameter means them).
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any, Union

from s2d.io.text import loads_json, read_utf8
from s2d.train.errors import TrainConfigError
from s2d.train.errors import suggest as _suggest


def parse_json(text: str, source: str) -> Any:
    """`text` as JSON; `TrainConfigError` naming `source` when it is not (or nests too deeply)."""
    try:
        return loads_json(text, source, shape="a config is a few levels deep")
    except ValueError as err:
        raise TrainConfigError(str(err)) from None


def read_json_file(path: str, source: str | None = None) -> Any:
    """A JSON file that must be UTF-8 text; errors name the file (and where its text is not UTF-8)."""
    try:
        text = read_utf8(path, what="a config")
    except ValueError as err:
        raise TrainConfigError(str(err) if source is None else str(err).replace(str(path), source, 1)) from None
    return parse_json(text, source or path)


def parse_value(text: str, what: str = "value") -> Any:
    """JSON when it parses (numbers, booleans, null, lists, objects, quoted strings), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
    except RecursionError:
        raise TrainConfigError(f"{what}: JSON nested too deeply to read") from None


def hints(cls: type) -> dict[str, Any]:
    """The field types of a config dataclass."""
    return typing.get_type_hints(cls)


def strip_optional(tp: Any) -> tuple[Any, bool]:
    """(`T`, True) for `T | None`, else (`tp`, False)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def dataclass_of(tp: Any) -> type | None:
    """The dataclass `tp` names (optional or not), or None."""
    tp, _ = strip_optional(tp)
    return tp if dataclasses.is_dataclass(tp) else None


def is_dict_type(tp: Any) -> bool:
    """Whether `tp` is a (possibly optional) dict type."""
    tp, _ = strip_optional(tp)
    return tp is dict or typing.get_origin(tp) is dict


def type_name(tp: Any) -> str:
    """"integer", "number or null", "mapping", ... for messages."""
    tp, optional = strip_optional(tp)
    name = {int: "integer", float: "number", bool: "boolean", str: "string"}.get(tp)
    if name is None:
        name = "mapping" if is_dict_type(tp) else getattr(tp, "__name__", str(tp))
    return f"{name} or null" if optional else name


def _non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """(key, value) of the first infinite or NaN float in `value` (nested lists and mappings too)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]")
        if found is not None:
            return found
    return None


_CHECKS = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    str: lambda v: isinstance(v, str),
}


def coerce(tp: Any, value: Any, path: str) -> Any:
    """`value` checked against the annotation `tp` (ints are accepted where numbers are)."""
    base, optional = strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise TrainConfigError(f"{path} must be a {type_name(tp)}, got null")
    if dataclasses.is_dataclass(base):
        if not isinstance(value, dict):
            raise TrainConfigError(f"{path} must be a mapping, got {type(value).__name__}")
        return build(base, value, path)
    ok = _CHECKS.get(base)
    if ok is None and is_dict_type(base):
        ok = lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v)  # noqa: E731
    if ok is None:  # Any
        ok = lambda v: True  # noqa: E731
    if not ok(value):
        finite = " (a finite one)" if base is float and isinstance(value, float) else ""
        raise TrainConfigError(f"{path} must be a {type_name(tp)}{finite}, got {value!r}")
    bad = _non_finite(value, path)  # inside a mapping: model overrides, dataset arguments, ratios
    if bad is not None:
        raise TrainConfigError(f"{bad[0]} must be a finite number, got {bad[1]!r}")
    return float(value) if base is float else value


def build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    """An instance of the config dataclass `cls` from a (partial) mapping, every value checked."""
    if not isinstance(data, dict):
        raise TrainConfigError(f"{prefix or 'config'} must be a mapping, got {type(data).__name__}")
    fields = hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f" in {prefix}" if prefix else ""
        raise TrainConfigError("; ".join(f"unknown key {k!r}{where}{_suggest(k, fields)}" for k in unknown)
                               + f" (valid: {', '.join(fields)})")
    kwargs = {name: coerce(fields[name], value, f"{prefix}.{name}" if prefix else name)
              for name, value in data.items()}
    return cls(**kwargs)
