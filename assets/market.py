"""Market data into the warehouse: a lake day's accepted ticks, the bars kept from them, the
reference data (instruments, currencies) and the risk desk's ``sql/`` views.

``copy_lake_day`` copies ``lake/ticks/date=DAY/`` into ``ticks``. A lake day is one
partition of ``ticks`` and of every bar table (``tables_market``), so copying a day again
first drops that partition everywhere: the day is replaced, never doubled, and the
materialized views rebuild its bars from the new rows. (Between the drop and the insert the
day is missing; a copy that fails half-way is repaired by running it again.)

A lake day is a UTC day (``docs/lake.md``), and so are the bars' days; the platform's
trading day (17:00 New York) is the reports' unit, not the market data's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assets.warehouse.client import Warehouse
from assets.warehouse.tables_market import BAR_WIDTHS, DAY_NS, DAY_PARTITIONED, TICKS
from trading.catalogue import Catalogue, default_catalogue
from trading.money import MINOR_UNIT_EXPONENT

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
ACCEPTED_DIR = "ticks"
_EPOCH = dt.date(1970, 1, 1)
# Files per insert: a lake day of one feed is one file per batch of 100,000 ticks.
FILES_PER_INSERT = 16

_ARROW_TYPES = {
    "LowCardinality(String)": pa.string(),
    "String": pa.string(),
    "Int64": pa.int64(),
    "Date32": pa.date32(),
}


def ticks_schema() -> pa.Schema:
    """The Arrow schema of the warehouse's ``ticks`` (the lake's columns, enums as text)."""
    fields = []
    for name, ch_type in TICKS.columns:
        nullable = ch_type.startswith("Nullable(")
        base = ch_type.removeprefix("Nullable(").removesuffix(")") if nullable else ch_type
        fields.append(pa.field(name, _ARROW_TYPES[base], nullable=nullable))
    return pa.schema(fields)


def day_number(day: dt.date) -> int:
    """The partition of ``day`` in every market table: days since the epoch (UTC)."""
    return (day - _EPOCH).days


def day_bounds_ns(day: dt.date) -> tuple[int, int]:
    """``[start, end)`` of a UTC day in nanoseconds."""
    start = day_number(day) * DAY_NS
    return start, start + DAY_NS


def lake_day_files(lake_dir: Path, day: dt.date) -> list[Path]:
    """The accepted-tick files of one lake day, every instrument (hidden temp files not)."""
    base = lake_dir / ACCEPTED_DIR / f"date={day.isoformat()}"
    return sorted(p for p in base.glob("instrument=*/*.parquet") if not p.name.startswith("."))


def _conformed(path: Path, schema: pa.Schema) -> pa.Table:
    table = pq.read_table(path)
    columns = []
    for f in schema:
        if f.name not in table.column_names:
            raise ValueError(f"lake file {path} lacks column {f.name!r}")
        col = table.column(f.name)
        if pa.types.is_dictionary(col.type):  # Polars writes its enums as dictionaries
            col = col.cast(pa.string())
        columns.append(col.cast(f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _batches(files: list[Path], schema: pa.Schema) -> Iterator[pa.Table]:
    for i in range(0, len(files), FILES_PER_INSERT):
        yield pa.concat_tables([_conformed(p, schema) for p in files[i : i + FILES_PER_INSERT]])


def drop_day(wh: Warehouse, day: dt.date) -> None:
    """Removes a lake day from ``ticks`` and every bar table (one partition of each)."""
    part = day_number(day)
    for table in DAY_PARTITIONED:
        if wh.layout == "cluster":
            wh.command(f"ALTER TABLE {table}_local ON CLUSTER '{{cluster}}' DROP PARTITION {part}")
        else:
            wh.command(f"ALTER TABLE {table} DROP PARTITION {part}")


@dataclass(frozen=True)
class DayCopy:
    day: dt.date
    files: int
    ticks: int
    symbols: tuple[str, ...]


def copy_lake_day(wh: Warehouse, lake_dir: Path, day: dt.date) -> DayCopy:
    """Replaces the warehouse's ticks (and so its bars) of ``day`` by the lake's."""
    files = lake_day_files(lake_dir, day)
    schema = ticks_schema()
    # Read (and check) every file before anything is dropped: a bad file changes nothing.
    tables = list(_batches(files, schema))
    lo, hi = day_bounds_ns(day)
    for table in tables:
        ts = table.column("ts_ns")
        if table.num_rows and (pc.min(ts).as_py() < lo or pc.max(ts).as_py() >= hi):
            raise ValueError(f"lake day {day}: a file holds ticks of another day")
    drop_day(wh, day)
    symbols: set[str] = set()
    count = 0
    for table in tables:
        wh.insert("ticks", table)
        count += table.num_rows
        symbols.update(table.column("symbol").unique().to_pylist())
    return DayCopy(day, len(files), count, tuple(sorted(symbols)))


# -- bars -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BarSummary:
    """What the warehouse holds for one UTC day: bars per width, and the ticks behind them."""

    day: dt.date
    bars: dict[str, int]  # width -> bars
    ticks_in_bars: dict[str, int]  # width -> sum of tick_count
    priced_ticks: int  # ticks of the day with a price (a trade's, or a quote's bid)
    symbols: dict[str, int]  # symbol -> 1-minute bars

    @property
    def consistent(self) -> bool:
        """Every width's bars account for every priced tick of the day, once."""
        return all(n == self.priced_ticks for n in self.ticks_in_bars.values())


