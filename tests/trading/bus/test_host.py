"""The OMS host serving the command bus on a real Redis, in a thread of the test (the host
process itself is tested in test_host_process.py): every command type, bad entries, redelivery
and the quote stream."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from tests.trading.builders import QUOTES, FakeClock, make_engine, store_snapshot
from tests.trading.bus.builders import run_every_type
from trading.bus.client import CommandClient
from trading.bus.commands import COMMANDS_STREAM, DEAD_LETTERS, GROUP, REPLY_PREFIX
from trading.bus.follow import FollowedQuoteBook
from trading.bus.wire import Reply, entry_fields
from trading.catalogue import default_catalogue
from trading.commands import Deposit, OpenAccount
from trading.config import OMSConfig
from trading.oms.engine import OMS
from trading.oms.host import OMSHost
from trading.quotes import QUOTES_STREAM, Quote, quote_key, quote_to_fields
from trading.store import schema as s
from trading.validate import order_request
from trading.venues.bbook import BBookVenue


@dataclass
class Served:
    host: OMSHost
    oms: OMS
    client: CommandClient
    redis: redis.Redis
    clock: FakeClock
    stop: threading.Event
    thread: threading.Thread

    def quote(self, symbol: str, bid: str, ask: str, *, stream: bool = True) -> None:
        inst = self.oms.catalogue.get(symbol)
        q = Quote(symbol, inst.price_to_int(Decimal(bid)), inst.price_to_int(Decimal(ask)),
                  self.clock())  # fmt: skip
        fields: Any = quote_to_fields(q, source="test")
        self.redis.hset(quote_key(symbol), mapping=fields)
        if stream:
            self.redis.xadd(QUOTES_STREAM, fields)

    def stopped(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def serve(dsn: str, redis_url: str, clock: FakeClock | None = None) -> Served:
    clock = clock or FakeClock()
    r = redis.Redis.from_url(redis_url)
    config = OMSConfig()
    catalogue = default_catalogue()
    book = FollowedQuoteBook(r, max_age_ns=config.venue.max_quote_age_ms * 10**6, clock=clock)
    venue = BBookVenue(catalogue, book, config.fees, config.venue, clock)
    engine = make_engine(dsn)
    oms = OMS(engine, catalogue, book, venue, config, clock)
    host = OMSHost(oms, r, book=book, expire_every_s=0.2)
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=host.run, args=(stop, ready.set), daemon=True)
    served = Served(host, oms, CommandClient(r, "tester"), r, clock, stop, thread)
    for symbol, (bid, ask) in QUOTES.items():
        served.quote(symbol, bid, ask, stream=False)
    thread.start()
    assert ready.wait(30)
    return served


@pytest.fixture
def served(store_dsn: str, redis_url: str) -> Iterator[Served]:
    sv = serve(store_dsn, redis_url)
    yield sv
    sv.client.close()
    sv.stopped()


def _pending(r: redis.Redis) -> int:
    return int(r.xpending(COMMANDS_STREAM, GROUP)["pending"])


def test_every_command_type_when_sent_through_redis_then_answered_after_commit(
    served: Served,
) -> None:
    # An amend is written in its order's units: the client is told the order's symbol.
    with CommandClient(served.redis, "tester", symbol_of=lambda _: "XAU/USD") as client:
        replies = run_every_type(lambda c: client.send(c, 30), served.oms.catalogue, 70, "XAU/USD")
    assert replies["SubmitOrder"].unwrap()["symbol"] == "XAU/USD"
    with served.oms.engine.connect() as conn:
        logged = conn.execute(select(func.count()).select_from(s.command_log)).scalar_one()
    assert logged == len(replies)
    assert _pending(served.redis) == 0


def _raw(r: redis.Redis, fields: dict[str, str], reply_key: str) -> Reply:
    r.xadd(COMMANDS_STREAM, fields)  # type: ignore[arg-type]
    got: Any = r.blpop([reply_key], timeout=10)
    assert got is not None, "no reply"
    return Reply.from_json(got[1].decode())


def test_bad_entries_when_sent_raw_then_each_answered_with_its_code_and_the_stream_moves_on(
    served: Served,
) -> None:
    before = store_snapshot(served.oms.engine)
    reply_to = REPLY_PREFIX + "raw"
    good = entry_fields("ok-1", "OpenAccount", {"account_id": 5}, reply_to, "tester")
    cases = [
        ("malformed_command", {**good, "command_id": "b1", "body": "{oops"}),
        ("unknown_command_type", {**good, "command_id": "b2", "type": "DropTables"}),
        ("missing_field", {**good, "command_id": "b3", "body": "{}"}),
        (
            "malformed_command",
            {**good, "command_id": "b4", "body": json.dumps({"x": "y" * 70_000})},
        ),
        ("malformed_command", {**good, "command_id": "b5", "actor": "a" * 200}),
        (
            "invalid_identifier",
            {**good, "command_id": "b6", "body": json.dumps({"account_id": 2**70})},
        ),
    ]
    for code, fields in cases:
        assert _raw(served.redis, fields, reply_to).code == code, fields
    # No reply address: nothing to answer, but acknowledged and dead-lettered.
    served.redis.xadd(COMMANDS_STREAM, {"command_id": "b7", "type": "OpenAccount"})
    assert store_snapshot(served.oms.engine) == before
    reply = _raw(served.redis, good, reply_to)
    assert reply.ok, reply
    deadline = time.monotonic() + 10
    while _pending(served.redis) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _pending(served.redis) == 0
    dead = served.redis.xrange(DEAD_LETTERS)
    assert len(dead) == 6  # the five wire errors and the entry without an address
    assert all(b"dead_reason" in fields for _, fields in dead)


def test_redelivery_when_an_entry_is_sent_twice_then_one_effect_and_the_same_reply(
    served: Served,
) -> None:
    reply_to = REPLY_PREFIX + "twice"
    fields = entry_fields("dep-1", "OpenAccount", {"account_id": 8}, reply_to, "tester")
    first = _raw(served.redis, fields, reply_to)
    second = _raw(served.redis, fields, reply_to)
    assert first.ok and first.text == second.text
    other = _raw(served.redis, {**fields, "body": json.dumps({"account_id": 9})}, reply_to)
    assert other.code == "duplicate_command_id"
    with served.oms.engine.connect() as conn:
        ids = list(conn.execute(select(s.accounts.c.account_id)))
    assert [r[0] for r in ids] == [8]


def test_host_when_entries_were_left_pending_by_a_dead_host_then_it_claims_and_answers_them(
    store_dsn: str, redis_url: str
) -> None:
    r = redis.Redis.from_url(redis_url)
    r.xgroup_create(COMMANDS_STREAM, GROUP, id="0", mkstream=True)
    reply_to = REPLY_PREFIX + "orphan"
    r.xadd(COMMANDS_STREAM, entry_fields("o-1", "OpenAccount", {"account_id": 3}, reply_to, "t"))  # type: ignore[arg-type]
    # A host that read the entry and died before answering it.
    assert r.xreadgroup(GROUP, "dead-host", {COMMANDS_STREAM: ">"}, count=10)
    assert _pending(r) == 1
    sv = serve(store_dsn, redis_url)
    try:
        got: Any = r.blpop([reply_to], timeout=10)
        assert got is not None and Reply.from_json(got[1].decode()).ok
        deadline = time.monotonic() + 10
        while _pending(r) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _pending(r) == 0
    finally:
        sv.client.close()
        sv.stopped()


def test_quote_stream_when_the_price_reaches_a_resting_limit_then_it_fills(
    served: Served,
) -> None:
    c = served.client
    assert c.send(OpenAccount(1), 30).ok
    assert c.send(Deposit(1, "USD", 10_000_000, "d1"), 30).ok
    request = order_request(
        served.oms.catalogue, account_id=1, client_order_id="buy-low", symbol="EUR/USD",
        side="buy", type="limit", qty="1", price="1.09000",
    )  # fmt: skip
    from trading.commands import SubmitOrder

    ack = c.send(SubmitOrder(request), 30).unwrap()
    assert ack["status"] == "accepted"
    served.clock.advance(1_000_000_000)
    served.quote("EUR/USD", "1.08980", "1.08990")
    deadline = time.monotonic() + 15
    status = ""
    while time.monotonic() < deadline:
        with served.oms.engine.connect() as conn:
            status = conn.execute(
                select(s.orders.c.status).where(s.orders.c.order_id == ack["order_id"])
            ).scalar_one()
        if status == "filled":
            break
        time.sleep(0.05)
    assert status == "filled"


NS = 1_000_000_000
MON_22 = 1_767_650_400 * NS  # Monday 2026-01-05 22:00 UTC: 17:00 New York, the FX cut-off


def test_host_timer_when_the_clock_crosses_the_fx_cutoff_then_marks_and_financing_are_posted(
    served: Served,
) -> None:
    c = served.client
    assert c.send(OpenAccount(1), 30).ok
    assert c.send(Deposit(1, "USD", 10_000_000, "d1"), 30).ok
    request = order_request(served.oms.catalogue, account_id=1, client_order_id="long",
                            symbol="EUR/USD", side="buy", qty="1")  # fmt: skip
    from trading.commands import SubmitOrder

    assert c.send(SubmitOrder(request), 30).unwrap()["status"] == "filled"
    served.clock.now_ns = MON_22 - NS
    served.quote("EUR/USD", "1.10100", "1.10110")
    assert _wait_for(served, lambda conn: (_mark_of(conn, "EUR/USD") or 0) < MON_22)  # not due
    served.clock.now_ns = MON_22 + NS  # the host's timer rolls at the OMS's clock

    def rolled(conn: Any) -> bool:
        return (
            _mark_of(conn, "EUR/USD") == MON_22
            and conn.execute(
                select(func.count()).select_from(s.financing).where(s.financing.c.account_id == 1)
            ).scalar_one()
            == 1
        )

    assert _wait_for(served, rolled)
    with served.oms.engine.connect() as conn:
        audit = conn.execute(
            select(s.audit_log.c.actor).where(s.audit_log.c.action == "rollover")
        ).all()
        eur = conn.execute(
            select(s.financing.c.symbol, s.financing.c.mark).where(s.financing.c.account_id == 1)
        ).one()
    assert audit and all(a.actor == "oms" for a in audit)  # the host's own, not a client's
    inst = served.oms.catalogue.get("EUR/USD")
    assert eur == ("EUR/USD", inst.price_to_int(Decimal("1.10100")))


def _mark_of(conn: Any, symbol: str) -> int | None:
    m = s.eod_marks.c
    return conn.execute(select(func.max(m.cutoff_ns)).where(m.symbol == symbol)).scalar_one()  # type: ignore[no-any-return]


def _wait_for(served: Served, check: Any, timeout_s: float = 10.0) -> bool:
    """``check(conn)`` true within the timeout, the host's timer ticking meanwhile."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.3)  # over a tick of the host's timer (0.2 s)
        with served.oms.engine.connect() as conn:
            if check(conn):
                return True
    return False
