"""Bad-tick filters: one vectorized pass over a batch of one feed, with a reason per reject.

``screen`` takes a feed's state and a batch (rows of ``schema.TICK_SCHEMA`` for one symbol,
in source order) and splits the batch into accepted and rejected ticks. It is a pure
function: the state is an immutable snapshot and a new one comes back, so a Bytewax
``StatefulBatchLogic`` can hand it to recovery as it is, and a resumed run decides exactly
as an uninterrupted one.

Each reject carries the first reason that applies, in the order of ``schema.Reason``:
the price checks (missing, non-positive, crossed, locked), then the feed's time line
(duplicate, out of order, future, stale), then the market's state (session closed, halted),
then the bounds (spread, trade size), and last the statistical checks.

The statistical check compares a quote's mid (or a trade's price) with the median of the
previous block of ``block_rows`` clean values, and flags it when it is further away than
``spike_mads`` robust deviations (1.4826 × the block's median absolute deviation) and than
a floor in basis points. A flagged value is a bad tick unless most of the next
``confirm_ticks`` values confirm it: when the market really jumps, the ticks after the jump
stay near the new level and the jump is accepted, even when one of them is itself a bad
tick. A flagged value near the end of a batch waits for
the next batch (it and the rows after it are held in the state as ``pending``), so a
decision never depends on where a batch happened to end. Block medians instead of a rolling
median keep the pass at a few tens of nanoseconds per tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from pipelines.ticks.config import FilterConfig
from pipelines.ticks.schema import REASON_DTYPE, SIZE_SCALE, TICK_SCHEMA, Reason, empty_ticks
from trading.instruments import Instrument
from trading.sessions import TradingSession

_NS_PER_MINUTE = 60_000_000_000
# Columns that make two records the same record.
_KEY = ["ts_ns", "bid", "ask", "bid_size", "ask_size", "price", "qty", "trade_id"]
_MIN_TS = -(2**63)


def _empty_edge() -> pl.DataFrame:
    return pl.DataFrame(schema={c: TICK_SCHEMA[c] for c in _KEY})


@dataclass(frozen=True, slots=True)
class FeedState:
    """What one feed's filters remember between batches. Never mutated: replaced."""

    last_ts: int | None = None
    # The records seen at ``last_ts``, so a duplicate across a batch boundary is caught.
    edge: pl.DataFrame = field(default_factory=_empty_edge)
    # The last ``block_rows`` clean values (2 × mid for quotes, 2 × price for trades).
    tail: tuple[int, ...] = ()
    # Rows waiting for the ticks that confirm or refute a flagged value.
    pending: pl.DataFrame = field(default_factory=empty_ticks)
    counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Screened:
    state: FeedState
    accepted: pl.DataFrame  # TICK_SCHEMA
    rejected: pl.DataFrame  # TICK_SCHEMA + reason + detail


