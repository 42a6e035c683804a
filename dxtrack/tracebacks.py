"""Exceptions captured cheaply on the caller's thread, formatted later on the shipper.

``capture`` keeps each frame's code object and line number, and the text of the exception and
of any chained cause or context. It keeps no traceback, frame or exception object: those would
hold the frames' locals alive, and thousands of them waiting for the shipper would make the
garbage collector walk the host's whole heap. The result holds only strings, numbers, code objects
and tuples of them, which the collector stops tracking.

``format`` writes the classic ``Traceback (most recent call last):`` text from that, reading
source lines with ``linecache`` on the shipper's thread.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable
from types import CodeType, TracebackType
from typing import Any

from xxhash import xxh3_64_hexdigest

from dxtrack.environment_variables import DXTRACK_PURE_PYTHON

Frames = tuple[CodeType | int, ...]
"""Flat: code, offset, code, offset... for each frame, outermost first. The offset is that of
the frame's last instruction: ``tb_lasti`` is cheap to read, where ``tb_lineno`` has to search
the line table (``line_number`` does that, on the shipper). One flat tuple, not a tuple per
frame, costs the garbage collector one allocation instead of a dozen."""
Block = tuple[str, str, Frames, str]
"""A chained exception: type name, text, frames, and how it leads to the next one."""


class Chained:
    """The trace of an exception with a cause or context: its own frames, and the chain."""

    __slots__ = ("chain", "frames")

    def __init__(self, frames: Frames, chain: tuple[Block, ...]) -> None:
        self.frames = frames
        self.chain = chain


Trace = Frames | Chained
"""Just the frames (the common case, which holds nothing the garbage collector tracks), or
``Chained`` when the exception has a cause or context."""

MAX_CHAIN = 8
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def type_name(exc_type: type[BaseException]) -> str:
    """``ValueError`` for builtins, ``package.module.Name`` for everything else."""
    module = getattr(exc_type, "__module__", None)
    name = getattr(exc_type, "__qualname__", None) or repr(exc_type)
    return name if module in (None, "builtins", "__builtin__") else f"{module}.{name}"


def safe_str(value: object) -> str:
    """``str(value)``, or a note saying why not: a user's ``__str__`` may raise anything."""
    try:
        return str(value)
    except Exception as exc:
        return f"<str() failed: {type(exc).__name__}>"


def frames(tb: TracebackType | None) -> Frames:
    """The code and last instruction offset of each frame of ``tb``, flat, outermost first."""
    out: list[CodeType | int] = []
    append = out.append
    while tb is not None:
        append(tb.tb_frame.f_code)
        append(tb.tb_lasti)
        tb = tb.tb_next
    return tuple(out)


def pairs(frame_list: Frames) -> list[tuple[CodeType, int]]:
    """(code, offset) for each frame of a flat ``Frames``."""
    return list(zip(frame_list[::2], frame_list[1::2], strict=True))  # type: ignore[arg-type]


def line_number(code: CodeType, lasti: int) -> int | None:
    """The source line of the instruction at byte offset ``lasti`` (what ``tb_lineno`` gives)."""
    for start, end, line in code.co_lines():
        if start <= lasti < end:
            return line
    return None


def capture(exc: BaseException, tb: TracebackType | None) -> Trace | None:
    """What the shipper needs to format ``exc``'s traceback later; None if it was never raised."""
    if tb is None:
        return None
    if exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__):
        return frames(tb)
    return Chained(frames(tb), chain(exc))


def chain(exc: BaseException) -> tuple[Block, ...]:
    """The causes and contexts that led to ``exc``, oldest first."""
    blocks: list[Block] = []
    seen = {id(exc)}
    current = exc
    while len(blocks) < MAX_CHAIN:
        if current.__cause__ is not None:
            nxt, link = current.__cause__, "cause"
        elif current.__context__ is not None and not current.__suppress_context__:
            nxt, link = current.__context__, "context"
        else:
            break
        if id(nxt) in seen:
            break
        seen.add(id(nxt))
        blocks.append((type_name(type(nxt)), safe_str(nxt), frames(nxt.__traceback__), link))
        current = nxt
    blocks.reverse()
    return tuple(blocks)


