"""Each bad-tick filter on its own, on small frames built to trip exactly one of them."""

from __future__ import annotations

import itertools
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.ticks.config import FilterConfig
from pipelines.ticks.filters import FeedState, Screened, screen
from tests.pipelines.builders import MS, T0, quotes, trades, walk
from trading.instruments import default_catalogue

CAT = default_catalogue()
EUR = CAT.get("EUR/USD")
BTC = CAT.get("BTC/USDT")
CFG = FilterConfig()


def _run(frame: pl.DataFrame, inst=EUR, cfg=CFG, *, final: bool = True) -> Screened:
    return screen(FeedState(), frame, inst, cfg, CAT.session_for(inst.symbol), final=final)


def _reasons(result: Screened) -> dict[int, str]:
    return {int(s): str(r) for s, r in result.rejected.select("source_seq", "reason").iter_rows()}


def test_screen_when_quotes_are_a_clean_walk_then_all_accepted() -> None:
    # Arrange
    frame = quotes(walk(500))
    # Act
    result = _run(frame)
    # Assert
    assert result.rejected.is_empty()
    assert result.accepted["source_seq"].to_list() == list(range(500))
    assert result.state.counts == {"accepted": 500}


@pytest.mark.parametrize(
    ("bid", "ask", "reason"),
    [
        (None, 108_510, "missing_price"),
        (108_500, None, "missing_price"),
        (0, 108_510, "non_positive"),
        (-5, 108_510, "non_positive"),
        (108_520, 108_510, "crossed"),
        (108_510, 108_510, "locked"),
        (108_000, 108_900, "wide_spread"),  # 83 bps: beyond FX's 50
    ],
)
def test_screen_when_one_quote_has_a_bad_price_then_only_it_is_rejected_with_its_reason(
    bid: int | None, ask: int | None, reason: str
) -> None:
    # Arrange
    bids: list[int | None] = list(walk(200))
    asks: list[int | None] = [b + 10 for b in walk(200)]
    bids[150], asks[150] = bid, ask
    # Act
    result = _run(quotes(bids, asks))
    # Assert
    assert _reasons(result) == {150: reason}
    assert result.accepted.height == 199


def test_screen_when_a_size_is_negative_then_non_positive() -> None:
    sizes: list[int | None] = [10**8] * 200
    sizes[120] = -1
    result = _run(quotes(walk(200), sizes=sizes))
    assert _reasons(result) == {120: "non_positive"}


def test_screen_when_a_row_repeats_the_previous_record_then_duplicate() -> None:
    # Arrange: row 101 is row 100 again, event time included
    bids = walk(200)
    ts = [T0 + i * 100 * MS for i in range(200)]
    bids[101], ts[101] = bids[100], ts[100]
    # Act
    result = _run(quotes(bids, ts=ts))
    # Assert
    assert _reasons(result) == {101: "duplicate"}


def test_screen_when_two_records_share_a_time_but_differ_then_both_accepted() -> None:
    bids = walk(200)
    ts = [T0 + i * 100 * MS for i in range(200)]
    ts[101] = ts[100]
    bids[101] = bids[100] + 1
    result = _run(quotes(bids, ts=ts))
    assert result.rejected.is_empty()


def test_screen_when_a_duplicate_straddles_two_batches_then_the_state_catches_it() -> None:
    # Arrange
    bids = walk(200)
    ts = [T0 + i * 100 * MS for i in range(200)]
    bids[100], ts[100] = bids[99], ts[99]
    frame = quotes(bids, ts=ts)
    first = _run(frame.head(100), final=False)
    # Act
    second = screen(first.state, frame.slice(100), EUR, CFG, CAT.session_for("EUR/USD"),
                    final=True)  # fmt: skip
    # Assert
    assert _reasons(first) == {}
    assert _reasons(second) == {100: "duplicate"}


def test_screen_when_event_time_goes_back_then_out_of_order() -> None:
    ts = [T0 + i * 100 * MS for i in range(200)]
    ts[130] = ts[129] - 1_000 * MS
    result = _run(quotes(walk(200), ts=ts))
    assert _reasons(result) == {130: "out_of_order"}


def test_screen_when_event_time_is_after_receive_time_then_future() -> None:
    ts = [T0 + i * 100 * MS for i in range(200)]
    recv = list(ts)
    ts[140] = recv[140] + 3_600_000 * MS
    result = _run(quotes(walk(200), ts=ts, recv=recv))
    assert _reasons(result) == {140: "future"}
    # A future tick does not push the feed's clock: the ticks after it are in order.
    assert result.accepted.height == 199


def test_screen_when_received_long_after_the_event_then_stale() -> None:
    ts = [T0 + i * 100 * MS for i in range(200)]
    recv = list(ts)
    recv[140] = ts[140] + 60_000 * MS
    result = _run(quotes(walk(200), ts=ts, recv=recv))
    assert _reasons(result) == {140: "stale"}


