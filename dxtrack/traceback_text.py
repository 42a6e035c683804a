"""The printable text of a traceback, made by the standard library's own ``traceback`` module.

The text is what ``traceback.format_exception`` prints on the running Python, less the marker
lines (``^^^^`` and ``~~~~``) under the source lines of the stack. ``StackSummary`` is fed with
the frames captured on the caller's thread (code object and instruction offset), placed exactly
as ``traceback`` places them, so each Python version's layout (repeated lines folded, statements
spanning several lines, source found through a module's loader) follows by itself.
"""

from __future__ import annotations

import itertools
import re
import sys
import traceback
from collections.abc import Iterable, Iterator
from types import CodeType, SimpleNamespace
from typing import Any, Final

_MARKERS: Final = re.compile(r"^[ \t]*[\^~]+[ \t]*$")


class Stack(traceback.StackSummary):
    """A ``StackSummary`` that writes each frame without its marker lines."""

    def format_frame_summary(self, frame_summary: Any, **kwargs: Any) -> str:
        """The frame's lines as ``traceback`` writes them, less the ``^~`` marker lines."""
        text: str = super().format_frame_summary(frame_summary, **kwargs)  # type: ignore[misc]
        if "^" not in text and "~" not in text:
            return text
        lines = text.splitlines(keepends=True)
        return "".join(line for line in lines if not _MARKERS.match(line.rstrip("\n")))


def _line_number(code: CodeType, lasti: int) -> int | None:
    """The line ``tb_lineno`` gives for the instruction at byte offset ``lasti``."""
    if lasti < 0:  # a generator that never started
        return code.co_firstlineno
    for start, end, line in code.co_lines():
        if start <= lasti < end:
            return line
    return None


def _positions(code: CodeType, lasti: int) -> tuple[Any, Any, Any, Any]:
    """(line, end line, column, end column), as ``traceback._walk_tb_with_full_positions``
    finds them."""
    found: tuple[Any, Any, Any, Any] = (None, None, None, None)
    if lasti >= 0:
        positions = code.co_positions()  # type: ignore[attr-defined]
        found = next(itertools.islice(positions, lasti // 2, None), found)
    if found[0] is None:
        return (_line_number(code, lasti), *found[1:])
    return found


_modules_by_file: dict[str, dict[str, Any]] = {}
_modules_seen = 0


def module_globals(filename: str) -> dict[str, Any]:
    """The globals of the module loaded from ``filename`` ({} if none): ``linecache`` finds the
    source of a module imported from a zip, or by any loader, through them."""
    global _modules_seen
    found = _modules_by_file.get(filename)
    if found is None and len(sys.modules) != _modules_seen:
        _modules_seen = len(sys.modules)
        for module in list(sys.modules.values()):
            try:  # a lazy module or an odd object in sys.modules may refuse
                path = getattr(module, "__file__", None)
                if isinstance(path, str):
                    _modules_by_file.setdefault(path, vars(module))
            except Exception:
                continue
        found = _modules_by_file.get(filename)
    return found if found is not None else {}


def stack(pairs: Iterable[tuple[CodeType, int]]) -> Stack:
    """The ``Stack`` of captured frames, outermost first; source lines are read when it is
    formatted (after ``linecache.checkcache``, as ``traceback`` does)."""
    frames = [
        (SimpleNamespace(f_code=code, f_globals=module_globals(code.co_filename)), lasti)
        for code, lasti in pairs
    ]
    extended = getattr(Stack, "_extract_from_extended_frame_gen", None)
    if extended is not None and sys.version_info >= (3, 11):
        found: Stack = extended(
            ((frame, _positions(frame.f_code, lasti)) for frame, lasti in frames),
            lookup_lines=False,
        )
        return found
    taken: Any = Stack.extract(
        ((frame, _line_number(frame.f_code, lasti)) for frame, lasti in frames),  # type: ignore[misc]
        lookup_lines=False,
    )
    return taken  # type: ignore[no-any-return]


def stack_text(pairs: Iterable[tuple[CodeType, int]]) -> str:
    """``Traceback (most recent call last):`` and the frames, or "" without frames."""
    found = stack(pairs)
    if not found:
        return ""
    return "Traceback (most recent call last):\n" + "".join(found.format())


def header(exc_type: type[BaseException]) -> str:
    """The exception's name as the last line writes it (no module for builtins and
    ``__main__``)."""
    name = getattr(exc_type, "__qualname__", None) or repr(exc_type)
    module = getattr(exc_type, "__module__", None)
    if module not in ("__main__", "builtins"):
        if not isinstance(module, str):
            module = "<unknown>"
        name = f"{module}.{name}"
    return name


def last_line(exc_type: type[BaseException], text: str) -> str:
    """``Name: text`` (or ``Name``), as ``traceback`` ends an exception."""
    name = header(exc_type)
    return f"{name}: {text}\n" if text else f"{name}\n"


def snapshot(exc: BaseException) -> traceback.TracebackException:
    """What ``traceback`` needs to print ``exc`` later (chain, groups, notes, a syntax error's
    place, suggestions): strings and frame summaries, no frame, traceback or locals."""
    taken = traceback.TracebackException(type(exc), exc, exc.__traceback__, lookup_lines=False)
    _markerless(taken)
    return taken


def _markerless(top: traceback.TracebackException) -> None:
    """Give every stack of ``top`` (chained and grouped exceptions too) the ``Stack`` class."""
    seen: set[int] = set()
    pending = [top]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.stack.__class__ = Stack
        pending.extend(_linked(current))


def _linked(current: traceback.TracebackException) -> Iterator[traceback.TracebackException]:
    for linked in (current.__cause__, current.__context__):
        if linked is not None:
            yield linked
    yield from getattr(current, "exceptions", None) or ()


def snapshot_text(taken: traceback.TracebackException) -> str:
    """The printable text of a snapshot."""
    return "".join(taken.format())
