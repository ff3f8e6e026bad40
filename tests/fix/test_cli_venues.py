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
import time
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


def test_oms_run_when_venues_given_then_host_routes_to_the_lp_and_stops_cleanly(
    tmp_path: Path, redis_url: str
) -> None:
    """``bourse oms run --venues``: an order over the command bus goes to the LP simulator,
    is filled there, and the store says so; an LP that never logs on is one warning line.
    The fill comes when nothing else drives the host (no command, no quote, the timer set
    far off): the LP's report wakes the writer itself."""
    import signal as sig

    import redis
    from sqlalchemy import select

    from tests.servers import free_port
    from tests.trading.bus.hostproc import QuotePump, start_host, wait_ready
    from trading.bus.client import CommandClient
    from trading.catalogue import default_catalogue
    from trading.commands import Deposit, OpenAccount, SubmitOrder
    from trading.store import schema as s
    from trading.store.engine import open_engine
    from trading.validate import order_request
    from trading.venues.fix.lpsim import LpSim

    port = free_port()
    venues = tmp_path / "venues.toml"
    venues.write_text(f"""
[[lp]]
name = "sim"
port = {port}
sender_comp_id = "BOURSE"
target_comp_id = "LP1"
reconnect_s = 1

[[lp]]
name = "ghost"
port = {free_port()}
sender_comp_id = "BOURSE"
target_comp_id = "GHOST"
priority = 0

[[route]]
name = "btc-a"
symbols = ["BTC/USD"]
book = "a"
lps = ["ghost", "sim"]
if_no_lp = "reject"
""")
    lp = LpSim(port, home=tmp_path / "lp", default="rest")
    lp.start()
    home, log = tmp_path / "home", tmp_path / "host.log"
    proc = start_host(home, None, redis_url, log, "--venues", str(venues), "--logon-timeout", "3",
                      "--expire-every", "600")  # fmt: skip
    try:
        wait_ready(proc, log)
        text = log.read_text()
        assert "lp_unreachable: ghost" in text and "lp_unreachable: sim" not in text, text
        request = order_request(default_catalogue(), account_id=1, client_order_id="o1",
                                symbol="BTC/USD", side="buy", qty="0.01", type="limit",
                                price="60000.00")  # fmt: skip
        with QuotePump(redis_url), CommandClient(redis.Redis.from_url(redis_url), "t") as client:
            assert client.send(OpenAccount(1), 30).ok
            assert client.send(Deposit(1, "USD", 100_000_000, "d1"), 30).ok
            assert client.send(SubmitOrder(request), 30).ok
        engine = open_engine(f"sqlite:///{next(home.glob('*.db'))}")
        o = s.orders
        with engine.connect() as conn:
            order_id = conn.execute(select(o.c.order_id)).scalar_one()
        assert lp.wait(lambda: f"{order_id}.0" in lp.orders)  # the LP rests it
        time.sleep(1.0)  # the quote pump's last quote has been applied: nothing drives the host
        lp.fill(order_id, "0.01")
        deadline = time.monotonic() + 30
        row = None
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                row = conn.execute(select(o.c.status, o.c.route, o.c.venue)).first()
            if row is not None and row.status == "filled":
                break
            time.sleep(0.1)
        # ghost has the better priority but is down: failover to sim.
        assert row is not None and tuple(row) == ("filled", "btc-a", "sim"), row
        proc.send_signal(sig.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
        assert "Traceback" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        lp.stop()
