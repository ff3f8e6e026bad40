"""Periodic snapshots of the positions flow in the lake, as Parquet (``docs/lake.md``).

Layout under the lake root (``<home>/lake``), one file per table, snapshot and part::

    positions/date=YYYY-MM-DD/snapshot-<snapshot_ns>-<part>.parquet
    accounts/date=YYYY-MM-DD/snapshot-<snapshot_ns>-<part>.parquet
    exposure/date=YYYY-MM-DD/snapshot-<snapshot_ns>-<part>.parquet
    exposure_currency/date=YYYY-MM-DD/snapshot-<snapshot_ns>-<part>.parquet

``date`` is the UTC day of ``snapshot_ns``; a part is what one worker holds. Money is in
minor units and quantities in lot steps (int64), decimals are strings: no column is a
float. Every snapshot writes all four tables, an empty one as a file with the schema and
no rows, so "no positions" reads differently from "no snapshot". Files go to a hidden
``.tmp`` and are renamed into place; a snapshot written again (a replay after a restart)
replaces its files by identical ones.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from pipelines.positions.records import (
    AccountRow,
    CurrencyExposureRow,
    ExposureRow,
    PositionRow,
)

POSITIONS_DIR = "positions"
ACCOUNTS_DIR = "accounts"
EXPOSURE_DIR = "exposure"
CURRENCY_DIR = "exposure_currency"

I64, STR, BOOL = pl.Int64, pl.String, pl.Boolean

POSITIONS_SCHEMA = pl.Schema({
    "snapshot_ns": I64, "account_id": I64, "symbol": STR, "net_qty": I64, "avg_price": STR,
    "cost": I64, "currency": STR, "margin": I64, "mark": I64, "unrealized": I64, "lots": I64,
    "ts_ns": I64,
})  # fmt: skip
ACCOUNTS_SCHEMA = pl.Schema({
    "snapshot_ns": I64, "account_id": I64, "currency": STR, "base": BOOL, "account_type": STR,
    "tier": STR, "state": STR, "cash": I64, "balance": I64, "used_margin": I64,
    "withdrawal_pending": I64, "unrealized": I64, "equity": I64, "free_margin": I64,
    "margin_level": STR, "margin_state": STR, "unmarked": STR, "positions": I64,
    "last_seq": I64, "ts_ns": I64,
})  # fmt: skip
EXPOSURE_SCHEMA = pl.Schema({
    "snapshot_ns": I64, "symbol": STR, "client_net_qty": I64, "long_qty": I64,
    "short_qty": I64, "accounts": I64, "value": I64, "limit": I64, "breached": BOOL,
    "ts_ns": I64,
})  # fmt: skip
CURRENCY_SCHEMA = pl.Schema({
    "snapshot_ns": I64, "currency": STR, "amount": STR, "value": I64, "limit": I64,
    "breached": BOOL, "ts_ns": I64,
})  # fmt: skip

SCHEMAS: dict[str, pl.Schema] = {
    POSITIONS_DIR: POSITIONS_SCHEMA,
    ACCOUNTS_DIR: ACCOUNTS_SCHEMA,
    EXPOSURE_DIR: EXPOSURE_SCHEMA,
    CURRENCY_DIR: CURRENCY_SCHEMA,
}

_PART = re.compile(r"^[A-Za-z0-9_]+$")  # no "-" or ".": the file name splits unambiguously
_NAME = re.compile(r"^snapshot-(\d+)-([A-Za-z0-9_]+)\.parquet$")
_WORKER_PART = re.compile(r"^w(\d+)of(\d+)$")


def worker_part(worker_index: int, worker_count: int) -> str:
    """The part name of one worker of ``worker_count``: a reader then knows how many parts a
    complete snapshot has (``latest_snapshot`` skips one still being written)."""
    return f"w{worker_index}of{worker_count}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One worker's share (``part``) of the flow's state at ``snapshot_ns``. Every part of
    one snapshot carries the same ``snapshot_ns``."""

    snapshot_ns: int
    part: str
    positions: tuple[PositionRow, ...] = ()
    accounts: tuple[AccountRow, ...] = ()
    exposure: tuple[ExposureRow, ...] = ()
    currencies: tuple[CurrencyExposureRow, ...] = ()


