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

``screen_many`` screens the batches of several feeds (of any symbols) in one pass: their
rows are concatenated with a feed index ``_f``, thresholds become per-feed columns, the
windows run ``over`` the feed and the block statistics are grouped by feed and block. A
query plan costs about the same for ten rows as for ten thousand, so a worker polling ten
live feeds pays it once per cycle instead of ten times. Its results are those of ``screen``
called on each feed (``tests/pipelines/test_filters.py`` holds them equal); ``screen`` is
``screen_many`` of one feed.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import polars as pl

from pipelines.ticks import clock
from pipelines.ticks.config import FilterConfig, Thresholds
from pipelines.ticks.schema import (
    MAX_TS_NS,
    MIN_TS_NS,
    REASON_DTYPE,
    SIZE_SCALE,
    TICK_SCHEMA,
    Reason,
    empty_ticks,
)
from trading.instrument import Instrument
from trading.sessions import TradingSession

_NS_PER_MINUTE = 60_000_000_000
# Up to this many minutes between a feed's first and last event times in a batch, the
# session is asked minute by minute across the span instead of row by row (``_closed_rows``).
_SPAN_MINUTES = 32
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
    # Replays: the clock (``clock``) and the rows waiting for the ticks that confirm or
    # refute their stamps; ``marks`` are the clock's verdicts on ``pending`` rows (offset,
    # ``clock.JUMP`` or ``clock.EARLY``).
    clock_ts: int | None = None
    waiting: pl.DataFrame = field(default_factory=empty_ticks)
    marks: tuple[tuple[int, int], ...] = ()


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
    replay: bool = True,
) -> Screened:
    """Split ``batch`` (after any pending rows) into accepted and rejected ticks.

    ``final`` says no more rows will come: pending values are then decided on the rows
    there are (confirmed when at least one follows and most of those that follow agree).
    ``replay`` says the receive time is no independent clock (a vendor file, a generator):
    the feed's clock then moves forward only where the following ticks confirm it
    (``pipelines.ticks.clock``). A live feed judges event times against its receive times.
    """
    return screen_many(
        {"": state}, {"": batch}, {"": inst}, cfg, {"": session}, final=final, replay=replay
    )[""]


def screen_many(
    states: Mapping[str, FeedState],
    batches: Mapping[str, pl.DataFrame],
    insts: Mapping[str, Instrument],
    cfg: FilterConfig,
    sessions: Mapping[str, TradingSession | None],
    *,
    final: bool = False,
    replay: bool = True,
) -> dict[str, Screened]:
    """``screen`` of each feed of ``batches`` (feed key -> batch), in one pass.

    ``states``, ``insts`` and ``sessions`` give each feed's state, instrument and session
    (a missing key is a ``KeyError``); the result has a ``Screened`` per key of ``batches``,
    equal to what ``screen`` would return for that feed alone.
    """
    out: dict[str, Screened] = {}
    feeds: list[_Feed] = []
    parts: list[pl.DataFrame] = []
    start = 0
    clocked = _clock_stage(states, batches, cfg, final) if replay else {}
    for key, given in batches.items():
        state, batch = states[key], given
        marks: list[tuple[int, int]] = list(state.marks)
        if key in clocked:
            batch, decision, waiting = clocked[key]
            marks += [(state.pending.height + r, m) for r, m in decision.marks]
            state = replace(state, clock_ts=decision.clock, waiting=waiting)
        inst, session = insts[key], sessions[key]
        n = state.pending.height + batch.height
        if n == 0:
            out[key] = Screened(state, batch, _with_reason(batch, None))
            continue
        parts += [p for p in (state.pending, batch) if not p.is_empty()]
        feeds.append(_Feed(key, state, inst, session, start, start + n, marks))
        start += n
    if feeds:
        frame = parts[0] if len(parts) == 1 else pl.concat(parts)
        out.update(_screen(feeds, frame, cfg, final))
    return {k: out[k] for k in batches}


