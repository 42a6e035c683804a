"""Records the user shapes: scrubbed secrets, before_send, sampling and error storms.

Each promise is counted by ``seq``: a record left out on purpose takes no number, so the numbers
of what lands are 1..n without a gap, and ``stats()`` counts what was left out by reason.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import dxtrack
from dxtrack import shaping
from dxtrack.events import ERROR
from dxtrack.records import RecordBuilder
from dxtrack.scrubbing import FILTERED, Scrubber, url_credentials_filtered
from dxtrack.shaping import ErrorLimiter, Shaping
from tests.conftest import read_jsonl

OUT = Path(".dxtrack_output")
SECRET = "hunter2-9f8e7d"


def landed(kind: str) -> list[dict[str, Any]]:
    path = OUT / f"{kind}.jsonl"
    return read_jsonl(path) if path.exists() else []


def all_records() -> list[dict[str, Any]]:
    return landed("error") + landed("metric")


def assert_seq_unbroken(records: list[dict[str, Any]]) -> None:
    seqs = sorted(record["seq"] for record in records)
    assert seqs == list(range(1, len(records) + 1))


def fail(n: int) -> None:
    raise ValueError(f"row {n} is bad")


# ---- scrubbing ------------------------------------------------------------------------------


def test_secret_keys_are_filtered_at_any_depth_in_every_record() -> None:
    dxtrack.configure(
        context="c",
        stage="test",
        default_metadata={"db_password": SECRET, "team": "data"},
        scrub_keys=["Customer-Email"],
    )
    nested = {
        "shop": "a",
        "Password": SECRET,
        "api-key": SECRET,
        "X_API_KEY": SECRET,
        "githubToken": SECRET,
        "headers": {"Authorization": f"Bearer {SECRET}", "accept": "json"},
        "tries": [{"session": SECRET, "n": 1}, ({"Cookie": SECRET},)],
        "customer_email": SECRET,
        "author": "kept",
        "tokens_used": 3,
    }
    dxtrack.metric("m", 1, metadata=nested)
    dxtrack.metric("m", 2, metadata=nested)  # the compiled writer's cached JSON
    try:
        fail(1)
    except ValueError:
        dxtrack.error(metadata=nested)
    dxtrack.errors([KeyError("k")], metadata=nested)
    logging.getLogger("app").error("failed", extra={})
    assert dxtrack.flush(5)
    records = all_records()
    assert len(records) == 5
    for record in records:
        text = str(record)
        assert SECRET not in text
        metadata = record["metadata"]
        assert metadata["db_password"] == FILTERED and metadata["team"] == "data"
        if "shop" in metadata:
            assert metadata["Password"] == metadata["api-key"] == FILTERED
            assert metadata["githubToken"] == metadata["X_API_KEY"] == FILTERED
            assert metadata["headers"] == {"Authorization": FILTERED, "accept": "json"}
            assert metadata["tries"] == [{"session": FILTERED, "n": 1}, [{"Cookie": FILTERED}]]
            assert metadata["customer_email"] == FILTERED
            assert (metadata["author"], metadata["tokens_used"]) == ("kept", 3)
    assert nested["Password"] == SECRET  # the caller's own dict is untouched


def test_values_in_lists_are_not_keys() -> None:
    """Only a key names a secret: the string "cookie" in a list is a value, and is kept, but a
    secret after it in the same list is not a key either."""
    dxtrack.configure(context="c", stage="test")
    dxtrack.metric("m", 1, metadata={"pair": ["cookie", "value"]})
    assert dxtrack.flush(5)
    assert landed("metric")[0]["metadata"]["pair"] == ["cookie", "value"]


def test_url_credentials_are_filtered_from_values_tracebacks_and_log_messages() -> None:
    dxtrack.configure(context="c", stage="test")
    url = f"https://deploy:{SECRET}@git.example.com/repo.git"
    try:
        raise ConnectionError(f"could not fetch {url}")
    except ConnectionError:
        dxtrack.error()
    logging.getLogger("app").error("retrying postgres://app:%s@db:5432/x", SECRET)
    assert dxtrack.flush(5)
    records = landed("error")
    assert len(records) == 2
    assert SECRET not in str(records)
    exception = records[0]["exception"]
    assert exception["value"] == "could not fetch https://[Filtered]@git.example.com/repo.git"
    assert "https://[Filtered]@git.example.com" in exception["traceback"]
    assert records[1]["log"]["message"] == "retrying postgres://[Filtered]@db:5432/x"


def test_scrub_false_keeps_everything() -> None:
    dxtrack.configure(context="c", stage="test", scrub=False)
    dxtrack.metric("m", 1, metadata={"password": SECRET, "u": f"https://a:{SECRET}@h"})
    assert dxtrack.flush(5)
    assert landed("metric")[0]["metadata"] == {"password": SECRET, "u": f"https://a:{SECRET}@h"}


def test_scrub_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DXTRACK_SCRUB_KEYS", "iban, card_number")
    dxtrack.configure(context="c", stage="test")
    dxtrack.metric("m", 1, metadata={"IBAN": SECRET, "cardNumber": SECRET, "amount": 5})
    assert dxtrack.flush(5)
    expected = {"IBAN": FILTERED, "cardNumber": FILTERED, "amount": 5}
    assert landed("metric")[0]["metadata"] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://u:p@h/x", "https://[Filtered]@h/x"),
        ("s3://AKIA:sec@bucket and ftp://x@y", "s3://[Filtered]@bucket and ftp://[Filtered]@y"),
        ("mail me at a@b.c", "mail me at a@b.c"),
        ("https://h/path@v2", "https://h/path@v2"),
        ("'redis://:pw@cache:6379'", "'redis://[Filtered]@cache:6379'"),
    ],
)
def test_url_credentials(text: str, expected: str) -> None:
    assert url_credentials_filtered(text) == expected


def test_scrubber_survives_cycles_deep_nesting_and_broken_mappings() -> None:
    cycle: dict[str, Any] = {"token": SECRET}
    cycle["self"] = cycle
    deep: Any = {"password": SECRET}
    for _ in range(100):
        deep = {"d": deep}
    scrubbed = Scrubber().metadata({"cycle": cycle, "deep": deep})
    assert SECRET not in repr(scrubbed)


# ---- before_send ----------------------------------------------------------------------------


def test_before_send_changes_and_drops_records_without_using_a_seq() -> None:
    seen_threads: set[str] = set()

    def hook(record: dict[str, Any]) -> dict[str, Any] | None:
        seen_threads.add(threading.current_thread().name)
        assert "seq" not in record and "id" not in record
        if record.get("metric_name") == "drop.me":
            return None
        record["metadata"]["hooked"] = True
        return record

    dxtrack.configure(context="c", stage="test", before_send=hook)
    for n in range(10):
        dxtrack.metric("drop.me" if n % 3 == 0 else "keep", n)
    try:
        fail(0)
    except ValueError:
        dxtrack.error()
    assert dxtrack.flush(5)
    records = all_records()
    assert len(records) == 7  # 10 metrics, 4 dropped; 1 error
    assert all(record["metadata"]["hooked"] is True for record in records)
    assert_seq_unbroken(records)
    stats = dxtrack.stats()
    assert stats["omitted.before_send"] == 4 and stats["omitted"] == 4 and stats["dropped"] == 0


@pytest.mark.parametrize(
    "result",
    ["raise", "not a dict", "fields removed", "mutate then raise"],
    ids=str,
)
def test_a_failing_before_send_keeps_the_record_unchanged_and_logs_once(
    result: str, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(record: dict[str, Any]) -> Any:
        if result == "raise":
            raise RuntimeError("hook bug")
        if result == "not a dict":
            return ["nope"]
        if result == "fields removed":
            del record["metadata"]
            return record
        record["metadata"]["x"] = "changed"
        raise RuntimeError("after changing")

    dxtrack.configure(context="c", stage="test", before_send=hook)
    with caplog.at_level(logging.ERROR, logger="dxtrack"):
        for n in range(3):
            dxtrack.metric("m", n, metadata={"x": "original"})
        assert dxtrack.flush(5)
    records = landed("metric")
    assert [record["metadata"] for record in records] == [{"x": "original"}] * 3
    assert_seq_unbroken(records)
    messages = [r.getMessage() for r in caplog.records]
    messages = [m for m in messages if m.startswith("dxtrack: before_send")]
    assert len(messages) == 1


# ---- sampling -------------------------------------------------------------------------------


def within(kept: int, n: int, rate: float) -> bool:
    """Whether ``kept`` of ``n`` is within 6 standard deviations of ``n * rate``."""
    sigma = math.sqrt(n * rate * (1 - rate))
    return abs(kept - n * rate) <= 6 * sigma


def test_metric_sampling_keeps_a_share_marks_it_and_counts_the_rest() -> None:
    dxtrack.configure(context="c", stage="test", metric_sample_rate=0.25)
    n = 20_000
    for i in range(n):
        dxtrack.metric("m", i)
    assert dxtrack.flush(5)
    records = landed("metric")
    assert within(len(records), n, 0.25)
    assert all(record["sample_rate"] == 0.25 for record in records)
    assert_seq_unbroken(records)
    assert dxtrack.stats()["omitted.sampled"] == n - len(records)
    values = [record["value"] for record in records]
    assert values == sorted(values)  # the kept ones, in order


def test_error_sampling_and_rate_zero() -> None:
    dxtrack.configure(
        context="c", stage="test", error_sample_rate=0.5, metric_sample_rate=0, error_rate_limit=0
    )
    n = 4_000
    for i in range(n):
        dxtrack.metric("m", i)
        try:
            fail(i)
        except ValueError:
            dxtrack.error()
    assert dxtrack.flush(5)
    assert landed("metric") == []
    errors = landed("error")
    assert within(len(errors), n, 0.5)
    assert all(record["sample_rate"] == 0.5 for record in errors)
    assert_seq_unbroken(errors)
    assert dxtrack.stats()["omitted.sampled"] == n + n - len(errors)


def test_unsampled_records_carry_no_sample_rate() -> None:
    dxtrack.configure(context="c", stage="test")
    dxtrack.metric("m", 1)
    assert dxtrack.flush(5)
    assert "sample_rate" not in landed("metric")[0]


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half", math.nan, True])
def test_sample_rates_are_checked(bad: object) -> None:
    for name in ("metric_sample_rate", "error_sample_rate"):
        with pytest.raises(ValueError, match=name):
            dxtrack.configure(context="c", stage="test", **{name: bad})  # type: ignore[arg-type]


# ---- error storms ---------------------------------------------------------------------------


def storm(n: int, call: str = "error") -> None:
    for i in range(n):
        try:
            fail(i)
        except ValueError as exc:
            if call == "error":
                dxtrack.error(metadata={"i": i})
            else:
                dxtrack.errors([exc])


def test_a_storm_of_100000_identical_errors_gives_few_records_that_count_exactly() -> None:
    dxtrack.configure(context="c", stage="test")
    storm(100_000)
    try:
        raise KeyError("another place")
    except KeyError:
        dxtrack.error()
    assert dxtrack.flush(30)
    records = landed("error")
    assert len(records) <= 2_000
    by_type = Counter()
    for record in records:
        by_type[record["exception"]["type"]] += 1 + record["suppressed"]
    assert by_type == {"ValueError": 100_000, "KeyError": 1}
    assert_seq_unbroken(records)
    summaries = [record for record in records if record["suppressed"]]
    assert len(summaries) == 1
    assert dxtrack.stats()["omitted.rate_limited"] == 100_000 - 100 - 1
    # the summary is a real occurrence: the last one held back, with its own metadata
    assert summaries[0]["metadata"] == {"i": 99_999}


def test_storm_from_four_threads_and_errors_calls_counts_exactly() -> None:
    dxtrack.configure(context="c", stage="test", error_rate_limit=7)
    threads = [threading.Thread(target=storm, args=(5_000, call)) for call in ("error",) * 2]
    threads += [threading.Thread(target=storm, args=(5_000, "errors")) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert dxtrack.flush(30)
    records = landed("error")
    # error() and errors() of the same raise share a fingerprint, and so a limit
    assert len({record["fingerprint"] for record in records}) == 1
    assert sum(1 + record["suppressed"] for record in records) == 20_000
    assert_seq_unbroken(records)
    assert len(records) == 7 + 1  # the limit, then one summary at the flush
    assert dxtrack.stats()["omitted.rate_limited"] == 20_000 - 8


def test_no_limit_records_every_occurrence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DXTRACK_ERROR_RATE_LIMIT", "off")
    dxtrack.configure(context="c", stage="test")
    storm(500)
    assert dxtrack.flush(5)
    records = landed("error")
    assert len(records) == 500 and not any(record["suppressed"] for record in records)


def event(at: float, n: int) -> Any:
    return (ERROR, at, ValueError, f"row {n}", (), None)


def test_windows_of_a_minute_each_get_their_summary() -> None:
    """The limiter's windows by the occurrences' own times: a window ends a minute after its
    first occurrence, and the next occurrence after that begins a new one."""
    limiter = ErrorLimiter(limit=2)
    times = [0.0, 1.0, 2.0, 3.0, 59.9, 60.0, 61.0, 62.0, 200.0]
    admitted = [limiter.admit("fp", event(t, n)) for n, t in enumerate(times)]
    record, summarized, held = shaping.RECORD, shaping.SUMMARIZED, shaping.HELD
    expected = [record, record, summarized, held, held, record, record, summarized, record]
    assert admitted == expected
    first, second = limiter.due(now=130.0)
    assert (first[0][1], first[1]) == (59.9, 2)  # the last held back, standing for 2 more
    assert (second[0][1], second[1]) == (62.0, 0)
    assert limiter.due(now=1_000.0) == []  # the window at 200 held nothing back


def test_builder_summaries_add_up_across_windows() -> None:
    builder = RecordBuilder(
        context="c",
        stage="test",
        run_id="r",
        default_metadata={},
        producer_id="p" * 32,
        host="h",
        shaping=Shaping(error_rate_limit=3),
    )
    seq = iter(range(1, 10_000)).__next__
    lines = []
    for n in range(1_000):  # 10 windows of 100 occurrences, a second apart
        lines += builder.build_many([event(n * 0.6, n)], seq)[0]
    lines += builder.summaries(seq, now=10**9)[0]
    import orjson

    records = [orjson.loads(line) for _, line in lines]
    assert sum(1 + record["suppressed"] for record in records) == 1_000
    assert [record["seq"] for record in records] == list(range(1, len(records) + 1))
    assert len(records) == 10 * (3 + 1)


def test_omitted_is_not_dropped() -> None:
    """Records left out on purpose never make flush() report a loss."""
    dxtrack.configure(context="c", stage="test", metric_sample_rate=0.5, error_rate_limit=1)
    storm(10)
    for i in range(100):
        dxtrack.metric("m", i)
    assert dxtrack.flush(5) is True
    stats = dxtrack.stats()
    assert stats["dropped"] == 0 and stats["omitted"] > 0
    assert stats["omitted"] == stats["omitted.sampled"] + stats["omitted.rate_limited"]


def test_a_storm_in_prod_lands_in_s3_counting_exactly_at_exit(streams: Any, tmp_path: Path) -> None:
    """Through Firehose (a moto server over HTTP) from a child that exits normally right after
    a storm: the summary owed at exit is delivered, not spooled, and the counts add up."""
    from tests.capture_programs import run_program

    outcome = run_program(
        tmp_path,
        """
        import dxtrack
        dxtrack.configure()
        for i in range(30_000):
            try:
                raise TimeoutError(f"upstream {i}")
            except TimeoutError:
                dxtrack.error()
        print(dxtrack.flush(30))
        for i in range(5_000):  # held back after the flush: owed at exit
            try:
                raise TimeoutError(f"upstream {i}")
            except TimeoutError:
                dxtrack.error()
        """,
        env={**streams.env(), "DXTRACK_SPOOL_DIR": str(tmp_path / "spool")},
    )
    assert outcome.returncode == 0 and outcome.stdout.strip() == "True", outcome.describe()
    records = streams.records("error")
    assert sum(1 + record["suppressed"] for record in records) == 35_000
    assert len(records) == 100 + 2  # the limit (one window), a summary at the flush and at exit
    assert_seq_unbroken(records)
    assert "spooled" not in outcome.stderr


@pytest.mark.parametrize("stage", ["test", "dev"])
def test_a_before_send_that_logs_errors_does_not_feed_itself(
    stage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What the hook logs is not captured: a hook that logs an error for each record would
    otherwise make a record of each log, forever. Its own tracking calls are recorded."""
    from dxtrack import api
    from dxtrack.sinks.memory import MemorySink
    from dxtrack.wiring import SinkFactory

    seen: list[str] = []

    def hook(record: dict[str, Any]) -> dict[str, Any]:
        logging.getLogger("app.hook").error("sending %s", record.get("metric_name"))
        seen.append(str(record.get("metric_name")))
        if record.get("metric_name") == "first":
            dxtrack.metric("from.the.hook", 1)
        return record

    if stage == "test":
        dxtrack.configure(context="c", stage="test", before_send=hook)
    else:
        from dxtrack.config import build_config

        sinks: list[SinkFactory] = [(lambda: MemorySink("metric", kept), False)]
        kept: list[dict[str, Any]] = []
        api.current_client().configure(
            build_config(context="c", stage="dev", before_send=hook), sinks
        )
    with caplog.at_level(logging.ERROR, logger="app.hook"):
        dxtrack.metric("first", 1)
        dxtrack.metric("second", 2)
        assert dxtrack.flush(10)
    records = landed("metric") if stage == "test" else kept
    assert sorted(r["metric_name"] for r in records) == ["first", "from.the.hook", "second"]
    assert landed("error") == []
    assert sorted(seen) == ["first", "from.the.hook", "second"]
    assert len([r for r in caplog.records if r.name == "app.hook"]) == 3  # logged as usual
