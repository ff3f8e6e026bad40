"""Acceptance: the events alone rebuild each account's positions, open lots and margin.

A simulated day (``trading.sim.simulation``) opens, partially closes and flips positions
and crosses a Wednesday cut-off (financing, triple for FX). Its outbox is relayed, delivered
with redeliveries interleaved, deduped, and replayed by a consumer that reads nothing else;
what it rebuilds must equal the store (``lots``, the ledger's margin balances) and the read
side, on both stores.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from trading import ledger as L
from trading.bus.events import HOUSE, stream_name
from trading.catalogue import default_catalogue
from trading.events import HOUSE_ACCOUNT, EventDeduper, OutboxEvent, payload_of
from trading.oms.outbox import InMemoryPublisher, OutboxRelay
from trading.sim.simulation import run_simulation
from trading.store import schema as s
from trading.store.engine import migrate, open_engine
from trading.store.read_balances import account_snapshot, open_positions
from trading.store.read_financing import financing
from trading.store.verify import verify_audit, verify_ledger

# Wednesday 2026-01-07 21:58:30 UTC: the FX cut-off (17:00 New York) is 90 s away.
START_NS = 1_767_823_110 * 1_000_000_000
WED_FX_CUTOFF_NS = 1_767_823_200 * 1_000_000_000
PARTITIONS = 4


@dataclass
class Book:
    """What a consumer rebuilds of one account from its events."""

    lots: dict[str, dict[int, list[int]]] = field(default_factory=lambda: defaultdict(dict))
    margin_held: int = 0
    positions: dict[str, int] = field(default_factory=dict)  # the events' own `position`


def rebuild(events: list[OutboxEvent]) -> tuple[dict[int, Book], dict[str, int]]:
    """Replay fill events in order; returns the books and what was seen (for coverage)."""
    books: dict[int, Book] = defaultdict(Book)
    seen: dict[str, int] = defaultdict(int)
    for event in events:
        body = payload_of(event)
        if event.type not in ("order.filled", "order.partially_filled") or "exec_id" not in body:
            seen[event.type] += 1
            continue
        book = books[event.account_id]
        lots = book.lots[body["symbol"]]
        for c in body["closed_lots"]:
            lot = lots[c["lot_id"]]  # [qty, remaining, price, margin]
            assert lot[2] == c["open_price"] and (lot[1] > 0) == (c["qty"] > 0)
            lot[1] -= c["qty"]
            lot[3] -= c["margin_released"]
            if lot[1] == 0:
                assert lot[3] == 0
                del lots[c["lot_id"]]
            else:
                seen["partial_lot_close"] += 1
        opened = body.get("opened_lot")
        if opened is not None:
            lots[opened["lot_id"]] = [opened["qty"], opened["qty"], opened["price"],
                                      opened["margin"]]  # fmt: skip
            seen["flip" if body["closed_lots"] else "open"] += 1
        book.margin_held += body["margin_held"] - body["margin_released"]
        book.positions[body["symbol"]] = body["position"]
        seen["fill"] += 1
    return books, seen


def deliver(publisher: InMemoryPublisher, rng: random.Random) -> list[tuple[str, OutboxEvent]]:
    """Every stream's events with random stretches delivered again, streams interleaved."""
    streams = {stream_name(p): publisher.partition(p, PARTITIONS) for p in range(PARTITIONS)}
    streams[stream_name(HOUSE)] = publisher.house()
    queues: dict[str, list[OutboxEvent]] = {}
    for name, events in streams.items():
        out: list[OutboxEvent] = []
        for i, event in enumerate(events):
            out.append(event)
            if rng.random() < 0.05:  # a relay republishing a batch it did not mark
                out += events[max(0, i - rng.randint(0, 20)) : i + 1]
        queues[name] = out
    delivered: list[tuple[str, OutboxEvent]] = []
    while any(queues.values()):
        name = rng.choice([n for n, q in queues.items() if q])
        take = rng.randint(1, 30)
        delivered += [(name, e) for e in queues[name][:take]]
        del queues[name][:take]
    return delivered


