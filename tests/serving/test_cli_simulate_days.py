"""``bourse simulate --days``, checked from outside: the same seed writes the same store,
the days are tabled, the ledger verifies, bad options change nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from serving.cli import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _simulate(home: Path, seed: int, *extra: str) -> str:
    code, output = _run("simulate", "--home", str(home), "--accounts", "6", "--orders", "400",
                        "--seed", str(seed), "--days", "2", *extra)  # fmt: skip
    assert code == 0, output
    return output


def _digest(db: Path) -> str:
    """Every table of the store, row by row."""
    h = hashlib.sha256()
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]  # fmt: skip
        for table in tables:
            h.update(table.encode())
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1"):
                h.update(repr(row).encode())
    return h.hexdigest()


def test_simulate_days_when_same_seed_then_identical_tables(tmp_path: Path) -> None:
    _simulate(tmp_path / "a", 4)
    _simulate(tmp_path / "b", 4)
    _simulate(tmp_path / "c", 5)

    a, b = _digest(tmp_path / "a" / "bourse.db"), _digest(tmp_path / "b" / "bourse.db")
    assert a == b
    assert a != _digest(tmp_path / "c" / "bourse.db")


def test_simulate_days_when_done_then_days_tabled_and_the_ledger_verifies(
    tmp_path: Path,
) -> None:
    output = _simulate(tmp_path, 3)

    assert "2026-01-05" in output and "2026-01-06" in output and "2026-01-07" not in output
    assert "clients created" in output
    assert "withdrawals" in output and "USD" in output  # the table fits 80 columns
    with sqlite3.connect(tmp_path / "bourse.db") as conn:
        marks = conn.execute("SELECT COUNT(DISTINCT trade_date) FROM eod_marks "
                             "WHERE symbol = 'EUR/USD'").fetchone()[0]  # fmt: skip
        orphans = conn.execute("SELECT COUNT(*) FROM accounts WHERE client_id IS NULL").fetchone()
    assert marks == 2 and orphans[0] == 0
    code, verified = _run("ledger", "verify", "--home", str(tmp_path))
    assert code == 0 and "ledger OK" in verified


def test_simulate_days_when_added_then_the_next_trading_days_follow(tmp_path: Path) -> None:
    _simulate(tmp_path, 3)
    output = _simulate(tmp_path, 3, "--add")  # Monday, Tuesday, then Wednesday, Thursday

    assert "2026-01-07" in output and "2026-01-08" in output
    with sqlite3.connect(tmp_path / "bourse.db") as conn:
        dates = [r[0] for r in conn.execute("SELECT trade_date FROM eod_marks WHERE symbol = "
                                            "'EUR/USD' ORDER BY 1")]  # fmt: skip
        accounts = conn.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
    assert dates == ["2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08"]
    assert accounts == 12
    assert _run("ledger", "verify", "--home", str(tmp_path))[0] == 0


def test_simulate_days_when_start_is_not_after_the_store_then_exit_2_unchanged(
    tmp_path: Path,
) -> None:
    _simulate(tmp_path, 3)
    before = _digest(tmp_path / "bourse.db")

    code, output = _run("simulate", "--home", str(tmp_path), "--days", "1", "--add",
                        "--start", "2026-01-05")  # fmt: skip

    assert code == 2 and "start after 2026-01-06" in output, output
    assert "Traceback" not in output
    assert _digest(tmp_path / "bourse.db") == before


def test_simulate_when_start_without_days_then_exit_2_and_no_store(tmp_path: Path) -> None:
    code, output = _run("simulate", "--home", str(tmp_path / "h"), "--start", "2026-01-05")

    assert code == 2 and "--start needs --days" in output
    assert not (tmp_path / "h").exists()
