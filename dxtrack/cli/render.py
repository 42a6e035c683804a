"""How the command shows its answers: rich tables for people, JSON for scripts."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import orjson
from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from dxtrack.cli.store import Row, iso


def _width() -> int | None:
    """The terminal's width; when output goes to a file or pipe, COLUMNS or 140 (not rich's 80)."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return 140


# markup=False: text from records ("[/]" in a message, say) is shown as it is, never parsed.
console = Console(highlight=False, markup=False, width=_width())
errors_console = Console(stderr=True, highlight=False, markup=False)


_CONTROLS = {
    code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)] if code not in (9, 10)
}
_CONTROLS.update(
    {code: f"\\u{code:04x}" for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}
)


def clean(value: Any) -> Any:
    """Text from records made safe for a terminal: control characters (an escape sequence could
    move the cursor or retitle the window) and bidirectional overrides shown as escapes."""
    if isinstance(value, str):
        return value.translate(_CONTROLS)
    if isinstance(value, dict):
        return {key: clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(clean(item) for item in value)
    return value


def emit_json(value: Any, *, line: bool = False) -> None:
    """``value`` as one JSON document on stdout, indented; or as one line (JSON Lines)."""
    option = orjson.OPT_NON_STR_KEYS | (0 if line else orjson.OPT_INDENT_2)
    data = orjson.dumps(value, default=str, option=option)
    sys.stdout.buffer.write(data + b"\n")
    sys.stdout.flush()


def when(timestamp: float | None) -> str:
    """A timestamp as people read it: UTC, to the second."""
    text = iso(timestamp)
    return text.replace("T", " ").rstrip("Z") if text else ""


def number(value: Any) -> str:
    """A metric value, short."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def short(text: str | None, width: int = 70) -> str:
    """The first line of ``text``, cut to ``width``."""
    first = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return first if len(first) <= width else first[: width - 1] + "…"


def traceback_view(traceback: str | None) -> Syntax | Text:
    """A traceback, colored as Python's."""
    if not traceback:
        return Text("(no traceback)", style="dim")
    return Syntax(traceback.rstrip("\n"), "pytb", theme="ansi_dark", word_wrap=True)


def error_groups(groups: Sequence[Row], *, total: int, show_traceback: int = 1) -> None:
    """The table of error groups, then the latest traceback of the first ones."""
    groups = clean(groups)
    wide = console.width >= 130  # else first seen and contexts are left out (--json has all)
    table = Table(title=f"Errors by fingerprint: {len(groups)} groups, {total} occurrences")
    table.add_column("count", justify="right", style="bold", min_width=5, no_wrap=True)
    table.add_column("error", min_width=24)
    table.add_column("fingerprint", style="cyan", no_wrap=True)
    if wide:
        table.add_column("first seen", no_wrap=True)
    table.add_column("last seen", no_wrap=True)
    if wide:
        table.add_column("contexts", overflow="fold")
    table.add_column("runs", justify="right", no_wrap=True)
    for group in groups:
        error = Text(group["type"] or "", style="bold red")
        error.append(": " + short(group["message"], 80), style="default")
        if group["unhandled"]:
            error.append(" unhandled", style="yellow")
        cells: list[Text | str] = [str(group["occurrences"]), error, group["fingerprint"]]
        if wide:
            cells.append(when(group["first_seen"]))
        cells.append(when(group["last_seen"]))
        if wide:
            cells.append(", ".join(group["contexts"] or ()))
        cells.append(str(group["runs"]))
        table.add_row(*cells)
    console.print(table)
    for group in groups[:show_traceback]:
        title = f"latest traceback of {group['fingerprint']} ({when(group['last_seen'])})"
        console.print(Panel(traceback_view(group["traceback"]), title=title, title_align="left"))
    if len(groups) > show_traceback:
        console.print(Text("dxtrack errors --fingerprint F shows one group's occurrences", "dim"))


def occurrences(fingerprint: str, rows: Sequence[Row]) -> None:
    """One group's records, newest first, with the newest traceback."""
    rows = clean(rows)
    table = Table(title=f"Occurrences of {fingerprint}: the latest {len(rows)}")
    for name in ("time", "context", "run", "error", "metadata"):
        table.add_column(name)
    for row in rows:
        table.add_row(
            when(row["timestamp"]),
            row["context"],
            (row["run_id"] or "")[:12],
            Text(f"{row['type']}: {short(row['message'], 50)}"),
            short(orjson.dumps(row["metadata"]).decode(), 50),
        )
    console.print(table)
    if rows:
        console.print(Panel(traceback_view(rows[0]["traceback"]), title="latest traceback"))


def metric_summary(rows: Sequence[Row], split_name: str | None) -> None:
    """Per metric name (and split): count, min, p50, p95, max, last."""
    rows = clean(rows)
    table = Table(title="Metrics")
    table.add_column("metric", style="cyan")
    if split_name:
        table.add_column(split_name)
    for name in ("count", "min", "p50", "p95", "max", "last"):
        table.add_column(name, justify="right")
    table.add_column("last seen", no_wrap=True)
    for row in rows:
        cells = [row["metric_name"]]
        if split_name:
            cells.append("" if row["split"] is None else str(row["split"]))
        cells += [str(row["records"])]
        cells += [number(row[k]) for k in ("min", "p50", "p95", "max", "last")]
        cells.append(when(row["last_seen"]))
        table.add_row(*cells)
    console.print(table)


def runs(rows: Sequence[Row]) -> None:
    """Per run: start, end, errors, metrics, producers, lost."""
    rows = clean(rows)
    table = Table(title=f"Runs: {len(rows)}")
    for name in ("run id", "contexts", "started", "ended", "errors", "metrics", "producers"):
        table.add_column(name, justify="right" if name in ("errors", "metrics") else "left")
    table.add_column("lost", justify="right")
    for row in rows:
        lost = Text(str(row["lost"]), style="bold red" if row["lost"] else "green")
        table.add_row(
            row["run_id"],
            ", ".join(row["contexts"] or ()),
            when(row["started"]),
            when(row["ended"]),
            str(row["errors"]),
            str(row["metrics"]),
            str(row["producers"]),
            lost,
        )
    console.print(table)


def gaps(rows: Sequence[Row]) -> None:
    """The holes in seq per producer."""
    rows = clean(rows)
    if not rows:
        console.print(
            Text("No gaps: every producer's seq runs 1, 2, 3... without a hole.", "green")
        )
        return
    lost = sum(row["missing"] for row in rows)
    table = Table(title=f"Gaps in seq: {lost} records lost in {len(rows)} holes")
    for name in ("context", "run id", "host", "producer", "first missing", "last missing"):
        table.add_column(name)
    table.add_column("missing", justify="right", style="bold red")
    for row in rows:
        table.add_row(
            row["context"],
            row["run_id"],
            row["host"],
            row["producer_id"],
            str(row["first_missing"]),
            str(row["last_missing"]),
            str(row["missing"]),
        )
    console.print(table)


def query_result(columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """A user's query as a table."""
    columns, rows = (
        clean(list(columns)),
        clean([tuple("" if v is None else str(v) for v in r) for r in rows]),
    )
    table = Table(*columns, title=f"{len(rows)} rows")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def record(record: dict[str, Any]) -> None:
    """One record, as ``tail`` shows it."""
    record = clean(record)
    moment = record.get("timestamp")
    stamp = (
        datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%H:%M:%S")
        if isinstance(moment, (int, float))
        else "--:--:--"
    )
    line = Text(f"{stamp} ", style="dim")
    line.append(f"{record.get('context', '?')} ", style="cyan")
    metadata = record.get("metadata") or {}
    shown = " " + orjson.dumps(metadata).decode() if metadata else ""
    exception = record.get("exception")
    if isinstance(exception, dict):
        line.append("ERROR ", style="bold red")
        line.append(f"{exception.get('type')}: {short(exception.get('value'), 200)}")
        line.append(shown, style="dim")
        suppressed = record.get("suppressed") or 0
        if suppressed:
            line.append(f" (+{suppressed} more held back by the rate limit)", style="yellow")
        body: Any = traceback_view(exception.get("traceback"))
        console.print(Group(line, body) if exception.get("traceback") else line)
    else:
        line.append("metric ", style="bold green")
        line.append(f"{record.get('metric_name')} = {number(record.get('value'))}")
        line.append(shown, style="dim")
        console.print(line)
