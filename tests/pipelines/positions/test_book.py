"""The positions flow's book, from events alone, against the store after a simulated day.

A day of the simulation (``trading.sim.simulation``) opens, partially closes and flips
positions, deposits, and crosses a Wednesday cut-off (financing). Every outbox event applied
in order must give, per account, exactly the store's cash, margin, withdrawals pending and
open lots, which is also what ``load_books`` reads back from the store.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import Engine, select

from pipelines.positions.book import AccountBook, BadEvent, OutOfStep, apply
from pipelines.positions.store_seed import load_books
from trading.catalogue import default_catalogue
from trading.events import OutboxEvent, payload_of
from trading.sim.simulation import run_simulation
from trading.store import schema as s
from trading.store.engine import migrate, open_engine

START_NS = 1_767_823_110 * 1_000_000_000  # Wednesday 21:58:30 UTC, 90 s before the FX cut-off


@pytest.fixture
def day(store_dsn: str) -> Engine:
    engine = open_engine(store_dsn)
    migrate(engine)
    run_simulation(engine, default_catalogue(), accounts=6, orders=500, seed=3,
                   start_ns=START_NS)  # fmt: skip
    return engine


def outbox(engine: Engine) -> list[OutboxEvent]:
    o = s.outbox
    with engine.connect() as conn:
        rows = conn.execute(select(o).where(o.c.account_id > 0).order_by(o.c.event_id))
        return [OutboxEvent(r.event_id, r.account_id, r.account_seq, r.type, r.order_id,
                            r.ts_ns, r.payload) for r in rows]  # fmt: skip


def replay(events: list[OutboxEvent]) -> dict[int, AccountBook]:
    books: dict[int, AccountBook] = {}
    for event in events:
        book = books.setdefault(event.account_id, AccountBook(event.account_id))
        assert event.account_seq == book.last_seq + 1
        apply(book, event, payload_of(event))
        book.last_seq = event.account_seq
    return books


def test_book_when_a_simulated_day_is_replayed_then_it_equals_the_store(day: Engine) -> None:
    events = outbox(day)
    books = replay(events)
    stored = load_books(day)
    assert set(books) == set(stored) and len(books) == 6
    fills = sum(1 for e in events if '"exec_id"' in e.payload)
    financed = sum(1 for e in events if e.type == "position.financed")
    assert fills > 200 and financed > 0
    assert any(b.holdings for b in books.values())
    for account_id, book in books.items():
        assert book == stored[account_id], account_id


def test_load_books_when_a_partition_is_asked_then_only_its_accounts(day: Engine) -> None:
    books = load_books(day, partition=(1, 4))
    assert books and all(a % 4 == 1 for a in books)
    assert len(books) < len(load_books(day))
    one = min(books)
    assert load_books(day, [one, 999_999]) == {one: books[one]}


def _fill(body: dict[str, object]) -> OutboxEvent:
    return OutboxEvent(1, 1, 1, "order.filled", 1, 0, json.dumps(body))


BUY = {"exec_id": "x1", "symbol": "EUR/USD", "currency": "USD", "margin_held": 100,
       "margin_released": 0, "realized": 0, "commission": 5, "position": 100,
       "closed_lots": [], "opened_lot": {"lot_id": 7, "qty": 100, "price": 110000,
                                         "margin": 100}}  # fmt: skip


def test_apply_when_a_fill_opens_then_closes_then_cash_margin_and_lots_move() -> None:
    book = AccountBook(1, "USD", cash={"USD": 10_000})
    apply(book, _fill(BUY), BUY)
    assert book.cash == {"USD": 10_000 - 5 - 100} and book.margin == {"USD": 100}
    assert book.holdings["EUR/USD"].lots == {7: [100, 110000, 100]}
    assert book.holdings["EUR/USD"].cost == 100 * 110000
    sell = {**BUY, "exec_id": "x2", "margin_held": 0, "margin_released": 40, "realized": 250,
            "position": 60, "opened_lot": None,
            "closed_lots": [{"lot_id": 7, "qty": 40, "open_price": 110000, "realized": 250,
                             "margin_released": 40}]}  # fmt: skip
    del sell["opened_lot"]
    apply(book, _fill(sell), sell)
    assert book.cash == {"USD": 10_000 - 5 - 100 + 250 + 40 - 5}
    assert book.margin == {"USD": 60}
    assert book.holdings["EUR/USD"].lots == {7: [60, 110000, 60]}


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"margin_held": 1.5}, BadEvent),
        ({"margin_held": True}, BadEvent),
        ({"symbol": ""}, BadEvent),
        ({"closed_lots": "none"}, BadEvent),
        ({"position": 99}, OutOfStep),
        ({"closed_lots": [{"lot_id": 3, "qty": 5, "margin_released": 0}]}, OutOfStep),
    ],
)
def test_apply_when_a_fill_is_malformed_or_out_of_step_then_it_says_so(
    change: dict[str, object], error: type[Exception]
) -> None:
    book = AccountBook(1, "USD", cash={"USD": 10_000})
    before = replace(book, cash=dict(book.cash))
    body = {**BUY, **change}
    with pytest.raises(error):
        apply(book, _fill(body), body)
    if error is BadEvent:
        assert book == before


def test_apply_when_a_type_is_unknown_then_bad_event() -> None:
    event = OutboxEvent(1, 1, 1, "loyalty.points_awarded", None, 0, "{}")
    with pytest.raises(BadEvent, match="unknown event type"):
        apply(AccountBook(1, "USD"), event, {})
