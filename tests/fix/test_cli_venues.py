"""The CLI contract of issue 13, checked from outside: ``bourse simulate --venues FILE`` with
every EUR/USD limit and market order routed to QuickFIX's own ``executor`` on loopback
(FIX 4.4: it fills each limit order at once, rejects market orders at session level).
Afterwards ``bourse ledger verify`` passes, those limit orders are filled by the LP (the
venue recorded on the order and its fills is the LP's), and the market orders routed there
end rejected with the LP's reason."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from tests.fix.counterparties import start_executor

BOURSE = str(Path(sys.executable).with_name("bourse"))
MARKUP = Decimal("0.00002")


def bourse(*args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BOURSE, *args], capture_output=True, text=True, timeout=timeout_s, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def venues_file(path: Path, port: int, target: str) -> Path:
    path.write_text(
        f"""
default_route = "bbook"

[[lp]]
name = "executor"
host = "127.0.0.1"
port = {port}
begin_string = "FIX.4.4"
sender_comp_id = "BOURSE"
target_comp_id = "{target}"
heartbeat_s = 30
reconnect_s = 1
order_types = ["limit", "market"]
tifs = ["day", "gtc", "ioc", "fok", "gtd"]

[[route]]
name = "eurusd-to-executor"
symbols = ["EUR/USD"]
order_types = ["limit", "market"]
book = "a"
lps = ["executor"]
if_no_lp = "reject"
markup = "{MARKUP}"
"""
    )
    return path


def test_simulate_when_routed_to_executor_then_lp_fills_limits_rejects_markets_and_ledger_verifies(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with start_executor(tmp_path / "executor", clients=["BOURSE"]) as cp:
        venues = venues_file(tmp_path / "venues.toml", cp.port, cp.comp_id)
        sim = bourse("simulate", "--home", str(home), "--accounts", "8", "--orders", "400",
                     "--seed", "11", "--venues", str(venues))  # fmt: skip
        assert sim.returncode == 0, sim.stdout + sim.stderr + cp.log
    verify = bourse("ledger", "verify", "--home", str(home))
    assert verify.returncode == 0 and "ledger OK" in verify.stdout, verify.stdout + verify.stderr

    db = sqlite3.connect(next(home.glob("*.db")))
    routed = db.execute(
        "SELECT order_id, type, status, venue, qty, filled_qty, price, filled_notional, reason "
        "FROM orders WHERE symbol = 'EUR/USD' AND type IN ('limit', 'market') "
        "AND status != 'denied'"
    ).fetchall()
    limits = [r for r in routed if r[1] == "limit"]
    markets = [r for r in routed if r[1] == "market"]
    assert len(limits) >= 5 and len(markets) >= 5, routed
    for oid, _, status, venue, qty, filled, price, notional, _ in limits:
        assert (venue, status, filled) == ("executor", "filled", qty), oid
        # The LP filled at the limit it was sent (the client's less the markup); the client
        # pays that plus the markup: exactly the limit.
        assert notional == qty * price, oid
    for oid, _, status, venue, _, filled, _, _, reason in markets:
        assert (venue, status, filled) == ("executor", "rejected", 0), oid
        assert reason and "no_liquidity_provider" not in reason, (oid, reason)
    # Every fill of those orders is the LP's, and the LP's ledger accounts hold them.
    venues_seen = {
        v for (v,) in db.execute(
            "SELECT DISTINCT e.venue FROM executions e JOIN orders o USING (order_id) "
            "WHERE o.symbol = 'EUR/USD' AND o.type = 'limit' AND e.qty > 0")
    }  # fmt: skip
    assert venues_seen == {"executor"}
    codes = {c for (c,) in db.execute("SELECT code FROM ledger_accounts")}
    assert "house:executor:position:EURUSD" in codes
    # The markup of every LP fill is booked as revenue: 0.00002 USD per EUR filled.
    lots = sum(r[5] for r in limits)  # lot steps of 0.01 lot = 1,000 EUR
    expected_cents = int(Decimal(lots) * 1000 * MARKUP * 100)
    (markup_cents,) = db.execute(
        "SELECT -SUM(p.amount) FROM postings p JOIN ledger_accounts a USING (ledger_account_id) "
        "WHERE a.code = 'house:revenue:markup:USD' AND p.txn_id IN (SELECT t.txn_id FROM "
        "ledger_txns t JOIN executions e ON t.ref = e.exec_id WHERE e.venue = 'executor')"
    ).fetchone()
    assert markup_cents == expected_cents


def test_simulate_when_lp_unreachable_then_one_line_and_exit_2(tmp_path: Path) -> None:
    from tests.servers import free_port

    venues = venues_file(tmp_path / "venues.toml", free_port(), "NOBODY")
    sim = bourse("simulate", "--home", str(tmp_path / "home"), "--orders", "10",
                 "--venues", str(venues), "--logon-timeout", "1")  # fmt: skip
    assert sim.returncode == 2, sim.stdout + sim.stderr
    text = (sim.stdout + sim.stderr).strip()
    assert "lp_unreachable: executor" in text and "Traceback" not in text, text
