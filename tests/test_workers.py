"""Workers of a configured parent track without configure() of their own, whatever the start
method: multiprocessing.Process, Pool and ProcessPoolExecutor."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.capture_programs import run_program

WORKERS = """
import multiprocessing, os, sys
from concurrent.futures import ProcessPoolExecutor
{top_import}

def work(i):
    import dxtrack
    from dxtrack import api
    config = api.current_client().config
    assert config is not None, "the worker is not configured"
    assert config.aws_access_key_id == "AKIDEXAMPLE"  # explicit keys reach the worker...
    assert "never-in-the-environment" not in str(os.environ)  # ...but not its environment
    dxtrack.metric("worker.items", i)
    return os.getpid()

class Crashing(multiprocessing.Process):
    def run(self):  # a subclass's own run()
        raise RuntimeError("worker crashed")

if __name__ == "__main__":
    import dxtrack
    dxtrack.configure(
        context="workers",
        stage="test",
        run_id="run-42",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="never-in-the-environment",
    )
    multiprocessing.set_start_method(os.environ["START_METHOD"])
    context = multiprocessing.get_context()
    process = context.Process(target=work, args=(1,))
    process.start()
    process.join()
    assert process.exitcode == 0, process.exitcode
    with context.Pool(2) as pool:
        pool.map(work, [2, 3, 4])
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        list(executor.map(work, [5, 6]))
    crashing = Crashing()
    crashing.start()
    crashing.join()
    print("crash exit", crashing.exitcode)
    dxtrack.metric("parent", 0)
"""


@pytest.mark.parametrize("top_import", ["import dxtrack", "# dxtrack imported by work()"])
@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_workers_track_into_the_parents_run(tmp_path: Path, method: str, top_import: str) -> None:
    """Every worker's metric lands once, with the parent's context and run id and a producer
    id of its own; a worker that crashes is recorded (excepthook, not handled) and
    multiprocessing still prints its traceback."""
    outcome = run_program(
        tmp_path,
        WORKERS.format(top_import=top_import),
        env={"START_METHOD": method},
        timeout=120,
    )
    assert outcome.returncode == 0, outcome.describe()
    assert "crash exit 1" in outcome.stdout
    assert "RuntimeError: worker crashed" in outcome.stderr
    values = Counter(int(m["value"]) for m in outcome.metrics)
    assert values == Counter(range(7)), outcome.describe()
    assert {(m["context"], m["run_id"]) for m in outcome.metrics} == {("workers", "run-42")}
    parent = next(m["producer_id"] for m in outcome.metrics if m["metric_name"] == "parent")
    workers = {m["producer_id"] for m in outcome.metrics if m["metric_name"] != "parent"}
    assert parent not in workers and len(workers) >= 2
    (crashed,) = outcome.errors
    assert crashed["exception"]["type"] == "RuntimeError"
    assert crashed["run_id"] == "run-42"
    assert (crashed["exception"]["mechanism"], crashed["exception"]["handled"]) == (
        "excepthook",
        False,
    )


TERMINATED = """
import multiprocessing, os, signal, sys
import dxtrack

def work(ready):
    import dxtrack
    dxtrack.metric("worker.started", 1)
    handler = signal.getsignal(signal.SIGTERM)
    ready.put("default" if handler == signal.SIG_DFL else repr(handler))
    multiprocessing.get_context().SimpleQueue().get()  # blocks on a semaphore, as a Pool's worker