def read_bars(wh: Warehouse, width: str, symbol: str, day: dt.date) -> pa.Table:
    """One symbol's finalized bars of one UTC day (reads one partition of the state)."""
    if width not in dict(BAR_WIDTHS):
        raise ValueError(f"no bars of width {width!r}; known: {', '.join(dict(BAR_WIDTHS))}")
    lo, hi = day_bounds_ns(day)
    # The states themselves, filtered before they are merged (what ``bars_<width>`` does,
    # without relying on the filter being pushed into the view).
    return wh.arrow(
        "SELECT symbol, bucket_ns, argMinMerge(open) AS open, max(high) AS high, "
        "min(low) AS low, argMaxMerge(close) AS close, sum(tick_count) AS tick_count, "
        f"sum(volume) AS volume FROM bars_{width}_state WHERE symbol = {{symbol:String}} "
        "AND bucket_ns >= {lo:Int64} AND bucket_ns < {hi:Int64} "
        "GROUP BY symbol, bucket_ns ORDER BY bucket_ns",
        {"symbol": symbol, "lo": lo, "hi": hi},
    )


def summarize_bars(wh: Warehouse, day: dt.date) -> BarSummary:
    lo, hi = day_bounds_ns(day)
    params = {"lo": lo, "hi": hi}
    where = "bucket_ns >= {lo:Int64} AND bucket_ns < {hi:Int64}"
    bars: dict[str, int] = {}
    in_bars: dict[str, int] = {}
    for width, _ in BAR_WIDTHS:
        n, ticks = wh.rows(
            f"SELECT count(), sum(tick_count) FROM bars_{width} WHERE {where}", params
        )[0]
        bars[width], in_bars[width] = int(n), int(ticks or 0)
    priced = wh.scalar(
        "SELECT count() FROM ticks WHERE ts_ns >= {lo:Int64} AND ts_ns < {hi:Int64} "
        "AND coalesce(price, bid) IS NOT NULL",
        params,
    )
    symbols = dict(
        (str(s), int(n))
        for s, n in wh.rows(
            f"SELECT symbol, count() FROM bars_1m WHERE {where} GROUP BY symbol ORDER BY symbol",
            params,
        )
    )
    return BarSummary(day, bars, in_bars, int(priced or 0), symbols)


# -- the risk desk's sql/ views ---------------------------------------------------------------

_COMMENT = re.compile(r"--[^\n]*")


def sql_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    return sorted(sql_dir.glob("*.sql"))


def statements(path: Path) -> list[str]:
    """The statements of a ``sql/`` file: comments dropped, split on ``;`` at a line end."""
    text = _COMMENT.sub("", path.read_text())
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", text) if s.strip()]


def load_reference(wh: Warehouse, catalogue: Catalogue | None = None) -> int:
    """Replaces ``instruments`` and ``currencies`` by the catalogue's; returns instruments."""
    catalogue = catalogue or default_catalogue()
    insts = list(catalogue)
    instruments = pa.table(
        {
            "symbol": [i.symbol for i in insts],
            "asset_class": [str(i.asset_class) for i in insts],
            "base": [i.base for i in insts],
            "quote": [i.quote for i in insts],
            "price_precision": pa.array([i.price_precision for i in insts], pa.int32()),
            "qty_precision": pa.array([i.qty_precision for i in insts], pa.int32()),
            "contract_size": [format(i.contract_size, "f") for i in insts],
            "unit_value": pa.array([i.unit_value for i in insts], pa.decimal128(38, 18)),
        }
    )
    codes = sorted(MINOR_UNIT_EXPONENT)
    currencies = pa.table(
        {
            "currency": codes,
            "exponent": pa.array([MINOR_UNIT_EXPONENT[c] for c in codes], pa.int32()),
        }
    )
    for name, table in (("instruments", instruments), ("currencies", currencies)):
        if wh.layout == "cluster":
            wh.command(f"TRUNCATE TABLE IF EXISTS {name}_local ON CLUSTER '{{cluster}}'")
        else:
            wh.command(f"TRUNCATE TABLE IF EXISTS {name}")
        wh.insert(name, table)
    return len(insts)


def prepare_analytics(wh: Warehouse, catalogue: Catalogue | None = None) -> list[str]:
    """Reference data and every ``sql/`` view: what analysts' queries stand on."""
    load_reference(wh, catalogue)
    return create_sql_views(wh)


def create_sql_views(wh: Warehouse, sql_dir: Path = SQL_DIR) -> list[str]:
    """Creates (or replaces) every view of ``sql/`` in the warehouse; returns their files."""
    done = []
    for path in sql_files(sql_dir):
        for statement in statements(path):
            wh.command(statement)
        done.append(path.name)
    return done
