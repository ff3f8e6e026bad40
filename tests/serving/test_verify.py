"""`ledger verify`, `audit verify` and `audit head` against tampering, empty stores and
stores that are not there, on SQLite and PostgreSQL, from the command line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from serving.cli import app
from tests.trading.builders import make_engine, make_rig
from trading.commands import DecideWithdrawal, RequestWithdrawal
from trading.errors import NoStore
from trading.store.engine import open_readonly

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _written(dsn: str) -> str:
    """A store the OMS wrote: fills that opened and closed lots (with commission), and
    withdrawals approved, rejected and still pending."""
    rig = make_rig(dsn)
    rig.open_accounts(1, 2)
    for n in range(3):
        rig.oms.execute_one(rig.submit(1, f"buy-{n}", qty="2"))
        rig.oms.execute_one(rig.submit(2, f"gold-{n}", symbol="XAU/USD", qty="1"))
    rig.oms.execute_one(rig.submit(1, "sell-1", side="sell", qty="3"))
    done = [
        rig.oms.execute_one(RequestWithdrawal(a, "USD", amount, rig.destination(a)))
        for a, amount in ((1, 10_000), (2, 25_000), (2, 5_000))
    ]
    wids = [int(d.ref.split(":")[1]) for d in done]  # type: ignore[union-attr]
    rig.oms.execute([DecideWithdrawal(wids[0], True, "ok"), DecideWithdrawal(wids[1], False)])
    rig.engine.dispose()
    return dsn


def _sql(dsn: str, *statements: str) -> None:
    engine = create_engine(dsn)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def _scalar(dsn: str, sql: str) -> object:
    engine = create_engine(dsn)
    with engine.connect() as conn:
        value = conn.execute(text(sql)).scalar()
    engine.dispose()
    return value


@pytest.fixture
def store(store_dsn: str) -> str:
    return _written(store_dsn)


def test_verify_when_store_intact_then_both_pass(store: str) -> None:
    code, output = _run("ledger", "verify", "--dsn", store)
    assert code == 0 and "ledger OK" in output, output
    code, output = _run("audit", "verify", "--dsn", store)
    assert code == 0 and "chain intact" in output, output
    assert int(str(_scalar(store, "SELECT COUNT(*) FROM executions WHERE commission > 0"))) > 0


TAMPERING = {
    "commission of a fill set to zero": (
        "UPDATE executions SET commission = 0 WHERE exec_id = "
        "(SELECT MIN(exec_id) FROM executions WHERE commission > 0)",
        "fill_commission",
    ),
    "quantity of a fill and its order doubled": (
        "UPDATE executions SET qty = qty * 2 WHERE exec_id = (SELECT MIN(exec_id) FROM executions)",
        "fill_quantity",
    ),
    "approved withdrawal multiplied by ten": (
        "UPDATE withdrawals SET amount = amount * 10 WHERE status = 'approved'",
        "withdrawal_postings",
    ),
    "rejected withdrawal turned approved": (
        "UPDATE withdrawals SET status = 'approved' WHERE status = 'rejected'",
        "withdrawal_postings",
    ),
    "withdrawal redirected to another account's destination": (
        "UPDATE withdrawals SET destination_id = (SELECT MAX(destination_id) FROM "
        "withdrawal_destinations) WHERE account_id = 1",
        "withdrawal_destinations",
    ),
    "approved withdrawal deleted": (
        "DELETE FROM withdrawals WHERE status = 'approved'",
        "withdrawal_txns_have_withdrawals",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_ledger_verify_when_tampered_then_exit_1_naming_the_check(store: str, case: str) -> None:
    statement, check = TAMPERING[case]
    _sql(store, statement)

    code, output = _run("ledger", "verify", "--dsn", store)

    assert code == 1, output
    assert f"BROKEN {check}" in output


def test_ledger_verify_when_commission_zeroed_with_its_order_then_still_caught(store: str) -> None:
    # The order's own sums do not cover commission: only the ledger postings do.
    _sql(store, "UPDATE executions SET commission = 0")
    code, output = _run("ledger", "verify", "--dsn", store)
    assert code == 1 and "fill_commission" in output
    assert "fills_match_orders" not in output


def _head(store: str) -> tuple[int, str]:
    code, output = _run("audit", "head", "--dsn", store)
    assert code == 0, output
    seq, digest = output.split()
    return int(seq), digest


def test_audit_head_when_intact_then_prints_the_last_record(store: str) -> None:
    seq, digest = _head(store)
    assert seq == _scalar(store, "SELECT MAX(seq) FROM audit_log")
    assert digest == _scalar(store, f"SELECT hash FROM audit_log WHERE seq = {seq}")

    code, output = _run("audit", "verify", "--dsn", store, "--anchor", f"{seq}:{digest}")
    assert code == 0 and f"reaches the anchor at record {seq}" in output, output


REWIND = (
    "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)",
    "UPDATE audit_head SET seq = (SELECT MAX(seq) FROM audit_log), "
    "hash = (SELECT hash FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log))",
)


def test_audit_verify_when_tail_deleted_and_head_rewound_then_only_the_anchor_tells(
    store: str,
) -> None:
    seq, digest = _head(store)
    _sql(store, *REWIND)
    # The store alone cannot tell: its head was rewound with the log.
    assert _run("audit", "verify", "--dsn", store)[0] == 0

    code, output = _run("audit", "verify", "--dsn", store, "--anchor", f"{seq}:{digest}")

    assert code == 1
    assert f"anchored record {seq} is missing" in output and f"ends at {seq - 1}" in output


def test_audit_verify_when_anchored_record_rewritten_whole_then_exit_1(store: str) -> None:
    seq, digest = _head(store)
    # Rewrite the last record and recompute its hash and the head: a consistent forgery.
    from trading.oms.audit import record_hash

    engine = create_engine(store)
    with engine.begin() as conn:
        r = conn.execute(text(f"SELECT * FROM audit_log WHERE seq = {seq}")).mappings().one()
        forged = record_hash(seq, r["ts_ns"], "mallory", r["action"], r["subject"],
                             r["payload"], r["prev_hash"])  # fmt: skip
        conn.execute(
            text("UPDATE audit_log SET actor = 'mallory', hash = :h WHERE seq = :s"),
            {"h": forged, "s": seq},
        )
        conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": forged})
    engine.dispose()
    assert _run("audit", "verify", "--dsn", store)[0] == 0

    code, output = _run("audit", "verify", "--dsn", store, "--anchor", f"{seq}:{digest}")

    assert code == 1 and "differs from the anchor" in output


@pytest.mark.parametrize("anchor", ["12", "x:" + "0" * 64, "3:abc", "0:" + "0" * 64])
def test_audit_verify_when_anchor_malformed_then_exit_2(store: str, anchor: str) -> None:
    code, output = _run("audit", "verify", "--dsn", store, "--anchor", anchor)
    assert code == 2 and "bad anchor" in output


ALL_TABLES = (
    "deposits", "lot_closures", "lots", "executions", "exec_exceptions", "orders", "balances",
    "balance_checkpoints", "posting_spans", "postings", "ledger_txns", "ledger_accounts",
    "withdrawals", "withdrawal_destinations", "outbox", "symbol_halts", "audit_log", "audit_head",
    "accounts",
)  # fmt: skip


def test_verify_when_every_row_deleted_then_empty_and_exit_1(store: str) -> None:
    seq, digest = _head(store)
    _sql(store, *(f"DELETE FROM {t}" for t in ALL_TABLES))

    code, output = _run("ledger", "verify", "--dsn", store)
    assert code == 1 and "empty store" in output, output
    code, output = _run("audit", "verify", "--dsn", store)
    assert code == 1 and "empty store: 0 audit records" in output, output
    code, output = _run("audit", "head", "--dsn", store)
    assert code == 1 and "empty store" in output
    code, output = _run("audit", "verify", "--dsn", store, "--anchor", f"{seq}:{digest}")
    assert code == 1 and f"anchored record {seq} is missing" in output


def test_ledger_verify_when_only_the_audit_log_is_left_then_exit_1(store: str) -> None:
    _sql(store, *(f"DELETE FROM {t}" for t in ALL_TABLES if t not in ("audit_log", "audit_head")))
    code, output = _run("ledger", "verify", "--dsn", store)
    assert code == 1 and "BROKEN accounts_in_audit" in output, output


def test_verify_when_schema_but_no_rows_then_empty_and_exit_1(store_dsn: str) -> None:
    make_engine(store_dsn).dispose()
    assert _run("ledger", "verify", "--dsn", store_dsn) == (
        1,
        "empty store: 0 rows, nothing verified\n",
    )
    assert _run("audit", "verify", "--dsn", store_dsn)[0] == 1


def _tables(dsn: str) -> set[str]:
    engine = create_engine(dsn)
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
    engine.dispose()
    return names


@pytest.mark.parametrize("command", [("ledger", "verify"), ("audit", "verify"), ("audit", "head")])
def test_verify_when_database_has_no_schema_then_exit_2_and_nothing_created(
    store_dsn: str, command: tuple[str, str]
) -> None:
    _sql(store_dsn, "CREATE TABLE unrelated (x INTEGER)")

    code, output = _run(*command, "--dsn", store_dsn)

    assert code == 2 and "no Bourse schema" in output, output
    assert len(output.strip().splitlines()) == 1
    assert _tables(store_dsn) == {"unrelated"}


@pytest.mark.parametrize("command", [("ledger", "verify"), ("audit", "verify"), ("audit", "head")])
def test_verify_when_file_missing_then_exit_2_and_no_file_created(
    tmp_path: Path, command: tuple[str, str]
) -> None:
    code, output = _run(*command, "--home", str(tmp_path / "nowhere"))
    assert code == 2 and "no store at" in output
    assert not (tmp_path / "nowhere").exists()
    code, output = _run(*command, "--dsn", f"sqlite:///{tmp_path}/absent.db")
    assert code == 2 and "no store at" in output
    assert list(tmp_path.iterdir()) == []


def test_verify_when_file_is_not_sqlite_then_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bourse.db").write_text("not a database at all, " * 100)
    code, output = _run("ledger", "verify", "--home", str(tmp_path))
    assert code == 2 and "cannot verify" in output
    assert (tmp_path / "bourse.db").read_text().startswith("not a database")


def test_open_readonly_when_writing_then_the_database_refuses(store: str) -> None:
    engine = open_readonly(store)
    with engine.connect() as conn, pytest.raises(Exception, match=r"(?i)read.?only"):
        conn.execute(text("DELETE FROM audit_log"))
    engine.dispose()
    assert int(str(_scalar(store, "SELECT COUNT(*) FROM audit_log"))) > 0


def test_open_readonly_when_an_old_schema_then_refused_not_migrated(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE accounts (account_id INTEGER PRIMARY KEY)")
    with pytest.raises(NoStore, match="incomplete Bourse schema"):
        open_readonly(f"sqlite:///{db}")
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"accounts"}