if __name__ == "__main__":
    dxtrack.configure(context="workers", stage="test")
    handler = signal.getsignal(signal.SIGTERM)
    print("parent", "ours" if getattr(handler, "dxtrack_handler", False) else handler)
    context = multiprocessing.get_context(os.environ["START_METHOD"])
    for attempt in range(5):
        ready = context.Queue()
        process = context.Process(target=work, args=(ready,))
        process.start()
        print("worker", ready.get(timeout=60))
        process.terminate()
        process.join(30)
        print("exit", process.exitcode)
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_a_worker_ended_by_its_parent_dies_of_sigterm_at_once(tmp_path: Path, method: str) -> None:
    """multiprocessing ends workers with SIGTERM (Process.terminate(), the end of a with Pool()
    block) and waits for them. A worker keeps SIGTERM's default disposition: a Python handler
    can miss a signal that comes just as the worker blocks on a semaphore, and the parent then
    waited forever. The parent keeps dxtrack's handler."""
    outcome = run_program(tmp_path, TERMINATED, env={"START_METHOD": method}, timeout=120)
    assert outcome.returncode == 0, outcome.describe()
    lines = outcome.stdout.splitlines()
    assert lines[0] == "parent ours", outcome.describe()
    assert lines[1:] == ["worker default", f"exit {-signal.SIGTERM}"] * 5, lines
    assert [m["metric_name"] for m in outcome.metrics].count("worker.started") == 5


def test_a_worker_started_after_shutdown_does_not_track(tmp_path: Path) -> None:
    """shutdown() stops handing the configuration on: a later worker is left unconfigured."""
    outcome = run_program(
        tmp_path,
        """
        import multiprocessing
        import dxtrack

        def work():
            from dxtrack import api
            print("configured" if api.current_client().config else "unconfigured", flush=True)

        if __name__ == "__main__":
            dxtrack.configure(context="c", stage="test")
            dxtrack.shutdown()
            process = multiprocessing.get_context("spawn").Process(target=work)
            process.start()
            process.join()
        """,
    )
    assert outcome.stdout == "unconfigured\n", outcome.describe()


def test_a_configuration_that_cannot_be_pickled_still_reaches_workers(tmp_path: Path) -> None:
    """A papertrail_format lambda is left out, and default metadata that cannot be pickled goes
    as the text its records show: the worker's records carry the same metadata."""
    outcome = run_program(
        tmp_path,
        """
        import multiprocessing, threading
        import dxtrack

        def work():
            dxtrack.metric("worker", 1)

        if __name__ == "__main__":
            dxtrack.configure(
                context="c",
                stage="test",
                default_metadata={"lock": threading.Lock(), "team": "data"},
                papertrail_format=lambda record: "unused",
            )
            dxtrack.metric("parent", 1)
            process = multiprocessing.get_context("spawn").Process(target=work)
            process.start()
            process.join()
        """,
    )
    assert outcome.returncode == 0, outcome.describe()
    parent, worker = sorted(outcome.metrics, key=lambda m: m["metric_name"])
    assert worker["metric_name"] == "worker"
    assert worker["metadata"] == parent["metadata"]
    assert parent["metadata"]["team"] == "data" and "lock" in parent["metadata"]["lock"]


def test_sigterm_inside_threadings_locked_section_defers_instead_of_deadlocking(
    tmp_path: Path,
) -> None:
    """A pool terminates its workers with SIGTERM, which may land while a worker's main thread
    is inside ``threading`` holding the lock that ``Thread.start()`` takes (ending its threads).
    dxtrack's handler must not start its closing thread there: it signals again a moment later,
    then delivers the held metrics and dies of SIGTERM, as the process would have."""
    outcome = run_program(
        tmp_path,
        """
        import os, signal, threading, time
        import dxtrack
        dxtrack.configure(context="c", stage="test", buffer_metrics=True, exit_timeout=5)
        for i in range(5):
            dxtrack.metric("held", i)
        # a function of threading's own file and name, holding the lock Thread.start() takes
        source = (
            "def start(lock, kill):\\n"
            "    with lock:\\n"
            "        kill()\\n"
            "        for _ in range(20):\\n"
            "            time.sleep(0.01)\\n"
        )
        namespace = {"time": time}
        exec(compile(source, threading.__file__, "exec"), namespace)
        namespace["start"](
            threading._active_limbo_lock, lambda: os.kill(os.getpid(), signal.SIGTERM)
        )
        time.sleep(30)  # the deferred SIGTERM ends the process long before this
        print("not killed")
        """,
        timeout=25,
    )
    assert outcome.returncode == -signal.SIGTERM, outcome.describe()
    assert sorted(m["value"] for m in outcome.metrics) == [0, 1, 2, 3, 4]
