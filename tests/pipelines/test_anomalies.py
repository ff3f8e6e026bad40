"""Labelled anomaly injection: in place, isolated, unmistakable, and caught by the filters."""

from __future__ import annotations

import itertools
from pathlib import Path

import polars as pl
import pytest

from pipelines.ticks.anomalies import (
    ALL,
    CLOCK_KINDS,
    HISTORY_ROWS,
    MIN_APART,
    QUOTE_KINDS,
    REASON_OF,
    TAIL_ROWS,
    TRADE_KINDS,
    inject,
)
from pipelines.ticks.config import FilterConfig
from pipelines.ticks.filters import FeedState, screen
from pipelines.ticks.formats import discover, read_batches
from pipelines.ticks.schema import REASON_DTYPE, TICK_SCHEMA
from pipelines.ticks.synthetic import synthetic_batches
from trading.catalogue import Catalogue, default_catalogue

MARKET = Path(__file__).parent.parent / "data" / "market"
MONDAY_NS = 1_767_600_000_000_000_000  # 2026-01-05 08:00 UTC
HOUR_NS = 3_600 * 10**9


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return default_catalogue()


def _vendor(cat: Catalogue, name: str, fmt: str) -> pl.DataFrame:
    (feed,) = discover(MARKET / name, fmt, cat)
    return pl.concat([b.ticks for b in read_batches(feed, cat)])


@pytest.fixture(scope="module")
def eurusd(cat: Catalogue) -> pl.DataFrame:
    return _vendor(cat, "eurusd-quotes-histdata-2020-01.csv", "histdata")


@pytest.fixture(scope="module")
def btc_trades(cat: Catalogue) -> pl.DataFrame:
    return _vendor(cat, "btcusdt-trades-binance.parquet", "binance-trades")


@pytest.fixture(scope="module")
def synthetic(cat: Catalogue) -> pl.DataFrame:
    frame, _, _ = next(iter(synthetic_batches(cat, "EUR/USD", 3, 30_000, start_ns=MONDAY_NS)))
    return frame


def _changed_rows(before: pl.DataFrame, after: pl.DataFrame) -> list[int]:
    """Positions of rows that differ in any column (null-aware)."""
    same = pl.all_horizontal(before[c].eq_missing(after[c]) for c in TICK_SCHEMA)
    return pl.select(same.not_().arg_true()).to_series().to_list()


def test_inject_when_run_then_only_labelled_rows_change_and_seqs_stay(
    cat: Catalogue, eurusd: pl.DataFrame
) -> None:
    # (a week's gap before a row moves every row after it: those kinds are left out here)
    kinds = [k for k in ALL if k not in ("clock_jump_ahead", "clock_jump_behind")]
    spoiled, labels = inject(eurusd, cat.get("EUR/USD"), rate=0.02, seed=1, kinds=kinds)
    assert spoiled.schema == eurusd.schema and spoiled.height == eurusd.height
    assert spoiled["source_seq"].equals(eurusd["source_seq"])
    changed = _changed_rows(eurusd, spoiled)
    assert eurusd["source_seq"].gather(changed).to_list() == labels["source_seq"].to_list()
    assert labels.schema == pl.Schema(
        {"source_seq": pl.Int64(), "reason": REASON_DTYPE, "kind": pl.String()}
    )


def test_inject_when_rate_given_then_that_share_isolated_after_history(
    cat: Catalogue, eurusd: pl.DataFrame
) -> None:
    # One row per injection: the kinds that spoil a row each (runs and gaps spoil more).
    kinds = [k for k in QUOTE_KINDS if k not in CLOCK_KINDS]
    spoiled, labels = inject(eurusd, cat.get("EUR/USD"), rate=0.03, seed=2, kinds=kinds)
    assert labels.height == round(0.03 * eurusd.height)
    rows = _changed_rows(eurusd, spoiled)
    assert min(rows) >= HISTORY_ROWS and max(rows) < eurusd.height - TAIL_ROWS
    assert min(b - a for a, b in itertools.pairwise(rows)) >= MIN_APART
    # Every quote kind is used, about equally.
    counts = labels.group_by("reason").len()
    assert counts.height == len(kinds)
    assert counts["len"].max() - counts["len"].min() <= 1  # type: ignore[operator]


