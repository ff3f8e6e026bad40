"""The Rollover handler on both stores: end-of-day marks, financing posted and evented,
missed cut-offs recorded, and nothing done twice, across repeats and restarts."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from tests.trading.builders import FakeClock, Rig, make_oms, make_rig, store_snapshot
from trading import ledger as L
from trading.commands import Done, Rollover
from trading.errors import InvalidInput, InvalidRollover
from trading.events import HOUSE_ACCOUNT
from trading.financing import compute_financing
from trading.store import schema as s
from trading.store.read_financing import eod_marks, financing
from trading.store.verify import verify_audit, verify_ledger

NS = 1_000_000_000
HOUR = 3_600 * NS
MON_22 = 1_767_650_400 * NS  # Monday 2026-01-05 22:00 UTC: 17:00 New York, the FX cut-off
DAY = 24 * HOUR


@pytest.fixture
def rig(store_dsn: str) -> Rig:
    r = make_rig(store_dsn)
    r.open_accounts(1, 2)
    done = r.oms.execute_one(Rollover(r.clock()))  # what was due before any position
    assert isinstance(done, Done)
    for cmd in (r.submit(1, "l1", qty="2"), r.submit(2, "s1", side="sell", qty="1"),
                r.submit(1, "g1", symbol="XAU/USD", qty="1")):  # fmt: skip
        r.oms.execute_one(cmd)
    return r


def _events(rig: Rig, type_: str) -> list[dict[str, Any]]:
    o = s.outbox
    with rig.engine.connect() as conn:
        rows = conn.execute(select(o.c.payload).where(o.c.type == type_).order_by(o.c.event_id))
        return [json.loads(r[0]) for r in rows]


def _clean(rig: Rig) -> None:
    with rig.engine.connect() as conn:
        assert verify_ledger(conn) == []
        assert verify_audit(conn) == []


def test_rollover_when_fx_cutoff_passed_then_marks_and_posts_financing_per_position(
    rig: Rig,
) -> None:
    cash_before = {a: rig.oms.cash_available(a) for a in (1, 2)}
    eur = rig.catalogue.get("EUR/USD")
    quote = rig.book.get("EUR/USD")
    assert quote is not None
    rig.clock.now_ns = MON_22 + NS

    done = rig.oms.execute_one(Rollover(MON_22 + NS))

    assert isinstance(done, Done) and "cut-offs" in done.detail
    monday = dt.date(2026, 1, 5)
    with rig.engine.connect() as conn:
        marks = {m.symbol: m for m in eod_marks(conn, trade_date=monday)}
        rows = {(f.account_id, f.symbol): f for f in financing(conn, 1) + financing(conn, 2)}
    assert (marks["EUR/USD"].bid, marks["EUR/USD"].ask) == (quote.bid, quote.ask)
    assert marks["EUR/USD"].cutoff_ns == MON_22 and marks["EUR/USD"].ts_ns == quote.ts_ns
    long_ = compute_financing(200, quote.bid, eur, eur.swap_long, 1, Decimal(1), "USD")
    short = compute_financing(-100, quote.ask, eur, eur.swap_short, 1, Decimal(1), "USD")
    assert long_.amount < 0 < short.amount  # the long pays, the short earns at these rates
    assert (rows[1, "EUR/USD"].amount, rows[1, "EUR/USD"].mark) == (long_.amount, quote.bid)
    assert (rows[2, "EUR/USD"].amount, rows[2, "EUR/USD"].mark) == (short.amount, quote.ask)
    assert rows[1, "EUR/USD"].nights == 1 and rows[1, "EUR/USD"].rate == eur.swap_long
    assert (1, "XAU/USD") in rows  # metals roll at the same cut-off
    gold = rows[1, "XAU/USD"].amount
    assert rig.oms.cash_available(1) - cash_before[1] == long_.amount + gold
    assert rig.oms.cash_available(2) - cash_before[2] == short.amount
    assert rig.oms.balance(L.house_financing("USD")) == long_.amount + gold + short.amount
    financed = {(e["account_id"], e["symbol"]): e for e in _events(rig, "position.financed")}
    event = financed[1, "EUR/USD"]
    assert (event["trade_date"], event["nights"], event["net_qty"], event["mark"]) == (
        "2026-01-05", 1, 200, quote.bid)  # fmt: skip
    assert (event["rate"], event["amount"], event["currency"]) == ("-3.25", long_.amount, "USD")
    assert event["txn_id"] == rows[1, "EUR/USD"].txn_id
    marked = [e for e in _events(rig, "eod.marked") if e["symbol"] == "EUR/USD"]
    assert marked[-1]["account_id"] == HOUSE_ACCOUNT and marked[-1]["bid"] == quote.bid
    _clean(rig)


def test_rollover_when_repeated_or_restarted_then_nothing_is_done_twice(rig: Rig) -> None:
    rig.clock.now_ns = MON_22 + NS
    rig.oms.execute_one(Rollover(MON_22 + NS))
    before = store_snapshot(rig.engine)

    again = rig.oms.execute_one(Rollover(MON_22 + NS))
    restarted = make_oms(rig.engine, rig.clock)
    restarted.seed_quotes()
    seeded = store_snapshot(rig.engine)
    third = restarted.oms.execute_one(Rollover(MON_22 + NS))

    assert again == Done(f"rollover:{MON_22 + NS}", "nothing due") and again == third
    assert store_snapshot(rig.engine)["financing"] == before["financing"] > 0
    assert store_snapshot(rig.engine) == seeded  # the restarted OMS did nothing either
    assert len([e for e in _events(rig, "eod.missed") if e["symbol"] == "GBP/USD"]) == 1


def test_rollover_when_no_quote_then_missed_recorded_and_nothing_charged(rig: Rig) -> None:
    rig.clock.now_ns = MON_22 + NS
    rig.oms.execute_one(Rollover(MON_22 + NS))

    missed = {e["symbol"]: e for e in _events(rig, "eod.missed")}
    assert missed["GBP/USD"]["reason"] == "no_quote"
    assert missed["GBP/USD"]["trade_date"] == "2026-01-05"
    assert missed["GBP/USD"]["cutoff_ns"] == MON_22
    with rig.engine.connect() as conn:
        assert eod_marks(conn, symbol="GBP/USD") == []
    completed = _events(rig, "rollover.completed")[-1]
    assert completed["missed"] >= 1 and completed["marked"] >= 2


def test_rollover_when_wednesday_then_fx_charges_three_nights(rig: Rig) -> None:
    wed_22 = MON_22 + 2 * DAY
    for day in range(3):  # each day's cut-off on its own day, as the host's timer sends them
        rig.clock.now_ns = MON_22 + day * DAY + NS
        rig.oms.execute_one(Rollover(rig.clock()))

    with rig.engine.connect() as conn:
        nights = {f.trade_date: f.nights for f in financing(conn, 1, symbol="EUR/USD")}
        btc = eod_marks(conn, symbol="BTC/USD")
    assert nights == {dt.date(2026, 1, 5): 1, dt.date(2026, 1, 6): 1, dt.date(2026, 1, 7): 3}
    assert [m.trade_date for m in btc][-3:] == [dt.date(2026, 1, d) for d in (5, 6, 7)]
    assert max(m.cutoff_ns for m in btc) < wed_22
    _clean(rig)


def test_rollover_when_ahead_of_the_clock_then_refused_and_nothing_changes(
    store_dsn: str,
) -> None:
    rig = make_rig(store_dsn, FakeClock())
    before = store_snapshot(rig.engine)

    result = rig.oms.execute([Rollover(rig.clock() + DAY)])[0]

    assert isinstance(result, InvalidRollover)
    assert store_snapshot(rig.engine) == before


def test_verify_when_financing_amount_tampered_then_reported(rig: Rig) -> None:
    rig.clock.now_ns = MON_22 + NS
    rig.oms.execute_one(Rollover(MON_22 + NS))
    f = s.financing
    with rig.engine.begin() as conn:
        conn.execute(f.update().where(f.c.account_id == 2).values(amount=f.c.amount * 10))
    with rig.engine.connect() as conn:
        problems = verify_ledger(conn)
    assert {p.check for p in problems} == {"financing_postings"}


def test_verify_when_financing_row_deleted_then_its_transaction_is_reported(rig: Rig) -> None:
    rig.clock.now_ns = MON_22 + NS
    rig.oms.execute_one(Rollover(MON_22 + NS))
    f = s.financing
    with rig.engine.begin() as conn:
        conn.execute(f.delete().where(f.c.account_id == 2))
    with rig.engine.connect() as conn:
        problems = verify_ledger(conn)
    assert {p.check for p in problems} == {"financing_txns_have_rows"}


def test_read_financing_when_window_then_only_its_dates_and_bad_window_refused(rig: Rig) -> None:
    for day in range(3):
        rig.clock.now_ns = MON_22 + day * DAY + NS
        rig.oms.execute_one(Rollover(rig.clock()))
    tue, wed = dt.date(2026, 1, 6), dt.date(2026, 1, 7)

    with rig.engine.connect() as conn:
        rows = financing(conn, 1, start=tue, end=wed, symbol="EUR/USD")
        gold = financing(conn, 1, symbol="XAU/USD")
        with pytest.raises(InvalidInput):
            financing(conn, 1, start=wed, end=tue)
        with pytest.raises(InvalidInput):
            financing(conn, 1, start=tue, end=tue + dt.timedelta(days=401))
        marks = eod_marks(conn, trade_date=tue)

    assert [(r.trade_date, r.nights) for r in rows] == [(tue, 1), (wed, 3)]
    assert all(r.txn_id is not None and r.amount < 0 for r in rows)  # a long pays -3.25 %
    assert [r.trade_date for r in gold] == [dt.date(2026, 1, 5), tue, wed]
    assert {m.symbol for m in marks} >= {"EUR/USD", "XAU/USD", "USD/JPY"}
    assert all(m.trade_date == tue for m in marks)
