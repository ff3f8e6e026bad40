"""The lake's ticks into the warehouse, and the bars the materialized views keep from them.

Bars are computed again here with Polars from the same ticks (integer floor of ts_ns, first
and last by time), and must equal the warehouse's.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.defs_market import bars, bars_cover_ticks, lake_ticks
from assets.market import (
    copy_lake_day,
    create_sql_views,
    day_bounds_ns,
    read_bars,
    summarize_bars,
    ticks_schema,
)
from assets.resources import BourseHome, WarehouseResource
from assets.warehouse.client import Warehouse
from pipelines.ticks.lake import Lake
from pipelines.ticks.schema import TICK_SCHEMA

DAY = dt.date(2026, 3, 2)
NEXT = dt.date(2026, 3, 3)
MINUTE = 60 * 10**9
WIDTHS = {"1m": MINUTE, "1h": 3_600 * 10**9, "1d": 86_400 * 10**9}


def _quotes(
    symbol: str, source: str, times: list[int], seed: int, first_seq: int = 0
) -> pl.DataFrame:
    rng = random.Random(seed)
    bids = [108_000 + rng.randint(-500, 500) for _ in times]
    return pl.DataFrame(
        {
            "symbol": symbol, "kind": "quote", "ts_ns": times, "recv_ns": times,
            "bid": bids, "ask": [b + 3 for b in bids], "bid_size": None, "ask_size": None,
            "price": None, "qty": None, "trade_id": None, "source": source,
            "source_seq": list(range(first_seq, first_seq + len(times))),
        },
        schema=TICK_SCHEMA,
    )  # fmt: skip


def _trades(symbol: str, source: str, times: list[int], seed: int) -> pl.DataFrame:
    rng = random.Random(seed)
    return pl.DataFrame(
        {
            "symbol": symbol, "kind": "trade", "ts_ns": times, "recv_ns": times,
            "bid": None, "ask": None, "bid_size": None, "ask_size": None,
            "price": [6_500_000 + rng.randint(-9_000, 9_000) for _ in times],
            "qty": [rng.randint(1, 10**8) for _ in times],
            "trade_id": [f"t{i}" for i in range(len(times))], "source": source,
            "source_seq": list(range(len(times))),
        },
        schema=TICK_SCHEMA,
    )  # fmt: skip


def _times(day: dt.date, n: int, seed: int) -> list[int]:
    lo, hi = day_bounds_ns(day)
    rng = random.Random(seed)
    return sorted(rng.randrange(lo, hi) for _ in range(n))


def _edge_times(day: dt.date) -> list[int]:
    """Ticks one nanosecond before a minute (and an hour) edge, and exactly on one."""
    lo, _ = day_bounds_ns(day)
    ten = lo + 10 * 3_600 * 10**9
    return [ten - 1, ten, ten + MINUTE - 1, ten + MINUTE]


def _day_frames(day: dt.date, seed: int) -> pl.DataFrame:
    eur = _quotes("EUR/USD", "eur.csv@1", sorted(_times(day, 400, seed) + _edge_times(day)), seed)
    btc = _trades("BTC/USDT", "btc.csv@2", _times(day, 150, seed + 1), seed + 1)
    return pl.concat([eur, btc])


def _write_lake(lake: Path, frame: pl.DataFrame) -> None:
    Lake(lake).write(frame, pl.DataFrame(schema=TICK_SCHEMA))


def expected_bars(ticks: pl.DataFrame, width_ns: int) -> pl.DataFrame:
    """OHLCV per symbol and bucket, computed here independently of the warehouse."""
    return (
        ticks.with_columns(
            px=pl.coalesce("price", "bid"),
            bucket_ns=(pl.col("ts_ns") // width_ns) * width_ns,
        )
        .filter(pl.col("px").is_not_null())
        .sort("ts_ns", "source_seq")
        .group_by("symbol", "bucket_ns", maintain_order=True)
        .agg(
            open=pl.col("px").first(), high=pl.col("px").max(), low=pl.col("px").min(),
            close=pl.col("px").last(), tick_count=pl.len().cast(pl.Int64),
            volume=pl.col("qty").fill_null(0).sum(),
        )
        .sort("symbol", "bucket_ns")
    )  # fmt: skip


def warehouse_bars(wh: Warehouse, width: str) -> pl.DataFrame:
    frame = pl.from_arrow(wh.arrow(f"SELECT * FROM bars_{width} ORDER BY symbol, bucket_ns"))
    assert isinstance(frame, pl.DataFrame)
    return frame.with_columns(
        pl.col("tick_count").cast(pl.Int64), pl.col("symbol").cast(pl.String)
    ).select("symbol", "bucket_ns", "open", "high", "low", "close", "tick_count", "volume")


def _assert_bars(wh: Warehouse, ticks: pl.DataFrame) -> None:
    for width, width_ns in WIDTHS.items():
        got, want = warehouse_bars(wh, width), expected_bars(ticks, width_ns)
        assert got.height == want.height, width
        assert got.to_dicts() == want.to_dicts(), width


def test_bars_when_a_lake_day_is_copied_then_every_width_equals_polars(tmp_path: Path) -> None:
    # Arrange
    ticks = _day_frames(DAY, seed=3)
    _write_lake(tmp_path / "lake", ticks)

    # Act
    with Warehouse(f"chdb://{tmp_path}/wh") as wh:
        wh.ensure_schema()
        create_sql_views(wh)
        copied = copy_lake_day(wh, tmp_path / "lake", DAY)

        # Assert
        assert copied.ticks == ticks.height
        assert copied.symbols == ("BTC/USDT", "EUR/USD")
        _assert_bars(wh, ticks)
        summary = summarize_bars(wh, DAY)
        assert summary.consistent
        assert summary.priced_ticks == ticks.height


def test_bars_when_a_tick_is_one_nanosecond_before_a_minute_edge_then_it_stays_in_its_minute(
    tmp_path: Path,
) -> None:
    # Arrange: 10:00:59.999999999 carries the minute's highest bid, 10:01:00 the lowest.
    lo, _ = day_bounds_ns(DAY)
    ten = lo + 10 * 3_600 * 10**9
    frame = _quotes("EUR/USD", "edge@1", [ten, ten + MINUTE - 1, ten + MINUTE], seed=1)
    frame = frame.with_columns(bid=pl.Series([108_000, 109_000, 107_000]))
    frame = frame.with_columns(ask=pl.col("bid") + 3)
    _write_lake(tmp_path / "lake", frame)

    with Warehouse(f"chdb://{tmp_path}/wh") as wh:
        wh.ensure_schema()
        create_sql_views(wh)
        copy_lake_day(wh, tmp_path / "lake", DAY)

        # Act
        got = read_bars(wh, "1m", "EUR/USD", DAY).to_pylist()

    # Assert
    assert [(b["bucket_ns"], b["open"], b["high"], b["close"], b["tick_count"]) for b in got] == [
        (ten, 108_000, 109_000, 109_000, 2),
        (ten + MINUTE, 107_000, 107_000, 107_000, 1),
    ]


def test_bars_when_new_ticks_are_inserted_then_the_views_update_them_incrementally(
    tmp_path: Path,
) -> None:
    # Arrange: a first day copied, then more ticks of the same day and minute range arrive.
    first = _day_frames(DAY, seed=5)
    later_times = _times(DAY, 300, seed=9)
    later = _quotes("EUR/USD", "eur-live@3", later_times, seed=9)
    _write_lake(tmp_path / "lake", first)
    with Warehouse(f"chdb://{tmp_path}/wh") as wh:
        wh.ensure_schema()
        create_sql_views(wh)
        copy_lake_day(wh, tmp_path / "lake", DAY)
        parts_before = wh.scalar(
            "SELECT count() FROM system.parts WHERE table = 'bars_1m_state' AND active "
            "AND database = currentDatabase()"
        )

        # Act: the rows go into `ticks` only; nothing rebuilds the bars.
        wh.insert("ticks", later.with_columns(day=pl.lit(DAY)).to_arrow().cast(ticks_schema()))

        # Assert
        parts_after = wh.scalar(
            "SELECT count() FROM system.parts WHERE table = 'bars_1m_state' AND active "
            "AND database = currentDatabase()"
        )
        assert parts_after == parts_before + 1  # the view appended the new ticks' states
        _assert_bars(wh, pl.concat([first, later]))


def test_copy_lake_day_when_run_twice_then_the_day_is_replaced_and_other_days_kept(
    tmp_path: Path,
) -> None:
    # Arrange
    day1, day2 = _day_frames(DAY, seed=11), _day_frames(NEXT, seed=12)
    _write_lake(tmp_path / "lake", pl.concat([day1, day2]))
    with Warehouse(f"chdb://{tmp_path}/wh") as wh:
        wh.ensure_schema()
        create_sql_views(wh)
        copy_lake_day(wh, tmp_path / "lake", DAY)
        copy_lake_day(wh, tmp_path / "lake", NEXT)

        # Act
        again = copy_lake_day(wh, tmp_path / "lake", DAY)

        # Assert
        assert again.ticks == day1.height
        assert wh.scalar("SELECT count() FROM ticks") == day1.height + day2.height
        _assert_bars(wh, pl.concat([day1, day2]))


def test_copy_lake_day_when_a_file_is_not_a_tick_file_then_nothing_changes(
    tmp_path: Path,
) -> None:
    # Arrange: a day copied, then a foreign file lands in the lake under that day.
    day1 = _day_frames(DAY, seed=13)
    _write_lake(tmp_path / "lake", day1)
    bad = tmp_path / "lake" / "ticks" / f"date={DAY}" / "instrument=EURUSD" / "x.parquet"
    pl.DataFrame({"symbol": ["EUR/USD"]}).write_parquet(bad)
    with Warehouse(f"chdb://{tmp_path}/wh") as wh:
        wh.ensure_schema()
        bad.rename(bad.with_suffix(".hold"))
        copy_lake_day(wh, tmp_path / "lake", DAY)
        bad.with_suffix(".hold").rename(bad)

        # Act / Assert
        with pytest.raises(ValueError, match="lacks column"):
            copy_lake_day(wh, tmp_path / "lake", DAY)
        assert wh.scalar("SELECT count() FROM ticks") == day1.height


def test_market_assets_when_materialized_for_a_day_then_bars_and_check_pass(
    tmp_path: Path,
) -> None:
    # Arrange
    ticks = _day_frames(DAY, seed=21)
    _write_lake(tmp_path / "lake", ticks)
    resources = {
        "home": BourseHome(home=str(tmp_path)),
        "warehouse": WarehouseResource(home=str(tmp_path)),
    }

    # Act
    result = dg.materialize(
        [lake_ticks, bars, bars_cover_ticks], resources=resources, partition_key=DAY.isoformat()
    )

    # Assert
    assert result.success
    meta = {
        m.asset_key.path[-1]: m.metadata
        for m in result.get_asset_materialization_events()
        for m in [m.materialization]
    }
    assert meta["lake_ticks"]["ticks"].value == ticks.height
    want_1m = expected_bars(ticks, MINUTE)
    assert meta["bars"]["bars_1m"].value == want_1m.height
    per_symbol = want_1m.group_by("symbol").len().sort("symbol")
    assert meta["bars"]["bars_1m_per_symbol"].value == dict(per_symbol.iter_rows())
    (check,) = result.get_asset_check_evaluations()
    assert check.passed


def test_copy_lake_day_when_a_file_holds_another_days_ticks_then_refused(tmp_path: Path) -> None:
    # Arrange: the next day's file moved under this day's folder.
    _write_lake(tmp_path / "lake", _day_frames(NEXT, seed=31))
    (src,) = (tmp_path / "lake" / "ticks" / f"date={NEXT}").glob("instrument=EURUSD/*.parquet")
    dst = tmp_path / "lake" / "ticks" / f"date={DAY}" / "instrument=EURUSD" / src.name
    dst.parent.mkdir(parents=True)
    src.rename(dst)
    with Warehouse(f"chdb://{tmp_path}/wh") as wh:
        wh.ensure_schema()

        # Act / Assert
        with pytest.raises(ValueError, match="ticks of another day"):
            copy_lake_day(wh, tmp_path / "lake", DAY)
        assert wh.scalar("SELECT count() FROM ticks") == 0
