"""A statement's CSV files: summary, trades and positions, decimal strings throughout.

Money is in major units with the currency's own decimals (``12.30`` USD, ``1500`` JPY),
quantities in lots with the instrument's lot decimals, prices with its price decimals.
Times are UTC, ISO 8601 with nanoseconds. The columns are documented in docs/statements.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from assets.statements.compute import PositionLine, Statement
from trading.catalogue import Catalogue
from trading.money import format_minor

SUMMARY_COLUMNS = (
    "currency",
    "opening_balance",
    "deposits",
    "withdrawals",
    "realized_pnl",
    "commission",
    "financing",
    "closing_balance",
    "unrealized_pnl",
    "equity",
)
TRADES_COLUMNS = (
    "time_utc",
    "exec_id",
    "order_id",
    "symbol",
    "side",
    "qty",
    "price",
    "commission",
    "realized_pnl",
    "currency",
)
POSITIONS_COLUMNS = (
    "symbol",
    "qty",
    "average_price",
    "mark",
    "mark_date",
    "unrealized_pnl",
    "currency",
)
# Digits an average price keeps beyond the instrument's own price decimals.
AVERAGE_EXTRA_DIGITS = 2


@dataclass(frozen=True)
class WrittenFile:
    name: str
    sha256: str
    rows: int


def iso_utc(ts_ns: int) -> str:
    """``2026-01-05T08:00:00.000000001Z``: ISO 8601 in UTC, to the nanosecond."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    base = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def csv_bytes(header: tuple[str, ...], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _write(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> WrittenFile:
    # Hashed from the bytes written: one open per file (file opens dominate at 100k accounts).
    content = csv_bytes(header, rows)
    path.write_bytes(content)
    return WrittenFile(path.name, hashlib.sha256(content).hexdigest(), len(rows))


def summary_rows(st: Statement) -> list[list[str]]:
    rows = []
    for s in st.summaries:
        c = s.currency
        amounts = (
            s.opening,
            s.deposits,
            s.withdrawals,
            s.realized,
            s.commission,
            s.financing,
            s.closing,
            s.unrealized,
            s.equity,
        )
        rows.append([c, *(format_minor(a, c) for a in amounts)])
    return rows


def average_price(catalogue: Catalogue, p: PositionLine) -> Decimal:
    """The open lots' average price, ``AVERAGE_EXTRA_DIGITS`` finer than the price grid."""
    inst = catalogue.get(p.symbol)
    exact = Decimal(p.cost) / Decimal(p.qty) / inst.price_scale
    step = Decimal(1).scaleb(-(inst.price_precision + AVERAGE_EXTRA_DIGITS))
    return exact.quantize(step, rounding=ROUND_HALF_EVEN)


def trade_rows(st: Statement, catalogue: Catalogue) -> list[list[str]]:
    rows = []
    for t in st.trades:
        inst = catalogue.get(t.symbol)
        rows.append(
            [
                iso_utc(t.ts_ns),
                t.exec_id,
                str(t.order_id),
                t.symbol,
                t.side,
                f"{inst.qty_from_int(t.qty):f}",
                f"{inst.price_from_int(t.price):f}",
                format_minor(t.commission, st.currency),
                format_minor(t.realized, st.currency),
                st.currency,
            ]
        )
    return rows


def position_rows(st: Statement, catalogue: Catalogue) -> list[list[str]]:
    rows = []
    for p in st.positions:
        inst = catalogue.get(p.symbol)
        rows.append(
            [
                p.symbol,
                f"{inst.qty_from_int(p.qty):f}",
                f"{average_price(catalogue, p):f}",
                "" if p.mark is None else f"{inst.price_from_int(p.mark):f}",
                p.mark_date or "",
                "" if p.unrealized is None else format_minor(p.unrealized, st.currency),
                st.currency,
            ]
        )
    return rows


def write_csvs(
    st: Statement, catalogue: Catalogue, folder: Path, trades: tuple[str, int] | None = None
) -> list[WrittenFile]:
    """summary.csv, trades.csv and positions.csv of one statement into ``folder``;
    ``trades``: trades.csv's lines already formatted (``trades_csv``) and their count."""
    folder.mkdir(parents=True, exist_ok=True)
    if trades is None:
        trades_file = _write(folder / "trades.csv", TRADES_COLUMNS, trade_rows(st, catalogue))
    else:
        content = csv_bytes(TRADES_COLUMNS, []) + trades[0].encode("utf-8")
        (folder / "trades.csv").write_bytes(content)
        trades_file = WrittenFile("trades.csv", hashlib.sha256(content).hexdigest(), trades[1])
    return [
        _write(folder / "summary.csv", SUMMARY_COLUMNS, summary_rows(st)),
        trades_file,
        _write(folder / "positions.csv", POSITIONS_COLUMNS, position_rows(st, catalogue)),
    ]