@dataclass(frozen=True, slots=True)
class _Feed:
    """One feed of a ``screen_many`` call: its rows are ``start:end`` of the concatenation."""

    key: str
    state: FeedState
    inst: Instrument
    session: TradingSession | None
    start: int
    end: int
    marks: list[tuple[int, int]]  # the clock's verdicts: (row - start, clock.JUMP or EARLY)


def _clock_stage(
    states: Mapping[str, FeedState],
    batches: Mapping[str, pl.DataFrame],
    cfg: FilterConfig,
    final: bool,
) -> dict[str, tuple[pl.DataFrame, clock.Decision, pl.DataFrame]]:
    """Each feed's rows the clock has decided (waiting rows first), its decision, and the
    rows that wait for more ticks; the timed rows of all feeds found in one pass."""
    rows: dict[str, pl.DataFrame] = {}
    for key, batch in batches.items():
        if batch.is_empty() and not final:
            continue  # nothing new: nothing the clock could decide
        waiting = states[key].waiting
        rows[key] = batch if waiting.is_empty() else pl.concat([waiting, batch])
    frames = [f for f in rows.values() if not f.is_empty()]
    if not frames:
        return {k: (f, clock.Decision(0, [], states[k].clock_ts), f) for k, f in rows.items()}
    flags, _ = _flag_exprs(0, 0, cfg.future_tolerance_ns, cfg.stale_after_ns)
    both = (frames[0] if len(frames) == 1 else pl.concat(frames)).select(
        pl.col("ts_ns").fill_null(0), flags[-1]
    )
    ts_all, timed_all = both.get_column("ts_ns"), both.get_column("_time_ok")
    out = {}
    at = 0
    for key, frame in rows.items():
        n = frame.height
        decision = clock.decide(
            ts_all.slice(at, n), timed_all.slice(at, n), states[key].clock_ts,
            confirm=cfg.clock_confirm_ticks, final=final,
        )  # fmt: skip
        at += n
        if decision.decided == n:
            out[key] = (frame, decision, frame.head(0))
        else:
            out[key] = (frame.head(decision.decided), decision, frame.slice(decision.decided))
    return out


