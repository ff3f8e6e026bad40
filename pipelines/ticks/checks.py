"""The row checks of the bad-tick filters and their reason codes (``filters.screen``).

Each reject carries the first reason that applies, in the order of ``schema.Reason``:
the price checks (missing, non-positive, crossed, locked), then the feed's time line
(duplicate, out of order, future, stale), then the market's state (session closed, halted),
then the bounds (spread, trade size). The checks are Polars expressions built once per set
of thresholds (``_flag_exprs``); a per-feed threshold of a ``screen_many`` pass is a column
indexed by the row's feed ``_f`` (``_by_feed``).
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from pipelines.ticks.config import FilterConfig
from pipelines.ticks.schema import MAX_TS_NS, MIN_TS_NS, REASON_DTYPE, Reason

if TYPE_CHECKING:
    from pipelines.ticks.filters import _Feed

_NS_PER_MINUTE = 60_000_000_000
# Up to this many minutes between a feed's first and last event times in a batch, the
# session is asked minute by minute across the span instead of row by row (``_closed_rows``).
_SPAN_MINUTES = 32
# Columns that make two records the same record.
_KEY = ["ts_ns", "bid", "ask", "bid_size", "ask_size", "price", "qty", "trade_id"]


def _bounds(feed: pl.Series, n: int) -> list[int]:
    """Where each of ``n`` feeds starts in ``feed`` (sorted feed indexes), and the end."""
    if feed.len() <= 4_096:  # tens of microseconds at most, where search_sorted costs 50-100
        values = feed.to_list()
        return [*(bisect.bisect_left(values, k) for k in range(n)), len(values)]
    at = feed.search_sorted(pl.Series(range(n), dtype=feed.dtype), side="left").to_list()
    return [*at, feed.len()]


def _one(values: list[int]) -> int | None:
    """The value all feeds share, or None when they differ."""
    return values[0] if all(v == values[0] for v in values) else None


def _by_feed(values: list[int]) -> pl.Expr:
    """A per-feed value on every row, by the row's feed index ``_f``."""
    return pl.lit(pl.Series(values, dtype=pl.Int64)).gather(pl.col("_f"))


@functools.cache
def _flag_exprs(
    max_spread_bps: int | None, qty_cap: int | None, future_tolerance_ns: int, stale_after_ns: int
) -> tuple[list[pl.Expr], pl.Expr]:
    """The row checks and the reason chain, built once per set of thresholds.

    A threshold given as None differs between the feeds of the batch: it is read from the
    per-feed column ``_spread_bps`` or ``_qty_cap``.
    """
    spread_bps = pl.col("_spread_bps") if max_spread_bps is None else pl.lit(max_spread_bps)
    cap = pl.col("_qty_cap") if qty_cap is None else pl.lit(qty_cap)
    is_q = pl.col("kind") == "quote"
    bid, ask, price, qty = pl.col("bid"), pl.col("ask"), pl.col("price"), pl.col("qty")
    ts, recv = pl.col("ts_ns"), pl.col("recv_ns")
    missing = (
        pl.when(is_q).then(bid.is_null() | ask.is_null()).otherwise(price.is_null() | qty.is_null())
    )
    nonpos = (
        pl.when(is_q)
        .then((bid <= 0) | (ask <= 0) | (pl.col("bid_size") <= 0) | (pl.col("ask_size") <= 0))
        .otherwise((price <= 0) | (qty <= 0))
        .fill_null(False)
    )
    crossed = (is_q & (bid > ask)).fill_null(False)
    locked = (is_q & (bid == ask)).fill_null(False)
    future = (ts > recv + future_tolerance_ns).fill_null(True)
    # A stamp outside the plausible window is no time at all: malformed, before any session
    # logic or arithmetic sees it.
    badts = ~ts.is_between(MIN_TS_NS, MAX_TS_NS - 1).fill_null(False)
    flags = [
        badts.alias("_badts"),
        missing.alias("_missing"),
        nonpos.alias("_nonpos"),
        crossed.alias("_crossed"),
        locked.alias("_locked"),
        future.alias("_future"),
        (recv - ts > stale_after_ns).fill_null(False).alias("_stale"),
        (is_q & ((ask - bid) * 20_000 > (ask + bid) * spread_bps)).alias("_wide"),
        (~is_q & (qty > cap)).alias("_huge"),
        pl.when(is_q).then(bid + ask).otherwise(price * 2).alias("_v"),
        (~(badts | missing | nonpos | crossed | locked | future)).alias("_time_ok"),
    ]
    # The reason as its code in ``REASON_DTYPE`` (a small integer): a chain of string or
    # enum literals costs ten times more per row, and rejects are about 1% of the rows.
    reason = (
        pl.when("_badts").then(_code(Reason.MALFORMED))
        .when("_missing").then(_code(Reason.MISSING_PRICE))
        .when("_nonpos").then(_code(Reason.NON_POSITIVE))
        .when("_crossed").then(_code(Reason.CROSSED))
        .when("_locked").then(_code(Reason.LOCKED))
        .when("_ooo").then(_code(Reason.OUT_OF_ORDER))
        .when("_future").then(_code(Reason.FUTURE))
        .when("_stale").then(_code(Reason.STALE))
        .when("_closed").then(_code(Reason.SESSION_CLOSED))
        .when("_halted").then(_code(Reason.HALTED))
        .when("_wide").then(_code(Reason.WIDE_SPREAD))
        .when("_huge").then(_code(Reason.FAT_FINGER))
    )  # fmt: skip
    return flags, reason


