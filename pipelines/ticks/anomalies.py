"""Labelled bad ticks, injected into a normalized frame to measure the filters.

Used by the tests, the benchmarks and ``bourse pipelines ticks --source synthetic
--inject RATE`` (a demo of the screening: the synthetic feed with labelled bad ticks).

``inject`` takes one feed's frame (``TICK_SCHEMA`` rows of one symbol, all quotes or all
trades: a vendor file's replay or the synthetic source) and spoils a share of its rows in
place: no row is added or removed, so every ``source_seq`` stays the row's own and unique,
and the labels name rows by it. Each label carries the ``schema.Reason`` a correct filter
gives that row, so precision and recall follow from comparing the filters' rejects with
the labels.

Each anomaly is made unmistakable, and isolated, so that one label has one right answer:

- the first ``HISTORY_ROWS`` rows are never touched (the statistical filters need a past),
  nor the last ``TAIL_ROWS`` (a spike needs rows after it to stay unconfirmed);
- spoiled rows are at least ``MIN_APART`` rows apart, and a row is spoiled only where it,
  its predecessor and the rows after it carry sound prices (a vendor's own bad row must
  not change what the injected one looks like);
- sizes of moves are far beyond the default thresholds of ``pipelines.ticks.config``:
  a spike moves the mid by 1-3 % of the price (and at least 50 median tick-to-tick moves
  and 40 robust deviations of the 100 mids before it), a fat finger moves a print by
  10-20 %, a wide spread is 50 times the frame's median spread and at least 2 % of the
  price (twice the widest default bound), symmetric around the mid so the mid stays put.

Kinds (``QUOTE_KINDS`` apply to quote frames, ``TRADE_KINDS`` to trade frames; a kind that
does not apply to the frame is skipped):

========== ===================================================================
spike       bid and ask moved together, on one row; the rows after stay normal
crossed     bid and ask swapped (bid > ask)
locked      bid set to the ask
non_positive a price set to 0 or to its negative
missing_price a price set to null
duplicate   the row becomes a copy of the previous record (all but source_seq)
out_of_order event time set 1 s before the previous row's
future      event time set 1 h after the receive time (receive time kept)
stale       receive time set 1 h after the event time (event time kept)
wide_spread spread widened symmetrically (see above)
fat_finger  a trade print moved by 10-20 %
clock_ahead a vendor clock error on a replay: event and receive time moved ahead, by 2 s
            to 3 days (log-uniform) and at least past the next 12 rows' times
clock_ahead_run the same on 2-4 consecutive rows, by one amount
clock_behind event and receive time set 1 s to 3 days before the previous row's
clock_behind_run 2-4 consecutive rows moved back by one amount, their order kept, the
            last of them 1 s to 3 days before the row preceding the run
clock_jump_ahead a true gap of one week before the row (every row from it on moves a
            week later, unlabelled: a feed's data gap), then the row stamped ahead
clock_jump_behind the same gap, then the row stamped before the row preceding the gap
========== ===================================================================

Start kinds (``START_KINDS``) spoil the first rows of the frame, once per frame when
asked for: ``clock_start_behind`` stamps the first 1-3 rows 2 hours to 3 days early
(``out_of_order``), ``clock_start_ahead`` stamps them hours to days ahead (``future``).
The ``kind`` column of the labels names the kind of each label.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

import polars as pl

from pipelines.ticks.schema import REASON_DTYPE, TICK_SCHEMA, Kind, Reason
from trading.instrument import Instrument

QUOTE_KINDS: tuple[str, ...] = (
    "spike", "crossed", "locked", "non_positive", "missing_price", "duplicate",
    "out_of_order", "future", "stale", "wide_spread",
)  # fmt: skip
TRADE_KINDS: tuple[str, ...] = (
    "fat_finger", "non_positive", "missing_price", "duplicate", "out_of_order", "future",
    "stale",
)  # fmt: skip
# Vendor clock errors (replays: the event and the receive time move together).
CLOCK_KINDS: tuple[str, ...] = (
    "clock_ahead", "clock_ahead_run", "clock_behind", "clock_behind_run",
    "clock_jump_ahead", "clock_jump_behind",
)  # fmt: skip
START_KINDS: tuple[str, ...] = ("clock_start_behind", "clock_start_ahead")
QUOTE_KINDS += CLOCK_KINDS
TRADE_KINDS += CLOCK_KINDS
ALL: tuple[str, ...] = tuple(dict.fromkeys(QUOTE_KINDS + TRADE_KINDS + START_KINDS))
# The kinds a stream spoiled batch by batch can take: a week's gap would move every later
# row of the batch alone (the next batch would then go back in time), and the start kinds
# belong to a feed's first batch only.
STREAM_KINDS: tuple[str, ...] = tuple(
    k for k in ALL if k not in ("clock_jump_ahead", "clock_jump_behind", *START_KINDS)
)

REASON_OF: dict[str, Reason] = {
    "spike": Reason.SPIKE,
    "crossed": Reason.CROSSED,
    "locked": Reason.LOCKED,
    "non_positive": Reason.NON_POSITIVE,
    "missing_price": Reason.MISSING_PRICE,
    "duplicate": Reason.DUPLICATE,
    "out_of_order": Reason.OUT_OF_ORDER,
    "future": Reason.FUTURE,
    "stale": Reason.STALE,
    "wide_spread": Reason.WIDE_SPREAD,
    "fat_finger": Reason.FAT_FINGER,
    "clock_ahead": Reason.FUTURE,
    "clock_ahead_run": Reason.FUTURE,
    "clock_behind": Reason.OUT_OF_ORDER,
    "clock_behind_run": Reason.OUT_OF_ORDER,
    "clock_jump_ahead": Reason.FUTURE,
    "clock_jump_behind": Reason.OUT_OF_ORDER,
    "clock_start_behind": Reason.OUT_OF_ORDER,
    "clock_start_ahead": Reason.FUTURE,
}

HISTORY_ROWS = 100
TAIL_ROWS = 10
MIN_APART = 10
_SLOT = 2 * MIN_APART  # one injection per slot, at an offset below MIN_APART in it
_NS_PER_S = 1_000_000_000
_HOUR_NS = 3_600 * _NS_PER_S
_DAY_NS = 24 * _HOUR_NS
_WEEK_NS = 7 * _DAY_NS
_LABEL_SCHEMA = {"source_seq": pl.Int64(), "reason": REASON_DTYPE, "kind": pl.String()}


def inject(
    frame: pl.DataFrame,
    inst: Instrument,
    *,
    rate: float,
    seed: int,
    kinds: Sequence[str] = ALL,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``frame`` with about ``rate`` × its rows spoiled, and the labels of those rows.

    Returns ``(spoiled frame, labels)``; labels have ``source_seq``, ``reason`` and
    ``kind``, sorted by ``source_seq``. Raises ``ValueError`` for an unknown kind, a mixed
    or multi-symbol frame, or a rate the frame cannot hold with rows ``MIN_APART`` apart
    (about 5 %).
    """
    unknown = sorted(set(kinds) - set(ALL))
    if unknown:
        raise ValueError(f"unknown anomaly kind(s) {unknown}; known: {list(ALL)}")
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be within [0, 1], got {rate}")
    labels = pl.DataFrame(schema=_LABEL_SCHEMA)
    if frame.is_empty():
        return frame, labels
    frame_kinds = frame["kind"].cast(pl.String).unique().to_list()
    if len(frame_kinds) != 1 or frame["symbol"].n_unique() != 1:
        raise ValueError("inject takes one feed: one symbol, all quotes or all trades")
    is_quote = frame_kinds[0] == Kind.QUOTE.value
    usable = [k for k in kinds if k in (QUOTE_KINDS if is_quote else TRADE_KINDS)]
    wanted = round(rate * frame.height)
    if not usable or wanted == 0:
        return frame, labels

    rng = random.Random(seed)
    rows = _pick_rows(frame, is_quote, wanted, rng)
    plan = (usable * math.ceil(wanted / len(usable)))[:wanted]
    rng.shuffle(plan)
    spoiler = _Spoiler(frame, inst, is_quote, rng)
    for row, kind in zip(rows, plan, strict=True):
        spoiler.spoil(row, kind)
    starts = [k for k in kinds if k in START_KINDS]
    if starts:
        spoiler.spoil(0, rng.choice(starts))
    labelled = sorted(spoiler.labels)
    labels = pl.DataFrame(
        {
            "source_seq": frame["source_seq"].gather([r for r, _ in labelled]),
            "reason": pl.Series([REASON_OF[k].value for _, k in labelled], dtype=REASON_DTYPE),
            "kind": pl.Series([k for _, k in labelled], dtype=pl.String),
        }
    ).sort("source_seq")
    return spoiler.result(), labels


