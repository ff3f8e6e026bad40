"""The whole dataflow on the real vendor samples: counts, the lake, re-runs, two processes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.ticks import lake
from pipelines.ticks.formats import source_name
from pipelines.ticks.run import RunSpec, run
from pipelines.ticks.schema import LAKE_SCHEMA, REJECTED_SCHEMA

DATA = Path(__file__).resolve().parents[1] / "data" / "market"
HISTDATA = DATA / "eurusd-quotes-histdata-2020-01.csv"
TRUEFX = DATA / "usdjpy-quotes-truefx-2013-01.csv"
BINANCE_QUOTES = DATA / "btcusdt-quotes-binance.parquet"
BINANCE_TRADES = DATA / "btcusdt-trades-binance.parquet"


def _lake_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


@pytest.mark.parametrize(
    ("path", "fmt", "rows", "rejects"),
    [
        (HISTDATA, "histdata", 9_500, {}),
        # Row 941 of the TrueFX sample is bid 86.836 = ask 86.836: a locked quote, which
        # prices nothing (a market order would fill at no spread), so it is kept out.
        (TRUEFX, "truefx", 1_000, {941: "locked"}),
        (BINANCE_QUOTES, "binance-quotes", 451, {}),
        (BINANCE_TRADES, "binance-trades", 2_001, {}),
    ],
)
def test_run_when_a_real_vendor_sample_replays_then_every_clean_tick_is_accepted(
    tmp_path: Path, path: Path, fmt: str, rows: int, rejects: dict[int, str]
) -> None:
    # Arrange
    spec = RunSpec(home=str(tmp_path), source=str(path), fmt=fmt, batch_rows=250)
    # Act
    report = run(spec)
    # Assert
    accepted = lake.read(spec.lake_root)
    rejected = lake.read(spec.lake_root, rejected=True)
    got = {int(s): str(r) for s, r in rejected.select("source_seq", "reason").iter_rows()}
    assert got == rejects
    assert report.accepted == rows - len(rejects) == accepted.height
    assert report.rejected == len(rejects)
    # Nothing lost, nothing twice: every record of the file is in the lake exactly once.
    seqs = pl.concat([accepted["source_seq"], rejected["source_seq"]]).sort()
    assert seqs.to_list() == list(range(rows))
    assert accepted.schema == pl.Schema(LAKE_SCHEMA)
    assert rejected.schema == pl.Schema(REJECTED_SCHEMA)


def test_run_when_the_truefx_locked_row_is_read_raw_then_bid_equals_ask() -> None:
    # The defence of the one reject above: the vendor's own row 941 is locked.
    raw = pl.read_csv(TRUEFX).row(941, named=True)
    assert raw["bid"] == raw["ask"] == 86.836


def test_run_when_replayed_then_lake_is_partitioned_by_day_and_instrument(
    tmp_path: Path,
) -> None:
    # Arrange: HistData's 2020-01-01 17:00 EST is 22:00 UTC: the sample spans two UTC days
    spec = RunSpec(home=str(tmp_path), source=str(HISTDATA), fmt="histdata", batch_rows=2_000)
    # Act
    run(spec)
    # Assert
    dirs = sorted({p.parent.relative_to(spec.lake_root) for p in spec.lake_root.rglob("*.parquet")})
    assert [str(d) for d in dirs] == [
        "ticks/date=2020-01-01/instrument=EURUSD",
        "ticks/date=2020-01-02/instrument=EURUSD",
    ]
    accepted = lake.read(spec.lake_root)
    by_day = accepted.group_by("day").agg(pl.col("ts_ns").min()).sort("day")
    starts = pl.from_epoch(by_day["ts_ns"], time_unit="ns").dt.date().to_list()
    assert starts == by_day["day"].to_list()


def test_run_when_run_twice_then_the_lake_is_byte_identical(tmp_path: Path) -> None:
    # Arrange
    spec = RunSpec(home=str(tmp_path), source=str(TRUEFX), fmt="truefx", batch_rows=100)
    run(spec)
    first = _lake_files(spec.lake_root)
    # Act
    report = run(spec)
    # Assert
    assert _lake_files(spec.lake_root) == first
    assert not report.resumed
    assert report.accepted == 999


def test_run_when_two_processes_share_the_feeds_then_the_lake_equals_one_process(
    tmp_path: Path,
) -> None:
    # Arrange: a directory of two HistData-format files, one feed each
    src = tmp_path / "src"
    src.mkdir()
    text = HISTDATA.read_text()
    (src / "eurusd-a.csv").write_text(text)
    (src / "gbpusd-b.csv").write_text(text)
    one = RunSpec(home=str(tmp_path / "one"), source=str(src), fmt="histdata", batch_rows=3_000)
    two = RunSpec(home=str(tmp_path / "two"), source=str(src), fmt="histdata", batch_rows=3_000)
    # Act
    r1 = run(one, processes=1)
    r2 = run(two, processes=2)
    # Assert
    assert r1.counts == r2.counts
    assert r1.accepted == 2 * 9_500 - r1.rejected
    assert _lake_files(one.lake_root) == _lake_files(two.lake_root)


def test_run_when_a_source_is_replayed_with_other_batches_then_it_replaces_its_ticks(
    tmp_path: Path,
) -> None:
    # Arrange: TrueFX replayed in batches of 100, HistData beside it in the same lake
    home = str(tmp_path)
    run(RunSpec(home=home, source=str(TRUEFX), fmt="truefx", batch_rows=100))
    run(RunSpec(home=home, source=str(HISTDATA), fmt="histdata"))
    # Act: TrueFX again, in batches of 300 (other file names for the same rows)
    spec = RunSpec(home=home, source=str(TRUEFX), fmt="truefx", batch_rows=300)
    run(spec)
    # Assert
    accepted = lake.read(spec.lake_root)
    truefx = accepted.filter(pl.col("source") == source_name(TRUEFX))
    assert truefx.height == 999
    assert not truefx["source_seq"].is_duplicated().any()
    assert accepted.filter(pl.col("source") == source_name(HISTDATA)).height == 9_500
    assert lake.read(spec.lake_root, rejected=True)["source_seq"].to_list() == [941]
