"""The one tick schema every source normalizes to, and the reason codes of rejected ticks.

A tick is a row of a Polars frame. Quotes and trades share the schema: a quote fills
``bid``/``ask`` (and sizes when the vendor gives them), a trade fills ``price``/``qty``.
Prices are integers in the instrument's price units (``price × 10**price_precision``, a
multiple of the tick), the same units ``trading.quotes.Quote`` uses. Sizes and quantities
are integers of ``SIZE_SCALE``-ths of the underlying (BTC for BTC/USDT, EUR for EUR/USD,
contracts for an index): venues quote depth finer than the broker's order lot (Binance
prints 0.000001 BTC; our lot is 0.00001), so market data keeps its own, finer unit.
Nothing here is ever a float, so nothing drifts.

``source_seq`` is the 0-based position of the record in its source (row number in a file,
counting data rows only, header excluded), so every accepted or rejected tick can be
traced back to the vendor's record, and a resumed replay continues where it stopped.

The lake schema (``LAKE_SCHEMA``) adds ``day`` and, for rejected ticks, ``reason`` and
``detail``. It is
documented for analysts in ``docs/lake.md``.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl

# Sizes and quantities: units of the underlying × SIZE_SCALE (a satoshi for bitcoin).
SIZE_SCALE = 10**8


def size_to_qty_units(size: int, contract_size_units: int, qty_scale: int) -> int:
    """A market-data size as order quantity units (lots × qty_scale), rounded down.

    ``contract_size_units`` is the instrument's contract size × SIZE_SCALE. Rounding down
    keeps the quoted depth a venue can rely on from growing.
    """
    return size * qty_scale // contract_size_units


class Kind(StrEnum):
    QUOTE = "quote"
    TRADE = "trade"


class Reason(StrEnum):
    """Why a tick was rejected. One code per tick: the first that applies, in this order."""

    MALFORMED = "malformed"  # the record could not be parsed (kept with its source_seq)
    UNKNOWN_SYMBOL = "unknown_symbol"  # no catalogue instrument under that name
    MISSING_PRICE = "missing_price"  # a price field is empty
    NON_POSITIVE = "non_positive"  # a price or a size is zero or negative
    CROSSED = "crossed"  # bid above ask
    LOCKED = "locked"  # bid equal to ask
    DUPLICATE = "duplicate"  # the same record as one already seen
    OUT_OF_ORDER = "out_of_order"  # event time before one already seen on this feed
    FUTURE = "future"  # event time after receive time, beyond the tolerance
    STALE = "stale"  # received too long after its event time
    SESSION_CLOSED = "session_closed"  # the instrument's session is closed at event time
    HALTED = "halted"  # the symbol is halted at event time
    WIDE_SPREAD = "wide_spread"  # spread beyond the symbol's bound
    SPIKE = "spike"  # quote mid far from recent robust statistics, not confirmed after
    FAT_FINGER = "fat_finger"  # trade print far from recent prints, or an absurd size


REASONS: tuple[str, ...] = tuple(r.value for r in Reason)
REASON_DTYPE = pl.Enum(list(REASONS))
KIND_DTYPE = pl.Enum([k.value for k in Kind])

# Column order is the schema: sources emit exactly these columns, in this order.
TICK_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),  # the catalogue's canonical symbol, e.g. "EUR/USD"
    "kind": KIND_DTYPE,
    "ts_ns": pl.Int64(),  # event time, UTC nanoseconds since the epoch
    "recv_ns": pl.Int64(),  # receive time; a replay uses the event time
    "bid": pl.Int64(),  # price units; null on trades
    "ask": pl.Int64(),
    "bid_size": pl.Int64(),  # SIZE_SCALE units; null when the vendor gives none
    "ask_size": pl.Int64(),
    "price": pl.Int64(),  # trade price, price units; null on quotes
    "qty": pl.Int64(),  # trade quantity, SIZE_SCALE units
    "trade_id": pl.String(),  # the venue's trade id, when it has one
    "source": pl.String(),  # the feed: file name, "synthetic:<seed>", a live session id
    "source_seq": pl.Int64(),
}

LAKE_SCHEMA: dict[str, pl.DataType] = {**TICK_SCHEMA, "day": pl.Date()}

# The event times a tick may carry: [1990-01-01, 2100-01-01) UTC. A stamp outside is a
# placeholder (the epoch, 9999-12-31) or a parse gone wrong, never a market's tick; sources
# reject it as malformed before any arithmetic could overflow, and the filters before any
# session logic. (Years 1 and 9999 do not fit int64 nanoseconds at all.)
MIN_TS_NS = 631_152_000_000_000_000
MAX_TS_NS = 4_102_444_800_000_000_000
TS_WINDOW = "1990-01-01 to 2100-01-01"
# ``detail`` says what was wrong where the code alone would not (the raw text of a malformed
# row, the bound a spread broke); it is null when the reason says it all.
REJECTED_SCHEMA: dict[str, pl.DataType] = {
    **LAKE_SCHEMA,
    "reason": REASON_DTYPE,
    "detail": pl.String(),
}


def empty_ticks() -> pl.DataFrame:
    return pl.DataFrame(schema=TICK_SCHEMA)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with exactly the tick columns, in order and of their types.

    Raises ``ValueError`` naming the first missing column, so a source that forgot one
    fails loudly rather than writing a lake file of the wrong shape.
    """
    missing = [c for c in TICK_SCHEMA if c not in frame.columns]
    if missing:
        raise ValueError(f"tick frame lacks column(s) {missing}; has {frame.columns}")
    return frame.select(pl.col(c).cast(t, strict=True) for c, t in TICK_SCHEMA.items())


def partition_name(symbol: str) -> str:
    """The symbol as a lake directory name: ``EUR/USD`` -> ``EURUSD``."""
    return symbol.replace("/", "")
