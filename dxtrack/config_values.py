"""Checks and parsers of single settings: an argument, else its environment variable, else a
default. Each raises the ``ValueError`` that names the setting, and never repeats the value of
one that may hold a secret."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


class Unset:
    """The default of an option for which None means something (off)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()


def env_str(name: str) -> str | None:
    """The environment variable ``name``, or None when unset or empty."""
    value = os.environ.get(name)
    return value if value else None


def shown(value: object, secret: bool) -> str:
    """How a bad value appears in an error message: its repr, or only its type if secret."""
    if secret:
        return f"a value of type {type(value).__name__} (not shown: it may be a secret)"
    return repr(value)


def parse_bool(name: str, raw: str) -> bool:
    """A boolean variable: 1/true/yes/on or 0/false/no/off."""
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be a boolean (true/false), got {raw!r}")


def pick(arg: T | None, var: str, parse: Callable[[str, str], T], default: T) -> T:
    """The argument, else the parsed variable, else the default."""
    if arg is not None:
        return arg
    raw = env_str(var)
    return parse(var, raw) if raw is not None else default


def require_str(name: str, value: object, *, optional: bool = False, secret: bool = False) -> None:
    """Raise unless ``value`` is a non-empty string (or None, when optional)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {shown(value, secret)}")
    if not optional and not value:
        raise ValueError(f"{name} must not be empty")


def require_bool(name: str, value: object) -> bool:
    """``value`` if it is True or False."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def parse_number(name: str, raw: str) -> float:
    """A number variable."""
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def number(
    name: str, arg: float | None, variable: str, default: float, *, whole: bool = False
) -> float:
    """A positive number: the argument, else the environment variable, else the default."""
    value = pick(arg, variable, parse_number, default)
    kind = "whole number" if whole else "number"
    try:
        result = float(value)
    except Exception:
        raise ValueError(f"{name} must be a positive {kind}, got {value!r}") from None
    if isinstance(value, bool) or not result > 0 or (whole and not result.is_integer()):
        raise ValueError(f"{name} must be a positive {kind}, got {value!r}")
    return result


def rate(name: str, arg: float | None, variable: str) -> float:
    """A sampling rate from 0 to 1 (default 1: every record)."""
    value = pick(arg, variable, parse_number, 1.0)
    try:
        result = float(value)
    except Exception:
        result = float("nan")
    if isinstance(value, bool) or not 0.0 <= result <= 1.0:
        raise ValueError(f"{name} must be a number from 0 to 1, got {value!r}")
    return result


def limit(name: str, value: object) -> int | None:
    """A whole number of records, or None (also 0) for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number (0 or None: no limit), got {value!r}")
    return value or None


def parse_limit(name: str, raw: str) -> int | None:
    """A limit variable: a whole number, or ``0``, ``none`` or ``off`` for no limit."""
    text = raw.strip().lower()
    if text in ("none", "off"):
        return None
    if not text.isdigit():
        raise ValueError(f"{name} must be a whole number, or off, got {raw!r}")
    return int(text) or None


def parse_metadata(name: str, raw: str) -> dict[str, Any]:
    """A JSON object variable (its text is never repeated: it may hold secrets)."""
    import json

    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        detail = f"{exc.msg} at character {exc.pos}"
        raise ValueError(f"{name} must be a JSON object: {detail}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{name} must be a JSON object, got a JSON {type(parsed).__name__}")
    return parsed


def string_list(name: str, value: object) -> tuple[str, ...]:
    """A list of strings (a comma-separated list in an environment variable)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, Iterable) and not isinstance(value, bytes | dict):
        items = tuple(value)
        if all(isinstance(item, str) and item for item in items):
            return items
    raise ValueError(f"{name} must be a list of non-empty strings, got {value!r}")


def log_level(name: str, value: object) -> int | None:
    """A logging level from a name (``"ERROR"``) or a number; None (or ``"none"``/``"off"``
    in an environment variable) for off."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("none", "off"):
            return None
        if text.isdigit():
            value = int(text)
        else:
            found = logging.getLevelName(text.upper())
            if not isinstance(found, int):
                raise ValueError(
                    f"{name} must be a logging level name (ERROR, WARNING...), a number or "
                    f"None; got {value!r}"
                )
            return found
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"{name} must be a logging level name, a positive number or None; got {value!r}"
        )
    return value


def parse_hostport(name: str, value: str) -> str:
    """``host:port`` with a port from 1 to 65535."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{name} must look like 'host:port', got {value!r}")
    return value
