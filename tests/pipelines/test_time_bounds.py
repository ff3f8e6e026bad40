"""Implausible timestamps: rejected as malformed at once, never wrapped, never slow."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest

from pipelines.ticks.config import FilterConfig
from pipelines.ticks.filters import FeedState, screen
from pipelines.ticks.formats import discover, read_batches
from pipelines.ticks.schema import MAX_TS_NS, MIN_TS_NS
from tests.pipelines.builders import T0, quotes, walk
from trading.catalogue import default_catalogue

CAT = default_catalogue()
EUR = CAT.get("EUR/USD")
ROW = "{},1.12120,1.12172,0\n"


@pytest.mark.parametrize(
    "stamp", ["00010101 000000000", "19700101 000000000", "22620412 000000000",
              "99991231 235959999"],
)  # fmt: skip
def test_histdata_when_a_row_is_stamped_years_away_then_malformed_fast_and_not_wrapped(
    tmp_path: Path, stamp: str
) -> None:
    # Arrange: a 2020 file with one row stamped in year 1, 1970, 2262 or 9999
    path = tmp_path / "eurusd.csv"
    rows = [ROW.format(f"20200102 10{i:02d}00000") for i in range(10)]
    rows.insert(5, ROW.format(stamp))
    path.write_text("".join(rows))
    (feed,) = discover(path, "histdata", CAT)
    started = time.perf_counter()
    # Act
    (batch,) = read_batches(feed, CAT)
    out = screen(FeedState(), batch.ticks, EUR, FilterConfig(), CAT.session_for("EUR/USD"),
                 final=True)  # fmt: skip
    # Assert
    assert time.perf_counter() - started < 2
    assert batch.rejects["source_seq"].to_list() == [5]
    assert "a time from 1990-01-01 to 2100-01-01 expected" in batch.rejects["detail"][0]
    assert out.accepted.height == 10
    assert out.accepted["ts_ns"].is_between(MIN_TS_NS, MAX_TS_NS).all()


@pytest.mark.parametrize(
    "stamp", ["0001-01-01 00:00:00.000+00:00", "1970-01-01 00:00:00.000+00:00",
              "2262-04-12 00:00:00.000+00:00", "9999-12-31 23:59:59.999+00:00"],
)  # fmt: skip
def test_truefx_when_a_row_is_stamped_years_away_then_malformed(tmp_path: Path, stamp: str) -> None:
    path = tmp_path / "usdjpy.csv"
    rows = [f"2013-01-02 10:{i:02d}:00.000+00:00,86.655,86.728\n" for i in range(5)]
    path.write_text("timestamp,bid,ask\n" + "".join(rows) + f"{stamp},86.655,86.728\n")
    (feed,) = discover(path, "truefx", CAT)
    (batch,) = read_batches(feed, CAT)
    assert batch.rejects["source_seq"].to_list() == [5]
    assert batch.ticks.height == 5


@pytest.mark.parametrize("ms", [1, -62_135_596_800_000, 253_402_300_799_999, 9_223_372_036_854])
def test_binance_when_a_timestamp_is_years_away_then_malformed(tmp_path: Path, ms: int) -> None:
    path = tmp_path / "btcusdt.parquet"
    pl.DataFrame(
        {"timestamp": [1_610_064_000_000, ms], "bid": [39_432.99] * 2, "ask": [39_433.5] * 2}
    ).write_parquet(path)
    (feed,) = discover(path, "binance-quotes", CAT)
    (batch,) = read_batches(feed, CAT)
    assert batch.rejects["source_seq"].to_list() == [1]
    assert batch.ticks["ts_ns"].to_list() == [1_610_064_000_000_000_000]


@pytest.mark.parametrize("stray", [0, MIN_TS_NS - 1, MAX_TS_NS, 2**63 - 1, -(2**63)])
def test_screen_when_a_tick_is_stamped_decades_away_then_malformed_and_the_cost_flat(
    stray: int,
) -> None:
    # A live feed or a tick Parquet file hands the filters any int64: the session check
    # must not walk the decades between two ticks, minute by minute.
    ts = [T0 + i * 10**9 for i in range(50)]
    ts[20] = stray
    frame = quotes(walk(50), ts=ts)
    started = time.perf_counter()
    out = screen(FeedState(), frame, EUR, FilterConfig(), CAT.session_for("EUR/USD"),
                 final=True)  # fmt: skip
    assert time.perf_counter() - started < 1
    reasons = {int(s): str(r) for s, r in out.rejected.select("source_seq", "reason").iter_rows()}
    assert reasons == {20: "malformed"}


def test_screen_when_ticks_span_a_century_then_the_session_check_stays_fast() -> None:
    # Two plausible ticks 110 years apart, both on a Monday at 10:00 UTC: open.
    early = T0 - 36 * 52 * 7 * 86_400 * 10**9  # 1990
    ts = [early, T0 + 74 * 52 * 7 * 86_400 * 10**9]  # about 2100
    ts = [t for t in ts if MIN_TS_NS <= t < MAX_TS_NS]
    frame = quotes(walk(len(ts)), ts=ts)
    started = time.perf_counter()
    screen(FeedState(), frame, EUR, FilterConfig(), CAT.session_for("EUR/USD"), final=True)
    assert time.perf_counter() - started < 1
    assert len(ts) == 2
