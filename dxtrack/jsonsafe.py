"""Canonical, strict JSON for any metadata a user may pass, without ever raising.

``dumps`` tries orjson first (fast path). When orjson refuses the value (cycles, integers over
64 bits, tuple keys, lone surrogates, ...), the value is first turned into plain JSON types by
``to_jsonable`` and dumped again. Values JSON cannot hold become readable strings.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from dxtrack.interrupts import keep_cause, keep_or_raise

OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
"""orjson options: sorted keys (canonical, so the id is stable), non-string keys, numpy."""
MAX_DEPTH = 32
MAX_REPR = 2_000
TRUNCATED = "...[dxtrack: truncated {} chars]"


def readable(obj: Any) -> Any:
    """orjson's ``default``: a JSON-friendly stand-in for a value orjson can't serialise."""
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _bytes_text(bytes(obj))
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=_sort_key)
    if isinstance(obj, tuple):  # namedtuples and tuple subclasses
        return list(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    return _repr(obj)


def _bytes_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode("ascii")


def _sort_key(obj: Any) -> str:
    return f"{type(obj).__name__}:{_repr(obj)}"


def _repr(obj: Any) -> str:
    try:
        text = repr(obj)
    except BaseException as exc:  # a user's __repr__ may raise anything, a Ctrl-C too
        keep_or_raise(exc)  # a Ctrl-C goes on up (see ``interrupts``)
        text = f"<{type(obj).__qualname__} (repr failed: {type(exc).__name__})>"
    if len(text) > MAX_REPR:
        text = text[:MAX_REPR] + TRUNCATED.format(len(text) - MAX_REPR)
    return text


def _key(key: Any) -> str:
    if isinstance(key, str):
        return _clean_str(key)
    if isinstance(key, (bytes, bytearray)):
        return _bytes_text(bytes(key))
    if key is None or isinstance(key, bool):
        return "null" if key is None else ("true" if key else "false")
    if isinstance(key, (int, float)):
        return repr(key) if isinstance(key, float) else str(key)
    return _repr(key)


def _clean_str(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def to_jsonable(obj: Any, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """Return ``obj`` as plain JSON types (dict, list, str, finite float, int, bool, None)."""
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return obj if -(2**63) <= obj < 2**64 else str(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, str):
        return _clean_str(obj)
    if _depth >= MAX_DEPTH:
        return "<dxtrack: nested too deep>"
    if id(obj) in _seen:
        return "<dxtrack: cycle>"
    seen = _seen | {id(obj)}
    if isinstance(obj, Mapping):
        try:
            items = list(obj.items())
        except Exception:
            return _repr(obj)
        return {_key(k): to_jsonable(v, _depth + 1, seen) for k, v in items}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, _depth + 1, seen) for v in obj]
    try:
        return orjson.loads(orjson.dumps(obj, default=readable, option=OPTIONS))
    except Exception:
        return to_jsonable(readable(obj), _depth + 1, seen)


def dumps(obj: Any) -> bytes:
    """Serialise ``obj`` as canonical strict JSON (sorted keys, no NaN). Never raises."""
    try:
        return orjson.dumps(obj, default=readable, option=OPTIONS)
    except Exception as exc:
        keep_cause(exc)
        return orjson.dumps(to_jsonable(obj), option=OPTIONS)


def shorten(obj: Any, max_chars: int) -> Any:
    """Cut every string in ``obj`` longer than ``max_chars``, with a marker that says so."""
    if isinstance(obj, str):
        if len(obj) > max_chars:
            return obj[:max_chars] + TRUNCATED.format(len(obj) - max_chars)
        return obj
    if isinstance(obj, dict):
        return {k: shorten(v, max_chars) for k, v in obj.items()}
    if isinstance(obj, list):
        return [shorten(v, max_chars) for v in obj]
    return obj


SHORTEN_STEPS = (65_536, 8_192, 1_024, 128)
"""The longest strings kept, in turn, until a record's line fits."""


def shortened_line(record: dict[str, Any], max_bytes: int) -> bytes:
    """The JSON of ``record`` within ``max_bytes``: its strings cut shorter and shorter, and
    at last its metadata replaced by a marker."""
    plain = to_jsonable(record)
    for max_chars in SHORTEN_STEPS:
        body = dumps(shorten(plain, max_chars))
        if len(body) <= max_bytes:
            return body
    plain["metadata"] = {"dxtrack_truncated": True}
    return dumps(shorten(plain, SHORTEN_STEPS[-1]))
