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

import functools
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
    last_ts = _MIN_TS if state.last_ts is None else state.last_ts
    qty_cap = th.max_trade_lots * int(inst.contract_size * SIZE_SCALE)
    flags, reason = _flag_exprs(th.max_spread_bps, qty_cap, cfg.future_tolerance_ns,
                                cfg.stale_after_ns)  # fmt: skip
    market = [_halted(cfg.halts.get(inst.symbol, ()))]
    if cfg.check_sessions and session is not None:
        market.append(_closed(frame["ts_ns"], session))
    else:
        market.append(pl.lit(False).alias("_closed"))
    # One query plan for the row checks: a few collects per batch, not one per step, so a
    # small live batch costs well under a millisecond.
    masked_ts = pl.when(pl.col("_time_ok")).then(pl.col("ts_ns"))
    before = masked_ts.forward_fill().shift(1).fill_null(last_ts)
    c = (
        frame.lazy()
        .with_row_index("_i")
        .with_columns(flags)
        .with_columns(
            *market,
            pl.max_horizontal(
                masked_ts.cum_max().forward_fill().shift(1).fill_null(last_ts), pl.lit(last_ts)
            ).alias("_prev_max"),
            (pl.col("_time_ok") & (pl.col("ts_ns") == before)).alias("_same"),
        )
        .with_columns(_ooo=pl.col("_time_ok") & (pl.col("ts_ns") < pl.col("_prev_max")))
        .with_columns(reason=reason)
        .collect(engine="in-memory")
    )
    if c["_same"].any():
        dup = _duplicates(c, state)
        c = c.with_columns(
            reason=pl.when(dup).then(pl.lit(Reason.DUPLICATE.value, REASON_DTYPE))
            .otherwise(pl.col("reason"))
        )  # fmt: skip
    scored = _score(c, state.tail, inst, cfg)
    cand = scored.filter("_cand")
    hold_from: int | None = None
    m = cfg.confirm_ticks
    if final:
        bad = cand.filter(~((pl.col("_seen") > 0) & (pl.col("_agree") * 2 > pl.col("_seen"))))
    else:
        waiting = cand.filter(pl.col("_seen") < m)
        if not waiting.is_empty():
            hold_from = int(waiting["_i"].min())  # type: ignore[arg-type]
        bad = cand.filter((pl.col("_seen") >= m) & (pl.col("_agree") * 2 <= m))
    if not bad.is_empty():
        c = c.with_columns(
            reason=pl.when(pl.col("_i").is_in(bad["_i"].implode()))
            .then(
                pl.when(pl.col("kind") == "quote")
                .then(pl.lit(Reason.SPIKE.value))
                .otherwise(pl.lit(Reason.FAT_FINGER.value))
                .cast(REASON_DTYPE)
            )
            .otherwise(pl.col("reason"))
        )
    kept = scored.filter(~pl.col("_i").is_in(bad["_i"].implode()))
    if hold_from is None:
        done, pending = c, frame.head(0)
    else:
        done = c.filter(pl.col("_i") < hold_from)
        pending = frame.slice(hold_from)
        kept = kept.filter(pl.col("_i") < hold_from)
    b = cfg.block_rows
    tail = (state.tail + tuple(kept["_v"].tail(b).to_list()))[-b:]
    accepted = done.filter(pl.col("reason").is_null()).select(*TICK_SCHEMA)
    rejected = done.filter(pl.col("reason").is_not_null()).select(
        *TICK_SCHEMA, "reason", pl.lit(None, pl.String).alias("detail")
    )
    new_state = _advance(state, done, pending, tail, accepted.height, rejected)
    return Screened(new_state, accepted, rejected)


@functools.cache
def _flag_exprs(
    max_spread_bps: int, qty_cap: int, future_tolerance_ns: int, stale_after_ns: int
) -> tuple[list[pl.Expr], pl.Expr]:
    """The row checks and the reason chain, built once per set of thresholds."""
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
    flags = [
        missing.alias("_missing"),
        nonpos.alias("_nonpos"),
        crossed.alias("_crossed"),
        locked.alias("_locked"),
        future.alias("_future"),
        (recv - ts > stale_after_ns).fill_null(False).alias("_stale"),
        (is_q & ((ask - bid) * 20_000 > (ask + bid) * max_spread_bps)).alias("_wide"),
        (~is_q & (qty > qty_cap)).alias("_huge"),
        pl.when(is_q).then(bid + ask).otherwise(price * 2).alias("_v"),
        (~(missing | nonpos | crossed | locked | future)).alias("_time_ok"),
    ]
    reason = (
        pl.when("_missing").then(pl.lit(Reason.MISSING_PRICE.value))
        .when("_nonpos").then(pl.lit(Reason.NON_POSITIVE.value))
        .when("_crossed").then(pl.lit(Reason.CROSSED.value))
        .when("_locked").then(pl.lit(Reason.LOCKED.value))
        .when("_ooo").then(pl.lit(Reason.OUT_OF_ORDER.value))
        .when("_future").then(pl.lit(Reason.FUTURE.value))
        .when("_stale").then(pl.lit(Reason.STALE.value))
        .when("_closed").then(pl.lit(Reason.SESSION_CLOSED.value))
        .when("_halted").then(pl.lit(Reason.HALTED.value))
        .when("_wide").then(pl.lit(Reason.WIDE_SPREAD.value))
        .when("_huge").then(pl.lit(Reason.FAT_FINGER.value))
        .cast(REASON_DTYPE)
    )  # fmt: skip
    return flags, reason


