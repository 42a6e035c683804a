"""configure(): validation, environment variables, read-back and reconfiguration."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import dxtrack
from dxtrack.config import build_config
from tests.conftest import read_jsonl


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"context": 3, "stage": "test"}, "context"),
        ({"context": None, "stage": "test"}, "context"),
        ({"context": "", "stage": "test"}, "context"),
        ({"context": "c", "stage": "staging"}, "stage"),
        ({"context": "c", "stage": "test", "run_id": 12}, "run_id"),
        ({"context": "c", "stage": "test", "default_metadata": ["a"]}, "default_metadata"),
        ({"context": "c", "stage": "test", "buffer_metrics": "yes"}, "buffer_metrics"),
        ({"context": "c", "stage": "test", "use_async_requests": 1}, "use_async_requests"),
        ({"context": "c", "stage": "test", "papertrail_hostport": "nohost"}, "papertrail_hostport"),
        ({"context": "c", "stage": "test", "profile_name": 5}, "profile_name"),
        ({"context": "c", "stage": "test", "aws_access_key_id": "AK"}, "aws_secret_access_key"),
        ({"context": "c", "stage": "test", "max_buffer": 0}, "max_buffer"),
        ({"context": "c", "stage": "test", "max_buffer": 0.5}, "max_buffer"),
        ({"context": "c", "stage": "test", "flush_interval": -1}, "flush_interval"),
        ({"context": "c", "stage": "test", "exit_timeout": "soon"}, "exit_timeout"),
        ({"context": "c", "stage": "test", "papertrail_transport": "smtp"}, "papertrail_transport"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs: dict, names: str) -> None:
    """Each invalid argument gives a ValueError whose message names that argument."""
    with pytest.raises(ValueError, match=names):
        dxtrack.configure(**kwargs)


@pytest.mark.parametrize(
    ("option", "suggestion"),
    [("regoin_name", "region_name"), ("stagee", "stage"), ("scrubkeys", "scrub_keys")],
)
def test_unknown_option_names_it_and_the_closest_one(option: str, suggestion: str) -> None:
    """A misspelt option is a ValueError naming it and suggesting the option meant."""
    with pytest.raises(ValueError, match=f"'{option}'.*did you mean '{suggestion}'"):
        dxtrack.configure(context="c", stage="test", **{option: "x"})
    assert dxtrack.stage is None  # nothing was configured


def test_unknown_option_without_a_close_one_is_still_named() -> None:
    with pytest.raises(ValueError, match="'zzzz'") as raised:
        dxtrack.configure(context="c", stage="test", zzzz=1)  # type: ignore[arg-type]
    assert "did you mean" not in str(raised.value)


def test_stage_is_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No stage argument and no DXTRACK_STAGE: a ValueError naming both, and no local files."""
    monkeypatch.delenv("DXTRACK_STAGE")
    for stage in (None, ""):
        with pytest.raises(ValueError, match=r"stage.*DXTRACK_STAGE"):
            dxtrack.configure(context="c", stage=stage)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stage"):
        dxtrack.configure(context="c", stage="production")  # type: ignore[arg-type]
    with pytest.warns(RuntimeWarning, match="not configured"):
        dxtrack.metric("m", 1)
    assert not (tmp_path / ".dxtrack_output").exists()
    monkeypatch.setenv("DXTRACK_STAGE", "test")
    dxtrack.configure(context="c")
    assert dxtrack.stage == "test"


def test_missing_context_names_the_variable() -> None:
    with pytest.raises(ValueError, match=r"context.*DXTRACK_CONTEXT"):
        dxtrack.configure(stage="test")


SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"aws_access_key_id": 12345, "aws_secret_access_key": SECRET},
        {"aws_access_key_id": SECRET, "aws_secret_access_key": 12345},
        {"aws_access_key_id": SECRET, "aws_secret_access_key": [SECRET]},
        {"papertrail_token": [SECRET]},
        {"papertrail_token": SECRET, "papertrail_url": f"http://logs.example/{SECRET}"},
        {"papertrail_url": f"ftp://user:{SECRET}@logs.example/"},
        {"aws_secret_access_key": SECRET},
    ],
)
def test_bad_arguments_never_repeat_a_secret(kwargs: dict) -> None:
    with pytest.raises(ValueError) as raised:
        dxtrack.configure(context="c", stage="test", **kwargs)
    assert SECRET not in str(raised.value)
    assert SECRET not in repr(raised.value.__cause__) and raised.value.__context__ is None


def test_bad_metadata_variable_is_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw in (f'["{SECRET}"]', f'{{"password": "{SECRET}"'):
        monkeypatch.setenv("DXTRACK_DEFAULT_METADATA", raw)
        with pytest.raises(ValueError, match="DXTRACK_DEFAULT_METADATA") as raised:
            build_config(context="c")
        assert SECRET not in str(raised.value)


def test_papertrail_token_is_refused_over_plain_http() -> None:
    with pytest.raises(ValueError, match=r"papertrail_url.*https"):
        build_config(context="c", papertrail_token="t", papertrail_url="http://127.0.0.1:9/x")
    config = build_config(context="c", papertrail_token="t", papertrail_url="https://h/x")
    assert config.papertrail_url == "https://h/x"


