"""A replay's clock: a bad stamp never poisons the rest of a feed (``pipelines.ticks.clock``)."""

from __future__ import annotations

import itertools
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.ticks import scores
from pipelines.ticks.anomalies import ALL, CLOCK_KINDS, START_KINDS, inject
from pipelines.ticks.config import FilterConfig
from pipelines.ticks.filters import FeedState, Screened, screen
from pipelines.ticks.formats import discover, read_batches
from pipelines.ticks.synthetic import synthetic_batches
from tests.pipelines.builders import MS, T0, quotes, walk
from trading.catalogue import default_catalogue

CAT = default_catalogue()
EUR = CAT.get("EUR/USD")
CFG = FilterConfig()
SESSION = CAT.session_for("EUR/USD")
MARKET = Path(__file__).parent.parent / "data" / "market"
HOUR = 3_600 * 10**9
DAY = 24 * HOUR


def _run(frame: pl.DataFrame, inst=EUR, *, replay: bool = True) -> Screened:
    session = CAT.session_for(inst.symbol)
    return screen(FeedState(), frame, inst, CFG, session, final=True, replay=replay)


def _reasons(result: Screened) -> dict[int, str]:
    return {int(s): str(r) for s, r in result.rejected.select("source_seq", "reason").iter_rows()}


def _stamped(ts: list[int]) -> pl.DataFrame:
    return quotes(walk(len(ts)), ts=ts)


def _clean_ts(n: int, step: int = 100 * MS) -> list[int]:
    return [T0 + i * step for i in range(n)]


def _vendor(name: str, fmt: str) -> pl.DataFrame:
    (feed,) = discover(MARKET / name, fmt, CAT)
    return pl.concat([b.ticks for b in read_batches(feed, CAT)])


@pytest.mark.parametrize("ahead", [5 * 10**9, 3 * HOUR, 2 * DAY])
def test_clock_when_one_stamp_is_ahead_then_future_and_the_rest_accepted(ahead: int) -> None:
    ts = _clean_ts(300)
    ts[150] += ahead
    result = _run(_stamped(ts))
    assert _reasons(result) == {150: "future"}
    assert result.state.last_ts == ts[-1]


@pytest.mark.parametrize("run", [2, 3, 4])
def test_clock_when_a_short_run_is_ahead_then_every_row_of_it_is_future(run: int) -> None:
    ts = _clean_ts(300)
    for i in range(150, 150 + run):
        ts[i] += 3 * HOUR
    assert _reasons(_run(_stamped(ts))) == {i: "future" for i in range(150, 150 + run)}


@pytest.mark.parametrize("behind", [10**9, 3 * HOUR, 2 * DAY])
def test_clock_when_stamps_go_back_then_out_of_order_and_the_clock_stays(behind: int) -> None:
    ts = _clean_ts(300)
    for i in (150, 200, 201, 202):
        ts[i] = ts[i - 1 if i == 150 else 199] - behind
    result = _run(_stamped(ts))
    assert _reasons(result) == {i: "out_of_order" for i in (150, 200, 201, 202)}
    assert result.accepted.height == 296


def test_clock_when_the_market_really_jumps_then_the_jump_stands() -> None:
    # A data gap of a day, then the feed carries on from the new time.
    ts = [t + (DAY if i >= 150 else 0) for i, t in enumerate(_clean_ts(300))]
    result = _run(_stamped(ts))
    assert result.rejected.is_empty()
    assert result.state.last_ts == ts[-1]


@pytest.mark.parametrize(("offset", "reason"), [(3 * HOUR, "future"), (-3 * HOUR, "out_of_order")])
def test_clock_when_a_bad_stamp_follows_a_true_jump_then_only_it_goes(
    offset: int, reason: str
) -> None:
    ts = [t + (DAY if i >= 150 else 0) for i, t in enumerate(_clean_ts(300))]
    ts[151] = ts[150] + offset
    assert _reasons(_run(_stamped(ts))) == {151: reason}


@pytest.mark.parametrize(("offset", "reason"), [(-2 * DAY, "out_of_order"), (5 * HOUR, "future")])
@pytest.mark.parametrize("run", [1, 3])
def test_clock_when_a_file_starts_with_bad_stamps_then_they_go(
    offset: int, reason: str, run: int
) -> None:
    ts = _clean_ts(300)
    for i in range(run):
        ts[i] += offset
    assert _reasons(_run(_stamped(ts))) == {i: reason for i in range(run)}


def test_clock_when_a_feed_opens_with_one_tick_and_a_quiet_while_then_it_stands() -> None:
    # TrueFX's sample opens at 22:00:00.295 and goes on at 22:02:35: a quiet open.
    ts = [T0, *(T0 + 155 * 10**9 + i * MS for i in range(200))]
    assert _run(_stamped(ts)).rejected.is_empty()


def test_clock_when_a_vendor_file_has_stamps_hours_ahead_then_only_those_are_rejected() -> None:
    # The case: a HistData EUR/USD file where a few ticks carry a stamp hours ahead;
    # the first used to become the clock and every later tick was rejected out of order.
    frame = _vendor("eurusd-quotes-histdata-2020-01.csv", "histdata")
    bad = [400, 2_000, 2_001, 5_000]
    spoiled = frame.with_columns(
        pl.when(pl.col("source_seq").is_in(bad))
        .then(pl.col("ts_ns") + 5 * HOUR)
        .otherwise(pl.col("ts_ns"))
        .alias("ts_ns")
    ).with_columns(recv_ns=pl.col("ts_ns"))
    result = _run(spoiled)
    assert _reasons(result) == dict.fromkeys(bad, "future")
    assert result.accepted.height == frame.height - len(bad)


