"""A reconciliation break: its kinds, and where breaks go (the warehouse, the day's CSV).

Every check of a day returns breaks; none raises for what it finds (a missing or unreadable
file is a break too). The kinds, by source (docs/reconciliation.md):

- the venue's drop copy against internal executions: ``missing`` (a venue fill the store
  lacks), ``extra`` (a stored fill the venue did not report), ``price_mismatch``,
  ``qty_mismatch``, ``field_mismatch`` (order, account, symbol, side or time differ),
  ``duplicate_exec_id``;
- the payment provider's settlement file against the ledger: ``settlement_missing`` (booked,
  not settled), ``settlement_extra`` (settled, not booked, or settled twice),
  ``amount_mismatch`` (amount or currency), ``field_mismatch`` (account);
- the ledger against itself and the OMS: ``position_mismatch`` (open lots against position
  postings), ``cash_mismatch`` (client money posted against deposits, withdrawals, realized
  PnL, commissions and financing), ``trial_balance`` (a transaction, or a commodity's
  postings, not summing to zero; a posting without its transaction);
- either file: ``file_missing`` (no file for a day with activity), ``file_invalid``.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pyarrow as pa

from assets.warehouse.client import Warehouse


class BreakKind(StrEnum):
    MISSING = "missing"
    EXTRA = "extra"
    PRICE_MISMATCH = "price_mismatch"
    QTY_MISMATCH = "qty_mismatch"
    FIELD_MISMATCH = "field_mismatch"
    DUPLICATE_EXEC_ID = "duplicate_exec_id"
    SETTLEMENT_MISSING = "settlement_missing"
    SETTLEMENT_EXTRA = "settlement_extra"
    AMOUNT_MISMATCH = "amount_mismatch"
    POSITION_MISMATCH = "position_mismatch"
    CASH_MISMATCH = "cash_mismatch"
    TRIAL_BALANCE = "trial_balance"
    FILE_MISSING = "file_missing"
    FILE_INVALID = "file_invalid"


OPEN = "open"
CSV_COLUMNS = ("date", "kind", "ref", "detail", "status")


@dataclass(frozen=True, slots=True)
class Break:
    kind: BreakKind
    ref: str  # what broke: an exec id, a provider reference, account:12:EURUSD, a file...
    detail: str  # both sides' values, in words an operations desk reads
    status: str = OPEN


def breaks_csv_path(reports_dir: Path, day: dt.date) -> Path:
    return reports_dir / day.isoformat() / "reconciliation" / "breaks.csv"


def write_breaks_csv(reports_dir: Path, day: dt.date, breaks: Sequence[Break]) -> Path:
    """The day's breaks as CSV, the header even when there is none."""
    path = breaks_csv_path(reports_dir, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(CSV_COLUMNS)
        for b in breaks:
            out.writerow((day.isoformat(), b.kind.value, b.ref, b.detail, b.status))
    tmp.replace(path)
    return path


def store_breaks(
    wh: Warehouse,
    day: dt.date,
    run_ns: int,
    breaks: Sequence[Break],
    *,
    dropcopy_rows: int,
    settlement_rows: int,
) -> None:
    """Record a run of the day and its breaks (append-only: the latest run is the day's)."""
    wh.insert(
        "breaks",
        pa.table(
            {
                "trade_date": pa.array([day] * len(breaks), pa.date32()),
                "run_ns": pa.array([run_ns] * len(breaks), pa.int64()),
                "kind": pa.array([b.kind.value for b in breaks], pa.string()),
                "ref": pa.array([b.ref for b in breaks], pa.string()),
                "detail": pa.array([b.detail for b in breaks], pa.string()),
                "status": pa.array([b.status for b in breaks], pa.string()),
            }
        ),
    )
    wh.insert(
        "recon_runs",
        pa.table(
            {
                "trade_date": pa.array([day], pa.date32()),
                "run_ns": pa.array([run_ns], pa.int64()),
                "breaks": pa.array([len(breaks)], pa.int64()),
                "dropcopy_rows": pa.array([dropcopy_rows], pa.int64()),
                "settlement_rows": pa.array([settlement_rows], pa.int64()),
            }
        ),
    )


def latest_breaks(wh: Warehouse, day: dt.date) -> list[Break]:
    """The breaks of the day's latest run (none when the day was never reconciled)."""
    rows = wh.rows(
        "SELECT kind, ref, detail, status FROM breaks "
        "WHERE trade_date = {day:Date32} AND run_ns = "
        "(SELECT max(run_ns) FROM recon_runs WHERE trade_date = {day:Date32}) "
        "ORDER BY kind, ref",
        {"day": day},
    )
    return [Break(BreakKind(k), r, d, s) for k, r, d, s in rows]
