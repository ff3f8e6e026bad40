"""The synthetic source: tick frames from the platform's seeded walk, resumable per batch."""

from __future__ import annotations

import dataclasses
import pickle

import polars as pl
import pytest

from pipelines.ticks.config import FilterConfig
from pipelines.ticks.filters import FeedState, screen
from pipelines.ticks.schema import TICK_SCHEMA
from pipelines.ticks.synthetic import synthetic_batches
from trading.catalogue import Catalogue, default_catalogue
from trading.sim.pricefeed import TICK_PROFILES

MONDAY_NS = 1_767_600_000_000_000_000  # 2026-01-05 08:00 UTC


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return default_catalogue()


def _frames(cat: Catalogue, symbol: str = "EUR/USD", seed: int = 1, n: int = 25_000,
            rows: int = 10_000) -> list[pl.DataFrame]:  # fmt: skip
    return [f for f, _, _ in synthetic_batches(cat, symbol, seed, n, start_ns=MONDAY_NS,
                                               batch_rows=rows)]  # fmt: skip


def test_synthetic_batches_when_run_then_tick_schema_quotes_numbered_from_zero(
    cat: Catalogue,
) -> None:
    frames = _frames(cat, symbol="eurusd")  # any alias: the frames carry the canonical name
    assert [f.height for f in frames] == [10_000, 10_000, 5_000]
    whole = pl.concat(frames)
    assert whole.schema == pl.Schema(TICK_SCHEMA)
    assert whole["source_seq"].to_list() == list(range(25_000))
    assert set(whole["symbol"]) == {"EUR/USD"}
    assert set(whole["kind"].cast(pl.String)) == {"quote"}
    assert set(whole["source"]) == {"synthetic:1"}
    assert whole["ts_ns"].equals(whole["recv_ns"].alias("ts_ns"))
    assert whole.select(pl.col("price", "qty", "trade_id").null_count().sum()).row(0) == (
        25_000, 25_000, 25_000,
    )  # fmt: skip
    assert whole.filter(pl.col("bid") >= pl.col("ask")).is_empty()
    assert whole["ts_ns"].is_sorted() and whole["ts_ns"].n_unique() == 25_000


def test_synthetic_batches_when_same_seed_then_same_frames_and_other_seed_differs(
    cat: Catalogue,
) -> None:
    first = _frames(cat)
    again = _frames(cat)
    assert all(a.equals(b) for a, b in zip(first, again, strict=True))
    other = pl.concat(_frames(cat, seed=2))
    assert not pl.concat(first).drop("source").equals(other.drop("source"))


def test_synthetic_batches_when_resumed_after_each_batch_then_same_later_batches(
    cat: Catalogue,
) -> None:
    run = list(synthetic_batches(cat, "XAU/USD", 4, 35_000, start_ns=MONDAY_NS,
                                 batch_rows=8_000))  # fmt: skip
    assert [seq for _, seq, _ in run] == [8_000, 16_000, 24_000, 32_000, 35_000]
    for k, (_, seq, state) in enumerate(run):
        resume = (seq, pickle.loads(pickle.dumps(state)))
        later = list(synthetic_batches(cat, "XAU/USD", 4, 35_000, start_ns=MONDAY_NS,
                                       batch_rows=8_000, resume=resume))  # fmt: skip
        assert len(later) == len(run) - k - 1
        for (a, seq_a, state_a), (b, seq_b, state_b) in zip(later, run[k + 1 :], strict=True):
            assert a.equals(b) and seq_a == seq_b and state_a == state_b


def test_synthetic_batches_when_resumed_with_another_batch_size_then_same_ticks_and_aligned(
    cat: Catalogue,
) -> None:
    whole = pl.concat(_frames(cat, n=30_000, rows=7_000))
    _, seq, state = next(iter(synthetic_batches(cat, "EUR/USD", 1, 30_000, start_ns=MONDAY_NS,
                                                batch_rows=7_000)))  # fmt: skip
    later = list(synthetic_batches(cat, "EUR/USD", 1, 30_000, start_ns=MONDAY_NS,
                                   batch_rows=10_000, resume=(seq, state)))  # fmt: skip
    # Boundaries stay at multiples of batch_rows, whatever the resume point.
    assert [f["source_seq"][0] for f, _, _ in later] == [7_000, 10_000, 20_000]
    assert pl.concat([f for f, _, _ in later]).equals(whole.slice(7_000))


def test_synthetic_batches_when_resume_seq_and_state_disagree_then_value_error(
    cat: Catalogue,
) -> None:
    _, seq, state = next(iter(synthetic_batches(cat, "EUR/USD", 1, 20_000, start_ns=MONDAY_NS,
                                                batch_rows=10_000)))  # fmt: skip
    with pytest.raises(ValueError, match="resume at seq"):
        next(iter(synthetic_batches(cat, "EUR/USD", 1, 20_000, start_ns=MONDAY_NS,
                                    resume=(seq + 1, state))))  # fmt: skip
    with pytest.raises(ValueError, match="batch_rows"):
        next(iter(synthetic_batches(cat, "EUR/USD", 1, 10, start_ns=MONDAY_NS, batch_rows=0)))


def test_synthetic_batches_when_fx_runs_over_a_weekend_then_no_saturday_tick(
    cat: Catalogue,
) -> None:
    friday_20h = 1_767_988_800_000_000_000
    frames = [f for f, _, _ in synthetic_batches(cat, "GBP/USD", 3, 120_000, start_ns=friday_20h)]
    days = pl.concat(frames).select(pl.from_epoch("ts_ns", "ns").dt.weekday().alias("d"))["d"]
    assert 6 not in days.to_list()  # polars: Monday 1 ... Saturday 6, Sunday 7
    assert {5, 7} <= set(days.to_list())


@pytest.mark.parametrize("symbol", ["EUR/USD", "USD/JPY", "XAU/USD", "US500", "BTC/USD", "AAPL"])
def test_synthetic_batches_when_screened_then_every_tick_accepted_including_true_jumps(
    cat: Catalogue, symbol: str
) -> None:
    # The walk is clean by construction: spreads inside the bounds, moves confirmed by the
    # ticks after them. Its jumps exceed the spike floor, so the filter does see them as
    # candidates and must accept them because the ticks after confirm the new level.
    inst = cat.get(symbol)
    cfg = FilterConfig()
    session = cat.session_for(symbol)
    # Ten times the usual jumps, so that a short run holds several.
    usual = TICK_PROFILES[inst.asset_class]
    profile = dataclasses.replace(usual, jump_every_s=usual.jump_every_s / 10)
    run = list(synthetic_batches(cat, symbol, 9, 400_000, start_ns=MONDAY_NS, profile=profile))
    state = FeedState()
    accepted = 0
    for i, (frame, _, _) in enumerate(run):
        result = screen(state, frame, inst, cfg, session, final=i == len(run) - 1)
        state = result.state
        assert result.rejected.is_empty(), result.rejected.head()
        accepted += result.accepted.height
    assert accepted == 400_000
    floor = cfg.thresholds(inst).spike_floor_bps
    moves = (
        pl.concat([f for f, _, _ in run])
        .select(v=pl.col("bid") + pl.col("ask"))
        .select(jump=pl.col("v").diff().abs() * 10_000 > pl.col("v").shift(1) * floor)
    )
    assert run[-1][2].jumps >= 3
    assert moves["jump"].sum() >= 3