def test_clock_when_live_then_nothing_waits_and_future_is_against_the_receive_time() -> None:
    ts = _clean_ts(100)
    ts[50] += 3 * HOUR
    frame = quotes(walk(100), ts=ts, recv=_clean_ts(100))
    part = screen(FeedState(), frame, EUR, CFG, SESSION, replay=False)
    assert part.state.waiting.is_empty()
    assert _reasons(part) == {50: "future"}
    assert part.accepted.height == 99


@pytest.fixture(scope="module")
def feeds() -> dict[str, tuple[pl.DataFrame, str]]:
    synthetic, _, _ = next(
        iter(synthetic_batches(CAT, "EUR/USD", 11, 20_000, start_ns=T0 - 10 * HOUR))
    )
    return {
        "histdata": (_vendor("eurusd-quotes-histdata-2020-01.csv", "histdata"), "EUR/USD"),
        "truefx": (_vendor("usdjpy-quotes-truefx-2013-01.csv", "truefx"), "USD/JPY"),
        "binance-trades": (_vendor("btcusdt-trades-binance.parquet", "binance-trades"), "BTC/USDT"),
        "synthetic": (synthetic, "EUR/USD"),
    }


@pytest.mark.parametrize("name", ["histdata", "truefx", "binance-trades", "synthetic"])
def test_clock_when_stamp_errors_of_every_kind_mix_with_every_bad_tick_then_found_over_seeds(
    feeds: dict[str, tuple[pl.DataFrame, str]], name: str
) -> None:
    """Precision and recall over 15 seeds, every kind of bad tick (timestamp errors forward
    and backward, 1 s to 3 days, single and in runs, at the start and after a true gap)."""
    frame, symbol = feeds[name]
    inst, session = CAT.get(symbol), CAT.session_for(symbol)
    own = screen(FeedState(), frame, inst, CFG, session, final=True).rejected["source_seq"]
    hits = wrong = 0
    by_kind: dict[str, list[int]] = {}
    for seed in range(15):
        spoiled, labels = inject(frame, inst, rate=0.02, seed=seed, kinds=ALL)
        got = screen(FeedState(), spoiled, inst, CFG, session, final=True).rejected
        got = got.filter(~pl.col("source_seq").is_in(own.implode()))
        found = labels.join(got, on=["source_seq", "reason"], how="left", coalesce=True)
        matched = labels.join(got.select("source_seq", "reason"), on=["source_seq", "reason"])
        hits += matched.height
        wrong += got.height - matched.height
        for kind, ok in zip(
            labels["kind"].to_list(),
            labels["source_seq"].is_in(matched["source_seq"].implode()).to_list(),
            strict=True,
        ):
            by_kind.setdefault(kind, [0, 0])[ok] += 1
        assert found.height == labels.height
    clock_kinds = set(CLOCK_KINDS) | set(START_KINDS)
    assert clock_kinds <= set(by_kind)
    precision = hits / (hits + wrong)
    assert precision >= 0.995, (precision, wrong)
    for kind, (missed, caught) in by_kind.items():
        assert caught / (caught + missed) >= 0.99, (kind, missed, caught)


@settings(max_examples=20, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=1, max_value=1_499), max_size=8, unique=True),
    seed=st.integers(min_value=0, max_value=10**6),
    vectorized=st.booleans(),
)
def test_clock_when_a_spoiled_feed_is_cut_into_any_batches_then_the_decisions_are_the_same(
    cuts: list[int], seed: int, vectorized: bool
) -> None:
    # Arrange: 1,500 rows with 3 % bad ticks, stamp errors among them
    frame = _vendor("eurusd-quotes-histdata-2020-01.csv", "histdata").head(1_500)
    spoiled, _ = inject(frame, EUR, rate=0.03, seed=seed, kinds=[*CLOCK_KINDS, "spike", "crossed"])
    old = scores._SMALL
    scores._SMALL = 0 if vectorized else old
    try:
        whole = screen(FeedState(), spoiled, EUR, CFG, SESSION, final=True)
        state, accepted, rejected = FeedState(), [], []
        for lo, hi in itertools.pairwise([0, *sorted(cuts), 1_500]):
            part = screen(state, spoiled.slice(lo, hi - lo), EUR, CFG, SESSION)
            state = part.state
            accepted.append(part.accepted)
            rejected.append(part.rejected)
        last = screen(state, spoiled.head(0), EUR, CFG, SESSION, final=True)
    finally:
        scores._SMALL = old
    # Assert
    assert pl.concat([*accepted, last.accepted]).equals(whole.accepted)
    assert pl.concat([*rejected, last.rejected]).equals(whole.rejected)
    assert last.state.counts == whole.state.counts
    assert last.state.waiting.is_empty() and last.state.pending.is_empty()


@pytest.mark.parametrize("at", [299, 298])
def test_clock_when_a_feed_ends_with_a_stamp_hours_ahead_then_future(at: int) -> None:
    # (Two last ticks both ahead confirm each other, as the ticks after a true jump do.)
    ts = _clean_ts(300)
    ts[at] += 5 * HOUR
    assert _reasons(_run(_stamped(ts))) == {at: "future"}


def test_clock_when_a_feed_ends_after_a_quiet_minute_then_its_last_tick_stands() -> None:
    ts = [*_clean_ts(299), T0 + 299 * 100 * MS + 60 * 10**9]
    assert _run(_stamped(ts)).rejected.is_empty()