def _screen(
    feeds: list[_Feed], frame: pl.DataFrame, cfg: FilterConfig, final: bool
) -> dict[str, Screened]:
    multi = len(feeds) > 1
    ths = [cfg.thresholds(f.inst) for f in feeds]
    caps = [
        th.max_trade_lots * int(f.inst.contract_size * SIZE_SCALE)
        for th, f in zip(ths, feeds, strict=True)
    ]
    lasts = [_MIN_TS if f.state.last_ts is None else f.state.last_ts for f in feeds]
    spread = _one([th.max_spread_bps for th in ths])
    cap = _one(caps)
    flags, reason = _flag_exprs(spread, cap, cfg.future_tolerance_ns, cfg.stale_after_ns)
    # Per-feed parameters: a literal when every feed has the same, else a column.
    params = []
    if spread is None:
        params.append(_by_feed([th.max_spread_bps for th in ths]).alias("_spread_bps"))
    if cap is None:
        params.append(_by_feed(caps).alias("_qty_cap"))
    last: pl.Expr = pl.lit(lasts[0])
    if _one(lasts) is None:
        params.append(_by_feed(lasts).alias("_last_ts"))
        last = pl.col("_last_ts")
    halts = [cfg.halts.get(f.inst.symbol, ()) for f in feeds]
    market = [_in_spans(halts, multi).alias("_halted"), _closed_rows(frame, feeds, cfg)]

    def win(e: pl.Expr) -> pl.Expr:
        return e.over("_f") if multi else e

    # One query plan for the row checks: a few collects per batch, not one per step, so a
    # small live batch costs well under a millisecond.
    masked_ts = pl.when(pl.col("_time_ok")).then(pl.col("ts_ns"))
    before = win(masked_ts.forward_fill().shift(1)).fill_null(last)
    lf = frame.lazy().with_row_index("_i")
    if multi:
        starts = pl.Series([f.start for f in feeds[1:]], dtype=pl.UInt32)
        lf = lf.with_columns(
            _f=pl.lit(starts).search_sorted(pl.col("_i"), side="right").cast(pl.UInt32)
        )
        if params:
            lf = lf.with_columns(params)
        lf = lf.with_columns(flags)
    else:
        lf = lf.with_columns(*flags, *params, _f=pl.lit(0, pl.UInt32))
    early: pl.Expr = pl.lit(False)
    marked = [(f.start + r, m) for f in feeds for r, m in f.marks]
    if marked:  # the clock's verdicts (rare): a jump is future, an early start out of order
        at, kinds = zip(*marked, strict=True)
        mark = pl.Series("_mark", [0] * frame.height, dtype=pl.UInt8).scatter(
            list(at), pl.Series(kinds, dtype=pl.UInt8)
        )
        jump = pl.lit(mark) == clock.JUMP
        early = pl.lit(mark) == clock.EARLY
        lf = lf.with_columns(_future=pl.col("_future") | jump).with_columns(
            _time_ok=pl.col("_time_ok") & ~jump & ~early
        )
    c = (
        lf.with_columns(
            *market,
            pl.max_horizontal(
                win(masked_ts.cum_max().forward_fill().shift(1)).fill_null(last), last
            ).alias("_prev_max"),
            (pl.col("_time_ok") & (pl.col("ts_ns") == before)).alias("_same"),
        )
        .with_columns(_ooo=(pl.col("_time_ok") & (pl.col("ts_ns") < pl.col("_prev_max"))) | early)
        .with_columns(_code=reason)
        .collect(engine="in-memory")
    )
    # ``_i`` is the row's position in ``c``: later verdicts are written into the codes.
    code = c.get_column("_code")
    if c["_same"].any():
        dup = _duplicates(c, feeds)
        if not dup.is_empty():
            code = code.scatter(dup, _CODES[Reason.DUPLICATE])
    is_clean = code.is_null()
    clean = pl.DataFrame([
        c.get_column("_f").filter(is_clean),
        c.get_column("_i").filter(is_clean).cast(pl.Int64),
        c.get_column("_v").filter(is_clean),
        (c.get_column("kind") == "quote").filter(is_clean).alias("_q"),
    ])  # fmt: skip
    scoring = [
        _Scoring(f.state.tail, th, f.inst.tick_int) for f, th in zip(feeds, ths, strict=True)
    ]
    scored = _score(clean, scoring, cfg)
    m = cfg.confirm_ticks
    # Per feed, the first row that waits for the ticks to come (it and all after it).
    hold: dict[int, int] = {}
    bad = scored.head(0)
    if scored["_cand"].any():  # rarely: a filter costs more than this test
        cand = scored.filter("_cand")
        if final:
            bad = cand.filter(~((pl.col("_seen") > 0) & (pl.col("_agree") * 2 > pl.col("_seen"))))
        else:
            waiting = cand.filter(pl.col("_seen") < m)
            for k, i in zip(waiting["_f"].to_list(), waiting["_i"].to_list(), strict=True):
                hold.setdefault(k, i)  # sorted by feed then row: the first is the least
            bad = cand.filter((pl.col("_seen") >= m) & (pl.col("_agree") * 2 <= m))
    kept = scored
    if not bad.is_empty():
        quote = (c.get_column("kind") == "quote").gather(bad["_i"]).to_list()
        spike, fat = _CODES[Reason.SPIKE], _CODES[Reason.FAT_FINGER]
        code = code.scatter(
            bad["_i"], pl.Series([spike if q else fat for q in quote], dtype=pl.UInt8)
        )
        kept = scored.filter(~pl.col("_i").is_in(bad["_i"].implode()))
    c = c.with_columns(reason=_REASON_NAMES.gather(code))
    done = c
    if hold:
        held = functools.reduce(
            operator.or_, [(pl.col("_f") == k) & (pl.col("_i") >= i) for k, i in hold.items()]
        )
        done = c.filter(~held)
        kept = kept.filter(~held)
    return _results(feeds, frame, cfg, done, kept, hold)