def _duplicates(c: pl.DataFrame, state: FeedState) -> pl.Series:
    """Rows that repeat a record already seen at the same event time.

    Only rows sharing an event time with the row before them (or with the feed's last
    time, ``_same``) can repeat one, so the hashing runs on those few rows alone. A
    duplicate passed the price checks (``_same`` implies it), so its reason replaces any
    later one in the order.
    """
    repeats = c.filter("_same")["ts_ns"].unique().implode()
    group = c.filter(pl.col("_time_ok") & pl.col("ts_ns").is_in(repeats)).select("_i", *_KEY)
    edge = state.edge.filter(pl.col("ts_ns").is_in(repeats))
    both = pl.concat([edge.select(pl.lit(-1, pl.Int64).alias("_i"), *_KEY),
                      group.with_columns(pl.col("_i").cast(pl.Int64))])  # fmt: skip
    dup_i = both.filter(~pl.struct(_KEY).is_first_distinct() & (pl.col("_i") >= 0))["_i"]
    return c["_i"].cast(pl.Int64).is_in(dup_i.implode())


def _closed(ts: pl.Series, session: TradingSession) -> pl.Expr:
    """Whether the session is closed at each tick: the closed spans of the batch's minutes.

    Sessions change state on whole minutes, so the batch's span is walked minute by
    minute (cached in the session) and the closed runs become a few range tests.
    """
    lo, hi = ts.min(), ts.max()
    if not isinstance(lo, int) or not isinstance(hi, int):
        return pl.lit(False).alias("_closed")
    first, last = lo // _NS_PER_MINUTE, hi // _NS_PER_MINUTE
    expr = pl.lit(False)
    run_start: int | None = None
    for minute in range(first, last + 2):
        closed = minute <= last and not session.is_open_ns(minute * _NS_PER_MINUTE)
        if closed and run_start is None:
            run_start = minute
        elif not closed and run_start is not None:
            start_ns, end_ns = run_start * _NS_PER_MINUTE, minute * _NS_PER_MINUTE
            expr = expr | ((pl.col("ts_ns") >= start_ns) & (pl.col("ts_ns") < end_ns))
            run_start = None
    return expr.fill_null(False).alias("_closed")


def _halted(spans: tuple[tuple[int, int], ...]) -> pl.Expr:
    expr = pl.lit(False)
    for start, end in spans:
        expr = expr | ((pl.col("ts_ns") >= start) & (pl.col("ts_ns") < end))
    return expr.alias("_halted")


