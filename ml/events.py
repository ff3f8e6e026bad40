"""The labelled event file: one row per event in time order (docs/fraud.md is the contract).

What ``bourse ml simulate`` writes, what training and evaluation read, and what the fraud
flow builds from the OMS's events and the API's logins. An ``Event`` is one row without
its label; money and quantities stay decimals (``Decimal``), never floats.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl

EVENT_TYPES = ("login", "deposit", "withdrawal", "destination_added", "order", "fill")
SCENARIOS = ("normal", "ato", "cycling", "card_testing", "bonus_abuse", "wash_trading")
METHODS = ("card", "bank", "ewallet", "crypto")

SCHEMA: dict[str, Any] = {
    "ts_ns": pl.Int64,
    "type": pl.String,
    "client_id": pl.Int64,
    "account_id": pl.Int64,
    "device_id": pl.String,
    "ip": pl.String,
    "country": pl.String,
    "success": pl.Boolean,
    "amount": pl.String,
    "currency": pl.String,
    "method": pl.String,
    "instrument_id": pl.String,
    "destination_id": pl.String,
    "symbol": pl.String,
    "side": pl.String,
    "qty": pl.String,
    "price": pl.String,
    "label": pl.Int8,
    "scenario": pl.String,
}
COLUMNS = tuple(SCHEMA)
_DECIMALS = ("amount", "qty", "price")


class EventFileError(ValueError):
    """A labelled event file that does not follow the contract (names the column/row)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event, as the features see it: the file's columns less the label.

    ``withdrawal_id`` is not a file column: the flow carries the OMS's withdrawal id so an
    alert can hold it (``HoldWithdrawal``); the file's ``destination_id`` names the
    destination.
    """

    ts_ns: int
    type: str
    client_id: int
    account_id: int | None = None
    device_id: str | None = None
    ip: str | None = None
    country: str | None = None
    success: bool | None = None
    amount: Decimal | None = None
    currency: str | None = None
    method: str | None = None
    instrument_id: str | None = None
    destination_id: str | None = None
    symbol: str | None = None
    side: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    withdrawal_id: int | None = None


_EVENT_FIELDS = tuple(f.name for f in fields(Event) if f.name != "withdrawal_id")


def _decimal(text: str | None, column: str, row: int) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise EventFileError(f"row {row}: {column} {text!r} is not a decimal") from None
    if not value.is_finite():
        raise EventFileError(f"row {row}: {column} {text!r} is not a finite decimal")
    return value


def check_frame(frame: pl.DataFrame, *, labelled: bool = True) -> pl.DataFrame:
    """The frame with the contract's columns in order and types, or a specific error.

    Integer columns stored as another integer width are cast; anything else that differs
    (a missing column, a float amount, an unknown type) is refused.
    """
    wanted = COLUMNS if labelled else COLUMNS[:-2]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise EventFileError(f"missing column(s): {', '.join(missing)}")
    casts = []
    for name in wanted:
        dtype = frame.schema[name]
        want = SCHEMA[name]
        if dtype in (want, pl.Null):
            casts.append(pl.col(name).cast(want))
        elif want.is_integer() and dtype.is_integer():
            casts.append(pl.col(name).cast(want, strict=True))
        elif want == pl.String and dtype in (pl.Categorical, pl.Enum):
            casts.append(pl.col(name).cast(pl.String))
        else:
            raise EventFileError(f"column {name} is {dtype}, expected {want}")
    out = frame.select(casts)
    for name in ("ts_ns", "type", "client_id"):
        nulls = out[name].null_count()
        if nulls:
            raise EventFileError(f"column {name} has {nulls} null value(s)")
    bad = out.filter(~pl.col("type").is_in(EVENT_TYPES))
    if bad.height:
        raise EventFileError(f"unknown event type {bad['type'][0]!r} (one of {EVENT_TYPES})")
    if out.height > 1 and (out["ts_ns"].diff().drop_nulls() < 0).any():
        raise EventFileError("events are not in time order (ts_ns decreases)")
    if labelled:
        if out["label"].null_count():
            raise EventFileError("column label has null value(s)")
        if not out["label"].is_in([0, 1]).all():
            raise EventFileError("column label holds values other than 0 and 1")
    return out


def read_frame(path: Path | str, *, labelled: bool = True) -> pl.DataFrame:
    """Read and check a labelled event file (Parquet)."""
    p = Path(path)
    if not p.is_file():
        raise EventFileError(f"no event file at {p}")
    try:
        frame = pl.read_parquet(p)
    except Exception as exc:  # polars raises several kinds for a file that is not Parquet
        raise EventFileError(f"{p} is not a readable Parquet file: {exc}") from None
    return check_frame(frame, labelled=labelled)


def events_of(frame: pl.DataFrame) -> Iterator[Event]:
    """The frame's rows as events, in the frame's order."""
    for i, row in enumerate(frame.select(_EVENT_FIELDS).iter_rows(named=True)):
        for name in _DECIMALS:
            row[name] = _decimal(row[name], name, i)
        yield Event(**row)


def labels_of(frame: pl.DataFrame) -> list[int]:
    return [int(x) for x in frame["label"]]


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def frame_of(
    events: Sequence[Event], labels: Iterable[int], scenarios: Iterable[str]
) -> pl.DataFrame:
    """The contract's frame for events with their labels and scenarios."""
    cols: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for ev in events:
        for name in _EVENT_FIELDS:
            value = getattr(ev, name)
            cols[name].append(_text(value) if name in _DECIMALS else value)
    cols["label"] = list(labels)
    cols["scenario"] = list(scenarios)
    if not len(cols["label"]) == len(cols["scenario"]) == len(events):
        raise ValueError("one label and one scenario per event")
    return pl.DataFrame(cols, schema=SCHEMA)


def write_frame(frame: pl.DataFrame, path: Path | str) -> Path:
    """Write a checked frame as Parquet, atomically (a reader never sees half a file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    checked = check_frame(frame)
    tmp = p.with_name(p.name + ".tmp")
    checked.write_parquet(tmp)
    tmp.replace(p)
    return p
