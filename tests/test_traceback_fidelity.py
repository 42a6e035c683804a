"""``exception.traceback`` is what ``traceback.format_exception`` prints on the running Python,
less the ``^~`` lines under the stack's source lines: compared on a corpus of situations, through
each way an error is captured (the suite runs on every Python from 3.10 to 3.13, compiled and
pure)."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

import dxtrack
from dxtrack.testing import capture_records
from tests.capture_programs import run_program
from tests.traceback_corpus import SITUATIONS, expected_text

NAMES = [name for name, _ in SITUATIONS]


def python_value(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


def test_the_corpus_is_large_and_every_situation_raises() -> None:
    assert len(SITUATIONS) >= 75 + (12 if sys.version_info >= (3, 11) else 0)
    assert len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize(("name", "function"), SITUATIONS, ids=NAMES)
def test_error_and_errors_record_pythons_own_text(name: str, function: Any) -> None:
    with capture_records() as captured:
        try:
            function()
        except BaseException as exc:
            expected = expected_text(exc)
            dxtrack.error()
            caught = exc
        dxtrack.errors([caught])
    assert len(captured.errors) == 2
    for record in captured.errors:
        exception = record["exception"]
        assert exception["traceback"] == expected, exception["mechanism"]
        assert exception["value"] == python_value(caught)


def test_the_text_is_python_s_when_made_later_on_the_shipper(tmp_path: Path) -> None:
    """In stage dev the builder thread formats the text after the call returned (the
    exception and its frames are gone by then): still Python's text."""
    from dxtrack.sinks.memory import MemorySink
    from dxtrack.wiring import SinkFactory

    lines: list[dict[str, Any]] = []
    sinks: list[SinkFactory] = [(lambda: MemorySink("error", lines), False)]
    from dxtrack import api
    from dxtrack.config import build_config

    client = api.current_client()
    client.configure(build_config(context="c", stage="dev", error_rate_limit=None), sinks)
    expected = []
    for _, function in SITUATIONS:
        try:
            function()
        except BaseException as exc:
            expected.append(expected_text(exc))
            dxtrack.error()
    assert client.flush(30)
    client.close()
    assert [record["exception"]["traceback"] for record in lines] == expected


def test_lone_surrogates_are_the_one_difference() -> None:
    """Strict UTF-8 JSON can't hold a lone surrogate (from bytes decoded with
    ``surrogateescape``): it is stored as the six characters of its escape, ``\\udcff``."""
    with capture_records() as captured:
        try:
            raise ValueError("bad byte: \udcff in b'\\xff'".encode().decode("utf-8"))
        except ValueError:
            pass
        try:
            raise ValueError("name \udcff")
        except ValueError as exc:
            expected = expected_text(exc)
            dxtrack.error()
    record = captured.errors[0]["exception"]
    assert record["traceback"] == expected.replace("\udcff", "\\udcff")
    assert record["value"] == "name \\udcff"


def test_main_module_edited_deleted_and_zipped_sources(tmp_path: Path) -> None:
    """Cases that need a program of their own: an exception class of ``__main__`` (Python
    writes ``Name:``), a module edited and then deleted between two errors (Python reads the
    file again), a module imported from a zip (Python reads it through the loader), and an
    error that ends the program (``sys.excepthook``)."""
    archive = tmp_path / "lib.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipped_mod.py", "def fail():\n    raise KeyError('from the zip')\n")
    (tmp_path / "editable.py").write_text("def fail():\n    raise ValueError('version 1')\n")
    outcome = run_program(
        tmp_path,
        f"""
        import importlib, json, os, sys, traceback
        sys.path[:0] = [{str(tmp_path)!r}, {str(archive)!r}]
        from tests.traceback_corpus import expected_text

        def hook(kind, value, tb):  # the program's own hook, which dxtrack's calls on to
            with open("final.txt", "w") as handle:
                handle.write(expected_text(value))
            sys.__excepthook__(kind, value, tb)

        sys.excepthook = hook
        import dxtrack
        dxtrack.configure(context="c", stage="test")
        expected = []

        def record(function):
            try:
                function()
            except Exception as exc:
                expected.append(expected_text(exc))
                dxtrack.error()

        class Broken(Exception):
            pass

        def main_class():
            raise Broken("defined in __main__")

        record(main_class)
        import editable, zipped_mod
        record(editable.fail)
        with open("editable.py", "w") as handle:  # edited: other text on those lines
            handle.write("def fail():\\n    raise ValueError('version 2, edited')\\n")
        record(editable.fail)
        os.remove("editable.py")
        record(editable.fail)
        record(zipped_mod.fail)
        with open("expected.json", "w") as handle:
            json.dump(expected, handle)
        raise Broken("the end")
        """,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert outcome.returncode == 1
    expected = json.loads((tmp_path / "expected.json").read_text())
    assert "version 2, edited" in expected[2] and "KeyError: 'from the zip'" in expected[4]
    assert "raise KeyError('from the zip')" in expected[4]  # the source, through the loader
    texts = [error["exception"]["traceback"] for error in outcome.errors]
    assert texts[:5] == expected
    assert outcome.errors[0]["exception"]["type"] == "__main__.Broken"
    assert "\nBroken: defined in __main__\n" in texts[0]
    assert outcome.errors[5]["exception"]["mechanism"] == "excepthook"
    assert texts[5] == (tmp_path / "final.txt").read_text()
    assert "Broken: the end" in outcome.stderr  # Python's own report still printed


def test_the_builder_reads_a_changed_source_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the background too: once a file changed, the next batch shows its new lines, as
    Python does (it calls linecache.checkcache before each print); the kept text is not
    served stale."""
    import importlib

    from dxtrack import api
    from dxtrack.config import build_config
    from dxtrack.sinks.memory import MemorySink
    from dxtrack.wiring import SinkFactory

    module = tmp_path / "changing_module.py"
    module.write_text("def fail():\n    raise ValueError('first text')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    changing = importlib.import_module("changing_module")
    lines: list[dict[str, Any]] = []
    sinks: list[SinkFactory] = [(lambda: MemorySink("error", lines), False)]
    client = api.current_client()
    client.configure(build_config(context="c", stage="dev"), sinks)
    expected = []
    for edit in (None, "def fail():\n    raise ValueError('second, longer text')\n"):
        if edit is not None:
            module.write_text(edit)
        try:
            changing.fail()
        except ValueError as exc:
            expected.append(expected_text(exc))
            dxtrack.error()
        assert client.flush(10)
    client.close()
    assert "second, longer text" in expected[1]
    assert [record["exception"]["traceback"] for record in lines] == expected
