"""The ``dxtrack`` command's subcommands (click): thin layers over ``Store`` and ``render``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import duckdb

from dxtrack.cli import render
from dxtrack.cli.sources import DEFAULT_SOURCE, Source, SourceError
from dxtrack.cli.store import Store, fingerprints_like, parse_every

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

SOURCE_HELP = (
    "Where the records are: a stage-test output directory, JSON Lines files (plain, .gz or "
    ".zst) or a glob of them, or s3://bucket/prefix. Default: ./.dxtrack_output, or "
    "DXTRACK_SOURCE."
)


def source_options(function: F) -> F:
    """``--source`` and ``--json``, which every reading subcommand takes."""
    function = click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of tables."
    )(function)
    return click.option(
        "--source",
        "-s",
        default=DEFAULT_SOURCE,
        envvar="DXTRACK_SOURCE",
        show_default=True,
        help=SOURCE_HELP,
    )(function)


def open_source(spec: str, *, quiet: bool = False) -> Source:
    """A source, with a progress bar on stderr while S3 objects download."""
    progress = None if quiet or not spec.startswith("s3://") else _download_progress()
    return Source(spec, progress=progress)


def _download_progress() -> Callable[[int, int], None]:
    from rich.progress import Progress

    bar = Progress(console=render.errors_console, transient=True)
    task: list[Any] = []

    def update(done: int, total: int) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task("downloading objects", total=total))
        bar.update(task[0], completed=done)
        if done >= total:
            bar.stop()

    return update


def open_store(spec: str, *, quiet: bool = False) -> Store:
    """The records of ``spec`` in DuckDB, or a clear message and exit status 1; files that
    can't be read are named on stderr."""
    try:
        store = Store(open_source(spec, quiet=quiet))
        skipped = [p for p in store.files.unknown if _size(p) > 0]
        if skipped:
            shown = ", ".join(str(p) for p in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
            render.errors_console.print(
                f"dxtrack: skipped {len(skipped)} file(s) that hold no dxtrack records "
                f"(or can't be decoded): {shown}",
                style="yellow",
            )
        return store
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    except duckdb.Error as exc:
        raise click.ClickException(f"cannot read the records of {spec}: {exc}") from None


def ask(call: Callable[[], T]) -> T:
    """A query's answer, or a clear message and exit status 1 when the files can't be read
    (a corrupt gzip object, a file removed meanwhile...)."""
    try:
        return call()
    except duckdb.Error as exc:
        raise click.ClickException(f"cannot read the records: {exc}") from None
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dxtrack")
def cli() -> None:
    """Look at the errors and metrics that dxtrack recorded: in stage-test files, in JSON Lines
    files, or in the S3 bucket that Firehose delivers to."""


@cli.command()
@source_options
@click.option("--lines", "-n", default=20, show_default=True, help="How many records first.")
@click.option("--follow", "-f", is_flag=True, help="Then show each new record as it is written.")
def tail(source: str, as_json: bool, lines: int, follow: bool) -> None:
    """The latest records, errors with their tracebacks; -f follows new ones. With --json, one
    record per line (JSON Lines)."""
    from dxtrack.cli.tail import tail as run_tail

    show = (lambda record: render.emit_json(record, line=True)) if as_json else render.record
    try:
        run_tail(open_source(source, quiet=as_json), show, lines=lines, follow=follow)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass


@cli.command()
@source_options
@click.option("--fingerprint", "-F", help="Show one group's occurrences (a prefix is enough).")
@click.option("--limit", default=50, show_default=True, help="At most this many rows.")
def errors(source: str, as_json: bool, fingerprint: str | None, limit: int) -> None:
    """Errors grouped by fingerprint: count, first and last seen, contexts, runs, a sample
    message and the latest traceback."""
    store = open_store(source, quiet=as_json)
    if fingerprint is None:
        groups = ask(store.error_groups)
        total = sum(g["occurrences"] for g in groups)
        if as_json:
            render.emit_json(groups[:limit])
        else:
            render.error_groups(groups[:limit], total=total)
        return
    matches = ask(lambda: fingerprints_like(store, fingerprint))
    if len(matches) != 1:
        found = "no fingerprint starts" if not matches else f"{len(matches)} fingerprints start"
        raise click.ClickException(f"{found} with {fingerprint!r}")
    rows = ask(lambda: store.occurrences(matches[0], limit))
    if as_json:
        render.emit_json(rows)
    else:
        render.occurrences(matches[0], rows)


@cli.command()
@source_options
@click.option("--by", "by", metavar="KEY", help="Split each metric by this metadata key.")
@click.option("--every", metavar="DURATION", help="Split each metric by time: 30s, 15m, 1h, 1d.")
def metrics(source: str, as_json: bool, by: str | None, every: str | None) -> None:
    """Per metric name: count, min, p50, p95, max and last value."""
    try:
        seconds = parse_every(every) if every is not None else None
        if by is not None and seconds is not None:
            raise ValueError("--by and --every can't be used together")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    store = open_store(source, quiet=as_json)
    rows = ask(lambda: store.metric_summary(by=by, every=seconds))
    if as_json:
        render.emit_json(rows)
    else:
        render.metric_summary(rows, by or (f"every {every}" if every else None))


@cli.command()
@source_options
def runs(source: str, as_json: bool) -> None:
    """Per run id: start and end, errors, metrics, producers, and records lost."""
    rows = ask(open_store(source, quiet=as_json).runs)
    if as_json:
        render.emit_json(rows)
    else:
        render.runs(rows)


@cli.command()
@source_options
def gaps(source: str, as_json: bool) -> None:
    """The holes in seq per producer: records lost on the way. Exits 1 when there are any."""
    rows = ask(open_store(source, quiet=as_json).gaps)
    if as_json:
        render.emit_json(rows)
    else:
        render.gaps(rows)
    sys.exit(1 if rows else 0)


@cli.command()
@source_options
@click.argument("sql")
def query(source: str, as_json: bool, sql: str) -> None:
    """DuckDB SQL over the views `errors` and `metrics`."""
    store = open_store(source, quiet=as_json)
    try:
        columns, rows = store.query(sql)
    except duckdb.Error as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        render.emit_json([dict(zip(columns, row, strict=True)) for row in rows])
    else:
        render.query_result(columns, rows)


@cli.command()
@click.option("--source", "-s", default=DEFAULT_SOURCE, envvar="DXTRACK_SOURCE", help=SOURCE_HELP)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default="dxtrack-report.html",
    show_default=True,
    help="The HTML file to write.",
)
def report(source: str, out: Path) -> None:
    """One self-contained HTML file (it opens offline): errors per day by fingerprint, metric
    series, runs and gaps."""
    from dxtrack.dashboard.report import write_report

    store = open_store(source)
    ask(lambda: write_report(store, out))
    render.console.print(f"wrote {out} ({out.stat().st_size:,} bytes)")


@cli.command()
@click.option("--source", "-s", default=DEFAULT_SOURCE, envvar="DXTRACK_SOURCE", help=SOURCE_HELP)
@click.option("--port", "-p", default=8765, show_default=True, help="0 picks a free port.")
def ui(source: str, port: int) -> None:
    """A live dashboard on http://127.0.0.1:PORT: errors with tracebacks, metric charts, runs
    and gaps, updated as records are written."""
    from dxtrack.dashboard.server import serve

    store = open_store(source)
    ask(lambda: serve(store, port=port, announce=render.console.print))


def _register_more() -> None:
    from dxtrack.cli.doctor import doctor
    from dxtrack.cli.spool_commands import spool

    cli.add_command(spool)
    cli.add_command(doctor)


_register_more()
