"""Unhandled exceptions: sys.excepthook, threading.excepthook and asyncio, in real programs.

Each program runs in a child process; the test reads the records it left, its exit status and
its stderr, which must be what Python prints without dxtrack.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from tests.capture_programs import run_program, without_dxtrack_lines

CONFIGURE = 'import dxtrack\ndxtrack.configure(context="capture", stage="test")\n'


def test_an_unhandled_exception_is_recorded_and_python_still_prints_it(tmp_path: Path) -> None:
    """One record (excepthook, not handled); exit status 1 and stderr as without dxtrack."""
    body = """
    def load():
        raise RuntimeError("the job died")
    load()
    """
    plain = run_program(tmp_path, "import dxtrack\n# not configured\n", body)
    tracked = run_program(tmp_path, CONFIGURE, body)
    assert tracked.returncode == plain.returncode == 1
    assert without_dxtrack_lines(tracked.stderr) == without_dxtrack_lines(plain.stderr)
    assert "RuntimeError: the job died" in tracked.stderr
    (record,) = tracked.errors
    assert record["exception"]["type"] == "RuntimeError"
    assert (record["exception"]["mechanism"], record["exception"]["handled"]) == (
        "excepthook",
        False,
    )
    assert 'in load\n    raise RuntimeError("the job died")' in record["exception"]["traceback"]


def test_an_unhandled_exception_reaches_firehose_before_the_process_exits(
    tmp_path: Path, streams: Any
) -> None:
    """In stage prod the record of the exception that ended the process lands in S3."""
    outcome = run_program(
        tmp_path,
        """
        import dxtrack
        dxtrack.configure()
        raise ValueError("fatal")
        """,
        env=streams.env(),
    )
    assert outcome.returncode == 1, outcome.describe()
    (record,) = streams.records("error")
    assert record["exception"]["type"] == "ValueError"
    assert record["exception"]["mechanism"] == "excepthook"


def test_an_error_recorded_then_reraised_to_the_top_is_one_record(tmp_path: Path) -> None:
    """error() marks the exception: the excepthook does not record it again."""
    outcome = run_program(
        tmp_path,
        CONFIGURE,
        """
        try:
            raise KeyError("row 7")
        except KeyError:
            dxtrack.error(metadata={"row": 7})
            raise
        """,
    )
    assert outcome.returncode == 1
    assert outcome.mechanisms() == {("KeyError", "error", True): 1}
    assert outcome.errors[0]["metadata"] == {"row": 7}


def test_a_logged_then_reraised_exception_is_one_record(tmp_path: Path) -> None:
    """logger.exception() records it (logging, handled); re-raised, it is not recorded again."""
    outcome = run_program(
        tmp_path,
        CONFIGURE,
        """
        import logging
        try:
            {}["missing"]
        except KeyError:
            logging.getLogger("job").exception("lookup failed")
            raise
        """,
    )
    assert outcome.returncode == 1
    assert outcome.mechanisms() == {("KeyError", "logging", True): 1}
    assert outcome.errors[0]["log"] == {
        "logger": "job",
        "level": "ERROR",
        "message": "lookup failed",
    }
    assert "Traceback" in outcome.stderr and "lookup failed" in outcome.stderr


def test_keyboard_interrupt_and_system_exit_are_not_errors(tmp_path: Path) -> None:
    """Ctrl-C and sys.exit() end a program on purpose: no record, exit status unchanged."""
    plain = run_program(tmp_path, "raise KeyboardInterrupt\n")
    interrupted = run_program(tmp_path, CONFIGURE, "raise KeyboardInterrupt\n")
    assert interrupted.returncode == plain.returncode == -signal.SIGINT  # Python re-raises it
    assert "KeyboardInterrupt" in interrupted.stderr and interrupted.errors == []
    exited = run_program(tmp_path, CONFIGURE, "import sys\nsys.exit(3)\n")
    assert exited.returncode == 3 and exited.errors == []


def test_an_uncaught_exception_in_a_thread_is_recorded(tmp_path: Path) -> None:
    """threading.excepthook: one record (threading, not handled), and Python's message."""
    outcome = run_program(
        tmp_path,
        CONFIGURE,
        """
        import threading
        def work():
            raise ConnectionError("worker lost its connection")
        thread = threading.Thread(target=work, name="fetcher")
        thread.start()
        thread.join()
        print("main goes on")
        """,
    )
    assert outcome.returncode == 0 and outcome.stdout == "main goes on\n"
    assert "Exception in thread fetcher" in outcome.stderr
    assert outcome.mechanisms() == {("ConnectionError", "threading", False): 1}


def test_a_task_exception_never_retrieved_is_one_record(tmp_path: Path) -> None:
    """asyncio reports it through the loop's exception handler, and logs it at ERROR: one
    record (asyncio, not handled), and asyncio's own message still printed."""
    outcome = run_program(
        tmp_path,
        CONFIGURE,
        """
        import asyncio
        async def fails():
            raise LookupError("lost task")
        async def main():
            asyncio.get_running_loop().create_task(fails())  # nobody keeps or awaits it
            await asyncio.sleep(0.05)
        asyncio.run(main())
        """,
    )
    assert outcome.returncode == 0, outcome.describe()
    assert "Task exception was never retrieved" in outcome.stderr
    assert outcome.mechanisms() == {("LookupError", "asyncio", False): 1}


