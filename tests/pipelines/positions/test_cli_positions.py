"""``bourse pipelines positions --until-idle``: the contract checked from outside.

Run after ``bourse simulate`` and ``bourse outbox relay --once``, the final snapshot in the
lake must hold exactly the store's open positions and balances, on one process and on two.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import redis
from sqlalchemy import select
from typer.testing import CliRunner

from pipelines.positions import lake
from serving.cli import app
from trading.bus import risk as redis_read
from trading.catalogue import default_catalogue
from trading.store import schema as s
from trading.store.engine import open_readonly
from trading.store.read_balances import account_snapshot

runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def _latest(root: Path, table: str) -> pl.DataFrame:
    frame = pl.read_parquet(root / table / "**" / "*.parquet")
    return frame.filter(pl.col("snapshot_ns") == pl.col("snapshot_ns").max())


def _store(home: Path) -> tuple[dict[tuple[int, str], int], dict[int, tuple[int, int, int]]]:
    engine = open_readonly(f"sqlite:///{home / 'bourse.db'}")
    catalogue = default_catalogue()
    positions: dict[tuple[int, str], int] = {}
    money: dict[int, tuple[int, int, int]] = {}
    with engine.connect() as conn:
        for account_id in conn.execute(select(s.accounts.c.account_id)).scalars():
            snap = account_snapshot(conn, catalogue, account_id, lambda _s: None)
            own = next(b for b in snap.balances if b.currency == snap.currency)
            money[account_id] = (own.cash, own.margin_held, own.withdrawal_pending)
            for pos in snap.positions:
                positions[(account_id, pos.symbol)] = pos.net
    return positions, money


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_positions_when_until_idle_after_a_simulation_then_the_lake_equals_the_store(
    tmp_path: Path, redis_url: str, processes: int
) -> None:
    home = tmp_path / "home"
    _ok(["simulate", "--home", str(home), "--accounts", "12", "--orders", "600", "--seed", "5"])
    _ok(["outbox", "relay", "--once", "--home", str(home), "--redis-url", redis_url])
    output = _ok(["pipelines", "positions", "--home", str(home), "--redis-url", redis_url,
                  "--until-idle", "--processes", str(processes)])  # fmt: skip
    assert "positions: done" in output
    # The books came from the events: nothing was read again from the store.
    alerts = redis_read.read_alerts(redis.Redis.from_url(redis_url), "0", 10_000)
    assert not [a for _, a in alerts if a["kind"] in ("rebuild", "dead_letter")]
    positions, money = _store(home)
    assert positions and len(money) == 12
    lake_pos = _latest(home / "lake", "positions")
    got = {(r["account_id"], r["symbol"]): r["net_qty"] for r in lake_pos.iter_rows(named=True)}
    assert got == positions
    accounts = _latest(home / "lake", "accounts").filter(pl.col("base"))
    seen = {r["account_id"]: (r["cash"], r["used_margin"], r["withdrawal_pending"])
            for r in accounts.iter_rows(named=True)}  # fmt: skip
    assert seen == money
    for r in accounts.iter_rows(named=True):
        assert r["balance"] == r["cash"] + r["used_margin"]


def test_positions_when_until_idle_on_empty_streams_then_an_empty_final_snapshot(
    tmp_path: Path, redis_url: str
) -> None:
    home = tmp_path / "home"
    for _ in range(2):  # twice in a row: the second resumes and writes its own
        output = _ok(["pipelines", "positions", "--home", str(home), "--redis-url", redis_url,
                      "--until-idle"])  # fmt: skip
        assert "no store in --home" in output
    positions, accounts = lake.latest_snapshot(home / "lake")
    assert positions.height == 0 and accounts.height == 0
    assert len(lake.snapshots(home / "lake")) == 2