MAX_CACHED = 2_048
"""Frame lists whose text is kept: the same error raised in a loop is formatted once."""
_texts: dict[int, tuple[Frames, str, dict[str, str]]] = {}


def _frames_key(frames: tuple[Any, ...]) -> int:
    """A hash of the identity of each code object and of each offset."""
    return hash((tuple(map(id, frames[::2])), frames[1::2]))


def _same_frames(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """The same code objects (by identity) at the same offsets."""
    if len(a) != len(b):
        return False
    return all(map(operator.is_, a[::2], b[::2])) and a[1::2] == b[1::2]


try:  # the compiled forms, when they were built (the same results, faster)
    from dxtrack import _build as _compiled
except ImportError:  # pragma: no cover
    _compiled = None  # type: ignore[assignment]
frames_key: Callable[[tuple[Any, ...]], int] = _frames_key
same_frames: Callable[[tuple[Any, ...], tuple[Any, ...]], bool] = _same_frames
if _compiled is not None and os.environ.get(DXTRACK_PURE_PYTHON, "") in ("", "0"):
    frames_key, same_frames = _compiled.frames_key, _compiled.same_frames


def _cached(frame_list: Frames) -> tuple[Frames, str, dict[str, str]]:
    """The frames' printed text (from the ``Traceback`` header to the last frame), and the
    fingerprints of the errors seen with them by type name. The entry holds the code objects,
    so that no identity in its key is reused while it is kept."""
    key = frames_key(frame_list)
    entry = _texts.get(key)
    if entry is None or not same_frames(entry[0], frame_list):
        if len(_texts) >= MAX_CACHED:
            _texts.clear()
        entry = (frame_list, _frames_text(frame_list), {})
        _texts[key] = entry
    return entry


def _frames_text(frame_list: Frames) -> str:
    import linecache

    if not frame_list:
        return ""
    lines = ["Traceback (most recent call last):\n"]
    for code, lasti in pairs(frame_list):
        lineno = line_number(code, lasti)
        lines.append(f'  File "{code.co_filename}", line {lineno}, in {code.co_name}\n')
        source = linecache.getline(code.co_filename, lineno).strip() if lineno else ""
        if source:
            lines.append(f"    {source}\n")
    return "".join(lines)


def _block(name: str, text: str, frame_list: Frames) -> str:
    last = f"{name}: {text}\n" if text else f"{name}\n"
    return _cached(frame_list)[1] + last


def describe(name: str, text: str, trace: Trace) -> tuple[str, str]:
    """The printable traceback, chained causes first, as Python prints it (without carets),
    and the fingerprint."""
    own, links = (trace.frames, trace.chain) if isinstance(trace, Chained) else (trace, ())
    parts = []
    for chained_name, chained_text, chained_frames, link in links:
        parts.append(_block(chained_name, chained_text, chained_frames))
        parts.append(_CAUSE if link == "cause" else _CONTEXT)
    entry = _cached(own)
    parts.append(entry[1])
    parts.append(f"{name}: {text}\n" if text else f"{name}\n")
    return "".join(parts), _known_fingerprint(name, entry)


def format(name: str, text: str, trace: Trace) -> str:
    """The printable traceback, chained causes first, as Python prints it (without carets)."""
    return describe(name, text, trace)[0]


def fingerprint(name: str, trace: Trace | None) -> str:
    """Groups the same error across runs: its type and the file and function of each frame.

    Line numbers are left out, so that an edit elsewhere in a file does not split a group.
    """
    own = trace.frames if isinstance(trace, Chained) else trace or ()
    return _known_fingerprint(name, _cached(own))


def _known_fingerprint(name: str, entry: tuple[Frames, str, dict[str, str]]) -> str:
    """The fingerprint of ``name`` with the frames of a cache entry, made once."""
    frame_list, _, fingerprints = entry
    found = fingerprints.get(name)
    if found is None:
        found = fingerprints[name] = _fingerprint(name, frame_list)
    return found


def _fingerprint(name: str, frame_list: Frames) -> str:
    parts = [name]
    parts.extend(f"{code.co_filename}:{code.co_name}" for code, _ in pairs(frame_list))
    return xxh3_64_hexdigest("\n".join(parts).encode("utf-8", "replace"))