def test_screen_when_fx_ticks_on_a_saturday_then_session_closed_but_crypto_is_open() -> None:
    # Arrange: Saturday 2026-01-10 12:00 UTC
    saturday = T0 + 5 * 86_400 * 10**9 + 2 * 3_600 * 10**9
    ts = [saturday + i * 100 * MS for i in range(50)]
    # Act
    fx = _run(quotes(walk(50), ts=ts))
    btc = _run(quotes(walk(50, start=3_940_000), symbol="BTC/USDT", ts=ts, spread=50), BTC)
    # Assert
    assert set(_reasons(fx).values()) == {"session_closed"}
    assert fx.accepted.is_empty()
    assert btc.rejected.is_empty()


def test_screen_when_the_symbol_is_halted_then_ticks_inside_the_halt_are_rejected() -> None:
    # Arrange: halted for rows 50..59
    start, end = T0 + 50 * 100 * MS, T0 + 60 * 100 * MS
    cfg = FilterConfig(halts={"EUR/USD": ((start, end),)})
    # Act
    result = _run(quotes(walk(200)), cfg=cfg)
    # Assert
    assert _reasons(result) == {i: "halted" for i in range(50, 60)}


def test_screen_when_one_quote_jumps_and_comes_back_then_spike() -> None:
    # Arrange: a 1 % jump on one row only
    bids = walk(300)
    bids[200] += 1_100
    # Act
    result = _run(quotes(bids))
    # Assert
    assert _reasons(result) == {200: "spike"}


def test_screen_when_the_market_jumps_and_stays_then_the_jump_is_accepted() -> None:
    # Arrange: from row 200 on, the level is 1 % higher
    bids = [b + (1_100 if i >= 200 else 0) for i, b in enumerate(walk(400))]
    # Act
    result = _run(quotes(bids))
    # Assert
    assert result.rejected.is_empty()


def test_screen_when_a_spike_follows_a_true_jump_closely_then_only_the_spike_goes() -> None:
    # Arrange: the level rises 1 % at row 200 and stays; row 202 is a bad print 1 % down
    bids = [b + (1_100 if i >= 200 else 0) for i, b in enumerate(walk(400))]
    bids[202] -= 2_200
    # Act
    result = _run(quotes(bids))
    # Assert: most of the ticks after the jump confirm it, so the jump stands
    assert _reasons(result) == {202: "spike"}


def test_screen_when_a_spike_ends_a_batch_then_it_waits_and_is_decided_the_same() -> None:
    # Arrange: the spike is the last row of the first batch
    bids = walk(300)
    bids[149] += 1_100
    frame = quotes(bids)
    session = CAT.session_for("EUR/USD")
    # Act
    first = screen(FeedState(), frame.head(150), EUR, CFG, session)
    second = screen(first.state, frame.slice(150), EUR, CFG, session, final=True)
    # Assert
    assert first.state.pending["source_seq"].to_list() == [149]
    assert 149 not in first.accepted["source_seq"].to_list()
    assert _reasons(second) == {149: "spike"}
    assert first.accepted.height + second.accepted.height == 299


def test_screen_when_a_spike_is_the_last_tick_of_the_feed_then_rejected_unconfirmed() -> None:
    bids = walk(200)
    bids[-1] += 1_100
    result = _run(quotes(bids))
    assert _reasons(result) == {199: "spike"}


def test_screen_when_a_trade_prints_ten_percent_away_then_fat_finger() -> None:
    # Arrange
    prices = walk(300, start=3_940_000)
    prices[222] = prices[222] * 11 // 10
    # Act
    result = _run(trades(prices), BTC)
    # Assert
    assert _reasons(result) == {222: "fat_finger"}


def test_screen_when_a_trade_is_absurdly_large_then_fat_finger() -> None:
    qtys = [10**6] * 200
    qtys[77] = 100_000 * 10**8  # 100,000 BTC
    result = _run(trades(walk(200, start=3_940_000), qtys), BTC)
    assert _reasons(result) == {77: "fat_finger"}


def test_screen_when_trades_share_time_price_and_size_but_not_id_then_all_accepted() -> None:
    # Arrange: Binance prints such pairs (one order filling two resting orders)
    prices = walk(200, start=3_940_000)
    frame = trades(prices).with_columns(
        ts_ns=pl.when(pl.col("source_seq") == 101)
        .then(pl.col("ts_ns").shift(1))
        .otherwise(pl.col("ts_ns")),
        price=pl.when(pl.col("source_seq") == 101)
        .then(pl.col("price").shift(1))
        .otherwise(pl.col("price")),
    )
    # Act
    result = _run(frame, BTC)
    # Assert
    assert result.rejected.is_empty()


