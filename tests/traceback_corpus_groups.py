"""Situations of Python 3.11 and later for ``traceback_corpus``: notes, exception groups,
``except*`` and asyncio's ``TaskGroup``."""

from __future__ import annotations

import asyncio
import functools

from tests.traceback_corpus import _BadStr, _down, _from, situation


@situation("one note")
def _note() -> None:
    exc = ValueError("with a note")
    exc.add_note("shop: alpha")
    raise exc


@situation("several notes, one multi-line")
def _notes() -> None:
    exc = ValueError("with notes")
    exc.add_note("first")
    exc.add_note("second\nspans lines")
    raise exc


@situation("notes that are not strings")
def _odd_notes() -> None:
    exc = ValueError("odd notes")
    exc.__notes__ = ["fine", 42, _BadStr()]
    raise exc


@situation("notes that are not a list")
def _notes_not_list() -> None:
    exc = ValueError("odd notes")
    exc.__notes__ = "a string"
    raise exc


@situation("note on a cause")
def _note_on_cause() -> None:
    try:
        exc = KeyError("cause")
        exc.add_note("on the cause")
        raise exc
    except KeyError as cause:
        raise ValueError("outer") from cause


def _group(width: int) -> None:
    errors: list[Exception] = []
    for i in range(width):
        try:
            _down(i % 3)
        except ValueError as exc:
            errors.append(exc)
    raise ExceptionGroup(f"{width} failures", errors)


situation("exception group of 2")(functools.partial(_group, 2))
situation("exception group of 20 (wider than 15)")(functools.partial(_group, 20))


@situation("nested exception groups")
def _nested_groups() -> None:
    try:
        _group(2)
    except ExceptionGroup as inner:
        raise ExceptionGroup("outer", [inner, KeyError("alone")]) from None


@situation("except* re-raising part")
def _except_star() -> None:
    try:
        raise ExceptionGroup("mixed", [ValueError(1), TypeError(2)])
    except* ValueError:
        pass


@situation("asyncio TaskGroup")
def _task_group() -> None:
    async def fail(n: int) -> None:
        await asyncio.sleep(0)
        raise ValueError(f"task {n}")

    async def main() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(fail(1))
            group.create_task(fail(2))

    asyncio.run(main())


@situation("group with a note and a chained member")
def _group_note() -> None:
    try:
        _from()
    except KeyError as member:
        group = ExceptionGroup("noted", [member])
        group.add_note("the group's note")
        raise group from None