def test_inject_when_same_seed_then_same_and_other_seed_differs(
    cat: Catalogue, synthetic: pl.DataFrame
) -> None:
    inst = cat.get("EUR/USD")
    a_frame, a_labels = inject(synthetic, inst, rate=0.01, seed=5)
    b_frame, b_labels = inject(synthetic, inst, rate=0.01, seed=5)
    assert a_frame.equals(b_frame) and a_labels.equals(b_labels)
    c_frame, c_labels = inject(synthetic, inst, rate=0.01, seed=6)
    assert not c_labels.equals(a_labels)
    assert not c_frame.equals(a_frame)


def test_inject_when_run_then_input_frame_untouched(
    cat: Catalogue, synthetic: pl.DataFrame
) -> None:
    copy = synthetic.clone()
    inject(synthetic, cat.get("EUR/USD"), rate=0.02, seed=1)
    assert synthetic.equals(copy)


def _one_kind(
    frame: pl.DataFrame, cat: Catalogue, symbol: str, kind: str
) -> tuple[pl.DataFrame, list[int]]:
    spoiled, labels = inject(frame, cat.get(symbol), rate=0.01, seed=3, kinds=[kind])
    rows = _changed_rows(frame, spoiled)
    assert len(rows) == labels.height > 0
    assert set(labels["reason"].cast(pl.String)) == {REASON_OF[kind].value}
    return spoiled, rows


def test_inject_when_spike_then_bid_and_ask_jump_together_far_beyond_normal_moves(
    cat: Catalogue, eurusd: pl.DataFrame
) -> None:
    spoiled, rows = _one_kind(eurusd, cat, "EUR/USD", "spike")
    moves = (eurusd["bid"] + eurusd["ask"]).diff().abs()
    median_move = moves.filter(moves > 0).median()
    for i in rows:
        d_bid = spoiled["bid"][i] - eurusd["bid"][i]
        d_ask = spoiled["ask"][i] - eurusd["ask"][i]
        mid = (eurusd["bid"][i] + eurusd["ask"][i]) / 2
        assert d_bid == d_ask and abs(d_bid) >= 0.005 * mid
        assert 2 * abs(d_bid) >= 50 * median_move  # type: ignore[operator]
        assert spoiled.row(i + 1) == eurusd.row(i + 1)  # the next row stays normal


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("crossed", lambda r, p, o: r["bid"] > r["ask"]),
        ("locked", lambda r, p, o: r["bid"] == r["ask"]),
        ("non_positive", lambda r, p, o: min(r["bid"], r["ask"]) <= 0),
        ("missing_price", lambda r, p, o: r["bid"] is None or r["ask"] is None),
        ("duplicate", lambda r, p, o: {**r, "source_seq": 0} == {**p, "source_seq": 0}),
        ("out_of_order", lambda r, p, o: r["ts_ns"] == p["ts_ns"] - 10**9),
        ("future", lambda r, p, o: r["ts_ns"] == o["recv_ns"] + HOUR_NS),
        ("stale", lambda r, p, o: r["recv_ns"] - HOUR_NS == r["ts_ns"] == o["ts_ns"]),
        (
            "wide_spread",
            lambda r, p, o: r["bid"] + r["ask"] == o["bid"] + o["ask"]
            and (r["ask"] - r["bid"]) * 10_000 >= 200 * (o["bid"] + o["ask"]) / 2,
        ),
    ],
)  # fmt: skip
def test_inject_when_quote_kind_then_row_has_that_defect(
    cat: Catalogue, eurusd: pl.DataFrame, kind: str, check: object
) -> None:
    spoiled, rows = _one_kind(eurusd, cat, "EUR/USD", kind)
    for i in rows:
        row, prev, orig = (
            spoiled.row(i, named=True),
            spoiled.row(i - 1, named=True),
            eurusd.row(i, named=True),
        )
        assert check(row, prev, orig), (kind, row, prev, orig)  # type: ignore[operator]


