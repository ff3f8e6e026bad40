"""kill -9 in the middle of a replay, then resume: the lake equals an uninterrupted run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from pipelines.ticks import lake
from pipelines.ticks.schema import TICK_SCHEMA, conform
from tests.pipelines.builders import MS, T0

ROWS_PER_FEED = 1_500_000


def _feed(path: Path, symbol: str, base: int, seed: int) -> None:
    """A long quote feed in tick Parquet: a walk, with a bad tick every 50,000 rows."""
    n = ROWS_PER_FEED
    i = pl.int_range(0, n, dtype=pl.Int64)
    step = (i.hash(seed) % 5).cast(pl.Int64) - 2
    bid = base + step.cum_sum()
    bad = (i % 50_000) == 49_999
    frame = pl.select(
        symbol=pl.lit(symbol),
        kind=pl.lit("quote"),
        ts_ns=T0 + i * 20 * MS,
        recv_ns=T0 + i * 20 * MS,
        bid=pl.when(bad).then(bid + 300).otherwise(bid),
        ask=pl.when(bad).then(bid + 315).otherwise(bid + 15),
        bid_size=pl.lit(None, pl.Int64),
        ask_size=pl.lit(None, pl.Int64),
        price=pl.lit(None, pl.Int64),
        qty=pl.lit(None, pl.Int64),
        trade_id=pl.lit(None, pl.String),
        source=pl.lit(path.name),
        source_seq=i,
    )
    conform(frame.select(*TICK_SCHEMA)).write_parquet(path)


def _cli(home: Path, source: Path) -> list[str]:
    return [sys.executable, "-m", "serving.cli", "pipelines", "ticks", "--source", str(source),
            "--format", "parquet", "--home", str(home), "--batch-rows", "25000"]  # fmt: skip


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)


def _lake_frames(root: Path) -> dict[str, pl.DataFrame]:
    return {str(p.relative_to(root)): pl.read_parquet(p) for p in sorted(root.rglob("*.parquet"))}


@pytest.mark.slow
def test_resume_when_killed_mid_replay_then_the_lake_equals_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    # Arrange
    src = tmp_path / "src"
    src.mkdir()
    _feed(src / "eurusd.parquet", "EUR/USD", 108_500, 1)
    _feed(src / "gbpusd.parquet", "GBP/USD", 127_000, 2)
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    done = _run(_cli(whole, src))
    assert done.returncode == 0, done.stderr
    # Act: start the same replay and kill -9 it once it has written part of the lake
    proc = subprocess.Popen(_cli(crashed, src), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    accepted_dir = crashed / "lake" / "ticks"
    while time.monotonic() < deadline and len(list(accepted_dir.rglob("*.parquet"))) < 30:
        assert proc.poll() is None, "the replay ended before it could be killed"
        time.sleep(0.05)
    time.sleep(1.5)  # past at least one snapshot
    assert proc.poll() is None, "the replay ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {p: p.stat().st_mtime_ns for p in (crashed / "lake").rglob("*.parquet")}
    resumed = _run(_cli(crashed, src))
    # Assert
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    got, want = _lake_frames(crashed / "lake"), _lake_frames(whole / "lake")
    assert sorted(got) == sorted(want)
    assert all(got[name].equals(want[name]) for name in want)
    untouched = [p for p, mtime in before.items() if p.stat().st_mtime_ns == mtime]
    assert untouched, "the resumed run rewrote everything: it did not resume"
    accepted = lake.read(crashed / "lake")
    rejected = lake.read(crashed / "lake", rejected=True)
    assert accepted.height + rejected.height == 2 * ROWS_PER_FEED
    assert not accepted.select("source", "source_seq").is_duplicated().any()
    assert set(rejected["reason"].cast(pl.String)) == {"spike"}
    assert rejected.height == 2 * ROWS_PER_FEED // 50_000
    # The resumed run prints the counts of the whole replay, not only of its part.
    assert f"{accepted.height:,}" in resumed.stdout