def test_stored_configuration_masks_secrets() -> None:
    config = build_config(
        context="c",
        aws_access_key_id="AKIA" + SECRET,
        aws_secret_access_key=SECRET,
        papertrail_token=SECRET + "tok",
        papertrail_url=f"https://user:{SECRET}@logs.example/v1",
        default_metadata={"db": {"Password": SECRET}, "api-key": SECRET, "team": "data"},
        scrub_keys=["team"],
    )
    shown = repr(config)
    assert SECRET not in shown and "'data'" not in shown
    assert "[Filtered]" in shown and "logs.example" in shown
    assert config.aws_secret_access_key == SECRET  # only the repr masks
    assert config.default_metadata["api-key"] == SECRET


class BadFloat:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def __float__(self) -> float:
        raise self.error

    def __repr__(self) -> str:
        raise RuntimeError("repr too")


@pytest.mark.parametrize(
    "error", [RuntimeError("boom"), KeyError("k"), ZeroDivisionError(), OverflowError()]
)
def test_value_whose_float_raises_anything_is_a_value_error(error: Exception) -> None:
    dxtrack.configure(context="c", stage="test")
    with pytest.raises(ValueError, match="value must be a number") as raised:
        dxtrack.metric("m", BadFloat(error))  # type: ignore[arg-type]
    assert raised.value.__cause__ is None


class ExplodingMapping(Mapping):
    """A mapping whose every read raises."""

    def __getitem__(self, key: str) -> object:
        raise RuntimeError("no")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no iteration")

    def __len__(self) -> int:
        return 3


def test_metadata_whose_iteration_raises_never_raises_into_the_host() -> None:
    dxtrack.configure(context="c", stage="test")
    dxtrack.metric("m", 1, metadata=ExplodingMapping())
    try:
        raise ValueError("x")
    except ValueError:
        dxtrack.error(metadata=ExplodingMapping())
    dxtrack.errors([KeyError("y")], metadata=ExplodingMapping())
    assert dxtrack.flush(5)
    out = Path(".dxtrack_output")
    records = read_jsonl(out / "metric.jsonl") + read_jsonl(out / "error.jsonl")
    assert len(records) == 3
    for record in records:
        assert record["metadata"] == {"dxtrack_unreadable_metadata": "RuntimeError"}


def test_dir_shows_the_api_only_and_says_whether_compiled() -> None:
    names = set(dir(dxtrack))
    assert {"configure", "metric", "error", "errors", "stats", "compiled"} <= names
    assert not {"sys", "Any", "annotations", "api", "client"} & names
    from dxtrack.client import compiled_fast_path

    assert dxtrack.compiled is compiled_fast_path()
    import os

    pure = os.environ.get("DXTRACK_PURE_PYTHON", "") not in ("", "0")
    if pure:
        assert dxtrack.compiled is False


def test_every_reference_argument_is_accepted_and_kept() -> None:
    """All arguments of the reference README are accepted and kept in the configuration."""
    config = build_config(
        context="ctx",
        stage="dev",
        run_id="r1",
        default_metadata={"a": 1},
        profile_name="prof",
        aws_access_key_id="AKIA",
        aws_secret_access_key="secret",
        buffer_metrics=True,
        papertrail_hostport="logs5.papertrailapp.com:12345",
        use_async_requests=False,
    )
    assert (config.context, config.stage, config.run_id) == ("ctx", "dev", "r1")
    assert config.default_metadata == {"a": 1}
    assert config.profile_name == "prof"
    assert (config.aws_access_key_id, config.aws_secret_access_key) == ("AKIA", "secret")
    assert config.buffer_metrics is True
    assert config.papertrail_hostport == "logs5.papertrailapp.com:12345"
    assert config.use_async_requests is False
    assert config.error_stream == "dxtrack-error-input-dev"
    assert config.metric_stream == "dxtrack-metric-input-dev"


