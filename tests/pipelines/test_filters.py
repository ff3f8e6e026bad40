"""Each bad-tick filter on its own, on small frames built to trip exactly one of them."""

from __future__ import annotations

import itertools
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.ticks.config import FilterConfig
from pipelines.ticks.filters import FeedState, Screened, screen, screen_many
from tests.pipelines.builders import MS, T0, quotes, trades, walk
from trading.catalogue import default_catalogue
from trading.instrument import Instrument

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
    # (live: the clock decides at once, so only the spike waits)
    first = screen(FeedState(), frame.head(150), EUR, CFG, session, replay=False)
    second = screen(first.state, frame.slice(150), EUR, CFG, session, final=True, replay=False)
    # Assert
    assert first.state.pending["source_seq"].to_list() == [149]
    assert 149 not in first.accepted["source_seq"].to_list()
    assert _reasons(second) == {149: "spike"}
    assert first.accepted.height + second.accepted.height == 299


def test_screen_when_two_spikes_end_a_batch_then_both_wait_and_both_are_rejected() -> None:
    # Arrange: the last two rows of the first batch are spikes
    bids = walk(300)
    bids[148] += 1_100
    bids[149] += 1_100
    frame = quotes(bids)
    session = CAT.session_for("EUR/USD")
    # Act
    # (live: the clock decides at once, so only the spike waits)
    first = screen(FeedState(), frame.head(150), EUR, CFG, session, replay=False)
    second = screen(first.state, frame.slice(150), EUR, CFG, session, final=True, replay=False)
    # Assert
    assert first.state.pending["source_seq"].to_list() == [148, 149]
    assert _reasons(second) == {148: "spike", 149: "spike"}


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


# Feeds of several symbols and asset classes: (key, symbol, kind, start price in price units).
POOL = [
    ("fx-a|EUR/USD", "EUR/USD", "quote", 108_500),
    ("fx-b|EUR/USD", "EUR/USD", "quote", 108_520),
    ("fx|USD/JPY", "USD/JPY", "quote", 150_000),
    ("cx|BTC/USDT", "BTC/USDT", "quote", 9_000_000),
    ("cx-trades|BTC/USDT", "BTC/USDT", "trade", 9_000_000),
    ("ix|US500", "US500", "quote", 50_000),
]
SATURDAY = 5 * 86_400 * 10**9 + 2 * 3_600 * 10**9  # from T0: FX and indices are closed


@st.composite
def _feed_spec(draw: st.DrawFn, pick: int) -> dict[str, object]:
    n = draw(st.integers(min_value=2, max_value=240))
    rows = st.integers(min_value=1, max_value=n - 1)
    return {
        "pick": pick,
        "n": n,
        "seed": draw(st.integers(min_value=1, max_value=1_000)),
        "spikes": draw(st.lists(rows, max_size=4)),
        "dups": draw(st.lists(rows, max_size=3)),
        "ooo": draw(st.lists(rows, max_size=3)),
        "jump_at": draw(st.none() | rows),
        "saturday": draw(st.booleans()),
        "cuts": sorted(draw(st.lists(rows, max_size=6, unique=True))),
        # Rounds in which the feed has nothing: left out of the call, or an empty frame.
        "idle": draw(st.lists(st.sampled_from(["out", "empty"]), max_size=2)),
    }


@st.composite
def _feed_specs(draw: st.DrawFn) -> list[dict[str, object]]:
    picks = draw(st.lists(st.integers(0, len(POOL) - 1), min_size=2, max_size=5, unique=True))
    return [draw(_feed_spec(p)) for p in picks]