def screen(
    state: FeedState,
    batch: pl.DataFrame,
    inst: Instrument,
    cfg: FilterConfig,
    session: TradingSession | None,
    *,
    final: bool = False,
) -> Screened:
    """Split ``batch`` (after any pending rows) into accepted and rejected ticks.

    ``final`` says no more rows will come: pending values are then decided on the rows
    there are (confirmed when at least one follows and most of those that follow agree).
    """
    frame = batch if state.pending.is_empty() else pl.concat([state.pending, batch])
    if frame.is_empty():
        return Screened(state, frame, _with_reason(frame, None))
    th = cfg.thresholds(inst)
    frame = frame.with_row_index("_i")
    last_ts = _MIN_TS if state.last_ts is None else state.last_ts

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
    crossed = is_q & (bid > ask)
    locked = is_q & (bid == ask)
    future = ts > recv + cfg.future_tolerance_ns
    stale = recv - ts > cfg.stale_after_ns
    c = frame.with_columns(
        _missing=missing,
        _nonpos=nonpos,
        _crossed=crossed.fill_null(False),
        _locked=locked.fill_null(False),
        _future=future.fill_null(True),
        _stale=stale.fill_null(False),
        _v=pl.when(is_q).then(bid + ask).otherwise(price * 2),
    ).with_columns(
        _time_ok=~(
            pl.col("_missing")
            | pl.col("_nonpos")
            | pl.col("_crossed")
            | pl.col("_locked")
            | pl.col("_future")
        )
    )
    masked_ts = pl.when(pl.col("_time_ok")).then(ts)
    c = c.with_columns(
        _prev_max=pl.max_horizontal(
            masked_ts.cum_max().forward_fill().shift(1).fill_null(last_ts), pl.lit(last_ts)
        )
    )
    c = c.with_columns(
        _ooo=pl.col("_time_ok") & (ts < pl.col("_prev_max")),
        _dup=_duplicates(c, state),
        _closed=_closed(c, session) if cfg.check_sessions and session is not None else False,
        _halted=_halted(cfg.halts.get(inst.symbol, ())),
        _wide=is_q & ((ask - bid) * 20_000 > (ask + bid) * th.max_spread_bps),
        _huge=~is_q & (qty > th.max_trade_lots * int(inst.contract_size * SIZE_SCALE)),
    )
    reason = (
        pl.when("_missing").then(pl.lit(Reason.MISSING_PRICE.value))
        .when("_nonpos").then(pl.lit(Reason.NON_POSITIVE.value))
        .when("_crossed").then(pl.lit(Reason.CROSSED.value))
        .when("_locked").then(pl.lit(Reason.LOCKED.value))
        .when("_dup").then(pl.lit(Reason.DUPLICATE.value))
        .when("_ooo").then(pl.lit(Reason.OUT_OF_ORDER.value))
        .when("_future").then(pl.lit(Reason.FUTURE.value))
        .when("_stale").then(pl.lit(Reason.STALE.value))
        .when("_closed").then(pl.lit(Reason.SESSION_CLOSED.value))
        .when("_halted").then(pl.lit(Reason.HALTED.value))
        .when("_wide").then(pl.lit(Reason.WIDE_SPREAD.value))
        .when("_huge").then(pl.lit(Reason.FAT_FINGER.value))
    )  # fmt: skip
    c = c.with_columns(reason=reason.cast(REASON_DTYPE))

    clean = c.filter(pl.col("reason").is_null()).select("_i", "_v", is_q.alias("_q"))
    outliers, hold_from, tail = _outliers(clean, state.tail, inst, cfg, final=final)
    c = c.with_columns(
        reason=pl.when(pl.col("_i").is_in(outliers["_i"].implode()))
        .then(
            pl.when(is_q)
            .then(pl.lit(Reason.SPIKE.value))
            .otherwise(pl.lit(Reason.FAT_FINGER.value))
            .cast(REASON_DTYPE)
        )
        .otherwise(pl.col("reason"))
    )
    done = c if hold_from is None else c.filter(pl.col("_i") < hold_from)
    pending = frame.head(0) if hold_from is None else frame.filter(pl.col("_i") >= hold_from)
    accepted = done.filter(pl.col("reason").is_null()).select(*TICK_SCHEMA)
    rejected = done.filter(pl.col("reason").is_not_null())
    rejected = rejected.select(*TICK_SCHEMA, "reason", pl.lit(None, pl.String).alias("detail"))
    new_state = _advance(state, done, pending.drop("_i"), tail, accepted.height, rejected)
    return Screened(new_state, accepted, rejected)


def _duplicates(c: pl.DataFrame, state: FeedState) -> pl.Series:
    """Rows that repeat a record already seen at the same event time.

    Only rows sharing an event time with the row before them (or with the feed's last
    time) can repeat one, so the hashing runs on those few rows alone.
    """
    ok = c["_time_ok"]
    ok_ts = c["ts_ns"].filter(ok)
    prev = ok_ts.shift(1, fill_value=state.last_ts)
    repeats = ok_ts.filter(ok_ts == prev).unique().implode()
    if repeats.list.len()[0] == 0:
        return pl.Series(values=[False] * c.height, dtype=pl.Boolean)
    group = c.filter(ok & c["ts_ns"].is_in(repeats)).select("_i", *_KEY)
    edge = state.edge.filter(pl.col("ts_ns").is_in(repeats))
    both = pl.concat([edge.select(pl.lit(-1, pl.Int64).alias("_i"), *_KEY),
                      group.with_columns(pl.col("_i").cast(pl.Int64))])  # fmt: skip
    dup_i = both.filter(~pl.struct(_KEY).is_first_distinct() & (pl.col("_i") >= 0))["_i"]
    return c["_i"].cast(pl.Int64).is_in(dup_i.implode())


