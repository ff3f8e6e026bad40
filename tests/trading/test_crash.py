"""Crash trials in CI: a few SIGKILLs at random points of a load, on SQLite and PostgreSQL
(`make crash` runs 100, see tests/trading/crash_trials.py). Also checks that the trial's
checks do catch what they look for."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.servers import PostgresServer
from tests.trading.builders import make_rig
from tests.trading.crash_trials import TrialResult, check_store, read_acks, run_trial
from trading.commands import OrderAck

pytestmark = pytest.mark.slow


def _assert_trial_passed(result: TrialResult) -> None:
    assert result.problems == []
    assert result.killed, "the worker ended before the kill: nothing was tested"
    assert result.acked > 0
    assert result.orders > 0


@pytest.mark.parametrize("seed", range(1, 6))
def test_oms_when_killed_mid_load_on_sqlite_then_acknowledged_orders_survive_and_store_verifies(
    tmp_path: Path, seed: int
) -> None:
    _assert_trial_passed(run_trial(seed, tmp_path / "trial"))


@pytest.mark.parametrize("seed", range(11, 15))
def test_oms_when_killed_while_wal_checkpoints_run_then_acknowledged_orders_survive(
    tmp_path: Path, seed: int
) -> None:
    # A checkpoint past every 8 pages: one runs beside nearly every commit, so the kill
    # falls in one, or between one and the commit it follows.
    _assert_trial_passed(run_trial(seed, tmp_path / "trial", checkpoint_pages=8))


@pytest.mark.parametrize("seed", [101, 102])
def test_oms_when_killed_mid_load_on_postgresql_then_acknowledged_orders_survive(
    postgres_server: PostgresServer, seed: int
) -> None:
    name = f"crash_{seed}_{os.getpid()}"
    url = postgres_server.create_database(name)
    try:
        _assert_trial_passed(run_trial(seed, url))
    finally:
        postgres_server.drop_database(name)


def test_read_acks_when_last_line_was_cut_by_the_kill_then_it_is_not_counted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "acks.jsonl"
    path.write_text(json.dumps({"order_id": 1}) + "\n" + '{"order_id": 2, "cli')
    assert read_acks(path) == [{"order_id": 1}]


def test_check_store_when_an_acknowledged_order_is_missing_then_it_is_reported(
    tmp_path: Path,
) -> None:
    rig = make_rig(f"sqlite:///{tmp_path}/bourse.db")
    rig.open_accounts(1)
    ack = rig.oms.execute_one(rig.submit(1, "real-1"))
    assert isinstance(ack, OrderAck)
    request = {
        "account_id": 1,
        "client_order_id": "real-1",
        "symbol": "EUR/USD",
        "side": "buy",
        "qty": "1",
    }
    acks = [
        {
            "account_id": 1,
            "client_order_id": "real-1",
            "order_id": ack.order_id,
            "status": "filled",
            "request": request,
        },
        {
            "account_id": 1,
            "client_order_id": "lost-1",
            "order_id": 99,
            "status": "filled",
            "request": {**request, "client_order_id": "lost-1"},
        },
        {
            "account_id": 1,
            "client_order_id": "real-1",
            "order_id": ack.order_id,
            "status": "canceled",
            "request": request,
        },
    ]
    result = TrialResult(seed=1, store="sqlite")
    problems = check_store(rig.engine, acks, seed=1, result=result)
    assert any("lost-1" in p and "[]" in p for p in problems), problems
    assert any("acknowledged canceled" in p for p in problems), problems
    assert not any("real-1" in p and "store has" in p for p in problems), problems
