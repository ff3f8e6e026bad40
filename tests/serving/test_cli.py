"""The CLI contract, checked from outside: simulate, ledger verify, audit verify."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from serving.cli import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _simulate(home: Path, seed: int = 3, *extra: str) -> None:
    code, output = _run("simulate", "--home", str(home), "--accounts", "5", "--orders", "300",
                        "--seed", str(seed), *extra)  # fmt: skip
    assert code == 0, output


def _digest(db: Path) -> str:
    h = hashlib.sha256()
    with sqlite3.connect(db) as conn:
        for table in ("orders", "executions", "postings", "lots", "lot_closures", "outbox",
                      "audit_log", "withdrawals"):  # fmt: skip
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1"):
                h.update(repr(row).encode())
    return h.hexdigest()


def test_simulate_when_the_home_holds_a_store_then_refused_unless_added(tmp_path: Path) -> None:
    _simulate(tmp_path, seed=5)
    before = _digest(tmp_path / "bourse.db")
    code, output = _run("simulate", "--home", str(tmp_path), "--orders", "20")
    assert code == 2, output
    assert "already holds a store" in output and "--add" in output
    assert "Traceback" not in output
    assert _digest(tmp_path / "bourse.db") == before
    _simulate(tmp_path, 6, "--add")
    assert _digest(tmp_path / "bourse.db") != before


def test_simulate_when_same_seed_then_same_store(tmp_path: Path) -> None:
    _simulate(tmp_path / "a", seed=11)
    _simulate(tmp_path / "b", seed=11)
    _simulate(tmp_path / "c", seed=12)

    assert _digest(tmp_path / "a" / "bourse.db") == _digest(tmp_path / "b" / "bourse.db")
    assert _digest(tmp_path / "a" / "bourse.db") != _digest(tmp_path / "c" / "bourse.db")


def test_simulate_when_done_then_every_kind_of_activity_happened(tmp_path: Path) -> None:
    _simulate(tmp_path, seed=5)
    with sqlite3.connect(tmp_path / "bourse.db") as conn:
        statuses = {r[0] for r in conn.execute("SELECT DISTINCT status FROM orders")}
        types = {r[0] for r in conn.execute("SELECT DISTINCT type FROM orders")}
        events = {r[0] for r in conn.execute("SELECT DISTINCT type FROM outbox")}
        closures = conn.execute("SELECT COUNT(*) FROM lot_closures").fetchone()[0]
    assert {"filled", "canceled", "denied", "rejected"} <= statuses
    assert types == {"market", "limit", "stop", "stop_limit"}
    assert {"order.partially_filled", "order.pending_cancel", "order.pending_replace",
            "order.expired", "cash.deposited", "cash.withdrawal_requested",
            "cash.withdrawal_approved"} <= events  # fmt: skip
    assert closures > 0


def test_ledger_verify_when_store_intact_then_exit_0(tmp_path: Path) -> None:
    _simulate(tmp_path)
    code, output = _run("ledger", "verify", "--home", str(tmp_path))
    assert code == 0 and "ledger OK" in output


def test_ledger_verify_when_posting_edited_then_exit_1_with_report(tmp_path: Path) -> None:
    _simulate(tmp_path)
    with sqlite3.connect(tmp_path / "bourse.db") as conn:
        conn.execute("UPDATE postings SET amount = amount + 1 WHERE posting_id = 7")

    code, output = _run("ledger", "verify", "--home", str(tmp_path))

    assert code == 1
    assert "transactions_balance" in output and "cached_balances" in output


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_log SET payload = '{}' WHERE seq = 10",
        "DELETE FROM audit_log WHERE seq = 10",
        "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)",
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1",
    ],
)
def test_audit_verify_when_record_edited_or_deleted_then_exit_1(
    tmp_path: Path, tamper: str
) -> None:
    _simulate(tmp_path)
    assert _run("audit", "verify", "--home", str(tmp_path))[0] == 0
    with sqlite3.connect(tmp_path / "bourse.db") as conn:
        conn.execute(tamper)

    code, output = _run("audit", "verify", "--home", str(tmp_path))

    assert code == 1 and "BROKEN" in output


def test_commands_when_dsn_is_postgresql_then_same_contract(tmp_path: Path, pg_dsn: str) -> None:
    _simulate(tmp_path, 3, "--dsn", pg_dsn)
    assert _run("ledger", "verify", "--dsn", pg_dsn)[0] == 0
    assert _run("audit", "verify", "--dsn", pg_dsn)[0] == 0
    engine = create_engine(pg_dsn)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET payload = '{}' WHERE seq = 3"))
    engine.dispose()
    assert _run("audit", "verify", "--dsn", pg_dsn)[0] == 1


def test_ledger_verify_when_no_store_then_clear_error(tmp_path: Path) -> None:
    code, output = _run("ledger", "verify", "--home", str(tmp_path / "nothing"))
    assert code == 2 and "no store" in output


def test_outbox_relay_when_once_then_every_event_lands_in_redis(
    tmp_path: Path, redis_url: str
) -> None:
    import redis

    _simulate(tmp_path)
    with sqlite3.connect(tmp_path / "bourse.db") as conn:
        events = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    code, output = _run("outbox", "relay", "--home", str(tmp_path), "--redis-url", redis_url,
                        "--once", "--partitions", "3")  # fmt: skip

    assert code == 0, output
    client = redis.Redis.from_url(redis_url)
    house = client.xlen("bourse:events:house")  # the simulation's rollover: marks, missed
    assert house > 0
    assert sum(client.xlen(f"bourse:events:{p}") for p in range(3)) + house == events
    with sqlite3.connect(tmp_path / "bourse.db") as conn:
        assert (
            conn.execute("SELECT COUNT(*) FROM outbox WHERE published_ns IS NULL").fetchone()[0]
            == 0
        )