def _score(
    c: pl.DataFrame, tail: tuple[int, ...], inst: Instrument, cfg: FilterConfig
) -> pl.DataFrame:
    """The clean rows with their outlier scores: ``_i``, ``_v``, ``_thr``, ``_cand``, ``_seen``,
    ``_agree``.

    ``_thr``: how far a value may be from its reference (an integer); ``_cand``: further
    from the previous block's median than that; ``_seen``: how many of the next
    ``confirm_ticks`` clean values exist; ``_agree``: how many of those stay near it.
    """
    clean_rows = c.filter(pl.col("reason").is_null()).select(
        pl.col("_i").cast(pl.Int64), "_v", (pl.col("kind") == "quote").alias("_q")
    )
    if clean_rows.height + len(tail) <= _SMALL:
        return _score_small(clean_rows, tail, inst, cfg)
    th = cfg.thresholds(inst)
    b, m = cfg.block_rows, cfg.confirm_ticks
    n_tail = len(tail)
    head = pl.LazyFrame(
        {"_i": [-1] * n_tail, "_v": list(tail), "_q": [True] * n_tail},
        schema={"_i": pl.Int64, "_v": pl.Int64, "_q": pl.Boolean},
    )
    values = (
        pl.concat([head, clean_rows.lazy()])
        .with_row_index("_j")
        .with_columns(_block=(pl.col("_j").cast(pl.Int64) + b - n_tail) // b)
    )
    stats = values.group_by("_block").agg(
        # Twice the median is an integer; so is twice the median of |2v - that|, i.e. 4 × MAD.
        _med=(pl.col("_v").median() * 2).cast(pl.Int64),
        _mad=(
            (pl.col("_v") * 2 - (pl.col("_v").median() * 2).cast(pl.Int64)).abs().median() * 2
        ).cast(pl.Int64),
    )
    prev = stats.with_columns(pl.col("_block") + 1).rename({"_med": "_pmed", "_mad": "_pmad"})
    v = pl.col("_v")
    floor_bps = pl.when(pl.col("_q")).then(th.spike_floor_bps).otherwise(th.fat_finger_bps)
    agree = [((v.shift(-s) - v).abs() <= pl.col("_thr")) for s in range(1, m + 1)]
    return (
        values.join(prev, on="_block", how="left")
        .join(stats, on="_block", how="left")
        .sort("_j")
        .with_columns(_ref=pl.coalesce("_pmed", "_med"), _mad=pl.coalesce("_pmad", "_mad"))
        .with_columns(
            _thr=pl.max_horizontal(
                pl.col("_mad") * (_MAD_TO_SIGMA * th.spike_mads) // (4 * _SIGMA_SCALE),
                pl.col("_ref") * floor_bps // 20_000,
                pl.lit(4 * inst.tick_int),
            )
        )
        .with_columns(
            _cand=(v * 2 - pl.col("_ref")).abs() > pl.col("_thr") * 2,
            _agree=pl.sum_horizontal([a.fill_null(False) for a in agree]),
            _seen=pl.sum_horizontal([v.shift(-s).is_not_null() for s in range(1, m + 1)]),
        )
        .filter(pl.col("_i") >= 0)
        .select("_i", "_v", "_thr", "_cand", "_seen", "_agree")
        .collect(engine="in-memory")
    )


# 1.4826 × MAD estimates a normal sigma; kept as a ratio of integers so that the scores are
# exact integers on both paths below.
_MAD_TO_SIGMA, _SIGMA_SCALE = 14_826, 10_000


def _twice_median(xs: list[int]) -> int:
    ordered = sorted(xs)
    mid = len(ordered) // 2
    return 2 * ordered[mid] if len(ordered) % 2 else ordered[mid - 1] + ordered[mid]


# Up to this many values, the scores are computed in Python: a live batch of a few ticks
# then costs microseconds instead of a query plan's fixed cost. The two paths give the
# same scores (``tests/pipelines/test_filters.py`` compares them).
_SMALL = 1_024


def _score_small(
    clean: pl.DataFrame, tail: tuple[int, ...], inst: Instrument, cfg: FilterConfig
) -> pl.DataFrame:
    th = cfg.thresholds(inst)
    b, m = cfg.block_rows, cfg.confirm_ticks
    idx, vals, quote = clean["_i"].to_list(), clean["_v"].to_list(), clean["_q"].to_list()
    values = [*tail, *vals]
    n_tail = len(tail)
    blocks: dict[int, list[int]] = {}
    for j, x in enumerate(values):
        blocks.setdefault((j + b - n_tail) // b, []).append(x)
    stats = {}
    for k, xs in blocks.items():
        med2 = _twice_median(xs)
        stats[k] = (med2, _twice_median([abs(2 * x - med2) for x in xs]))
    out_thr: list[int] = []
    out_cand, out_seen, out_agree = [], [], []
    n = len(values)
    for pos in range(len(vals)):
        j = n_tail + pos
        block = (j + b - n_tail) // b
        ref, mad = stats.get(block - 1) or stats[block]
        floor_bps = th.spike_floor_bps if quote[pos] else th.fat_finger_bps
        thr = max(
            mad * (_MAD_TO_SIGMA * th.spike_mads) // (4 * _SIGMA_SCALE),
            ref * floor_bps // 20_000,
            4 * inst.tick_int,
        )
        v = values[j]
        following = values[j + 1 : min(j + 1 + m, n)]
        out_thr.append(thr)
        out_cand.append(abs(2 * v - ref) > 2 * thr)
        out_seen.append(len(following))
        out_agree.append(sum(1 for x in following if abs(x - v) <= thr))
    return pl.DataFrame(
        {"_i": idx, "_v": vals, "_thr": out_thr, "_cand": out_cand, "_seen": out_seen,
         "_agree": out_agree},
        schema={"_i": pl.Int64, "_v": pl.Int64, "_thr": pl.Int64, "_cand": pl.Boolean,
                "_seen": pl.Int64, "_agree": pl.Int64},
    )  # fmt: skip


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
