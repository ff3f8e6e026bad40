"""The read side (trading/store/read.py, read_balances.py) against what the OMS wrote, on
SQLite and PostgreSQL: every order once across pages while new ones arrive, balances and
positions as of past times equal to what the OMS held then, equity as the OMS marks it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from tests.trading.builders import Rig, make_rig
from trading.commands import CancelOrder, DecideWithdrawal, Deposit, QuoteUpdate, RequestWithdrawal
from trading.errors import InvalidInput, NotFound
from trading.orders import OrderStatus
from trading.store import schema as s
from trading.store.read import (
    audit_trail,
    deposits,
    orders_page,
    trades_page,
    withdrawals,
)
from trading.store.read_balances import account_snapshot, balances, open_positions

SECOND = 1_000_000_000


@dataclass
class History:
    rig: Rig
    # time -> account -> (cash available, margin held, withdrawal pending) as the OMS had them
    money: dict[int, dict[int, tuple[int, int, int]]] = field(default_factory=dict)
    # time -> account -> {symbol: [(lot_id, remaining, price)]} as the OMS held them
    lots: dict[int, dict[int, dict[str, list[tuple[int, int, int]]]]] = field(default_factory=dict)


def _oms_lots(rig: Rig, account_id: int) -> dict[str, list[tuple[int, int, int]]]:
    acct = rig.oms._accounts[account_id]
    return {
        sym: [(lot.lot_id, lot.remaining, lot.price) for lot in pos.lots]
        for sym, pos in acct.positions.items()
        if pos.lots
    }


def _remember(h: History, *accounts: int) -> None:
    rig, now = h.rig, h.rig.clock()
    h.money[now] = {
        a: (rig.oms.cash_available(a), -rig.oms.balance(f"client:{a}:margin:USD"),
            -rig.oms.balance(f"client:{a}:withdrawal_pending:USD"))
        for a in accounts
    }  # fmt: skip
    h.lots[now] = {a: _oms_lots(rig, a) for a in accounts}


def _ok(rig: Rig, *commands: Any) -> list[Any]:
    results = rig.oms.execute(list(commands))
    assert not any(isinstance(r, Exception) for r in results), results
    return results


@pytest.fixture
def history(store_dsn: str) -> History:
    """Three accounts trading EUR/USD, gold and USD/JPY over a simulated hour, with prices
    moving (realized PnL), resting and cancelled orders, deposits and withdrawals."""
    rig = make_rig(store_dsn)
    h = History(rig)
    rig.open_accounts(1, 2, 3)
    _remember(h, 1, 2, 3)
    moves = [("1.10000", "1.10010"), ("1.10200", "1.10210"), ("1.09900", "1.09910")]
    for step in range(6):
        rig.clock.advance(60 * SECOND)
        bid, ask = moves[step % 3]
        gold = (f"{2000 + step}.00", f"{2000 + step}.50")
        _ok(rig, QuoteUpdate(rig.quote("EUR/USD", bid, ask)),
            QuoteUpdate(rig.quote("XAU/USD", *gold)))  # fmt: skip
        side = "buy" if step % 3 != 2 else "sell"
        _ok(rig, rig.submit(1, f"eu-{step}", side=side, qty="1"))
        _ok(rig, rig.submit(2, f"xau-{step}", symbol="XAU/USD", side=side, qty="1"))
        _ok(rig, rig.submit(1, f"rest-{step}", type="limit", price="1.05000"))
        if step % 2:
            _ok(rig, rig.submit(3, f"jpy-{step}", symbol="USD/JPY", side="sell", qty="1"))
        _remember(h, 1, 2, 3)
    rig.clock.advance(SECOND)
    rest = next(o.order_id for o in rig.oms._open.values() if o.client_order_id == "rest-0")
    wid1 = int(_ok(rig, RequestWithdrawal(1, "USD", 12_345))[0].ref.split(":")[1])
    wid2 = int(_ok(rig, RequestWithdrawal(2, "USD", 500))[0].ref.split(":")[1])
    _ok(rig, RequestWithdrawal(1, "USD", 777))
    _ok(rig, CancelOrder(1, rest), DecideWithdrawal(wid1, True, "ok"),
        DecideWithdrawal(wid2, False, "no"), Deposit(1, "USD", 50_000, "psp-late"))  # fmt: skip
    _remember(h, 1, 2, 3)
    return h


def _all_orders(rig: Rig, account_id: int) -> list[Any]:
    with rig.engine.connect() as conn:
        o = s.orders
        return list(conn.execute(select(o).where(o.c.account_id == account_id)))


def test_orders_page_when_orders_arrive_between_pages_then_each_order_once(
    history: History,
) -> None:
    rig = history.rig
    before = {r.order_id for r in _all_orders(rig, 1)}
    seen: list[int] = []
    cursor = None
    with rig.engine.connect() as conn:
        while True:
            page = orders_page(conn, 1, cursor=cursor, limit=4)
            seen += [o.order_id for o in page.items]
            # New orders keep arriving (and resting, and filling) between pages.
            rig.clock.advance(SECOND)
            _ok(rig, rig.submit(1, f"late-{len(seen)}", type="limit", price="1.04000"),
                rig.submit(1, f"late-m-{len(seen)}"))  # fmt: skip
            conn.rollback()  # a fresh snapshot per page, as a new API request would have
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert len(seen) == len(set(seen)) == len(before)
    assert set(seen) == before
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize(
    "filters",
    [
        {"statuses": [OrderStatus.FILLED]},
        {"statuses": ["accepted", "canceled"]},
        {"symbol": "EUR/USD"},
        {"since_ns": 1, "until_ns": 2},  # replaced below by times inside the history
    ],
)
def test_orders_page_when_filtered_then_exactly_the_matching_orders(
    history: History, filters: dict[str, Any]
) -> None:
    rig = history.rig
    rows = _all_orders(rig, 1)
    if "since_ns" in filters:
        times = sorted(history.money)
        filters = {"since_ns": times[2], "until_ns": times[4]}
    want = [
        r.order_id for r in rows
        if ("statuses" not in filters or r.status in {str(x) for x in filters["statuses"]})
        and ("symbol" not in filters or r.symbol == filters["symbol"])
        and ("since_ns" not in filters or filters["since_ns"] <= r.created_ns < filters["until_ns"])
    ]  # fmt: skip
    got: list[int] = []
    cursor = None
    with rig.engine.connect() as conn:
        while True:
            page = orders_page(conn, 1, cursor=cursor, limit=2, **filters)
            got += [o.order_id for o in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert want and got == sorted(want, reverse=True)


def test_orders_page_when_cursor_or_limit_bad_then_invalid_input(history: History) -> None:
    with history.rig.engine.connect() as conn:
        for kwargs in ({"cursor": "x"}, {"cursor": "1:2"}, {"cursor": str(2**64)},
                       {"limit": 0}, {"limit": 10_001}, {"statuses": ["lost"]}):  # fmt: skip
            with pytest.raises(InvalidInput):
                orders_page(conn, 1, **kwargs)


def test_trades_page_when_paged_then_every_fill_once_with_its_realized_pnl(
    history: History,
) -> None:
    rig = history.rig
    with rig.engine.connect() as conn:
        e, c = s.executions, s.lot_closures
        fills = {r.exec_id: r for r in conn.execute(
            select(e).where(e.c.account_id == 1, e.c.kind == "fill"))}  # fmt: skip
        realized: dict[str, int] = defaultdict(int)
        for r in conn.execute(select(c).where(c.c.account_id == 1)):
            realized[r.close_exec_id] += r.realized
        got = []
        cursor = None
        while True:
            page = trades_page(conn, 1, cursor=cursor, limit=3)
            got += page.items
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert sorted(t.exec_id for t in got) == sorted(fills) and len(fills) >= 6
    assert any(t.realized != 0 for t in got)
    for t in got:
        assert (t.qty, t.price, t.commission) == (
            fills[t.exec_id].qty,
            fills[t.exec_id].price,
            fills[t.exec_id].commission,
        )
        assert t.realized == realized[t.exec_id]
        assert t.currency == "USD" and t.symbol == "EUR/USD"
    assert [(t.ts_ns, t.exec_id) for t in got] == sorted(
        ((t.ts_ns, t.exec_id) for t in got), reverse=True)  # fmt: skip


def test_balances_when_as_of_past_times_then_what_the_oms_held_then(history: History) -> None:
    rig = history.rig
    with rig.engine.connect() as conn:
        for when, accounts in history.money.items():
            for a, (cash, margin, pending) in accounts.items():
                (usd,) = balances(conn, a, as_of_ns=when)
                assert (usd.currency, usd.cash, usd.margin_held, usd.withdrawal_pending) == (
                    "USD", cash, margin, pending), (when, a)  # fmt: skip
        # Now: the cached balances, equal to the postings summed to the end of time.
        for a in (1, 2, 3):
            assert balances(conn, a) == balances(conn, a, as_of_ns=2**62)


def test_balances_when_as_of_then_equal_a_recomputation_from_postings(history: History) -> None:
    rig = history.rig
    with rig.engine.connect() as conn:
        p, la = s.postings, s.ledger_accounts
        rows = list(conn.execute(
            select(la.c.code, p.c.amount, p.c.ts_ns).join(
                la, la.c.ledger_account_id == p.c.ledger_account_id)))  # fmt: skip
        for when in sorted(history.money)[1:]:
            for a in (1, 2, 3):
                sums: dict[str, int] = defaultdict(int)
                for code, amount, ts in rows:
                    if ts <= when and code.startswith(f"client:{a}:"):
                        sums[code.split(":")[2]] -= amount
                (usd,) = balances(conn, a, as_of_ns=when)
                assert usd.cash == sums["cash"] and usd.margin_held == sums["margin"]
                assert usd.withdrawal_pending == sums["withdrawal_pending"]


def test_positions_when_now_or_as_of_then_equal_the_oms_positions(history: History) -> None:
    rig = history.rig
    with rig.engine.connect() as conn:
        for a in (1, 2, 3):
            now = open_positions(conn, a)
            acct = rig.oms._accounts[a]
            assert {p.symbol: p.net for p in now} == {
                sym: pos.net for sym, pos in acct.positions.items() if pos.net
            }
            for p in now:
                pos = acct.positions[p.symbol]
                assert [(lot.lot_id, lot.remaining, lot.price, lot.margin) for lot in p.lots] == [
                    (lot.lot_id, lot.remaining, lot.price, lot.margin) for lot in pos.lots
                ]
                assert p.cost == pos.cost
        assert any(open_positions(conn, a) for a in (1, 2, 3))
        for when, accounts in history.lots.items():
            for a, held in accounts.items():
                then = {p.symbol: [(lot.lot_id, lot.remaining, lot.price) for lot in p.lots]
                        for p in open_positions(conn, a, as_of_ns=when)}  # fmt: skip
                assert then == held, (when, a)


def test_snapshot_when_marked_then_equity_and_free_margin_as_the_oms_counts_them(
    history: History,
) -> None:
    rig = history.rig
    with rig.engine.connect() as conn:
        for a in (1, 2, 3):
            snap = account_snapshot(conn, rig.catalogue, a, rig.book.get)
            acct = rig.oms._accounts[a]
            pnl = rig.oms._unrealized(acct)
            cash = rig.oms.cash_available(a)
            assert snap.unmarked == ()
            assert snap.unrealized == pnl
            assert snap.free_margin == cash + pnl
            assert snap.equity == cash + snap.margin_held + pnl
            assert snap.margin_held == sum(
                lot.margin for pos in acct.positions.values() for lot in pos.lots
            )
        gold = account_snapshot(
            conn, rig.catalogue, 2, lambda sym: None if sym == "XAU/USD" else rig.book.get(sym)
        )
        assert gold.unmarked == ("XAU/USD",) and gold.unrealized == 0
        with pytest.raises(NotFound):
            account_snapshot(conn, rig.catalogue, 99, rig.book.get)
        first = min(history.money)
        past = account_snapshot(conn, rig.catalogue, 1, rig.book.get, as_of_ns=first)
        assert past.positions == () and past.equity == 10_000_000


def test_deposits_and_withdrawals_when_listed_then_as_made(history: History) -> None:
    with history.rig.engine.connect() as conn:
        assert [(d.currency, d.amount, d.ref) for d in deposits(conn, 1)] == [
            ("USD", 10_000_000, "seed-1"), ("USD", 50_000, "psp-late")]  # fmt: skip
        assert [(w.amount, w.status) for w in withdrawals(conn, 1)] == [
            (12_345, "approved"), (777, "requested")]  # fmt: skip
        assert [w.status for w in withdrawals(conn, 2)] == ["rejected"]
        assert withdrawals(conn, 1, statuses=["requested"])[0].decided_ns is None
        assert deposits(conn, 3, since_ns=min(history.money) + 1) == []


def test_audit_trail_when_read_then_every_record_about_the_account_and_no_other(
    history: History,
) -> None:
    rig = history.rig
    with rig.engine.connect() as conn:
        orders = {f"order:{r.order_id}" for r in _all_orders(rig, 1)}
        wids = {f"withdrawal:{w.withdrawal_id}" for w in withdrawals(conn, 1)}
        everything = list(conn.execute(select(s.audit_log).order_by(s.audit_log.c.seq)))
        trail = []
        after = 0
        while page := audit_trail(conn, 1, after_seq=after, limit=7):
            trail += page
            after = page[-1].seq
    subjects = orders | wids | {"account:1"}
    want = [r.seq for r in everything
            if r.subject in subjects or '"account_id":1,' in r.payload]  # fmt: skip
    assert [r.seq for r in trail] == want
    actions = {r.action for r in trail}
    assert {"account.open", "cash.deposit", "order.submit", "order.cancel",
            "cash.withdrawal_request", "cash.withdrawal_approved"} <= actions  # fmt: skip
    assert not any(r.subject in ("account:2", "account:3") for r in trail)
