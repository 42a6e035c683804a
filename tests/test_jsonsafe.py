"""Metadata JSON cannot hold is made readable, never raised; a fuzz over metadata shapes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dxtrack
from dxtrack import jsonsafe
from tests.conftest import assert_valid, read_jsonl


def strict_loads(data: bytes) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    return json.loads(data, parse_constant=refuse)


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("nope")


def test_values_json_cannot_hold_become_readable() -> None:
    """datetime, Decimal, bytes, sets, enums, dataclasses and objects are made readable."""
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    out = strict_loads(
        jsonsafe.dumps(
            {
                "when": when,
                "day": dt.date(2024, 1, 2),
                "price": Decimal("10.10"),
                "raw": b"hello",
                "binary": b"\xff\xfe",
                "tags": {"b", "a"},
                "color": Color.RED,
                "point": Point(1, 2),
                "id": uuid.UUID(int=1),
                "obj": Opaque(),
                "broken": BrokenRepr(),
                "nan": float("nan"),
                "big": 2**80,
                "tuple": (1, "a"),
            }
        )
    )
    assert out["when"] == "2024-01-02T03:04:05+00:00"
    assert out["day"] == "2024-01-02"
    assert out["price"] == "10.10"
    assert out["raw"] == "hello"
    assert out["binary"] == "base64://4="
    assert out["tags"] == ["a", "b"]
    assert out["color"] == "red"
    assert out["point"] == {"x": 1, "y": 2}
    assert out["id"] == str(uuid.UUID(int=1))
    assert out["obj"] == "<Opaque thing>"
    assert "repr failed" in out["broken"]
    assert out["nan"] is None
    assert out["big"] == str(2**80)
    assert out["tuple"] == [1, "a"]


def test_cycles_and_odd_keys_do_not_raise() -> None:
    """Cycles, non-string keys and lone surrogates are turned into strings."""
    cyclic: dict[str, Any] = {"name": "loop"}
    cyclic["self"] = cyclic
    listy: list[Any] = [1]
    listy.append(listy)
    out = strict_loads(
        jsonsafe.dumps(
            {
                "cyclic": cyclic,
                "listy": listy,
                "keys": {1: "int", (1, 2): "tuple", None: "none", b"k": "bytes"},
                "surrogate": "\ud800x",
            }
        )
    )
    assert out["cyclic"]["self"] == "<dxtrack: cycle>"
    assert out["listy"] == [1, "<dxtrack: cycle>"]
    assert out["keys"] == {"1": "int", "(1, 2)": "tuple", "null": "none", "k": "bytes"}
    assert out["surrogate"] == "\\ud800x"


def test_output_is_canonical() -> None:
    """Key order does not change the bytes (so it does not change the id)."""
    assert jsonsafe.dumps({"b": 1, "a": {"y": 1, "x": 2}}) == jsonsafe.dumps(
        {"a": {"x": 2, "y": 1}, "b": 1}
    )


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(max_size=20),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.dates(),
    st.uuids(),
    st.sampled_from([Color.RED, Opaque(), Point(1, 2), object()]),
    st.frozensets(st.integers(), max_size=3),
)
keys = st.one_of(st.text(), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
metadata_shapes = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metadata=st.dictionaries(st.text(), metadata_shapes, max_size=5))
def test_fuzz_tracking_never_raises_and_writes_strict_json(metadata: dict[str, Any]) -> None:
    """For any metadata shape, metric() and errors() don't raise and write schema-valid,
    strict JSON lines."""
    out = Path(".dxtrack_output")
    dxtrack.configure(context="fuzz", stage="test", default_metadata={"base": 1})
    for name in ("metric.jsonl", "error.jsonl"):
        (out / name).unlink(missing_ok=True)
    dxtrack.metric("fuzz.value", 1.5, metadata=metadata)
    dxtrack.errors([ValueError("x")], metadata=metadata)
    (metric,) = read_jsonl(out / "metric.jsonl")
    (error,) = read_jsonl(out / "error.jsonl")
    assert_valid(metric, "metric")
    assert_valid(error, "error")
    assert metric["metadata"]["base"] == 1 or "base" in metadata
    assert set(metric["metadata"]) >= {str(k) for k in metadata} - {"base"} or len(metadata) == 0
    assert dxtrack.stats()["dropped"] == 0
