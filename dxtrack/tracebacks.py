"""Exceptions captured cheaply on the caller's thread, formatted later on the shipper.

``capture`` keeps each frame's code object and instruction offset, flat, and the exception's
text: no traceback, frame or exception object, which would hold the frames' locals alive, and
thousands of them waiting for the shipper would make the garbage collector walk the host's
whole heap. An exception that needs more to be printed as Python prints it (a cause or context,
notes, an exception group, a syntax error's place, a name suggestion) is taken as a
``traceback.TracebackException`` instead (``Snapshot``), which holds strings and frame
summaries only.

``describe`` writes the printable text with the standard library (``traceback_text``), and
keeps the text of each distinct frame list: the same error raised in a loop is formatted once.
"""

from __future__ import annotations

import linecache
import operator
import os
import sys
import traceback
from collections.abc import Callable
from types import CodeType, TracebackType
from typing import Any

from xxhash import xxh3_64_hexdigest

from dxtrack import traceback_text
from dxtrack.environment_variables import DXTRACK_PURE_PYTHON
from dxtrack.interrupts import keep_or_raise

Frames = tuple[CodeType | int, ...]
"""Flat: code, offset, code, offset... for each frame, outermost first. The offset is that of
the frame's last instruction: ``tb_lasti`` is cheap to read, where ``tb_lineno`` has to search
the line table (``traceback_text`` does that, on the shipper). One flat tuple, not a tuple per
frame, costs the garbage collector one allocation instead of a dozen."""


class Snapshot:
    """The trace of an exception that ``traceback`` needs more than frames to print: its own
    frames (for the fingerprint) and what ``traceback.TracebackException`` took of it."""

    __slots__ = ("frames", "taken")

    def __init__(self, frames: Frames, taken: traceback.TracebackException) -> None:
        self.frames = frames
        self.taken = taken


Trace = Frames | Snapshot
"""Just the frames (the common case, which holds nothing the garbage collector tracks), or
``Snapshot``."""

_NAMED = (NameError, AttributeError, ImportError)
"""Exceptions whose last line ``traceback`` may end with a suggestion (``Did you mean``), which
it computes from the frame: taken on the caller's thread when it does."""
_SPECIAL: tuple[type[BaseException], ...] = (SyntaxError,)
if sys.version_info >= (3, 11):
    import builtins

    _SPECIAL += (builtins.BaseExceptionGroup,)


def _suggests_names() -> bool:
    """Whether ``traceback`` writes name suggestions: from 3.12, or when a backport (the
    ``exceptiongroup`` package on 3.10) replaced its ``TracebackException``."""
    if sys.version_info >= (3, 12):
        return True
    return getattr(traceback.TracebackException.__init__, "__module__", "") != "traceback"


def _a_group(exc: BaseException) -> bool:
    """An exception group: the builtin one, or the ``exceptiongroup`` backport's on 3.10."""
    if isinstance(exc, _SPECIAL):
        return True
    return sys.version_info < (3, 11) and any(
        cls.__name__ == "BaseExceptionGroup" for cls in type(exc).__mro__
    )


def type_name(exc_type: type[BaseException]) -> str:
    """``ValueError`` for builtins, ``package.module.Name`` for everything else."""
    module = getattr(exc_type, "__module__", None)
    name = getattr(exc_type, "__qualname__", None) or repr(exc_type)
    return name if module in (None, "builtins", "__builtin__") else f"{module}.{name}"


def safe_str(value: object) -> str:
    """``str(value)``, or a note saying why not: a user's ``__str__`` may raise anything."""
    try:
        return str(value)
    except BaseException as exc:  # a Ctrl-C too
        keep_or_raise(exc)  # a Ctrl-C goes on up (see ``interrupts``)
        return f"<str() failed: {type(exc).__name__}>"


def exception_text(exc: BaseException) -> str:
    """``str(exc)``, or what ``traceback`` prints when that raises."""
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


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


def plain(exc: BaseException) -> bool:
    """Whether ``exc`` prints as its frames and one last line: no cause or context, no notes,
    not a group, a syntax error, or an exception ``traceback`` suggests a name for."""
    if exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        return False
    if "__notes__" in vars(exc) or _a_group(exc):
        return False
    return not (isinstance(exc, _NAMED) and _suggests_names())


def capture(exc: BaseException, tb: TracebackType | None) -> Trace | None:
    """What the shipper needs to format ``exc``'s traceback later; None if it was never raised."""
    if tb is None:
        return None
    if plain(exc):
        return frames(tb)
    try:
        return Snapshot(frames(tb), traceback_text.snapshot(exc))
    except Exception:  # an exception traceback itself can't take: its frames at least
        return frames(tb)


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


_sources: dict[str, tuple[float, int] | None] = {}
"""The files whose lines a kept text shows, with their modification time and size."""
generation = 0
"""Counts the times a source file changed under a kept text (``error_lines`` keeps texts too)."""


def _frames_text(frame_list: Frames) -> str:
    found = pairs(frame_list)
    for code, _ in found:
        if code.co_filename not in _sources:
            _sources[code.co_filename] = _signature(code.co_filename)
    return traceback_text.stack_text(found)


def _signature(filename: str) -> tuple[float, int] | None:
    try:
        status = os.stat(filename)
    except (OSError, ValueError):
        return None
    return status.st_mtime, status.st_size


def recheck_sources() -> None:
    """Forget the texts kept when a file they show changed or went (Python reads it again
    each time it prints a traceback). The builder calls it before each batch of records."""
    global generation
    # a copy: a caller building its own records may add a file meanwhile
    changed = [name for name, seen in list(_sources.items()) if _signature(name) != seen]
    if changed:
        for name in changed:
            _sources.pop(name, None)
            linecache.checkcache(name)
        _texts.clear()
        generation += 1


def describe(exc_type: type[BaseException], text: str, trace: Trace) -> tuple[str, str]:
    """The printable traceback, as ``traceback.format_exception`` prints it (less the ``^~``
    lines under the stack's source lines), and the fingerprint."""
    name = type_name(exc_type)
    if isinstance(trace, Snapshot):
        try:
            return traceback_text.snapshot_text(trace.taken), _fingerprint(name, trace.frames)
        except Exception:  # traceback could not print it: the frames and last line at least
            trace = trace.frames
    entry = _cached(trace)
    return entry[1] + traceback_text.last_line(exc_type, text), _known_fingerprint(name, entry)


def format(exc_type: type[BaseException], text: str, trace: Trace) -> str:
    """The printable traceback (``describe`` without the fingerprint)."""
    return describe(exc_type, text, trace)[0]


def fingerprint(name: str, trace: Trace | None) -> str:
    """Groups the same error across runs: its type and the file and function of each frame.

    Line numbers are left out, so that an edit elsewhere in a file does not split a group.
    """
    own = trace.frames if isinstance(trace, Snapshot) else trace or ()
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