def test_environment_variables_fill_in_and_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    """DXTRACK_* variables supply settings; an explicit argument wins over its variable."""
    monkeypatch.setenv("DXTRACK_CONTEXT", "from-env")
    monkeypatch.setenv("DXTRACK_STAGE", "prod")
    monkeypatch.setenv("DXTRACK_RUN_ID", "env-run")
    monkeypatch.setenv("DXTRACK_DEFAULT_METADATA", '{"team": "data"}')
    monkeypatch.setenv("DXTRACK_PROFILE_NAME", "env-profile")
    monkeypatch.setenv("DXTRACK_BUFFER_METRICS", "true")
    monkeypatch.setenv("DXTRACK_USE_ASYNC_REQUESTS", "off")
    monkeypatch.setenv("DXTRACK_PAPERTRAIL_HOSTPORT", "logs.example:514")
    monkeypatch.setenv("DXTRACK_METRIC_STREAM", "my-metrics")
    monkeypatch.setenv("DXTRACK_MAX_BUFFER", "1234")
    config = build_config()
    assert (config.context, config.stage, config.run_id) == ("from-env", "prod", "env-run")
    assert config.default_metadata == {"team": "data"}
    assert config.profile_name == "env-profile"
    assert config.buffer_metrics is True
    assert config.use_async_requests is False
    assert config.papertrail_hostport == "logs.example:514"
    assert config.metric_stream == "my-metrics"
    assert config.max_buffer == 1234

    explicit = build_config(context="arg", stage="test", buffer_metrics=False, run_id="arg-run")
    assert (explicit.context, explicit.stage, explicit.run_id) == ("arg", "test", "arg-run")
    assert explicit.buffer_metrics is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DXTRACK_BUFFER_METRICS", "maybe"),
        ("DXTRACK_DEFAULT_METADATA", "[1, 2]"),
        ("DXTRACK_DEFAULT_METADATA", "{not json"),
        ("DXTRACK_MAX_BUFFER", "lots"),
        ("DXTRACK_STAGE", "qa"),
    ],
)
def test_bad_environment_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A malformed variable is reported by name, not by an obscure parse error."""
    monkeypatch.setenv(variable, value)
    argument = variable.removeprefix("DXTRACK_").lower()
    with pytest.raises(ValueError, match=f"{argument}|{variable}"):
        build_config(context="c")


def test_read_back_after_configure() -> None:
    """context, stage, run_id and default_metadata read back from the module."""
    assert dxtrack.context is None
    dxtrack.configure(context="reader", stage="test", run_id="r9", default_metadata={"k": "v"})
    assert dxtrack.context == "reader"
    assert dxtrack.stage == "test"
    assert dxtrack.run_id == "r9"
    assert dxtrack.default_metadata == {"k": "v"}


def test_run_id_is_generated_when_left_out() -> None:
    """Without run_id, each configure() gets a fresh one."""
    dxtrack.configure(context="c", stage="test")
    first = dxtrack.run_id
    dxtrack.configure(context="c", stage="test")
    assert isinstance(first, str) and len(first) == 32
    assert dxtrack.run_id != first


def test_default_metadata_is_copied_at_configure() -> None:
    """Mutating the dict passed to configure() later does not change what is recorded."""
    defaults = {"team": "a"}
    dxtrack.configure(context="c", stage="test", default_metadata=defaults)
    defaults["team"] = "b"
    dxtrack.metric("m", 1)
    assert read_jsonl(Path(".dxtrack_output/metric.jsonl"))[0]["metadata"] == {"team": "a"}


def test_reconfigure_switches_cleanly(tmp_path: Path) -> None:
    """A second configure() sends later records with the new settings, none with the old."""
    dxtrack.configure(context="first", stage="test", output_dir=tmp_path / "one")
    dxtrack.metric("m", 1)
    dxtrack.configure(context="second", stage="test", output_dir=tmp_path / "two")
    dxtrack.metric("m", 2)
    first = read_jsonl(tmp_path / "one" / "metric.jsonl")
    second = read_jsonl(tmp_path / "two" / "metric.jsonl")
    assert [(r["context"], r["value"]) for r in first] == [("first", 1.0)]
    assert [(r["context"], r["value"]) for r in second] == [("second", 2.0)]
    assert first[0]["producer_id"] != second[0]["producer_id"]


def test_calls_before_configure_do_nothing_and_warn_once(tmp_path: Path) -> None:
    """Before configure(), tracking calls write nothing and warn exactly once."""
    with pytest.warns(RuntimeWarning, match="not configured") as caught:
        dxtrack.metric("m", 1)
        dxtrack.metric("m", 2)
        try:
            raise ValueError("x")
        except ValueError:
            dxtrack.error()
        dxtrack.errors([ValueError("y")])
        dxtrack.flush_metrics_buffer()
    assert len([w for w in caught if "not configured" in str(w.message)]) == 1
    assert dxtrack.flush() is True
    assert not (tmp_path / ".dxtrack_output").exists()


def test_help_lists_the_api_only() -> None:
    """pydoc's FUNCTIONS and DATA sections of help(dxtrack) name the API and nothing the
    package imports for itself (its PACKAGE CONTENTS, the module list pydoc always adds, aside)."""
    import pydoc
    import re

    text = pydoc.render_doc(dxtrack, renderer=pydoc.plaintext)
    sections = re.split(r"\n(?=[A-Z][A-Z ]+\n)", text)
    named = set()
    for section in sections:
        title, _, body = section.partition("\n")
        if title.strip() in ("FUNCTIONS", "DATA"):
            named |= set(re.findall(r"^    (\w+)(?: = |\()", body, re.MULTILINE))
    assert named == set(dxtrack.__all__)


def test_configure_and_build_config_take_the_same_options() -> None:
    """configure()'s typed parameters are build_config's: the reference's ten in its order
    (they may be passed by position), then the keyword-only options."""
    import inspect

    configure = [name for name in inspect.signature(dxtrack.configure).parameters]
    build = list(inspect.signature(build_config).parameters)
    assert configure[:10] == build[:10]
    assert set(configure[10:]) - {"unknown"} == set(build[10:])