def _results(
    feeds: list[_Feed],
    frame: pl.DataFrame,
    cfg: FilterConfig,
    done: pl.DataFrame,
    kept: pl.DataFrame,
    hold: Mapping[int, int],
) -> dict[str, Screened]:
    """Each feed's accepted and rejected rows and its new state.

    Done with Series operations and column picks, which cost microseconds, where a
    DataFrame filter or select costs some fifty (the live path runs this every cycle).
    """
    n, b = len(feeds), cfg.block_rows
    feed = done.get_column("_f")
    ok = done.get_column("reason").is_null()
    accepted = done[list(TICK_SCHEMA)].filter(ok)
    rejected = done[[*TICK_SCHEMA, "reason"]].filter(~ok)
    rejected.hstack(
        [pl.Series("detail", dtype=pl.String).extend_constant(None, rejected.height)],
        in_place=True,
    )
    rejects: dict[int, list[tuple[str, int]]] = {}
    if not rejected.is_empty():
        by = pl.DataFrame([feed.filter(~ok), rejected.get_column("reason")])
        for k, r, count in by.group_by("_f", "reason").len().iter_rows():
            rejects.setdefault(k, []).append((str(r), count))
    # The records at each feed's latest event time, so a duplicate in the next batch is seen.
    timed = done.get_column("_time_ok")
    ts = done.get_column("ts_ns")
    timed_ts = ts.filter(timed)
    if n == 1:
        latest = timed_ts.max()
        at_top = timed & (ts == latest) if latest is not None else timed & False
    else:
        timed_at = _bounds(feed.filter(timed), n)
        per_feed = [timed_ts.slice(lo, hi - lo).max() for lo, hi in itertools.pairwise(timed_at)]
        at_top = (timed & (ts == pl.Series(per_feed, dtype=pl.Int64).gather(feed))).fill_null(False)
    tops = done[_KEY].filter(at_top)
    if n == 1:
        acc_at, rej_at = [0, accepted.height], [0, rejected.height]
        top_at, kept_at = [0, tops.height], [0, kept.height]
    else:
        acc_at, rej_at = _bounds(feed.filter(ok), n), _bounds(feed.filter(~ok), n)
        top_at, kept_at = _bounds(feed.filter(at_top), n), _bounds(kept["_f"], n)
    values = kept["_v"]
    no_rows = frame.head(0)
    out = {}
    for k, f in enumerate(feeds):
        state = f.state
        lo, hi = kept_at[k], kept_at[k + 1]
        tail = (state.tail + tuple(values.slice(max(lo, hi - b), hi - max(lo, hi - b)).to_list()))[
            -b:
        ]
        last_ts, edge = state.last_ts, state.edge
        if top_at[k + 1] > top_at[k]:
            newest = tops.slice(top_at[k], top_at[k + 1] - top_at[k])
            top = newest["ts_ns"][0]
            if last_ts is None or top > last_ts:
                last_ts, edge = top, newest
            elif top == last_ts:
                edge = pl.concat([edge, newest]).unique(maintain_order=True)
        n_accepted = acc_at[k + 1] - acc_at[k]
        counts = dict(state.counts)
        counts["accepted"] = counts.get("accepted", 0) + n_accepted
        for r, count in rejects.get(k, ()):
            counts[r] = counts.get(r, 0) + count
        pending, marks = no_rows, tuple[tuple[int, int], ...]()
        if k in hold:
            pending = frame.slice(hold[k], f.end - hold[k])
            cut = hold[k] - f.start
            marks = tuple((r - cut, m) for r, m in f.marks if r >= cut)
        new_state = FeedState(
            last_ts=last_ts, edge=edge, tail=tail, pending=pending, counts=counts,
            clock_ts=state.clock_ts, waiting=state.waiting, marks=marks,
        )  # fmt: skip
        out[f.key] = Screened(
            new_state,
            accepted.slice(acc_at[k], n_accepted),
            rejected.slice(rej_at[k], rej_at[k + 1] - rej_at[k]),
        )
    return out


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