def _closed(c: pl.DataFrame, session: TradingSession) -> pl.Series:
    minutes = (c["ts_ns"] // _NS_PER_MINUTE).fill_null(0)
    unique = minutes.unique().to_list()
    closed = [not session.is_open_ns(m * _NS_PER_MINUTE) for m in unique]
    return minutes.replace_strict(unique, closed, return_dtype=pl.Boolean)


def _halted(spans: tuple[tuple[int, int], ...]) -> pl.Expr:
    expr = pl.lit(False)
    for start, end in spans:
        expr = expr | ((pl.col("ts_ns") >= start) & (pl.col("ts_ns") < end))
    return expr


def _outliers(
    clean: pl.DataFrame,
    tail: tuple[int, ...],
    inst: Instrument,
    cfg: FilterConfig,
    *,
    final: bool,
) -> tuple[pl.DataFrame, int | None, tuple[int, ...]]:
    """The clean rows that are unconfirmed outliers, where holding starts, and the new tail.

    Returns (rows ``_i`` to reject, the ``_i`` from which rows wait, the last block of
    accepted values).
    """
    th = cfg.thresholds(inst)
    b, m = cfg.block_rows, cfg.confirm_ticks
    n_tail = len(tail)
    head = pl.DataFrame(
        {"_i": [-1] * n_tail, "_v": list(tail), "_q": [True] * n_tail},
        schema={"_i": pl.Int64, "_v": pl.Int64, "_q": pl.Boolean},
    )
    values = (
        pl.concat([head, clean.with_columns(pl.col("_i").cast(pl.Int64))])
        .with_row_index("_j")
        .with_columns(_block=(pl.col("_j").cast(pl.Int64) + b - n_tail) // b)
    )
    stats = values.group_by("_block").agg(
        _med=pl.col("_v").median(), _mad=(pl.col("_v") - pl.col("_v").median()).abs().median()
    )
    prev = stats.with_columns(pl.col("_block") + 1).rename({"_med": "_pmed", "_mad": "_pmad"})
    v = pl.col("_v")
    floor_bps = pl.when(pl.col("_q")).then(th.spike_floor_bps).otherwise(th.fat_finger_bps)
    scored = (
        values.join(prev, on="_block", how="left")
        .join(stats, on="_block", how="left")
        .sort("_j")
        .with_columns(_ref=pl.coalesce("_pmed", "_med"), _mad=pl.coalesce("_pmad", "_mad"))
        .with_columns(
            _thr=pl.max_horizontal(
                pl.col("_mad") * (1.4826 * th.spike_mads),
                pl.col("_ref") * floor_bps / 10_000,
                pl.lit(4 * inst.tick_int),
            )
        )
        .with_columns(_cand=(v - pl.col("_ref")).abs() > pl.col("_thr"))
    )
    agree = [((v.shift(-s) - v).abs() <= pl.col("_thr")) for s in range(1, m + 1)]
    scored = scored.with_columns(
        _agree=pl.sum_horizontal([a.fill_null(False) for a in agree]),
        _seen=pl.sum_horizontal([v.shift(-s).is_not_null() for s in range(1, m + 1)]),
    ).filter(pl.col("_i") >= 0)
    cand = scored.filter("_cand")
    hold_from: int | None = None
    if not final:
        waiting = cand.filter(pl.col("_seen") < m)
        if not waiting.is_empty():
            hold_from = int(waiting["_i"].min())  # type: ignore[arg-type]
    if final:
        bad = cand.filter(~((pl.col("_seen") > 0) & (pl.col("_agree") * 2 > pl.col("_seen"))))
    else:
        bad = cand.filter((pl.col("_seen") >= m) & (pl.col("_agree") * 2 <= m))
    kept = scored.filter(~pl.col("_i").is_in(bad["_i"].implode()))
    if hold_from is not None:
        kept = kept.filter(pl.col("_i") < hold_from)
    new_tail = (tail + tuple(kept["_v"].to_list()[-b:]))[-b:]
    return bad.select("_i"), hold_from, new_tail


def _advance(
    state: FeedState,
    done: pl.DataFrame,
    pending: pl.DataFrame,
    tail: tuple[int, ...],
    n_accepted: int,
    rejected: pl.DataFrame,
) -> FeedState:
    timed = done.filter(pl.col("_time_ok"))
    last_ts = state.last_ts
    edge = state.edge
    if not timed.is_empty():
        top = int(timed["ts_ns"].max())  # type: ignore[arg-type]
        at_top = timed.filter(pl.col("ts_ns") == top).select(_KEY)
        if last_ts is None or top > last_ts:
            last_ts, edge = top, at_top
        elif top == last_ts:
            edge = pl.concat([edge, at_top]).unique(maintain_order=True)
    counts = dict(state.counts)
    counts["accepted"] = counts.get("accepted", 0) + n_accepted
    if not rejected.is_empty():
        for reason, n in rejected.group_by("reason").len().iter_rows():
            counts[str(reason)] = counts.get(str(reason), 0) + n
    return FeedState(last_ts=last_ts, edge=edge, tail=tail, pending=pending, counts=counts)


def _with_reason(frame: pl.DataFrame, reason: str | None) -> pl.DataFrame:
    return frame.select(
        *TICK_SCHEMA,
        pl.lit(reason, REASON_DTYPE).alias("reason"),
        pl.lit(None, pl.String).alias("detail"),
    )