def _pick_rows(frame: pl.DataFrame, is_quote: bool, wanted: int, rng: random.Random) -> list[int]:
    """``wanted`` row positions, one per slot of ``_SLOT`` rows, where prices are sound."""
    if is_quote:
        sound = (pl.col("bid") > 0) & (pl.col("ask") > pl.col("bid"))
    else:
        sound = (pl.col("price") > 0) & (pl.col("qty") > 0)
    ok = frame.select(sound.fill_null(False))
    ok_rows = ok.to_series().to_list()
    height = frame.height
    end = height - TAIL_ROWS
    choices: list[list[int]] = []
    for start in range(HISTORY_ROWS, end - MIN_APART + 1, _SLOT):
        here = [
            i
            for i in range(start, start + MIN_APART)
            if all(ok_rows[i - 1 : i + 4]) and i + 4 <= height
        ]
        if here:
            choices.append(here)
    if wanted > len(choices):
        raise ValueError(
            f"{wanted} anomalies do not fit {height} rows {MIN_APART} apart after "
            f"{HISTORY_ROWS} rows of history ({len(choices)} places): lower the rate"
        )
    slots = sorted(rng.sample(range(len(choices)), wanted))
    return [rng.choice(choices[s]) for s in slots]


class _Spoiler:
    """Collects the new values of spoiled cells, then writes them in one pass per column."""

    def __init__(
        self, frame: pl.DataFrame, inst: Instrument, is_quote: bool, rng: random.Random
    ) -> None:
        self.frame, self.inst, self.rng, self.is_quote = frame, inst, rng, is_quote
        self.updates: dict[str, dict[int, object]] = {}
        self.labels: list[tuple[int, str]] = []  # (row, kind)
        self.gaps: list[int] = []  # rows before which the feed has a week's gap
        self.tick = inst.tick_int
        if is_quote:
            twice_mid = frame["bid"] + frame["ask"]
            self.values: list[int | None] = twice_mid.to_list()  # 2 × mid
            spread = (frame["ask"] - frame["bid"]).filter(frame["ask"] > frame["bid"])
            self.median_spread = int(spread.median() or self.tick)  # type: ignore[arg-type]
        else:
            self.values = (frame["price"] * 2).to_list()
            self.median_spread = 0
        # The median non-zero tick-to-tick move of the mid (of the print, for trades).
        moves = pl.Series(self.values, dtype=pl.Int64).diff().abs()
        moves = moves.filter(moves > 0)
        self.median_move = int(moves.median() or 2 * self.tick) // 2  # type: ignore[arg-type]

    def get(self, column: str, row: int) -> object:
        pending = self.updates.get(column, {})
        return pending[row] if row in pending else self.frame[column][row]

    def int_at(self, column: str, row: int) -> int:
        value = self.get(column, row)
        assert isinstance(value, int), (column, row, value)
        return value

    def set(self, column: str, row: int, value: object) -> None:
        self.updates.setdefault(column, {})[row] = value

    def spoil(self, row: int, kind: str) -> None:
        spoiled = getattr(self, f"_{kind}")(row)
        self.labels += [(r, kind) for r in (spoiled or [row])]

    def result(self) -> pl.DataFrame:
        columns = []
        for name, cells in self.updates.items():
            rows = list(cells)
            values = pl.Series(list(cells.values()), dtype=TICK_SCHEMA[name])
            columns.append(self.frame[name].clone().scatter(rows, values))
        out = self.frame.with_columns(columns)
        if self.gaps:
            shift = [0] * out.height
            for row in self.gaps:
                shift[row] += _WEEK_NS
            later = pl.Series(shift, dtype=pl.Int64).cum_sum()
            out = out.with_columns(pl.col("ts_ns") + later, pl.col("recv_ns") + later)
        return out

    # --- one method per kind ---------------------------------------------------------------

    def _shift(self, row: int, lo: float, hi: float, columns: tuple[str, ...]) -> None:
        """Move the row's prices together by a large multiple of normal moves."""
        twice = self.values[row]
        assert twice is not None
        past = [v for v in self.values[row - HISTORY_ROWS : row] if v is not None]
        median = statistics.median(past)
        mad = statistics.median(abs(v - median) for v in past) / 2  # of the mid
        price = twice / 2
        delta = max(
            self.rng.uniform(lo, hi) * price,
            50 * self.median_move,
            40 * 1.4826 * mad,
        )
        delta_int = math.ceil(delta / self.tick) * self.tick
        low = min(self.int_at(c, row) for c in columns)
        sign = -1 if self.rng.random() < 0.5 and low - delta_int > 0 else 1
        for c in columns:
            self.set(c, row, self.int_at(c, row) + sign * delta_int)

    def _spike(self, row: int) -> None:
        self._shift(row, 0.01, 0.03, ("bid", "ask"))

    def _fat_finger(self, row: int) -> None:
        self._shift(row, 0.10, 0.20, ("price",))

    def _crossed(self, row: int) -> None:
        bid, ask = self.get("bid", row), self.get("ask", row)
        self.set("bid", row, ask)
        self.set("ask", row, bid)

    def _locked(self, row: int) -> None:
        self.set("bid", row, self.get("ask", row))

    def _price_column(self) -> str:
        if self.is_quote:
            return self.rng.choice(("bid", "ask"))
        return "price"

    def _non_positive(self, row: int) -> None:
        column = self._price_column()
        value = self.int_at(column, row)
        self.set(column, row, self.rng.choice((0, -value)))

    def _missing_price(self, row: int) -> None:
        self.set(self._price_column(), row, None)

    def _duplicate(self, row: int) -> None:
        for column in TICK_SCHEMA:
            if column not in ("source", "source_seq", "symbol", "kind"):
                self.set(column, row, self.get(column, row - 1))

    def _out_of_order(self, row: int) -> None:
        self.set("ts_ns", row, self.int_at("ts_ns", row - 1) - _NS_PER_S)

    def _future(self, row: int) -> None:
        self.set("ts_ns", row, self.int_at("recv_ns", row) + _HOUR_NS)

    def _stale(self, row: int) -> None:
        self.set("recv_ns", row, self.int_at("ts_ns", row) + _HOUR_NS)

    def _wide_spread(self, row: int) -> None:
        bid, ask = self.int_at("bid", row), self.int_at("ask", row)
        mid = (bid + ask) / 2
        target = min(max(50 * self.median_spread, 0.02 * mid), mid)
        extra = max(1, math.ceil((target - (ask - bid)) / 2 / self.tick)) * self.tick
        self.set("bid", row, bid - extra)
        self.set("ask", row, ask + extra)

    # --- vendor clock errors: event and receive time move together ------------------------

    def _size_ns(self, low_s: float, high_s: float) -> int:
        """A size of clock error, log-uniform between ``low_s`` and ``high_s`` seconds."""
        return int(math.exp(self.rng.uniform(math.log(low_s), math.log(high_s))) * _NS_PER_S)

    def _stamp(self, row: int, ts: int) -> None:
        self.set("ts_ns", row, ts)
        self.set("recv_ns", row, ts)

    def _run(self, row: int, count: int) -> list[int]:
        return [r for r in range(row, row + count) if r < self.frame.height]

    def _ahead(self, rows: list[int]) -> list[int]:
        first, last = rows[0], rows[-1]
        reach = self.int_at("ts_ns", min(last + 12, self.frame.height - 1))
        delta = max(self._size_ns(2, 3 * 86_400), reach - self.int_at("ts_ns", first) + _NS_PER_S)
        for r in rows:
            self._stamp(r, self.int_at("ts_ns", r) + delta)
        return rows

    def _behind(self, rows: list[int], before: int) -> list[int]:
        # Measured from the run's last row, so that every row of it lands before ``before``.
        delta = self.int_at("ts_ns", rows[-1]) - before + self._size_ns(1, 3 * 86_400)
        for r in rows:
            self._stamp(r, self.int_at("ts_ns", r) - delta)
        return rows

    def _clock_ahead(self, row: int) -> list[int]:
        return self._ahead([row])

    def _clock_ahead_run(self, row: int) -> list[int]:
        return self._ahead(self._run(row, self.rng.randint(2, 4)))

    def _clock_behind(self, row: int) -> list[int]:
        return self._behind([row], self.int_at("ts_ns", row - 1))

    def _clock_behind_run(self, row: int) -> list[int]:
        return self._behind(self._run(row, self.rng.randint(2, 4)), self.int_at("ts_ns", row - 1))

    def _clock_jump_ahead(self, row: int) -> list[int]:
        self.gaps.append(row)
        return self._ahead([row])

    def _clock_jump_behind(self, row: int) -> list[int]:
        self.gaps.append(row)
        # Before the row preceding the gap: the gap adds a week to this row, so a week less.
        return self._behind([row], self.int_at("ts_ns", row - 1) - _WEEK_NS)

    def _clock_start_behind(self, row: int) -> list[int]:
        rows = self._run(0, self.rng.randint(1, 3))
        delta = self._size_ns(2 * 3_600, 3 * 86_400)
        for r in rows:
            self._stamp(r, self.int_at("ts_ns", r) - delta)
        return rows

    def _clock_start_ahead(self, row: int) -> list[int]:
        return self._ahead(self._run(0, self.rng.randint(1, 3)))
