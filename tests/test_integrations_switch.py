"""The integrations chain to what was there, come off cleanly, and never raise into the host."""

from __future__ import annotations

import asyncio.base_events
import concurrent.futures
import logging
import sys
import threading
from multiprocessing import process
from typing import Any

import pytest

import dxtrack
from dxtrack import capture
from tests.test_records import errors


def hooked() -> dict[str, Any]:
    """What the integrations replace, as it is now."""
    return {
        "sys.excepthook": sys.excepthook,
        "threading.excepthook": threading.excepthook,
        "callHandlers": logging.Logger.callHandlers,
        "call_exception_handler": asyncio.base_events.BaseEventLoop.call_exception_handler,
        "_bootstrap": process.BaseProcess._bootstrap,  # type: ignore[attr-defined]
        "set_exception": concurrent.futures.Future.set_exception,
        "result": concurrent.futures.Future.result,
    }


def test_shutdown_restores_everything_the_integrations_replaced() -> None:
    """configure() replaces each hook; shutdown() puts the previous one back."""
    before = hooked()
    dxtrack.configure(context="c", stage="test")
    during = hooked()
    assert all(during[name] is not before[name] for name in before)
    dxtrack.shutdown()
    assert hooked() == before


def test_switching_an_option_off_by_reconfiguring_removes_its_hooks() -> None:
    """capture_unhandled=False leaves the hooks Python's; capture_log_level=None leaves
    logging as it was; reconfiguring with the same options keeps the same hooks."""
    before = hooked()
    dxtrack.configure(context="c", stage="test")
    first = hooked()
    dxtrack.configure(context="c", stage="test", run_id="again")
    assert hooked() == first
    dxtrack.configure(context="c", stage="test", capture_unhandled=False)
    now = hooked()
    assert now["sys.excepthook"] is before["sys.excepthook"]
    assert now["threading.excepthook"] is before["threading.excepthook"]
    assert now["_bootstrap"] is before["_bootstrap"]
    assert now["set_exception"] is before["set_exception"]
    assert now["callHandlers"] is not before["callHandlers"]
    dxtrack.configure(context="c", stage="test", capture_log_level=None)
    assert hooked()["callHandlers"] is before["callHandlers"]


def test_a_hook_installed_after_dxtracks_is_left_in_place_and_still_chains() -> None:
    """A library that replaced sys.excepthook after configure() keeps its hook through
    shutdown(); dxtrack's, which it calls, then only passes the call on."""
    seen: list[str] = []
    dxtrack.configure(context="c", stage="test")
    ours = sys.excepthook

    def theirs(*args: Any) -> None:
        seen.append("theirs")
        ours(*args)

    original = sys.__excepthook__
    sys.excepthook = theirs
    try:
        dxtrack.shutdown()
        assert sys.excepthook is theirs
        dxtrack.configure(context="c", stage="test")
        try:
            raise OSError("reported once")
        except OSError:
            sys.excepthook(*sys.exc_info())  # as Python would call it
        assert seen == ["theirs"]
        assert [e["exception"]["mechanism"] for e in errors()] == ["excepthook"]
    finally:
        dxtrack.shutdown()
        sys.excepthook = original


def test_a_failure_inside_a_hook_never_reaches_the_host(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """When recording fails, the previous hook still runs and nothing is raised."""
    dxtrack.configure(context="c", stage="test")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError("no room to record")

    monkeypatch.setattr(capture, "exception_event", broken)
    monkeypatch.setattr(capture, "message_event", broken)
    try:
        raise ValueError("still printed")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    logging.getLogger("host").error("still logged")
    assert "ValueError: still printed" in capsys.readouterr().err