def test_asyncio_imported_after_configure_is_still_hooked(tmp_path: Path) -> None:
    """dxtrack does not import asyncio; it hooks it when the program does, later. A callback
    that raises is recorded, and the application's own exception handler still runs."""
    outcome = run_program(
        tmp_path,
        CONFIGURE,
        """
        import sys
        assert "asyncio" not in sys.modules
        import asyncio
        def broken():
            raise ZeroDivisionError("in a callback")
        def app_handler(loop, context):
            print("app handler:", context["message"])
        async def main():
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(app_handler)
            loop.call_soon(broken)
            await asyncio.sleep(0.05)
        asyncio.run(main())
        """,
    )
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.stdout.startswith("app handler: Exception in callback")
    assert outcome.mechanisms() == {("ZeroDivisionError", "asyncio", False): 1}


def test_an_exception_escaping_asyncio_run_is_recorded_once(tmp_path: Path) -> None:
    """It reaches sys.excepthook; the task that raised it was awaited, so asyncio does not
    report it again."""
    outcome = run_program(
        tmp_path,
        CONFIGURE,
        """
        import asyncio
        async def main():
            raise TimeoutError("service did not answer")
        asyncio.run(main())
        """,
    )
    assert outcome.returncode == 1
    assert outcome.mechanisms() == {("TimeoutError", "excepthook", False): 1}


def test_capture_unhandled_off_records_nothing_and_hooks_nothing(tmp_path: Path) -> None:
    """capture_unhandled=False (or DXTRACK_CAPTURE_UNHANDLED=0): the hooks stay Python's own."""
    body = """
    import sys, threading
    assert sys.excepthook is sys.__excepthook__
    assert threading.excepthook is threading.__excepthook__
    raise RuntimeError("not recorded")
    """
    by_argument = run_program(
        tmp_path,
        'import dxtrack\ndxtrack.configure(context="c", stage="test", capture_unhandled=False)\n',
        body,
    )
    assert by_argument.returncode == 1 and "not recorded" in by_argument.stderr
    assert by_argument.errors == []
    by_variable = run_program(tmp_path, CONFIGURE, body, env={"DXTRACK_CAPTURE_UNHANDLED": "0"})
    assert "AssertionError" not in by_variable.stderr and by_variable.errors == []


def test_a_failed_task_kept_in_a_global_is_recorded_before_exit(tmp_path: Path) -> None:
    """A task still referenced at exit is collected only after dxtrack closed: dxtrack reports
    it first, once, and asyncio's message is still printed."""
    outcome = run_program(
        tmp_path,
        CONFIGURE,
        """
        import asyncio
        TASKS = []
        async def fails():
            raise ValueError("kept in a global")
        async def main():
            TASKS.append(asyncio.ensure_future(fails()))
            await asyncio.sleep(0.01)
        asyncio.run(main())
        """,
    )
    assert outcome.returncode == 0, outcome.describe()
    assert outcome.stderr.count("Task exception was never retrieved") == 1
    assert outcome.mechanisms() == {("ValueError", "asyncio", False): 1}


def test_odd_calls_to_the_hooks_behave_as_without_dxtrack(tmp_path: Path) -> None:
    """sys.excepthook called with a value that is not an exception prints what Python prints
    and raises nothing; an application thread named like dxtrack's is still captured."""
    body = """
    import sys, threading, logging
    sys.excepthook(ValueError, "a string, not an exception", None)
    def work():
        logging.getLogger("app").error("from a thread named dxtrack-worker")
    thread = threading.Thread(target=work, name="dxtrack-worker")
    thread.start()
    thread.join()
    print("went on")
    """
    plain = run_program(tmp_path, "import dxtrack\n# not configured\n", body)
    tracked = run_program(tmp_path, CONFIGURE, body)
    assert tracked.returncode == plain.returncode == 0
    assert tracked.stdout == "went on\n" and tracked.stderr == plain.stderr
    assert [e["log"]["message"] for e in tracked.errors] == ["from a thread named dxtrack-worker"]


def test_a_pool_futures_exception_that_nobody_reads_is_recorded(tmp_path: Path) -> None:
    """One record (future, not handled) for the future dropped unread and one for the future
    still referenced at exit; none for futures whose result or exception was read."""
    outcome = run_program(
        tmp_path,
        CONFIGURE,
        """
        import gc
        from concurrent.futures import ThreadPoolExecutor
        def fails(name):
            raise OSError(name)
        with ThreadPoolExecutor(2) as pool:
            pool.submit(fails, "dropped")
            kept = pool.submit(fails, "kept at exit")
            read = pool.submit(fails, "read")
            looked_at = pool.submit(fails, "looked at")
        try:
            read.result()
        except OSError:
            pass
        assert isinstance(looked_at.exception(), OSError)
        del read, looked_at
        gc.collect()
        """,
    )
    assert outcome.returncode == 0, outcome.describe()
    assert sorted(e["exception"]["value"] for e in outcome.errors) == ["dropped", "kept at exit"]
    assert outcome.mechanisms() == {("OSError", "future", False): 2}
