"""``bourse sql``: DuckDB with ready views over the lake and the reports, for analysts.

The views read the files where they lie (nothing is copied): the accepted and rejected
ticks, 1-minute bars computed from the ticks, the positions flow's snapshots (positions,
accounts, exposure), and the CSV reports under ``reports/`` when there are any. A view
whose files do not exist yet is empty, with its columns, so a script's query never fails
for want of data. ``-c QUERY`` runs one query and prints a table; without it, a prompt
reads one query per line (``.views`` lists the views, ``.quit`` leaves).

Prices and quantities are the lake's integers (``docs/lake.md``); report amounts are
decimal strings read as ``DECIMAL(38, 9)``, never floats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from serving.cli_shared import HomeOpt, console, out, settings_for

if TYPE_CHECKING:
    import duckdb
    import polars as pl

MINUTE_NS = 60 * 1_000_000_000
MAX_PRINTED_ROWS = 200
# Report CSVs: whole numbers stay integers, decimal strings become exact decimals.
_CSV = "header = true, filename = true, auto_type_candidates = ['BIGINT', 'DECIMAL(38, 9)', 'DATE', 'VARCHAR']"  # noqa: E501 (one DuckDB option list)

EXAMPLE = """SELECT symbol, bucket, open, high, low, close, ticks
FROM bars_1m
WHERE symbol = (SELECT symbol FROM ticks GROUP BY symbol ORDER BY count(*) DESC LIMIT 1)
ORDER BY bucket DESC
LIMIT 5"""


@dataclass(frozen=True)
class View:
    name: str
    description: str
    sql: str


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_DUCK_TYPES = {"Int64": "BIGINT", "String": "VARCHAR", "Date": "DATE", "Boolean": "BOOLEAN"}


def _empty_select(schema: Mapping[str, pl.DataType], extra: tuple[str, ...] = ()) -> str:
    """A select of no rows with the columns of ``schema`` (a view over files not yet there)."""
    cols = []
    for name, dtype in schema.items():
        base = type(dtype).__name__
        cols.append(f'CAST(NULL AS {_DUCK_TYPES.get(base, "VARCHAR")}) AS "{name}"')
    cols += [f'CAST(NULL AS VARCHAR) AS "{name}"' for name in extra]
    return f"SELECT {', '.join(cols)} WHERE false"


def _has_files(root: Path, pattern: str) -> bool:
    return any(p for p in root.glob(pattern) if not p.name.startswith("."))


def _parquet(
    root: Path, pattern: str, schema: Mapping[str, pl.DataType], hive: tuple[str, ...]
) -> str:
    if not _has_files(root, pattern):
        return _empty_select(schema, hive)
    return (
        f"SELECT * FROM read_parquet({_quote(str(root / pattern))}, "
        "hive_partitioning = true, union_by_name = true)"
    )


def _bars_1m() -> str:
    # An integer floor of ts_ns: DuckDB's time_bucket rounds nanosecond timestamps, which
    # would put a tick just before a minute edge into the next bar.
    px = "coalesce(price, bid)"
    return (
        f"SELECT symbol, (ts_ns // {MINUTE_NS}) * {MINUTE_NS} AS bucket_ns, "
        f"make_timestamp((ts_ns // {MINUTE_NS}) * {MINUTE_NS // 1000}) AS bucket, "
        f"arg_min({px}, (ts_ns, source_seq)) AS open, max({px}) AS high, min({px}) AS low, "
        f"arg_max({px}, (ts_ns, source_seq)) AS close, count(*) AS ticks, "
        "coalesce(sum(qty), 0) AS volume "
        f"FROM ticks WHERE {px} IS NOT NULL GROUP BY ALL"
    )


def _reports(reports: Path, pattern: str, path_columns: dict[str, int]) -> str | None:
    if not _has_files(reports, pattern):
        return None
    # The report date and account come from the file's path: reports/DATE/.../file.csv.
    path_re = _quote(re.escape(str(reports)) + "/([^/]+)/([^/]+)/([^/]+)")
    cols = [
        f"regexp_extract(filename, {path_re}, {i}) AS {name}" for name, i in path_columns.items()
    ]
    src = f"read_csv({_quote(str(reports / pattern))}, {_CSV})"
    return f"SELECT {', '.join(cols)}, * EXCLUDE (filename) FROM {src}"


def lake_views(home: Path) -> list[View]:
    """The views ``bourse sql`` opens, in the order it lists them."""
    from pipelines.positions.lake import SCHEMAS
    from pipelines.ticks.schema import LAKE_SCHEMA, REJECTED_SCHEMA

    lake, reports = home / "lake", home / "reports"
    hive = ("date", "instrument")
    views = [
        View("ticks", "accepted ticks (prices in price units, ts_ns UTC ns)",
             _parquet(lake / "ticks", "date=*/instrument=*/*.parquet", LAKE_SCHEMA, hive)),
        View("ticks_rejected", "rejected ticks, with their reason and detail",
             _parquet(lake / "ticks_rejected", "date=*/instrument=*/*.parquet",
                      REJECTED_SCHEMA, hive)),
        View("bars_1m", "1-minute OHLCV per symbol from `ticks` (trade price, or bid)",
             _bars_1m()),
    ]  # fmt: skip
    for table, what in (
        ("positions", "open positions, every snapshot of the positions flow"),
        ("accounts", "accounts' cash, equity, margin level, every snapshot"),
        ("exposure", "the house's exposure per symbol, every snapshot"),
        ("exposure_currency", "the house's exposure per currency, every snapshot"),
    ):
        snap = _parquet(lake / table, "date=*/*.parquet", SCHEMAS[table], ("date",))
        views.append(View(table, what, snap))
    for table in ("positions", "accounts"):
        views.append(
            View(
                f"latest_{table}",
                f"`{table}` of the newest snapshot",
                f"SELECT * FROM {table} WHERE snapshot_ns = (SELECT max(snapshot_ns) FROM {table})",
            )
        )
    statement = {"report_date": 1, "account_id": 3}
    for name, pattern, what, cols in (
        ("statements", "*/statements/*/summary.csv", "daily statements' summaries", statement),
        ("statement_trades", "*/statements/*/trades.csv", "daily statements' trades", statement),
        ("statement_positions", "*/statements/*/positions.csv", "statements' positions",
         statement),
    ):  # fmt: skip
        csv_sql = _reports(reports, pattern, cols)
        if csv_sql is not None:
            views.append(View(name, what, csv_sql))
    for csv in sorted({p.stem for p in reports.glob("*/risk/*.csv")}):
        risk_sql = _reports(reports, f"*/risk/{csv}.csv", {"report_date": 1})
        if risk_sql is not None and re.fullmatch(r"[a-z_]+", csv):
            views.append(View(f"risk_{csv}", f"the risk reports' {csv}.csv, every day", risk_sql))
    return views


def open_lake(home: Path) -> tuple[duckdb.DuckDBPyConnection, list[View]]:
    import duckdb

    # DuckDB's progress bar writes to stdout, into a script's output.
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    views = lake_views(home)
    for view in views:
        con.execute(f'CREATE VIEW "{view.name}" AS {view.sql}')
    return con, views


def query(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Runs one statement; its column names and rows (none for a statement without)."""
    cursor = con.execute(sql)
    if cursor.description is None:
        return [], []
    return [d[0] for d in cursor.description], cursor.fetchall()


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def result_table(columns: list[str], rows: list[tuple[Any, ...]]) -> Table:
    table = Table(show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows[:MAX_PRINTED_ROWS]:
        table.add_row(*(_cell(v) for v in row))
    if len(rows) > MAX_PRINTED_ROWS:
        table.caption = f"{len(rows)} rows, the first {MAX_PRINTED_ROWS} shown"
    else:
        table.caption = f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    return table


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> bool:
    import duckdb

    try:
        columns, rows = query(con, sql)
    except duckdb.Error as exc:
        console.print(f"[red]query failed:[/red] {str(exc).splitlines()[0]}", soft_wrap=True)
        return False
    if columns:
        out.print(result_table(columns, rows))
    return True


def _intro(home: Path, views: list[View]) -> None:
    listing = Table(title=f"Views over {home}", show_header=True)
    listing.add_column("view")
    listing.add_column("holds")
    for view in views:
        listing.add_row(view.name, view.description)
    out.print(listing)
    out.print("Example:", style="bold")
    out.print(EXAMPLE, highlight=False)


def _repl(con: duckdb.DuckDBPyConnection, home: Path, views: list[View]) -> None:
    out.print("One query per line; .views lists the views, .quit leaves.")
    while True:
        try:
            line = input("bourse sql> ").strip()
        except EOFError:
            out.print()
            return
        if line in (".quit", ".exit", "\\q"):
            return
        if line == ".views":
            _intro(home, views)
        elif line:
            _run(con, line.rstrip(";"))


def sql(
    home: HomeOpt = None,
    command: Annotated[
        str | None, typer.Option("-c", "--command", help="Run this one query and exit.")
    ] = None,
) -> None:
    """DuckDB over the lake (ticks, rejected ticks, 1-minute bars, positions, accounts,
    exposure) and the reports' CSVs: prints the views and an example, then a prompt."""
    settings = settings_for(home, None)
    root = settings.home
    if not root.is_dir():
        console.print(f"[red]no data directory at {root}[/red]: give --home DIR")
        raise typer.Exit(2)
    con, views = open_lake(root)
    try:
        if command is not None:
            if not _run(con, command):
                raise typer.Exit(1)
            return
        _intro(root, views)
        _run(con, EXAMPLE)
        _repl(con, root, views)
    finally:
        con.close()
