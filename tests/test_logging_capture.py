"""Log records at or above capture_log_level become error records."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import dxtrack
from tests.capture_programs import run_program
from tests.test_records import errors


def test_logger_error_without_an_exception_is_recorded_with_its_message() -> None:
    """No exception: type null, the log's fields, and a fingerprint from the logger and the
    message's template, so the same message with other values groups together."""
    dxtrack.configure(context="c", stage="test")
    log = logging.getLogger("shop.sync")
    log.error("shop %s is down", "a")
    log.error("shop %s is down", "b")
    log.error("a different message")
    first, second, third = errors()
    assert first["exception"] == {
        "type": None,
        "value": None,
        "traceback": None,
        "handled": True,
        "mechanism": "logging",
    }
    assert first["log"] == {"logger": "shop.sync", "level": "ERROR", "message": "shop a is down"}
    assert second["log"]["message"] == "shop b is down"
    assert first["fingerprint"] == second["fingerprint"] != third["fingerprint"]


def test_logger_exception_records_the_exception_with_the_log_fields() -> None:
    """exc_info: the exception's type, value and traceback, and the log's fields beside; the
    fingerprint is the exception's, as error() would give."""
    dxtrack.configure(context="c", stage="test")
    for use_logging in (True, False):
        try:
            int("x")
        except ValueError:
            if use_logging:
                logging.getLogger("parser").exception("row %d unreadable", 3)
            else:
                dxtrack.error()
    logged, called = errors()
    assert logged["exception"]["type"] == "ValueError"
    assert logged["exception"]["traceback"].startswith("Traceback (most recent call last):")
    assert logged["log"] == {"logger": "parser", "level": "ERROR", "message": "row 3 unreadable"}
    assert called["log"] is None and called["exception"]["mechanism"] == "error"
    assert logged["fingerprint"] == called["fingerprint"]


def test_the_level_decides_what_is_captured() -> None:
    """Default ERROR: warnings are not captured, critical is. A name or number moves it; None
    turns the capture off."""
    log = logging.getLogger("levels")
    dxtrack.configure(context="c", stage="test")
    log.warning("not captured")
    log.critical("captured")
    assert [e["log"]["level"] for e in errors()] == ["CRITICAL"]
    dxtrack.configure(context="c", stage="test", capture_log_level="warning")
    log.warning("now captured")
    assert [e["log"]["message"] for e in errors()][-1] == "now captured"
    dxtrack.configure(context="c", stage="test", capture_log_level=logging.CRITICAL)
    log.error("below critical")
    dxtrack.configure(context="c", stage="test", capture_log_level=None)
    log.critical("off")
    assert [e["log"]["message"] for e in errors()] == ["captured", "now captured"]


def test_a_bad_level_is_a_value_error_naming_the_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    """capture_log_level must be a level name, a positive number or None."""
    for bad in ("LOUD", 0, -5, True, 2.5):
        with pytest.raises(ValueError, match="capture_log_level"):
            dxtrack.configure(context="c", stage="test", capture_log_level=bad)
    monkeypatch.setenv("DXTRACK_CAPTURE_LOG_LEVEL", "SHOUTING")
    with pytest.raises(ValueError, match="DXTRACK_CAPTURE_LOG_LEVEL"):
        dxtrack.configure(context="c", stage="test")


def test_the_environment_variable_sets_or_turns_off_the_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DXTRACK_CAPTURE_LOG_LEVEL=warning captures warnings; off captures nothing."""
    monkeypatch.setenv("DXTRACK_CAPTURE_LOG_LEVEL", "warning")
    dxtrack.configure(context="c", stage="test")
    logging.getLogger("env").warning("captured by the variable")
    monkeypatch.setenv("DXTRACK_CAPTURE_LOG_LEVEL", "off")
    dxtrack.configure(context="c", stage="test")
    logging.getLogger("env").critical("not captured")
    assert [e["log"]["message"] for e in errors()] == ["captured by the variable"]


def test_dxtrack_own_loggers_are_never_captured() -> None:
    """What dxtrack logs about itself never becomes a record (it would feed itself)."""
    dxtrack.configure(context="c", stage="test")
    logging.getLogger("dxtrack").error("about dxtrack")
    logging.getLogger("dxtrack.delivery").critical("about delivery")
    logging.getLogger("dxtrackish").error("someone else's")
    assert [e["log"]["logger"] for e in errors()] == ["dxtrackish"]


def test_a_message_that_cannot_be_formatted_is_still_recorded(tmp_path: Path) -> None:
    """A wrong %-format is logging's problem to report (it prints "Logging error" and goes
    on); the record keeps the template."""
    outcome = run_program(
        tmp_path,
        """
        import logging
        import dxtrack
        dxtrack.configure(context="c", stage="test")
        logging.getLogger("fmt").error("needs two %s %s", "one")
        print("went on")
        """,
    )
    assert outcome.returncode == 0 and outcome.stdout == "went on\n", outcome.describe()
    assert "--- Logging error ---" in outcome.stderr
    (record,) = outcome.errors
    assert record["log"]["message"].startswith("needs two %s %s <formatting failed")


def test_the_host_logging_configuration_is_left_as_it_was(tmp_path: Path) -> None:
    """Handlers, levels, propagation and the root logger are the same after configure() and
    shutdown(); what the host's handlers print is unchanged; a disabled logger is not captured
    and a record below a logger's own level is never made."""
    outcome = run_program(
        tmp_path,
        """
        import logging, sys
        logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(name)s:%(message)s")
        quiet = logging.getLogger("quiet"); quiet.setLevel(logging.CRITICAL)
        off = logging.getLogger("off"); off.disabled = True
        def state():
            root = logging.getLogger()
            return (list(root.handlers), root.level, quiet.level, quiet.handlers, quiet.propagate)
        before = state()
        import dxtrack
        dxtrack.configure(context="c", stage="test")
        assert state() == before
        logging.getLogger("app").error("printed and captured")
        quiet.error("below its own level")
        off.error("disabled")
        dxtrack.shutdown()
        assert state() == before
        logging.getLogger("app").error("after shutdown")
        """,
    )
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.stdout == "app:printed and captured\napp:after shutdown\n"
    assert [e["log"]["message"] for e in outcome.errors] == ["printed and captured"]
