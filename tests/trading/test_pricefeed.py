"""The platform's seeded price source: RandomWalkFeed (simulation) and TickGenerator (ticks)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import pickle
import random
import statistics

import pytest

from trading.catalogue import Catalogue, default_catalogue
from trading.sim.pricefeed import (
    BURST,
    CALM,
    TICK_PROFILES,
    RandomWalkFeed,
    TickGenerator,
    WalkState,
    symbol_seed,
)

MONDAY_NS = 1_767_600_000_000_000_000  # 2026-01-05 08:00 UTC, FX open
FRIDAY_NS = 1_767_988_800_000_000_000  # 2026-01-09 20:00 UTC, 2 h before the FX close
SATURDAY_NS = 1_768_046_400_000_000_000  # 2026-01-10 12:00 UTC, FX closed
SYMBOLS = ["EUR/USD", "USD/JPY", "XAU/USD", "US500", "DE40", "JP225", "BTC/USD", "AAPL"]


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return default_catalogue()


def _gen(cat: Catalogue, symbol: str, seed: int = 7, start: int = MONDAY_NS) -> TickGenerator:
    return TickGenerator(cat.get(symbol), cat.session_for(symbol), seed, start)


def _utc(ts_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, dt.UTC)


# --- RandomWalkFeed (the simulation's API) ------------------------------------------------------


def test_random_walk_feed_when_seeded_then_quotes_repeat_on_the_grid(cat: Catalogue) -> None:
    def run() -> list[tuple[int, int]]:
        feed = RandomWalkFeed(cat, ["EUR/USD", "XAU/USD"], 3, MONDAY_NS)
        return [(q.bid, q.ask) for q in (feed.step(MONDAY_NS + i * 10**8) for i in range(500))]

    first = run()
    assert first == run()
    assert all(0 < bid < ask for bid, ask in first)
    assert RandomWalkFeed(cat, ["EUR/USD"], 3, MONDAY_NS).symbols == ["EUR/USD"]


# --- TickGenerator ------------------------------------------------------------------------------


def test_symbol_seed_when_derived_then_stable_and_distinct_per_symbol() -> None:
    # blake2b of "seed\0symbol": the same on every run and platform (hash() is salted).
    assert symbol_seed(1, "EUR/USD") == symbol_seed(1, "EUR/USD")
    assert symbol_seed(1, "EUR/USD") != symbol_seed(1, "GBP/USD")
    assert symbol_seed(1, "EUR/USD") != symbol_seed(2, "EUR/USD")
    assert symbol_seed(0, "EUR/USD") == 0x9E0DAD70502BF5D5


def test_tick_generator_when_same_seed_then_same_ticks_and_other_seed_differs(
    cat: Catalogue,
) -> None:
    a = _gen(cat, "EUR/USD", seed=1).generate(20_000)
    assert a == _gen(cat, "EUR/USD", seed=1).generate(20_000)
    assert a != _gen(cat, "EUR/USD", seed=2).generate(20_000)
    assert a[1] != _gen(cat, "GBP/USD", seed=1).generate(20_000)[1]


@pytest.mark.parametrize("symbol", ["EUR/USD", "XAU/USD", "AAPL"])
def test_tick_generator_when_resumed_from_pickled_states_then_continues_exactly(
    cat: Catalogue, symbol: str
) -> None:
    n = 200_000
    whole = _gen(cat, symbol).generate(n)
    rng = random.Random(5)
    gen = _gen(cat, symbol)
    pieces: tuple[list[int], ...] = ([], [], [], [], [])
    done = 0
    while done < n:
        k = min(n - done, rng.choice([1, 2, 3, 17, 999, 40_000]))
        if rng.random() < 0.4:  # a crash and a restart from the last snapshot
            state = pickle.loads(pickle.dumps(gen.state()))
            gen = TickGenerator(cat.get(symbol), cat.session_for(symbol), 7, MONDAY_NS, state)
        for column, values in zip(pieces, gen.generate(k), strict=True):
            column.extend(values)
        done += k
    assert pieces == whole
    assert gen.state().count == n


def test_walk_state_when_built_then_frozen_and_tied_to_its_symbol_and_seed(
    cat: Catalogue,
) -> None:
    gen = _gen(cat, "EUR/USD")
    gen.generate(10)
    state = gen.state()
    assert state.count == 10 and state.regime in (CALM, BURST)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.mid_ticks = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="cannot continue"):
        TickGenerator(cat.get("GBP/USD"), cat.session_for("GBP/USD"), 7, MONDAY_NS, state)
    with pytest.raises(ValueError, match="cannot continue"):
        TickGenerator(cat.get("EUR/USD"), cat.session_for("EUR/USD"), 8, MONDAY_NS, state)


def test_tick_generator_when_zero_ticks_asked_then_nothing_and_state_unchanged(
    cat: Catalogue,
) -> None:
    gen = _gen(cat, "EUR/USD")
    before = gen.state()
    assert gen.generate(0) == ([], [], [], [], [])
    assert gen.state() == before


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_tick_generator_when_run_then_prices_positive_on_grid_bid_below_ask_time_increasing(
    cat: Catalogue, symbol: str
) -> None:
    inst = cat.get(symbol)
    ts, bid, ask, bid_size, ask_size = _gen(cat, symbol).generate(100_000)
    tick, lot = inst.tick_int, inst.lot_int
    assert len(ts) == len(bid) == len(ask) == len(bid_size) == len(ask_size) == 100_000
    assert all(0 < b < a for b, a in zip(bid, ask, strict=True))
    assert all(b % tick == 0 and a % tick == 0 for b, a in zip(bid, ask, strict=True))
    assert all(s > 0 and s % lot == 0 for s in bid_size + ask_size)
    assert all(t0 < t1 for t0, t1 in itertools.pairwise(ts))
    session = cat.session_for(symbol)
    assert all(session.is_open_ns(t) for t in ts)


def test_tick_generator_when_walk_sits_at_one_tick_then_prices_stay_positive(
    cat: Catalogue,
) -> None:
    inst = cat.get("EUR/USD")
    low = dataclasses.replace(_gen(cat, "EUR/USD").state(), mid_ticks=1)
    gen = TickGenerator(inst, cat.session_for("EUR/USD"), 7, MONDAY_NS, low)
    whole = gen.generate(20_000)
    _, bid, ask, _, _ = whole
    assert min(bid) > 0
    assert all(b < a for b, a in zip(bid, ask, strict=True))
    # The clamp at the floor is the same whether ticks are asked for in runs or one by one.
    again = TickGenerator(inst, cat.session_for("EUR/USD"), 7, MONDAY_NS, low)
    pieces: tuple[list[int], ...] = ([], [], [], [], [])
    for _ in range(200):
        for column, values in zip(pieces, again.generate(100), strict=True):
            column.extend(values)
    assert pieces == whole


def test_tick_generator_when_fx_crosses_a_weekend_then_no_saturday_tick_and_a_real_gap(
    cat: Catalogue,
) -> None:
    session = cat.session_for("EUR/USD")
    ts, *_ = _gen(cat, "EUR/USD", start=FRIDAY_NS).generate(150_000)
    assert not any(_utc(t).weekday() == 5 for t in ts)
    assert all(session.is_open_ns(t) for t in ts)
    gaps = [(t1 - t0, i) for i, (t0, t1) in enumerate(itertools.pairwise(ts))]
    longest, at = max(gaps)
    assert longest > 47 * 3_600 * 10**9  # Friday 22:00 UTC to Sunday 22:00 UTC
    assert _utc(ts[at]).weekday() == 4 and _utc(ts[at + 1]).weekday() == 6
    assert _utc(ts[at + 1]).hour == 22  # Sunday 17:00 New York


def test_tick_generator_when_started_while_closed_then_first_tick_at_the_open(
    cat: Catalogue,
) -> None:
    ts, *_ = _gen(cat, "EUR/USD", start=SATURDAY_NS).generate(10)
    first = _utc(ts[0])
    assert (first.weekday(), first.hour, first.minute) == (6, 22, 0)


def test_tick_generator_when_us_equity_runs_days_then_ticks_only_in_regular_hours(
    cat: Catalogue,
) -> None:
    ts, *_ = _gen(cat, "AAPL").generate(600_000)  # 100 ms apart: about 2.5 sessions
    minutes = {(_utc(t).hour * 60 + _utc(t).minute) for t in ts}
    assert min(minutes) >= 14 * 60 + 30 and max(minutes) < 21 * 60  # 09:30-16:00 New York
    assert len({_utc(t).date() for t in ts}) >= 2


def test_tick_generator_when_run_long_then_bursts_and_lasting_jumps_exist(
    cat: Catalogue,
) -> None:
    inst = cat.get("EUR/USD")
    gen = _gen(cat, "EUR/USD", seed=11)
    ts, bid, ask, _, _ = gen.generate(1_000_000)
    state = gen.state()
    assert state.bursts >= 10 and state.jumps >= 1

    # Poisson arrivals around the FX mean of 100 ms (faster inside bursts).
    intervals = [t1 - t0 for t0, t1 in itertools.pairwise(ts[:100_000])]
    assert 40e6 < statistics.fmean(intervals) < 110e6
    assert statistics.median(intervals) < statistics.fmean(intervals)  # skewed, as exponential

    # Spreads vary and widen in bursts.
    spreads = sorted(a - b for b, a in zip(bid, ask, strict=True))
    assert spreads[len(spreads) * 999 // 1000] >= 3 * spreads[len(spreads) // 2]

    # A jump: a one-tick move of at least the FX jump size, and the level stays.
    twice_mid = [b + a for b, a in zip(bid, ask, strict=True)]
    jump_bps = TICK_PROFILES[inst.asset_class].jump_bps
    jumps = [
        i
        for i in range(1, len(twice_mid) - 200)
        if abs(twice_mid[i] - twice_mid[i - 1]) * 10_000 >= jump_bps * twice_mid[i - 1]
    ]
    assert jumps
    for i in jumps:
        size = twice_mid[i] - twice_mid[i - 1]
        later = twice_mid[i + 1 : i + 21]
        assert all(abs(v - twice_mid[i]) < abs(size) / 2 for v in later)


def test_walk_state_when_pickled_then_equal(cat: Catalogue) -> None:
    gen = _gen(cat, "BTC/USD")
    gen.generate(1_000)
    state = gen.state()
    assert isinstance(state, WalkState)
    assert pickle.loads(pickle.dumps(state)) == state