def simulate(dsn: str) -> Engine:
    engine = open_engine(dsn)
    migrate(engine)
    report = run_simulation(engine, default_catalogue(), accounts=8, orders=700, seed=11,
                            start_ns=START_NS)  # fmt: skip
    assert report.rollovers >= 1 and report.last_ns > WED_FX_CUTOFF_NS
    return engine


def test_rebuild_when_simulated_day_then_events_alone_give_the_stores_lots_and_margin(
    store_dsn: str,
) -> None:
    engine = simulate(store_dsn)
    publisher = InMemoryPublisher()
    relay = OutboxRelay(engine, publisher, batch_size=97)
    while relay.relay_once():
        pass
    deduper = EventDeduper()
    accepted = [
        e for stream, e in deliver(publisher, random.Random(5)) if deduper.accept(e, stream)
    ]

    books, seen = rebuild(accepted)

    assert deduper.duplicates > 0 and deduper.gaps == 0
    assert sorted(e.event_id for e in accepted) == [e.event_id for e in publisher.events[:]]
    # The day did what the test is about: partial closes, flips, a rollover with financing.
    assert seen["fill"] > 100 and seen["partial_lot_close"] > 0 and seen["flip"] > 0
    assert seen["position.financed"] > 0 and seen["eod.marked"] > 0
    assert seen["rollover.completed"] >= 2
    catalogue = default_catalogue()
    with engine.connect() as conn:
        assert verify_ledger(conn) == [] and verify_audit(conn) == []
        stored: dict[int, dict[str, dict[int, list[int]]]] = defaultdict(lambda: defaultdict(dict))
        for r in conn.execute(select(s.lots).where(s.lots.c.closed_ns.is_(None))):
            stored[r.account_id][r.symbol][r.lot_id] = [r.qty, r.remaining, r.price, r.margin]
        account_ids = [r[0] for r in conn.execute(select(s.accounts.c.account_id))]
        for a in account_ids:
            book = books[a]
            rebuilt = {sym: lots for sym, lots in book.lots.items() if lots}
            assert rebuilt == stored[a], a
            assert book.margin_held == sum(lot[3] for lots in rebuilt.values()
                                           for lot in lots.values())  # fmt: skip
            assert {k: v for k, v in book.positions.items() if v} == {
                sym: sum(lot[1] for lot in lots.values()) for sym, lots in rebuilt.items()
            }
            margin = conn.execute(
                select(s.balances.c.amount)
                .join(
                    s.ledger_accounts,
                    s.ledger_accounts.c.ledger_account_id == s.balances.c.ledger_account_id,
                )
                .where(s.ledger_accounts.c.code == L.client_margin(a, "USD"))
            ).scalar_one()
            assert -margin == book.margin_held, a
            snap = account_snapshot(conn, catalogue, a, lambda _sym: None)
            assert snap.margin_held == book.margin_held
            read = {p.symbol: {lot.lot_id: [lot.qty, lot.remaining, lot.price, lot.margin]
                               for lot in p.lots} for p in open_positions(conn, a)}  # fmt: skip
            assert read == rebuilt
            # Financing as the events tell it is what the read side lists.
            told = sorted(
                (b["symbol"], b["trade_date"], b["amount"], b["nights"])
                for e in accepted if e.account_id == a and e.type == "position.financed"
                for b in [payload_of(e)]
            )  # fmt: skip
            listed = sorted((f.symbol, f.trade_date.isoformat(), f.amount, f.nights)
                            for f in financing(conn, a))  # fmt: skip
            assert told == listed
    fx = [payload_of(e) for e in accepted if e.type == "position.financed"]
    assert any(b["nights"] == 3 and b["cutoff_ns"] == WED_FX_CUTOFF_NS for b in fx)
    house = [e for e in accepted if e.account_id == HOUSE_ACCOUNT]
    assert [e.account_seq for e in house] == list(range(1, len(house) + 1))
    assert all(json.loads(e.payload)["account_id"] == 0 for e in house)