def _feed_frame(spec: dict[str, object]) -> pl.DataFrame:
    """A feed with spikes, duplicates, out-of-order rows and a true jump where ``spec`` says."""
    key, symbol, kind, start = POOL[spec["pick"]]  # type: ignore[index]
    n = spec["n"]
    assert isinstance(n, int)
    prices = walk(n, start=start, seed=spec["seed"])  # type: ignore[arg-type]
    if spec["jump_at"] is not None:
        prices = [p + (start // 100 if i >= spec["jump_at"] else 0) for i, p in enumerate(prices)]
    for i in spec["spikes"]:  # type: ignore[attr-defined]
        prices[i] += start // 100
    t0 = T0 + (SATURDAY if spec["saturday"] else 0)
    ts = [t0 + i * 100 * MS for i in range(n)]
    ids = [str(i) for i in range(n)]
    for i in spec["dups"]:  # type: ignore[attr-defined]
        prices[i], ts[i], ids[i] = prices[i - 1], ts[i - 1], ids[i - 1]
    for i in spec["ooo"]:  # type: ignore[attr-defined]
        ts[i] = ts[i - 1] - 500 * MS
    if kind == "quote":
        return quotes(prices, symbol=symbol, ts=ts, source=key)
    frame = trades(prices, symbol=symbol, trade_ids=ids)
    return frame.with_columns(ts_ns=pl.Series(ts), recv_ns=pl.Series(ts), source=pl.lit(key))


def _assert_same(got: Screened, want: Screened) -> None:
    assert got.accepted.equals(want.accepted)
    assert got.rejected.equals(want.rejected)
    a, b = got.state, want.state
    assert (a.last_ts, a.tail, dict(a.counts)) == (b.last_ts, b.tail, dict(b.counts))
    assert a.edge.equals(b.edge)
    assert a.pending.equals(b.pending)


@settings(max_examples=30, deadline=None)
@given(specs=_feed_specs(), halted=st.booleans(), vectorized=st.booleans())
def test_screen_many_when_feeds_are_screened_together_then_each_equals_screen_alone(
    specs: list[dict[str, object]], halted: bool, vectorized: bool
) -> None:
    from pipelines.ticks import scores

    # The scores of small batches are computed in Python; force the Polars path half the time.
    old = scores._SMALL
    scores._SMALL = 0 if vectorized else old
    try:
        _screen_many_equals_screen(specs, halted)
    finally:
        scores._SMALL = old


def _screen_many_equals_screen(specs: list[dict[str, object]], halted: bool) -> None:
    # Arrange: 2-5 feeds of different symbols, each cut into its own batches
    cfg = FilterConfig(halts={"EUR/USD": ((T0 + 2_000 * MS, T0 + 5_000 * MS),)} if halted else {})
    keys = [POOL[s["pick"]][0] for s in specs]  # type: ignore[index]
    frames = {k: _feed_frame(s) for k, s in zip(keys, specs, strict=True)}
    insts: dict[str, Instrument] = {k: CAT.get(frames[k]["symbol"][0]) for k in keys}
    sessions = {k: CAT.session_for(insts[k].symbol) for k in keys}
    plans: dict[str, list[pl.DataFrame | None]] = {}
    for k, s in zip(keys, specs, strict=True):
        bounds = [0, *s["cuts"], s["n"]]  # type: ignore[misc]
        plans[k] = [frames[k].slice(lo, hi - lo) for lo, hi in itertools.pairwise(bounds)]
        for idle in s["idle"]:  # type: ignore[attr-defined]
            plans[k].insert(len(plans[k]) // 2, None if idle == "out" else frames[k].head(0))
    rounds = max(len(p) for p in plans.values())
    many_states = {k: FeedState() for k in keys}
    one_states = dict(many_states)
    seen: dict[str, list[pl.DataFrame]] = {k: [] for k in keys}
    # Act / Assert: every round, and the final call, give each feed what screen gives it
    for r in range(rounds + 1):
        final = r == rounds
        batches = {}
        for k in keys:
            part = frames[k].head(0) if final else (plans[k] + [None] * rounds)[r]
            if part is not None:
                batches[k] = part
        many = screen_many(many_states, batches, insts, cfg, sessions, final=final)
        assert list(many) == list(batches)
        for k, batch in batches.items():
            one = screen(one_states[k], batch, insts[k], cfg, sessions[k], final=final)
            _assert_same(many[k], one)
            many_states[k], one_states[k] = many[k].state, one.state
            seen[k] += [one.accepted.select("source_seq"), one.rejected.select("source_seq")]
    for k, s in zip(keys, specs, strict=True):
        assert sorted(pl.concat(seen[k])["source_seq"].to_list()) == list(range(s["n"]))  # type: ignore[call-overload]
        assert many_states[k].pending.is_empty()


def test_screen_many_when_feeds_differ_then_each_is_judged_on_its_own_thresholds() -> None:
    # Arrange: one tick 20 bps off on each feed: a spike for EUR/USD (FX floor 10 bps), not
    # for BTC/USDT (crypto floor 30 bps); BTC/USDT's 70 bps spread is within crypto's bound
    # (100 bps), though it would be too wide for FX (50 bps).
    eur_bids, btc_bids = walk(200), walk(200, start=9_000_000)
    eur_bids[150] += 217
    btc_bids[120] += 18_000
    eur, btc = quotes(eur_bids), quotes(btc_bids, symbol="BTC/USDT", spread=63_000)
    insts = {"eur": EUR, "btc": BTC}
    sessions = {k: CAT.session_for(i.symbol) for k, i in insts.items()}
    # Act
    out = screen_many(
        dict.fromkeys(insts, FeedState()), {"eur": eur, "btc": btc}, insts, CFG, sessions,
        final=True,
    )  # fmt: skip
    # Assert
    assert _reasons(out["eur"]) == {150: "spike"}
    assert out["eur"].state.counts == {"accepted": 199, "spike": 1}
    assert out["btc"].rejected.is_empty()
    assert out["btc"].accepted.height == 200


def test_screen_many_when_a_feed_has_no_rows_then_its_state_is_unchanged() -> None:
    first = _run(quotes(walk(100)), final=False)
    out = screen_many(
        {"a": first.state, "b": FeedState()},
        {"a": quotes(walk(0)), "b": quotes(walk(50))},
        {"a": EUR, "b": EUR},
        CFG,
        {"a": None, "b": None},
    )
    assert out["a"].state is first.state
    assert out["a"].accepted.is_empty()
    # a replay's last few rows wait for the ticks that confirm their stamps
    b = out["b"]
    assert b.accepted.height + b.state.waiting.height == 50
    assert b.rejected.is_empty()


def test_screen_many_when_feeds_print_the_same_records_then_duplicates_are_per_feed() -> None:
    # Arrange: two venues print the same quotes; row 101 repeats row 100 on each
    bids = walk(200)
    ts = [T0 + i * 100 * MS for i in range(200)]
    bids[101], ts[101] = bids[100], ts[100]
    frame = quotes(bids, ts=ts)
    # Act
    out = screen_many(
        {"a": FeedState(), "b": FeedState()}, {"a": frame, "b": frame}, {"a": EUR, "b": EUR},
        CFG, {"a": None, "b": None}, final=True,
    )  # fmt: skip
    # Assert
    assert _reasons(out["a"]) == _reasons(out["b"]) == {101: "duplicate"}


def _clean(feeds: list[tuple[int, list[int], bool]]) -> pl.DataFrame:
    """Clean rows as ``screen_many`` scores them: ``_f``, ``_i``, ``_v`` (2 × mid), ``_q``."""
    rows = []
    i = 0
    for k, (n, spikes, trades_too) in enumerate(feeds):
        bids = walk(n, seed=k + 1)
        for s in spikes:
            if s < n:
                bids[s] += 1_100
        for j, bid in enumerate(bids):
            rows.append((k, i, 2 * bid + 10, not (trades_too and j % 3 == 0)))
            i += 1
    return pl.DataFrame(
        rows, schema={"_f": pl.UInt32, "_i": pl.Int64, "_v": pl.Int64, "_q": pl.Boolean},
        orient="row",
    )  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    feeds=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=300),
            st.lists(st.integers(min_value=0, max_value=299), max_size=6),
            st.booleans(),
        ),
        min_size=1,
        max_size=3,
    ),
    tails=st.lists(
        st.lists(st.integers(min_value=216_000, max_value=218_000), max_size=64),
        min_size=3,
        max_size=3,
    ),
    symbols=st.lists(
        st.sampled_from(["EUR/USD", "USD/JPY", "BTC/USDT", "US500"]), min_size=3, max_size=3
    ),
)
def test_score_when_small_then_the_python_path_equals_the_polars_path(
    feeds: list[tuple[int, list[int], bool]], tails: list[list[int]], symbols: list[str]
) -> None:
    # Arrange: one to three feeds' clean rows, each after its own tail and thresholds
    from pipelines.ticks import scores

    clean = _clean(feeds)
    scoring = [
        scores._Scoring(tuple(tails[k]), CFG.thresholds(CAT.get(s)), CAT.get(s).tick_int)
        for k, s in enumerate(symbols[: len(feeds)])
    ]
    # Act
    small = scores._score(clean, scoring, CFG)
    old = scores._SMALL
    scores._SMALL = 0
    try:
        vectorized = scores._score(clean, scoring, CFG)
    finally:
        scores._SMALL = old
    # Assert
    assert small.height == clean.height
    assert small.equals(vectorized.cast(small.schema))