def _dec(value: object) -> str | None:
    return None if value is None else format(value, "f")


def positions_frame(snapshot_ns: int, rows: Iterable[PositionRow]) -> pl.DataFrame:
    data = [
        {"snapshot_ns": snapshot_ns, "account_id": r.account_id, "symbol": r.symbol,
         "net_qty": r.net_qty, "avg_price": _dec(r.avg_price), "cost": r.cost,
         "currency": r.currency, "margin": r.margin, "mark": r.mark,
         "unrealized": r.unrealized, "lots": len(r.lots), "ts_ns": r.ts_ns}
        for r in rows if r.net_qty != 0  # a closed position is not held
    ]  # fmt: skip
    return pl.DataFrame(data, schema=POSITIONS_SCHEMA).sort("account_id", "symbol")


def accounts_frame(snapshot_ns: int, rows: Iterable[AccountRow]) -> pl.DataFrame:
    """One row per account in its own currency (``base``), then one per other currency it
    holds cash in, with ``cash`` = ``balance`` = that cash and the figures that exist in
    the account currency only (margin, PnL, equity, level) null."""
    data: list[dict[str, Any]] = []
    for r in rows:
        common = {"snapshot_ns": snapshot_ns, "account_id": r.account_id,
                  "account_type": r.account_type, "tier": r.tier, "state": r.state,
                  "last_seq": r.last_seq, "ts_ns": r.ts_ns}  # fmt: skip
        data.append({
            **common, "currency": r.currency, "base": True, "cash": r.cash,
            "balance": r.balance, "used_margin": r.used_margin,
            "withdrawal_pending": r.withdrawal_pending, "unrealized": r.unrealized,
            "equity": r.equity, "free_margin": r.free_margin,
            "margin_level": _dec(r.margin_level), "margin_state": r.margin_state.value,
            "unmarked": ",".join(r.unmarked), "positions": r.positions,
        })  # fmt: skip
        for currency, cash in sorted(r.other_cash):
            data.append({**common, "currency": currency, "base": False, "cash": cash,
                         "balance": cash})  # fmt: skip
    frame = pl.DataFrame(data, schema=ACCOUNTS_SCHEMA) if data else ACCOUNTS_SCHEMA.to_frame()
    return frame.sort("account_id", pl.col("base").not_(), "currency")


def exposure_frame(snapshot_ns: int, rows: Iterable[ExposureRow]) -> pl.DataFrame:
    data = [
        {"snapshot_ns": snapshot_ns, "symbol": r.symbol, "client_net_qty": r.client_net_qty,
         "long_qty": r.long_qty, "short_qty": r.short_qty, "accounts": r.accounts,
         "value": r.value, "limit": r.limit, "breached": r.breached, "ts_ns": r.ts_ns}
        for r in rows
    ]  # fmt: skip
    return pl.DataFrame(data, schema=EXPOSURE_SCHEMA).sort("symbol")


def currency_frame(snapshot_ns: int, rows: Iterable[CurrencyExposureRow]) -> pl.DataFrame:
    data = [
        {"snapshot_ns": snapshot_ns, "currency": r.currency, "amount": _dec(r.amount),
         "value": r.value, "limit": r.limit, "breached": r.breached, "ts_ns": r.ts_ns}
        for r in rows
    ]  # fmt: skip
    return pl.DataFrame(data, schema=CURRENCY_SCHEMA).sort("currency")