def test_inject_when_fat_finger_then_one_print_moves_ten_percent_or_more(
    cat: Catalogue, btc_trades: pl.DataFrame
) -> None:
    spoiled, rows = _one_kind(btc_trades, cat, "BTC/USDT", "fat_finger")
    for i in rows:
        before, after = btc_trades["price"][i], spoiled["price"][i]
        assert abs(after - before) >= 0.10 * before and after > 0
        assert spoiled.row(i + 1) == btc_trades.row(i + 1)


def test_inject_when_kind_does_not_apply_then_skipped(
    cat: Catalogue, eurusd: pl.DataFrame, btc_trades: pl.DataFrame
) -> None:
    same, labels = inject(eurusd, cat.get("EUR/USD"), rate=0.02, seed=1, kinds=["fat_finger"])
    assert labels.is_empty() and same.equals(eurusd)
    _, labels = inject(btc_trades, cat.get("BTC/USDT"), rate=0.04, seed=1)
    used = set(labels["reason"].cast(pl.String))
    assert used == {REASON_OF[k].value for k in TRADE_KINDS}


def test_inject_when_bad_arguments_then_value_error(
    cat: Catalogue, eurusd: pl.DataFrame, btc_trades: pl.DataFrame
) -> None:
    inst = cat.get("EUR/USD")
    with pytest.raises(ValueError, match="unknown anomaly kind"):
        inject(eurusd, inst, rate=0.01, seed=1, kinds=["gremlin"])
    with pytest.raises(ValueError, match="lower the rate"):
        inject(eurusd, inst, rate=0.2, seed=1)
    with pytest.raises(ValueError, match="one feed"):
        inject(pl.concat([eurusd, btc_trades]), inst, rate=0.01, seed=1)
    assert "spike" in ALL and "fat_finger" in ALL


def _measure(
    cat: Catalogue, frame: pl.DataFrame, symbol: str, rate: float
) -> tuple[float, float, int]:
    """(precision, recall, labels) of the filters' rejects against the injected labels;
    rows the filters reject in the clean frame (the vendor's own bad ticks) are left out."""
    inst, cfg, session = cat.get(symbol), FilterConfig(), cat.session_for(symbol)
    baseline = screen(FeedState(), frame, inst, cfg, session, final=True).rejected["source_seq"]
    spoiled, labels = inject(frame, inst, rate=rate, seed=7)
    got = screen(FeedState(), spoiled, inst, cfg, session, final=True).rejected
    got = got.filter(~pl.col("source_seq").is_in(baseline.implode())).select("source_seq", "reason")
    hits = labels.join(got, on=["source_seq", "reason"], how="inner").height
    return hits / max(got.height, 1), hits / labels.height, labels.height


@pytest.mark.parametrize(
    ("name", "fmt", "symbol"),
    [
        ("eurusd-quotes-histdata-2020-01.csv", "histdata", "EUR/USD"),
        ("usdjpy-quotes-truefx-2013-01.csv", "truefx", "USD/JPY"),
        ("btcusdt-trades-binance.parquet", "binance-trades", "BTC/USDT"),
        ("btcusdt-quotes-binance.parquet", "binance-quotes", "BTC/USDT"),
    ],
)
def test_inject_when_real_vendor_data_screened_then_filters_find_every_label_exactly(
    cat: Catalogue, name: str, fmt: str, symbol: str
) -> None:
    frame = _vendor(cat, name, fmt)
    precision, recall, n = _measure(cat, frame, symbol, rate=0.02)
    assert n >= frame.height // 60  # about 2 % of the rows spoiled
    assert (precision, recall) == (1.0, 1.0)


def test_inject_when_synthetic_data_screened_then_recall_complete_and_precision_high(
    cat: Catalogue, synthetic: pl.DataFrame
) -> None:
    # A spike can land a few ticks after one of the walk's true jumps, while the filter
    # still waits for the jump's confirmation: the jump stands because most of the ticks
    # after it confirm it, and only the spike goes.
    precision, recall, n = _measure(cat, synthetic, "EUR/USD", rate=0.02)
    assert n >= 600  # runs of clock errors label each of their rows
    assert (precision, recall) == (1.0, 1.0)