@dataclass(frozen=True, slots=True)
class _Scoring:
    """What one feed's outlier scores depend on besides its clean values."""

    tail: tuple[int, ...]
    th: Thresholds
    tick_int: int


def _score(clean: pl.DataFrame, feeds: Sequence[_Scoring], cfg: FilterConfig) -> pl.DataFrame:
    """The clean rows with their outlier scores: ``_f``, ``_i``, ``_v``, ``_thr``, ``_cand``,
    ``_seen``, ``_agree``, in the order of ``clean`` (by feed ``_f``, then row ``_i``).

    ``_thr``: how far a value may be from its reference (an integer); ``_cand``: further
    from the previous block's median than that; for a candidate, ``_seen``: how many of the
    next ``confirm_ticks`` clean values of its feed exist, and ``_agree``: how many of those
    stay near it (both 0 for the other values: only a candidate's confirmations matter).
    Each feed's values follow its ``tail``.
    """
    if clean.height + sum(len(f.tail) for f in feeds) <= _SMALL:
        return _score_small(clean, feeds, cfg)
    b, m = cfg.block_rows, cfg.confirm_ticks
    multi = len(feeds) > 1
    head = pl.DataFrame(
        {"_f": [k for k, f in enumerate(feeds) for _ in f.tail],
         "_i": [-1] * sum(len(f.tail) for f in feeds),
         "_v": [x for f in feeds for x in f.tail]},
        schema={"_f": pl.UInt32, "_i": pl.Int64, "_v": pl.Int64},
    ).with_columns(_q=pl.lit(True))  # fmt: skip
    # Each feed's tail, then its clean values: slices of the two frames, in feed order.
    clean_at, head_at = _bounds(clean["_f"], len(feeds)), _bounds(head["_f"], len(feeds))
    parts = []
    for k in range(len(feeds)):
        parts.append(head.slice(head_at[k], head_at[k + 1] - head_at[k]))
        parts.append(clean.slice(clean_at[k], clean_at[k + 1] - clean_at[k]))
    # A feed's j-th value (tail included) is in block (j + b - len(tail)) // b: the tail
    # fills the end of block 0; ``_base`` is b - len(tail) less the row the feed starts at.
    bases = []
    for k, f in enumerate(feeds):
        bases.append(b - len(f.tail) - (head_at[k] + clean_at[k]))
    base = _per_feed(bases)
    values = (
        pl.concat([p for p in parts if not p.is_empty()] or [head])
        .lazy()
        .with_row_index("_j")
        .with_columns(_block=(pl.col("_j").cast(pl.Int64) + base) // b)
    )
    # Blocks are runs of rows (a feed's values are consecutive), so a block's statistics
    # are computed per run and spread back over it, and the previous block's are those of
    # the row before the run: no join, no sort.
    new = pl.col("_block") != pl.col("_block").shift(1)
    if multi:
        new = new | (pl.col("_f") != pl.col("_f").shift(1))
    values = values.with_columns(_g=new.fill_null(True).cum_sum())
    # Twice the median is an integer; so is twice the median of |2v - that|, i.e. 4 × MAD.
    med = (pl.col("_v").median() * 2).cast(pl.Int64)
    values = values.with_columns(_med=med.over("_g")).with_columns(
        _mad=((pl.col("_v") * 2 - pl.col("_med")).abs().median() * 2).cast(pl.Int64).over("_g")
    )
    first = pl.col("_g") != pl.col("_g").shift(1)
    same_feed = (pl.col("_f") == pl.col("_f").shift(1)) if multi else pl.lit(True)

    def prev_of(c: str) -> pl.Expr:  # the previous block's; a feed's first block its own
        own = pl.col(c)
        at_start = pl.when(same_feed.fill_null(False)).then(pl.coalesce(own.shift(1), own))
        return pl.when(first.fill_null(True)).then(at_start.otherwise(own)).forward_fill()

    values = values.with_columns(_ref=prev_of("_med"), _pmad=prev_of("_mad")).with_columns(
        _mad=pl.col("_pmad")
    )
    v = pl.col("_v")
    mads = _per_feed([f.th.spike_mads for f in feeds])
    spike_floor = _per_feed([f.th.spike_floor_bps for f in feeds])
    fat_finger = _per_feed([f.th.fat_finger_bps for f in feeds])
    min_thr = _per_feed([4 * f.tick_int for f in feeds])
    floor_bps = pl.when(pl.col("_q")).then(spike_floor).otherwise(fat_finger)
    everything = (
        values.with_columns(
            _thr=pl.max_horizontal(
                pl.col("_mad") * (_MAD_TO_SIGMA * mads) // (4 * _SIGMA_SCALE),
                pl.col("_ref") * floor_bps // 20_000,
                min_thr,
            )
        )
        .with_columns(_cand=(v * 2 - pl.col("_ref")).abs() > pl.col("_thr") * 2)
        .select("_f", "_i", "_v", "_thr", "_cand")
        .collect(engine="in-memory")
    )
    scored = everything.filter(pl.col("_i") >= 0)

    def zeros() -> pl.Series:  # a new one each time: ``scatter`` writes in place
        return pl.repeat(0, scored.height, dtype=pl.Int64, eager=True)

    is_cand = scored.get_column("_cand")
    if not is_cand.any():  # the usual batch: no value to confirm
        return scored.with_columns(_seen=zeros(), _agree=zeros())
    # Candidates are rare: their confirmations are counted on them alone, from the values
    # (tails included) that follow each within its feed.
    at = (everything.get_column("_cand") & (everything.get_column("_i") >= 0)).arg_true()
    fs, vs = everything.get_column("_f"), everything.get_column("_v")
    last = everything.height - 1
    f0, v0 = fs.gather(at), vs.gather(at)
    thr = everything.get_column("_thr").gather(at)
    seen = pl.repeat(0, at.len(), dtype=pl.Int64, eager=True)
    agree = seen
    for s in range(1, m + 1):
        j = (at.cast(pl.Int64) + s).clip(upper_bound=last)
        there = (fs.gather(j) == f0) & (at.cast(pl.Int64) + s <= last)
        seen = seen + there.cast(pl.Int64)
        agree = agree + (there & ((vs.gather(j) - v0).abs() <= thr)).cast(pl.Int64)
    rows = is_cand.arg_true()
    return scored.with_columns(
        _seen=zeros().scatter(rows, seen), _agree=zeros().scatter(rows, agree)
    )


def _per_feed(values: list[int]) -> pl.Expr:
    """A literal when every feed has the same value, else the row's feed's value."""
    one = _one(values)
    return pl.lit(one, pl.Int64) if one is not None else _by_feed(values)


# 1.4826 × MAD estimates a normal sigma; kept as a ratio of integers so that the scores are
# exact integers on both paths below.
_MAD_TO_SIGMA, _SIGMA_SCALE = 14_826, 10_000


def _twice_median(xs: list[int]) -> int:
    ordered = sorted(xs)
    mid = len(ordered) // 2
    return 2 * ordered[mid] if len(ordered) % 2 else ordered[mid - 1] + ordered[mid]


# Up to this many values (all feeds' clean values and tails), the scores are computed in
# Python: a live batch of a few ticks then costs microseconds instead of a query plan's
# fixed cost. Python takes about 0.4 us a value and the plan 3-6 ms whatever the size up
# to some ten thousand values, so they cross near 10,000 on one feed and further on ten
# (measured on one feed of 1,000 to 8,000 rows and ten feeds of 10 to 800 rows each); a
# batch of many spike candidates costs Python more, hence some margin. The two paths give
# the same scores (``tests/pipelines/test_filters.py`` compares them).
_SMALL = 8_192
# The scores' columns, filled feed after feed: thr, cand, seen, agree.
_Scores = tuple[list[int], list[bool], list[int], list[int]]


def _score_small(clean: pl.DataFrame, feeds: Sequence[_Scoring], cfg: FilterConfig) -> pl.DataFrame:
    fs, idx = clean["_f"].to_list(), clean["_i"].to_list()
    vals, quote = clean["_v"].to_list(), clean["_q"].to_list()
    cols: _Scores = ([], [], [], [])
    lo = 0
    for k, feed in enumerate(feeds):
        hi = lo
        while hi < len(fs) and fs[hi] == k:
            hi += 1
        _score_feed(vals[lo:hi], quote[lo:hi], feed, cfg, cols)
        lo = hi
    thr, cand, seen, agree = cols
    return pl.DataFrame(
        {"_f": fs, "_i": idx, "_v": vals, "_thr": thr, "_cand": cand, "_seen": seen,
         "_agree": agree},
        schema={"_f": pl.UInt32, "_i": pl.Int64, "_v": pl.Int64, "_thr": pl.Int64,
                "_cand": pl.Boolean, "_seen": pl.Int64, "_agree": pl.Int64},
    )  # fmt: skip


def _score_feed(
    vals: list[int],
    quote: list[bool],
    feed: _Scoring,
    cfg: FilterConfig,
    out: _Scores,
) -> None:
    """One feed's scores, appended to ``out`` (thr, cand, seen, agree).

    The tail fills block 0 (it is at most ``block_rows`` long) and clean value ``pos`` is
    in block ``pos // b + 1``, so the values go block by block, each against the block
    before it (the first against itself when there is no tail); a block's thresholds are
    one per kind.
    """
    th, tail = feed.th, feed.tail
    b, m = cfg.block_rows, cfg.confirm_ticks
    out_thr, out_cand, out_seen, out_agree = out
    values = [*tail, *vals]
    n_tail = len(tail)
    k_mad = _MAD_TO_SIGMA * th.spike_mads
    prev = _block_stats(list(tail)) if tail else None
    for lo in range(0, len(vals), b):
        chunk, kinds = vals[lo : lo + b], quote[lo : lo + b]
        own = _block_stats(chunk)
        ref, mad = prev or own
        prev = own
        spread = mad * k_mad // (4 * _SIGMA_SCALE)
        thr_q = max(spread, ref * th.spike_floor_bps // 20_000, 4 * feed.tick_int)
        thr_t = max(spread, ref * th.fat_finger_bps // 20_000, 4 * feed.tick_int)
        thrs = [thr_q if q else thr_t for q in kinds]
        cands = [abs(2 * v - ref) > 2 * t for v, t in zip(chunk, thrs, strict=True)]
        # m values follow each one but the last m; only a candidate's confirmations matter.
        seen, agree = [0] * len(chunk), [0] * len(chunk)
        for i in itertools.compress(range(len(chunk)), cands):
            j, t = n_tail + lo + i, thrs[i]
            nxt = values[j + 1 : j + 1 + m]
            seen[i] = len(nxt)
            agree[i] = sum(1 for x in nxt if abs(x - values[j]) <= t)
        out_thr += thrs
        out_cand += cands
        out_seen += seen
        out_agree += agree


def _block_stats(xs: list[int]) -> tuple[int, int]:
    """Twice the median of ``xs``, and twice the median of |2x - that| (4 × MAD)."""
    med2 = _twice_median(xs)
    return med2, _twice_median([abs(2 * x - med2) for x in xs])


def _with_reason(frame: pl.DataFrame, reason: str | None) -> pl.DataFrame:
    return frame.select(
        *TICK_SCHEMA,
        pl.lit(reason, REASON_DTYPE).alias("reason"),
        pl.lit(None, pl.String).alias("detail"),
    )