def snapshot_date(snapshot_ns: int) -> str:
    return datetime.fromtimestamp(snapshot_ns // 1_000_000_000, tz=UTC).date().isoformat()


def snapshot_path(root: Path, table: str, snapshot_ns: int, part: str) -> Path:
    if table not in SCHEMAS:
        raise ValueError(f"unknown lake table {table!r}; known: {', '.join(SCHEMAS)}")
    if snapshot_ns < 0:
        raise ValueError(f"snapshot_ns must not be negative, got {snapshot_ns}")
    if not _PART.match(part):
        raise ValueError(f"a snapshot part is letters, digits and '_', got {part!r}")
    name = f"snapshot-{snapshot_ns}-{part}.parquet"
    return root / table / f"date={snapshot_date(snapshot_ns)}" / name


def _write_atomically(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.write_parquet(tmp, compression="zstd", compression_level=1, statistics=True)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_snapshot(
    root: Path,
    snapshot_ns: int,
    part: str,
    positions: Iterable[PositionRow],
    accounts: Iterable[AccountRow],
    exposure: Iterable[ExposureRow] = (),
    currencies: Iterable[CurrencyExposureRow] = (),
) -> list[Path]:
    """Write one part of a snapshot: the four tables, empty ones included. Accounts go
    last, so a reader that finds a part's accounts file finds its other tables too."""
    frames = (
        (POSITIONS_DIR, positions_frame(snapshot_ns, positions)),
        (EXPOSURE_DIR, exposure_frame(snapshot_ns, exposure)),
        (CURRENCY_DIR, currency_frame(snapshot_ns, currencies)),
        (ACCOUNTS_DIR, accounts_frame(snapshot_ns, accounts)),
    )
    written = []
    for table, frame in frames:
        path = snapshot_path(root, table, snapshot_ns, part)
        _write_atomically(frame, path)
        written.append(path)
    return written


def snapshots(root: Path) -> dict[int, list[str]]:
    """The snapshots present (their accounts files, written last): ``snapshot_ns`` → parts."""
    found: dict[int, list[str]] = {}
    for path in (root / ACCOUNTS_DIR).glob("date=*/snapshot-*.parquet"):
        m = _NAME.match(path.name)
        if m:
            found.setdefault(int(m.group(1)), []).append(m.group(2))
    return {ns: sorted(parts) for ns, parts in sorted(found.items())}


def _complete(parts: Sequence[str]) -> bool:
    """All ``w<i>of<n>`` parts are present; parts named otherwise are taken as they are."""
    counts = set()
    seen = set()
    for part in parts:
        m = _WORKER_PART.match(part)
        if m is None:
            return True
        seen.add(int(m.group(1)))
        counts.add(int(m.group(2)))
    return len(counts) == 1 and seen == set(range(counts.pop()))


def latest_snapshot_ns(root: Path) -> int | None:
    """The newest complete snapshot's ``snapshot_ns``; None when there is none."""
    complete = [ns for ns, parts in snapshots(root).items() if _complete(parts)]
    return max(complete, default=None)


def read_table(root: Path, table: str, snapshot_ns: int) -> pl.DataFrame:
    """Every part of one snapshot's ``table``, concatenated (the schema when none)."""
    schema = SCHEMAS[table]
    pattern = f"date={snapshot_date(snapshot_ns)}/snapshot-{snapshot_ns}-*.parquet"
    files = sorted(p for p in (root / table).glob(pattern) if _NAME.match(p.name))
    frames = [pl.read_parquet(f) for f in files]
    return pl.concat(frames) if frames else schema.to_frame()


def latest_snapshot(root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(positions, accounts) of the newest complete snapshot, all its parts; two empty
    frames with the schemas when the lake has none."""
    ns = latest_snapshot_ns(root)
    if ns is None:
        return POSITIONS_SCHEMA.to_frame(), ACCOUNTS_SCHEMA.to_frame()
    return read_table(root, POSITIONS_DIR, ns), read_table(root, ACCOUNTS_DIR, ns)


class _LakePartition(StatelessSinkPartition[Snapshot]):
    def __init__(self, root: Path) -> None:
        self.root = root

    def write_batch(self, items: list[Snapshot]) -> None:
        for s in items:
            write_snapshot(self.root, s.snapshot_ns, s.part, s.positions, s.accounts,
                           s.exposure, s.currencies)  # fmt: skip


class LakeSnapshotSink(DynamicSink[Snapshot]):
    """Bytewax sink writing each ``Snapshot`` under ``root`` (``<home>/lake``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> StatelessSinkPartition[Snapshot]:
        return _LakePartition(self.root)