def test_screen_when_reasons_overlap_then_the_first_in_order_wins() -> None:
    # Arrange: crossed AND stale AND out of order: crossed comes first
    ts = [T0 + i * 100 * MS for i in range(200)]
    recv = list(ts)
    bids = walk(200)
    asks = [b + 10 for b in bids]
    bids[150] = asks[150] + 5
    recv[150] = ts[150] + 60_000 * MS
    # Act
    result = _run(quotes(bids, asks, ts=ts, recv=recv))
    # Assert
    assert _reasons(result) == {150: "crossed"}


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=599), max_size=6, unique=True))
def test_screen_when_a_feed_is_cut_into_any_batches_then_the_decisions_are_the_same(
    cuts: list[int],
) -> None:
    # Arrange: spikes, a duplicate and a jump, at fixed rows
    bids = walk(600)
    ts = [T0 + i * 100 * MS for i in range(600)]
    bids[150] += 1_100
    bids[299] -= 900
    bids[401], ts[401] = bids[400], ts[400]
    bids = [b + (1_500 if i >= 500 else 0) for i, b in enumerate(bids)]
    frame = quotes(bids, ts=ts)
    whole = _run(frame)
    session = CAT.session_for("EUR/USD")
    # Act
    state, accepted, rejected = FeedState(), [], []
    bounds = [0, *sorted(cuts), 600]
    for lo, hi in itertools.pairwise(bounds):
        part = screen(state, frame.slice(lo, hi - lo), EUR, CFG, session)
        state = part.state
        accepted.append(part.accepted)
        rejected.append(part.rejected)
    last = screen(state, frame.head(0), EUR, CFG, session, final=True)
    # Assert
    assert _reasons(whole) == {150: "spike", 299: "spike", 401: "duplicate"}
    assert pl.concat([*accepted, last.accepted]).equals(whole.accepted)
    assert pl.concat([*rejected, last.rejected]).equals(whole.rejected)
    assert last.state.counts == whole.state.counts


def test_filter_config_when_loaded_from_toml_then_overrides_apply(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "filters.toml"
    path.write_text(
        "confirm_ticks = 5\n[asset_class.fx]\nmax_spread_bps = 5\n"
        '[symbol."usdjpy"]\nmax_spread_bps = 70\n'
        '[[halt]]\nsymbol = "EURUSD"\nstart = 2026-01-05T10:00:00Z\nend = 2026-01-05T10:05:00Z\n'
    )
    # Act
    cfg = FilterConfig.load(path, CAT)
    # Assert
    assert cfg.confirm_ticks == 5
    assert cfg.thresholds(EUR).max_spread_bps == 5
    assert cfg.thresholds(CAT.get("USD/JPY")).max_spread_bps == 70
    assert cfg.halts["EUR/USD"] == ((T0, T0 + 300 * 10**9),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("confirm_tick = 3\n", "unknown key"),
        ("[asset_class.fx]\nmax_spread = 5\n", "unknown threshold"),
        ("[asset_class.fx]\nmax_spread_bps = -5\n", "positive integer"),
        ("[asset_class.bonds]\nmax_spread_bps = 5\n", "unknown asset class"),
        ("confirm_ticks = 0\n", "at least 1"),
    ],
)
def test_filter_config_when_the_toml_is_wrong_then_a_clear_error(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "filters.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        FilterConfig.load(path, CAT)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=400),
    tail=st.lists(st.integers(min_value=216_000, max_value=218_000), max_size=64),
    spikes=st.lists(st.integers(min_value=0, max_value=399), max_size=8),
    trades_too=st.booleans(),
)
def test_score_when_small_then_the_python_path_equals_the_polars_path(
    n: int, tail: list[int], spikes: list[int], trades_too: bool
) -> None:
    # Arrange: a clean frame as screen builds it (reason null, _v twice the mid)
    from pipelines.ticks import filters

    bids = walk(n)
    for i in spikes:
        if i < n:
            bids[i] += 1_100
    frame = (
        quotes(bids)
        .with_row_index("_i")
        .with_columns(
            _v=pl.col("bid") + pl.col("ask"),
            reason=pl.lit(None, filters.REASON_DTYPE),
            kind=pl.when((pl.col("_i") % 3 == 0) & trades_too)
            .then(pl.lit("trade"))
            .otherwise(pl.lit("quote")),
        )
    )
    # Act
    small = filters._score(frame, tuple(tail), EUR, CFG)
    old = filters._SMALL
    filters._SMALL = 0
    try:
        vectorized = filters._score(frame, tuple(tail), EUR, CFG)
    finally:
        filters._SMALL = old
    # Assert
    assert small.height == n
    assert small.equals(vectorized.cast(small.schema))
