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

The statistical check (``pipelines.ticks.scores``) flags a value far from the median of the
previous block of clean values; a flagged value is a bad tick unless most of the next
``confirm_ticks`` values confirm it. A flagged value near the end of a batch waits for
the next batch (it and the rows after it are held in the state as ``pending``), so a
decision never depends on where a batch happened to end. The row checks and reason codes
are in ``pipelines.ticks.checks``.

``screen_many`` screens the batches of several feeds (of any symbols) in one pass: their
rows are concatenated with a feed index ``_f``, thresholds become per-feed columns, the
windows run ``over`` the feed and the block statistics are grouped by feed and block. A
query plan costs about the same for ten rows as for ten thousand, so a worker polling ten
live feeds pays it once per cycle instead of ten times. Its results are those of ``screen``
called on each feed (``tests/pipelines/test_filters.py`` holds them equal); ``screen`` is
``screen_many`` of one feed.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import polars as pl

from pipelines.ticks import clock
from pipelines.ticks.checks import (
    _CODES,
    _KEY,
    _REASON_NAMES,
    _bounds,
    _by_feed,
    _closed_rows,
    _duplicates,
    _flag_exprs,
    _in_spans,
    _one,
)
from pipelines.ticks.config import FilterConfig
from pipelines.ticks.schema import REASON_DTYPE, SIZE_SCALE, TICK_SCHEMA, Reason, empty_ticks
from pipelines.ticks.scores import _score, _Scoring
from trading.instrument import Instrument
from trading.sessions import TradingSession

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


def _with_reason(frame: pl.DataFrame, reason: str | None) -> pl.DataFrame:
    return frame.select(
        *TICK_SCHEMA,
        pl.lit(reason, REASON_DTYPE).alias("reason"),
        pl.lit(None, pl.String).alias("detail"),
    )