# Each reason's name, at its code's position (``REASON_DTYPE``'s categories in order).
_REASON_NAMES = pl.Series("reason", list(REASON_DTYPE.categories), dtype=REASON_DTYPE)


_CODES = {r: _REASON_NAMES.to_list().index(r.value) for r in Reason}


def _code(reason: Reason) -> pl.Expr:
    return pl.lit(_CODES[reason], pl.UInt8)


def _duplicates(c: pl.DataFrame, feeds: list[_Feed]) -> pl.Series:
    """The rows (``_i``) that repeat a record their feed already saw at the same event time.

    Only rows sharing an event time with the row before them (or with the feed's last
    time, ``_same``) can repeat one, so the hashing runs on those few rows alone. A
    duplicate passed the price checks (``_same`` implies it), so its reason replaces any
    later one in the order.
    """
    repeats = c.filter("_same").select("_f", "ts_ns").unique()
    # The few rows at a repeated time, found on the key columns alone (a filter of every
    # column of the batch costs more than the rest of this function).
    group = (
        c.lazy()
        .select("_f", "_i", "_time_ok", *_KEY)
        .filter(pl.col("_time_ok") & pl.col("ts_ns").is_in(repeats["ts_ns"].implode()))
        .join(repeats.lazy(), on=["_f", "ts_ns"], how="semi", maintain_order="left")
        .collect(engine="in-memory")
    )
    seen = set(repeats["_f"].to_list())
    edges = [
        f.state.edge.select(pl.lit(k, pl.UInt32).alias("_f"), pl.lit(-1, pl.Int64).alias("_i"),
                            *_KEY)
        for k, f in enumerate(feeds) if k in seen and not f.state.edge.is_empty()
    ]  # fmt: skip
    both = pl.concat([*edges, group.select("_f", pl.col("_i").cast(pl.Int64), *_KEY)])
    return both.filter(~pl.struct("_f", *_KEY).is_first_distinct() & (pl.col("_i") >= 0))["_i"]


def _closed_rows(frame: pl.DataFrame, feeds: list[_Feed], cfg: FilterConfig) -> pl.Expr:
    """``_closed``: whether each row's feed's session is closed at its event time.

    Sessions change state on whole minutes, so each distinct minute of the batch is asked
    once (the session caches the answer): the cost follows the rows, never the time span
    between them (one stray stamp decades away costs one more minute, not millions).
    """
    closed_by_feed: list[pl.Series | None] = []  # None: no row of the feed is closed
    all_ts = frame.get_column("ts_ns")
    for f in feeds:
        closed_by_feed.append(None)
        if not cfg.check_sessions or f.session is None:
            continue
        ts = all_ts.slice(f.start, f.end - f.start)
        session = f.session
        lo, hi = ts.min(), ts.max()
        if isinstance(lo, int) and isinstance(hi, int) and MIN_TS_NS <= lo <= hi < MAX_TS_NS:
            first, last = lo // _NS_PER_MINUTE, hi // _NS_PER_MINUTE
            # A batch spans a few minutes at most, as a rule: when the session is open at
            # every minute of the span, no row is closed, and no row need be looked at.
            if last - first < _SPAN_MINUTES and all(
                session.is_open_ns(m * _NS_PER_MINUTE) for m in range(first, last + 1)
            ):
                continue
        minutes = ts.filter(ts.is_between(MIN_TS_NS, MAX_TS_NS - 1)) // _NS_PER_MINUTE
        closed = [
            m for m in minutes.unique().to_list() if not session.is_open_ns(m * _NS_PER_MINUTE)
        ]
        if closed:
            closed_by_feed[-1] = (
                (ts // _NS_PER_MINUTE)
                .is_in(pl.Series(closed, dtype=pl.Int64).implode())
                .fill_null(False)
            )
    if all(c is None for c in closed_by_feed):
        return pl.lit(False).alias("_closed")
    parts = [
        pl.repeat(False, f.end - f.start, dtype=pl.Boolean, eager=True) if c is None else c
        for f, c in zip(feeds, closed_by_feed, strict=True)
    ]
    return pl.lit(pl.concat(parts) if len(parts) > 1 else parts[0]).alias("_closed")


def _in_spans(spans_by_feed: Sequence[Sequence[tuple[int, int]]], multi: bool) -> pl.Expr:
    """Whether each row's event time is inside one of its feed's ``[start, end)`` spans."""
    ts = pl.col("ts_ns")
    expr = pl.lit(False)
    for k, spans in enumerate(spans_by_feed):
        for start, end in spans:
            inside = (ts >= start) & (ts < end)
            expr = expr | ((pl.col("_f") == k) & inside if multi else inside)
    return expr
