"""Accounts, positions, trades (pages and CSV) and the market over REST; another client's
are 404."""

from __future__ import annotations

import csv
import io
import json

from fastapi.testclient import TestClient

from pipelines.positions.redis_out import account_key, positions_key
from tests.serving.api.conftest import assert_problem
from tests.serving.api.trading_helpers import client, order
from tests.trading.bus.test_host import Served


def test_account_when_no_live_state_then_figures_from_the_store(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice")
    listed = api.get("/v1/accounts", headers=alice.headers).json()
    assert [(a["account_id"], a["currency"]) for a in listed] == [(alice.account_id, "USD")]
    got = api.get(alice.url(), headers=alice.headers).json()
    assert got["source"] == "store" and got["equity"] == {"amount": "100000.00", "currency": "USD"}
    assert got["margin_level"] is None and got["margin_state"] == "ok"
    order(api, alice)
    got = api.get(alice.url(), headers=alice.headers).json()
    used = got["used_margin"]["amount"]
    assert float(used) > 0 and got["margin_level"] is not None  # a float only to compare
    assert got["free_margin"]["amount"] != got["equity"]["amount"]


def test_account_when_the_flow_wrote_it_then_its_live_figures(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice")
    served.redis.hset(account_key(alice.account_id), mapping={
        "account_id": alice.account_id, "currency": "USD", "account_type": "margin",
        "tier": "retail", "state": "active", "cash": 1000, "balance": 5000, "used_margin": 4000,
        "withdrawal_pending": 0, "unrealized": -2000, "equity": 3000, "free_margin": -1000,
        "margin_level": "75.0000", "margin_state": "margin_call", "unmarked": "",
        "positions": 1, "last_seq": 3, "ts_ns": 42, "other_cash": "{}",
    })  # fmt: skip
    got = api.get(alice.url(), headers=alice.headers).json()
    assert (got["source"], got["as_of_ns"], got["margin_level"], got["margin_state"]) == (
        "live", 42, "75.0000", "margin_call")  # fmt: skip
    assert got["equity"]["amount"] == "30.00" and got["free_margin"]["amount"] == "-10.00"
    served.redis.hset(positions_key(alice.account_id), "EUR/USD", json.dumps({
        "account_id": alice.account_id, "symbol": "EUR/USD", "net_qty": -200, "cost": -22000000,
        "avg_price": "1.10000", "lots": [{"lot_id": 9, "remaining": -200, "price": 110000,
                                          "margin": 4000}],
        "currency": "USD", "margin": 4000, "mark": 110010, "unrealized": -2000, "ts_ns": 42,
    }))  # fmt: skip
    pos = api.get(alice.url("/positions"), headers=alice.headers).json()
    assert [(p["side"], p["qty"], p["mark"], p["unrealized"]["amount"], p["source"])
            for p in pos] == [("short", "-2.00", "1.10010", "-20.00", "live")]  # fmt: skip


def test_positions_when_bought_then_a_long_with_its_lots_marked_at_the_bid(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice")
    order(api, alice)
    order(api, alice, qty="0.5")
    (pos,) = api.get(alice.url("/positions"), headers=alice.headers).json()
    assert (pos["symbol"], pos["side"], pos["qty"], pos["source"]) == (
        "EUR/USD", "long", "1.50", "store")  # fmt: skip
    assert [lot["qty"] for lot in pos["lots"]] == ["1.00", "0.50"]
    assert pos["mark"] == "1.10000" and pos["unrealized"]["currency"] == "USD"
    assert pos["unrealized"]["amount"].startswith("-")  # bought at the ask, marked at the bid


def test_trades_when_paged_and_exported_then_every_fill_once_and_the_csv_matches(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice")
    for qty in ("0.1", "0.2", "0.3"):
        order(api, alice, qty=qty)
    seen, cursor = [], None
    for _ in range(4):
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get(alice.url("/trades"), params=params, headers=alice.headers).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor.startswith("c1.") and ":" not in cursor
    assert [t["qty"] for t in seen] == ["0.30", "0.20", "0.10"]
    assert len({t["exec_id"] for t in seen}) == 3
    res = api.get(alice.url("/trades.csv"), headers=alice.headers)
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    assert "attachment" in res.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(res.text)))
    assert [(r["exec_id"], r["qty"], r["price"], r["symbol"], r["side"], r["currency"])
            for r in rows] == [(t["exec_id"], t["qty"], t["price"], "EUR/USD", "buy", "USD")
                               for t in seen]  # fmt: skip
    assert rows[0]["commission"] == seen[0]["commission"]["amount"]


def test_account_resources_when_another_client_asks_then_404(
    api: TestClient, served: Served
) -> None:
    alice, bob = client(api, served, "alice"), client(api, served, "bob")
    order(api, alice)
    for path in ("", "/positions", "/trades", "/trades.csv"):
        assert_problem(api.get(alice.url(path), headers=bob.headers), 404, "not_found")
    assert_problem(api.get("/v1/accounts/999999", headers=bob.headers), 404, "not_found")
    assert [a["account_id"] for a in api.get("/v1/accounts", headers=bob.headers).json()] == [
        bob.account_id]  # fmt: skip
    assert api.get(bob.url("/positions"), headers=bob.headers).json() == []


def test_market_when_asked_then_specs_by_symbol_or_alias_and_the_quote_snapshot(
    api: TestClient, served: Served
) -> None:
    alice = client(api, served, "alice", amount=None)
    h = alice.headers
    specs = api.get("/v1/instruments", headers=h).json()
    assert "EUR/USD" in [s["symbol"] for s in specs]
    one = api.get("/v1/instruments/EUR/USD", headers=h).json()
    assert one["symbol"] == "EUR/USD" and one["tick_size"] == "0.00001"
    assert api.get("/v1/instruments/EURUSD", headers=h).json() == one
    assert_problem(api.get("/v1/instruments/NOPE", headers=h), 404, "not_found")
    quotes = api.get("/v1/quotes", params={"symbols": "EUR/USD,XAU/USD"}, headers=h).json()
    assert [(q["symbol"], q["bid"], q["ask"]) for q in quotes] == [
        ("EUR/USD", "1.10000", "1.10010"), ("XAU/USD", "2000.00", "2000.50")]  # fmt: skip
    assert_problem(api.get("/v1/quotes", params={"symbols": "EUR/USX"}, headers=h), 422,
                   "unknown_symbol")  # fmt: skip
