"""Situations that raise, for comparing dxtrack's traceback text with Python's own.

Each entry of ``SITUATIONS`` is a name and a function that raises. Lines here are laid out on
purpose (statements spanning several lines, repeated frames, long chains): edit with care.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Situation = tuple[str, Callable[[], object]]
SITUATIONS: list[Situation] = []
_STACK_FRAME = re.compile(r'^\s*File ".*", line -?\w+, in ')
_OTHER_FILE_LINE = re.compile(r'^\s*File "')
_MARKERS = re.compile(r"^\s*[\^~]+\s*$")
_MARGIN = re.compile(r"^(?:[ ]*\|(?: |$))+")


def expected_text(exc: BaseException) -> str:
    """``traceback.format_exception(exc)`` without the ``^~`` marker lines under the stack's
    source lines (a syntax error's own caret, after its ``File "..", line N`` without ``in``,
    stays). Exception groups prefix their lines with margins (``  | ``), looked through."""
    out = []
    in_stack = False
    for line in "".join(traceback.format_exception(exc)).splitlines(keepends=True):
        bare = _MARGIN.sub("", line.rstrip("\n"))
        if _STACK_FRAME.match(bare):
            in_stack = True
        elif _OTHER_FILE_LINE.match(bare):
            in_stack = False
        elif _MARKERS.match(bare):
            if in_stack:
                continue
        elif not bare.startswith("    "):
            in_stack = False
        out.append(line)
    return "".join(out)


def situation(name: str) -> Callable[[Callable[[], object]], Callable[[], object]]:
    def add(function: Callable[[], object]) -> Callable[[], object]:
        SITUATIONS.append((name, function))
        return function

    return add


# ---- plain raises, frames of every kind ------------------------------------------------------


def _down(n: int) -> None:
    if n == 0:
        raise ValueError(f"at the bottom of {n}")
    _down(n - 1)


for _depth in (0, 1, 2, 3, 4, 5, 9):
    SITUATIONS.append((f"depth {_depth}", functools.partial(_down, _depth)))


class Shop:
    """Methods of every kind."""

    def method(self) -> None:
        raise LookupError("method")

    @classmethod
    def klass(cls) -> None:
        raise LookupError("classmethod")

    @staticmethod
    def static() -> None:
        raise LookupError("staticmethod")

    @property
    def prop(self) -> int:
        raise AttributeError("property failed")  # an AttributeError raised by hand

    def __add__(self, other: object) -> Shop:
        raise TypeError("cannot add")

    def __getitem__(self, key: object) -> None:
        raise KeyError(key)

    def __enter__(self) -> Shop:
        return self

    def __exit__(self, *exc: object) -> None:
        raise RuntimeError("exit failed")

    class Inner(Exception):
        """A nested exception class: its qualname has a dot."""


situation("method")(lambda: Shop().method())
situation("classmethod")(lambda: Shop.klass())
situation("staticmethod")(lambda: Shop.static())
situation("property")(lambda: Shop().prop)
situation("operator")(lambda: Shop() + 1)
situation("getitem tuple key")(lambda: Shop()[("a", 1)])


@situation("__exit__ raising")
def _exit_raising() -> None:
    with Shop():
        pass


@situation("nested exception class")
def _nested_class() -> None:
    raise Shop.Inner("inner")


@situation("closure")
def _closure() -> None:
    def inner(x: int) -> float:
        return 1 / x

    inner(0)


def _decorator(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return wrapper


@_decorator
def _decorated() -> None:
    raise PermissionError(13, "denied", "/etc/shadow")


situation("decorated, OSError with errno and filename")(_decorated)
situation("list comprehension")(lambda: [1 / x for x in (1, 0)])
situation("dict comprehension")(lambda: {x: 1 / x for x in (0,)})
situation("generator expression")(lambda: sum(1 / x for x in (1, 0)))
situation("lambda in map")(lambda: list(map(lambda x: int(x), ["1", "x"])))


def _gen() -> Iterator[int]:
    yield 1
    raise StopAsyncIteration("gen")


situation("generator started")(lambda: list(_gen()))


@situation("generator never started, thrown into")
def _never_started() -> None:
    gen = _gen()
    gen.throw(ValueError("thrown before the first next()"))


@situation("coroutine")
def _coroutine() -> None:
    async def fetch() -> None:
        await asyncio.sleep(0)
        raise ConnectionError("upstream")

    asyncio.run(fetch())


@situation("async generator")
def _async_generator() -> None:
    async def rows() -> Any:
        yield 1
        raise BufferError("async gen")

    async def main() -> None:
        async for _ in rows():
            pass

    asyncio.run(main())


situation("__init__ raising")(lambda: Path(3.5))  # type: ignore[arg-type]
situation("builtin raising")(lambda: int("twelve"))
situation("stdlib frames")(lambda: __import__("json").loads("{bad json"))

# ---- multi-line statements -------------------------------------------------------------------


@situation("call spanning lines")
def _spanning_call() -> None:
    values = {"a": 1}
    print(
        "value",
        values["missing"],
        sep="",
    )


@situation("expression spanning lines")
def _spanning_expression() -> float:
    return 1 + 2 / 0


# ---- messages --------------------------------------------------------------------------------


class _BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class _NotStr(Exception):
    def __str__(self) -> str:
        return 42  # type: ignore[return-value]


class _OtherModule(Exception):
    pass


_OtherModule.__module__ = "shop.errors"


class _NoModule(Exception):
    pass


_NoModule.__module__ = None  # type: ignore[assignment]


def _raise(exc: BaseException) -> Callable[[], None]:
    def raising() -> None:
        raise exc

    return raising


for _name, _exc in [
    ("empty message", ValueError()),
    ("empty string message", ValueError("")),
    ("multi-line message", ValueError("first line\nsecond line\n  indented")),
    ("unicode message", ValueError("prix: 12 € — naïve ✓ 日本")),
    ("long message", ValueError("x" * 10_000)),
    ("str raising", _BadStr()),
    ("str returning an int", _NotStr()),
    ("KeyError of a tuple", KeyError(("shop", 3))),
    ("args of several values", ValueError("a", 1, None)),
    ("module set on the class", _OtherModule("custom module")),
    ("module None", _NoModule("no module")),
    ("exception instance of a builtin subclass", FileNotFoundError(2, "No such file", "x.csv")),
    ("SystemExit-like but Exception", StopIteration(5)),
    ("URL with credentials", ConnectionError("https://example.com/a b")),
]:
    SITUATIONS.append((_name, _raise(_exc)))

# ---- chains ----------------------------------------------------------------------------------


@situation("raise from")
def _from() -> None:
    try:
        _down(2)
    except ValueError as exc:
        raise KeyError("wrapped") from exc


@situation("raise from None")
def _from_none() -> None:
    try:
        _down(1)
    except ValueError:
        raise KeyError("hidden cause") from None


@situation("implicit context")
def _context() -> None:
    try:
        {}["missing"]
    except KeyError:
        _down(0)


@situation("context in finally")
def _finally() -> None:
    try:
        raise OSError("first")
    finally:
        raise RuntimeError("in finally")


@situation("bare raise")
def _bare() -> None:
    try:
        _down(1)
    except ValueError:
        raise


@situation("raise e again (the traceback grows)")
def _again() -> None:
    try:
        _down(1)
    except ValueError as exc:
        error = exc
    raise error


@situation("cause and context both")
def _both() -> None:
    try:
        try:
            raise OSError("context")
        except OSError:
            raise TypeError("cause") from ValueError("explicit")
    except TypeError:
        raise


def _long_chain(n: int) -> None:
    if n == 0:
        raise ValueError("chain 0")
    try:
        _long_chain(n - 1)
    except ValueError as exc:
        raise ValueError(f"chain {n}") from exc


situation("chain of 20")(functools.partial(_long_chain, 19))


@situation("cycle in the chain")
def _cycle() -> None:
    first = ValueError("first")
    second = KeyError("second")
    first.__context__ = second
    second.__context__ = first
    raise first


@situation("suppressed context with a cause")
def _suppressed() -> None:
    exc = ValueError("v")
    exc.__context__ = KeyError("ignored")
    exc.__suppress_context__ = True
    exc.__cause__ = OSError("shown")
    raise exc


# ---- recursion -------------------------------------------------------------------------------


def _forever(n: int) -> int:
    return _forever(n + 1) + 1


@situation("RecursionError")
def _recursion() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        _forever(0)
    finally:
        sys.setrecursionlimit(limit)


def _ping(n: int) -> None:
    if n == 0:
        raise ValueError("ping pong")
    _pong(n - 1)


def _pong(n: int) -> None:
    _ping(n)


situation("mutual recursion")(functools.partial(_ping, 12))


def _repeat_then_other(n: int) -> None:
    if n:
        _repeat_then_other(n - 1)
    else:
        _ping(2)


situation("repeats, then other frames")(functools.partial(_repeat_then_other, 8))
situation("exactly three repeats")(functools.partial(_down, 3))
situation("exactly four repeats")(functools.partial(_down, 4))

# ---- syntax errors ---------------------------------------------------------------------------

for _name, _source in [
    ("SyntaxError: never closed", "x = (1,\n"),
    ("SyntaxError: invalid syntax", "def f(:\n    pass\n"),
    ("SyntaxError: caret range", "print(1 2)\n"),
    ("IndentationError", "def f():\npass\n"),
    ("TabError", "if True:\n\tx = 1\n        y = 2\n"),
    ("SyntaxError: long line", "x = " + "1 + " * 30 + "\n"),
]:
    SITUATIONS.append((_name, functools.partial(compile, _source, "<job>", "exec")))

situation("SyntaxError from eval")(lambda: eval("1 +"))
situation("SyntaxError raised by hand")(_raise(SyntaxError("custom, no position")))
situation("SyntaxError with a position")(
    _raise(SyntaxError("bad", ("rules.txt", 3, 5, "a = = b\n", 3, 6)))
)

# ---- code without a file ---------------------------------------------------------------------


@situation("exec'd code")
def _executed() -> None:
    exec("def f():\n    raise ValueError('in exec')\nf()\n", {})


@situation("file that does not exist")
def _no_file() -> None:
    code = compile("raise ValueError('gone')", "/nonexistent/dir/job.py", "exec")
    exec(code, {})


# ---- notes, groups and suggestions (newer Pythons) -------------------------------------------

if sys.version_info >= (3, 11):  # notes, groups and except*: syntax 3.10 can't read
    from tests import traceback_corpus_groups  # noqa: F401


@situation("NameError of a local")
def _name_error() -> None:
    products = 3
    print(prodcts)  # type: ignore[name-defined] # noqa: F821
    del products


situation("NameError of a module never imported")(lambda: print(textwrap, ast))  # type: ignore[name-defined] # noqa: F821
situation("AttributeError of an object")(lambda: Shop().methd())  # type: ignore[attr-defined]
situation("AttributeError of a module")(lambda: os.pth)  # type: ignore[attr-defined]
situation("AttributeError of None")(lambda: None.strip())  # type: ignore[union-attr]


@situation("ImportError of a name")
def _import_error() -> None:
    from json import loadz  # type: ignore[attr-defined] # noqa: F401


situation("ModuleNotFoundError")(lambda: __import__("no_such_module_dxtrack"))


@situation("contextlib.suppress lets others through")
def _suppress() -> None:
    with contextlib.suppress(KeyError):
        _down(1)
