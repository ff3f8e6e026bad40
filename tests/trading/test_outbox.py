"""Specification of trading.oms.outbox: the relay publishes every OMS event at least once, in
per-account order, marks it published, and a consumer's dedupe makes the effect exactly once.

The events come from real OMS activity (``OutboxDesk.scenario``) on SQLite and PostgreSQL;
the bus is the in-memory twin here (Redis in tests/trading/bus/test_events.py).
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tests.trading.builders import destination_of
from trading.catalogue import default_catalogue
from trading.commands import (
    AmendOrder,
    CancelOrder,
    ClosePosition,
    Command,
    DecideWithdrawal,
    Deposit,
    Done,
    ExpireDue,
    HaltSymbol,
    HoldWithdrawal,
    OpenAccount,
    OrderAck,
    QuoteUpdate,
    ReleaseWithdrawal,
    RequestWithdrawal,
    Result,
    SetAccountState,
    SetLimits,
    SubmitOrder,
)
from trading.config import OMSConfig
from trading.events import EventDeduper, OutboxEvent, partition_of
from trading.funding import DepositMethod
from trading.oms.engine import OMS
from trading.oms.outbox import InMemoryPublisher, OutboxRelay, PublishError
from trading.orders import OrderStatus
from trading.quotes import InMemoryQuoteBook, Quote
from trading.risk import AccountState
from trading.store import schema as s
from trading.store.engine import migrate, open_engine
from trading.validate import order_request
from trading.venues.bbook import BBookVenue

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"
T0_NS = 1_767_600_000_000_000_000  # Monday 2026-01-05 08:00 UTC: the FX session is open
MS = 1_000_000
ACCOUNTS = (1, 2, 3, 4, 5)


# --- builders -------------------------------------------------------------------------------


class OutboxDesk:
    """An OMS on a fresh store with a B-book venue and a test clock, and a scripted day."""

    def __init__(self, dsn: str) -> None:
        self.engine = open_engine(dsn)
        migrate(self.engine)
        self.catalogue = default_catalogue()
        self.book = InMemoryQuoteBook()
        self.now_ns = T0_NS
        cfg = OMSConfig()
        venue = BBookVenue(self.catalogue, self.book, cfg.fees, cfg.venue, self.clock)
        self.oms = OMS(self.engine, self.catalogue, self.book, venue, cfg, self.clock)
        self.eur = self.catalogue.get("EUR/USD")

    def clock(self) -> int:
        return self.now_ns

    def quote(self, bid: str, ask: str, size_lots: str | None = None) -> QuoteUpdate:
        self.now_ns += MS
        size = None if size_lots is None else self.eur.qty_to_int(Decimal(size_lots))
        return QuoteUpdate(
            Quote("EUR/USD", self.eur.price_to_int(Decimal(bid)),
                  self.eur.price_to_int(Decimal(ask)), self.now_ns, size, size)
        )  # fmt: skip

    def order(self, account_id: int, client_order_id: str, **fields: Any) -> SubmitOrder:
        return SubmitOrder(
            order_request(self.catalogue, account_id=account_id,
                          client_order_id=client_order_id, symbol="EUR/USD", **fields)
        )  # fmt: skip

    def execute(self, commands: Sequence[Command]) -> list[Result]:
        self.now_ns += MS
        results = self.oms.execute(commands)
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, errors
        return results

    def open_accounts(self, accounts: Sequence[int] = ACCOUNTS) -> None:
        cmds: list[Command] = [self.quote("1.10000", "1.10010")]
        for a in accounts:
            ccy = "USD" if a % 2 else "EUR"
            cmds += [OpenAccount(a, ccy), Deposit(a, ccy, 5_000_000, f"dep-{a}"),
                     destination_of(a, ccy)]  # fmt: skip
        results = self.execute(cmds)
        self.destinations = {
            a: int(r.ref.split(":")[1])
            for a, r in zip(accounts, results[3::3], strict=True)
            if isinstance(r, Done)
        }

    def scenario(self, accounts: Sequence[int] = ACCOUNTS) -> None:
        """Every kind of event the OMS emits, interleaved across accounts and batches."""
        self.open_accounts(accounts)
        expire_ns = self.now_ns + 3_600 * 10**9
        cmds: list[Command] = []
        for a in accounts:
            cmds += [
                self.order(a, f"mkt-{a}", side="buy", qty="1"),
                self.order(a, f"lmt-{a}", side="buy", type="limit", qty="0.5", price="1.09000"),
                self.order(a, f"stp-{a}", side="sell", type="stop", qty="0.1",
                           trigger_price="1.09500"),
                self.order(a, f"gtd-{a}", side="buy", type="limit", qty="0.1", price="1.08000",
                           tif="gtd", expire_ns=expire_ns),
                self.order(a, f"big-{a}", side="buy", qty="30"),  # denied: max order size
                self.order(a, f"slip-{a}", side="buy", qty="0.1", reference_price="1.09000",
                           max_slippage_ticks=1),  # rejected by the venue: slippage
            ]  # fmt: skip
        acks = {r.client_order_id: r for r in self.execute(cmds) if isinstance(r, OrderAck)}
        cmds = []
        for a in accounts:
            limit_id = acks[f"lmt-{a}"].order_id
            ccy = "USD" if a % 2 else "EUR"
            cmds += [
                AmendOrder(a, limit_id, price=self.eur.price_to_int(Decimal("1.09100"))),
                CancelOrder(a, limit_id),
                RequestWithdrawal(a, ccy, 10_000, self.destinations[a]),
            ]
        done = [r for r in self.execute(cmds) if isinstance(r, Done)]
        withdrawal_ids = [int(d.ref.split(":")[1]) for d in done]
        cmds = [DecideWithdrawal(w, approve=w % 2 == 1, reason="" if w % 2 else "kyc")
                for w in withdrawal_ids]  # fmt: skip
        # A thin quote fills the triggered stops in two steps.
        cmds += [self.quote("1.09400", "1.09410", "0.05"), self.quote("1.09400", "1.09410")]
        self.execute(cmds)
        self.now_ns = expire_ns
        cmds = [ExpireDue(self.now_ns), self.quote("1.09400", "1.09410")]
        cmds += [self.order(a, f"close-{a}", side="sell", qty="1") for a in accounts]
        self.execute(cmds)

    def domain_scenario(self) -> None:
        """The events of clients, limits, states, funding and the house, after ``scenario``:
        a deposit by provider reference, a withdrawal held and released, limits set, an
        account halted and closed out by the house, a symbol halted and resumed."""
        wid = self.execute([RequestWithdrawal(1, "USD", 5_000, self.destinations[1])])[0]
        assert isinstance(wid, Done)
        w = int(wid.ref.split(":")[1])
        self.execute([
            Deposit(1, "USD", 20_000, "psp-1", DepositMethod.CARD, "tok_visa_4242", "stripe",
                    "pi_1"),
            HoldWithdrawal(w, "velocity", actor="pipelines.fraud"),
            ReleaseWithdrawal(w, "cleared", actor="risk-desk"),
            SetLimits(1, leverage=10, max_order_lots=Decimal(5), actor="risk-desk",
                      reason="client request"),
            self.order(1, "dom-1", side="buy", qty="1"),
            SetAccountState(1, AccountState.HALTED, actor="risk-desk", reason="margin call"),
            ClosePosition(1, "EUR/USD", None, "stop-out", actor="pipelines.positions"),
            HaltSymbol("EUR/USD", True, actor="risk-desk", reason="news"),
            HaltSymbol("EUR/USD", False, actor="risk-desk", reason="news over"),
        ])  # fmt: skip

    def trade_round(self, i: int, accounts: Sequence[int] = ACCOUNTS) -> None:
        side = "buy" if i % 2 == 0 else "sell"
        self.execute([self.order(a, f"r{i}-{a}", side=side, qty="0.1") for a in accounts])


@pytest.fixture
def desk(store_dsn: str) -> OutboxDesk:
    return OutboxDesk(store_dsn)


def outbox_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(s.outbox).order_by(s.outbox.c.event_id)))


def as_event(row: Any) -> OutboxEvent:
    return OutboxEvent(row.event_id, row.account_id, row.account_seq, row.type, row.order_id,
                       row.ts_ns, row.payload)  # fmt: skip


def drain(relay: OutboxRelay, passes_max: int = 1_000) -> int:
    """Relay until nothing is left; bounded so a relay that never finishes fails the test."""
    total = 0
    for _ in range(passes_max):
        n = relay.relay_once()
        if n == 0:
            return total
        total += n
    raise AssertionError(f"relay still busy after {passes_max} passes")


def by_account(events: Sequence[OutboxEvent]) -> dict[int, list[int]]:
    seqs: dict[int, list[int]] = defaultdict(list)
    for e in events:
        seqs[e.account_id].append(e.account_seq)
    return dict(seqs)


class CrashAfterPublish(OutboxRelay):
    """A relay whose process 'dies' after the bus took a batch and before it is marked."""

    crashes_left = 1

    def mark_published(self, event_ids: Sequence[int]) -> int:
        if self.crashes_left:
            self.crashes_left -= 1
            raise RuntimeError("crash between publish and mark")
        return super().mark_published(event_ids)


# --- the outbox the OMS writes ----------------------------------------------------------------


def test_outbox_when_oms_activity_then_account_sequences_are_gap_free_from_one(
    desk: OutboxDesk,
) -> None:
    desk.scenario()

    rows = outbox_rows(desk.engine)

    seqs = by_account([as_event(r) for r in rows])
    assert sorted(seqs) == list(ACCOUNTS)
    for account_id, account_seqs in seqs.items():
        assert account_seqs == list(range(1, len(account_seqs) + 1)), account_id
    assert [r.event_id for r in rows] == list(range(1, len(rows) + 1))
    assert all(r.published_ns is None for r in rows)


def test_outbox_when_oms_activity_then_payload_repeats_the_envelope(desk: OutboxDesk) -> None:
    desk.scenario()

    for row in outbox_rows(desk.engine):
        body = json.loads(row.payload)
        assert (body["event_id"], body["type"], body["account_id"], body["account_seq"],
                body["ts_ns"]) == (row.event_id, row.type, row.account_id, row.account_seq,
                                   row.ts_ns)  # fmt: skip
        assert body.get("order_id") == row.order_id


# --- relaying -------------------------------------------------------------------------------


def test_relay_when_oms_activity_then_every_event_published_once_in_order_and_marked(
    desk: OutboxDesk,
) -> None:
    desk.scenario()
    publisher = InMemoryPublisher()
    relay = OutboxRelay(desk.engine, publisher, batch_size=7)
    total = len(outbox_rows(desk.engine))

    published = drain(relay)

    assert published == total
    ids = [e.event_id for e in publisher.events]
    assert ids == list(range(1, total + 1))  # each once, in event_id order
    assert all(len(batch) <= 7 for batch in publisher.batches)
    for account_id, seqs in by_account(publisher.events).items():
        assert seqs == list(range(1, len(seqs) + 1)), account_id
    rows = outbox_rows(desk.engine)
    assert [as_event(r) for r in rows] == publisher.events
    assert all(r.published_ns is not None for r in rows)
    assert relay.lag() == 0
    assert relay.relay_once() == 0


def test_relay_when_one_pass_then_one_batch_published_and_lag_counts_the_rest(
    desk: OutboxDesk,
) -> None:
    desk.scenario()
    publisher = InMemoryPublisher()
    relay = OutboxRelay(desk.engine, publisher, batch_size=10)
    total = relay.lag()

    n = relay.relay_once()

    assert n == 10
    assert [e.event_id for e in publisher.events] == list(range(1, 11))
    assert relay.lag() == total - 10
    marked = [r.event_id for r in outbox_rows(desk.engine) if r.published_ns is not None]
    assert marked == list(range(1, 11))


def test_relay_when_publisher_fails_then_nothing_marked_and_a_retry_publishes_all(
    desk: OutboxDesk,
) -> None:
    desk.scenario()
    publisher = InMemoryPublisher()
    relay = OutboxRelay(desk.engine, publisher)
    total = relay.lag()
    publisher.fail_next()

    with pytest.raises(PublishError):
        relay.relay_once()

    assert publisher.events == []
    assert relay.lag() == total
    assert all(r.published_ns is None for r in outbox_rows(desk.engine))

    assert drain(relay) == total
    assert [e.event_id for e in publisher.events] == list(range(1, total + 1))
    assert relay.lag() == 0


def test_relay_when_crash_between_publish_and_mark_then_republished_and_deduped_exactly_once(
    desk: OutboxDesk,
) -> None:
    desk.scenario()
    publisher = InMemoryPublisher()
    relay = CrashAfterPublish(desk.engine, publisher, batch_size=25)
    expected = [as_event(r) for r in outbox_rows(desk.engine)]

    with pytest.raises(RuntimeError, match="crash between publish and mark"):
        relay.relay_once()
    assert relay.lag() == len(expected)  # published, but not marked
    drain(relay)

    assert len(publisher.events) == len(expected) + 25  # the first batch went out twice
    assert publisher.events[:25] == publisher.events[25:50]
    deduper = EventDeduper()
    delivered = deduper.filter(publisher.events)
    assert delivered == expected
    assert deduper.duplicates == 25
    assert deduper.gaps == 0
    assert relay.lag() == 0


def test_relay_when_oms_writes_concurrently_then_every_event_published_once_in_account_order(
    store_dsn: str,
) -> None:
    desk = OutboxDesk(store_dsn)
    desk.open_accounts()
    relay_engine = open_engine(store_dsn)  # the relay's own connections, as in its own process
    publisher = InMemoryPublisher()
    relay = OutboxRelay(relay_engine, publisher, batch_size=16)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop, 0.001), daemon=True)
    thread.start()
    try:
        for i in range(40):
            desk.trade_round(i)
    finally:
        stop.set()
        thread.join()
    drain(relay)

    expected = [as_event(r) for r in outbox_rows(desk.engine)]
    # Opened, deposited and a destination added, then three events a round per account.
    assert len(expected) == 3 * len(ACCOUNTS) + 40 * 3 * len(ACCOUNTS)
    assert sorted(publisher.events, key=lambda e: e.event_id) == expected
    assert len({e.event_id for e in publisher.events}) == len(publisher.events)
    for account_id, seqs in by_account(publisher.events).items():
        assert seqs == list(range(1, len(seqs) + 1)), account_id
    assert relay.lag() == 0
    relay_engine.dispose()


def test_relay_when_partitions_split_between_relays_then_each_publishes_only_its_accounts(
    desk: OutboxDesk,
) -> None:
    desk.scenario()
    even, odd = InMemoryPublisher(), InMemoryPublisher()
    relays = [
        OutboxRelay(desk.engine, even, batch_size=9, partitions=2, owned={0}),
        OutboxRelay(desk.engine, odd, batch_size=9, partitions=2, owned={1}),
    ]
    total = len(outbox_rows(desk.engine))
    even_total = relays[0].lag()

    drain(relays[0])

    assert relays[0].lag() == 0
    assert relays[1].lag() == total - even_total
    drain(relays[1])
    assert {e.account_id % 2 for e in even.events} == {0}
    assert {e.account_id % 2 for e in odd.events} == {1}
    assert sorted(e.event_id for e in even.events + odd.events) == list(range(1, total + 1))
    assert all(r.published_ns is not None for r in outbox_rows(desk.engine))


def test_relay_when_restarted_then_resumes_where_the_marks_stop(desk: OutboxDesk) -> None:
    desk.scenario()
    first = InMemoryPublisher()
    OutboxRelay(desk.engine, first, batch_size=10).relay_once()
    desk.oms.recover()  # an OMS restart changes nothing of the outbox
    desk.trade_round(0)
    second = InMemoryPublisher()

    drain(OutboxRelay(desk.engine, second, batch_size=10))

    ids = [e.event_id for e in first.events + second.events]
    assert ids == list(range(1, len(outbox_rows(desk.engine)) + 1))


class StopWhenAllPublished(InMemoryPublisher):
    """Ends ``relay.run`` once it has seen ``total`` events: the loop runs in the test's thread."""

    def __init__(self, total: int, stop: threading.Event) -> None:
        super().__init__()
        self.total, self.stop = total, stop

    def publish(self, events: Sequence[OutboxEvent]) -> None:
        super().publish(events)
        if len(self.events) >= self.total:
            self.stop.set()


def test_relay_run_when_bus_fails_for_a_while_then_retries_and_publishes_everything_once(
    desk: OutboxDesk,
) -> None:
    desk.scenario()
    stop = threading.Event()
    total = len(outbox_rows(desk.engine))
    publisher = StopWhenAllPublished(total, stop)
    publisher.fail_next(3)
    relay = OutboxRelay(desk.engine, publisher, batch_size=20)

    published = relay.run(stop, idle_sleep_s=0.001)

    assert published == total
    assert [e.event_id for e in publisher.events] == list(range(1, total + 1))
    assert relay.lag() == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": 0}, {"batch_size": 10_001}, {"partitions": 0},
     {"partitions": 2, "owned": {2}}, {"partitions": 2, "owned": set()}],
)  # fmt: skip
def test_relay_when_bounds_broken_then_value_error(tmp_path: Path, kwargs: Any) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}/bourse.db")
    with pytest.raises(ValueError):
        OutboxRelay(engine, InMemoryPublisher(), **kwargs)


# --- the in-memory twin and partitioning ------------------------------------------------------


def _event(account_id: int, seq: int, event_id: int) -> OutboxEvent:
    return OutboxEvent(event_id, account_id, seq, "cash.deposited", None, T0_NS, "{}")


def test_in_memory_publisher_when_told_to_fail_then_records_nothing_until_the_failures_pass() -> (
    None
):
    publisher = InMemoryPublisher()
    publisher.fail_next(2)
    batch = [_event(1, 1, 1), _event(2, 1, 2)]

    for _ in range(2):
        with pytest.raises(PublishError):
            publisher.publish(batch)
    assert publisher.events == []
    publisher.publish(batch)

    assert publisher.events == batch
    assert publisher.partition(0, 2) == [batch[1]]
    assert publisher.partition(1, 2) == [batch[0]]


def test_partition_of_when_account_id_then_stable_modulo() -> None:
    assert [partition_of(a, 4) for a in (0, 1, 4, 5, 7, 1_000_003)] == [0, 1, 0, 1, 3, 3]
    with pytest.raises(ValueError):
        partition_of(1, 0)


# --- the documented schema -------------------------------------------------------------------


def documented_fields() -> dict[str, set[str]]:
    """Fields documented per event type in docs/events.md ("*": the envelope)."""
    documented: dict[str, set[str]] = defaultdict(set)
    current: list[str] = []
    in_field_table = False
    for line in DOCS.read_text().splitlines():
        if line.startswith(("## ", "### ")):
            current = ["*"] if "Envelope" in line else re.findall(r"`([a-z_]+\.[a-z_*]+)`", line)
            for name in current:
                documented.setdefault(name, set())  # a type may have no fields of its own
        # Only tables headed "| field |" list fields (not, say, the denial codes).
        in_field_table = line.startswith("| field |") or (in_field_table and line.startswith("|"))
        if in_field_table and (m := re.match(r"\|\s*`([a-z_]+)`\s*\|", line)):
            for name in current:
                documented[name].add(m.group(1))
    return dict(documented)


def test_events_doc_when_oms_emits_then_every_type_and_field_is_documented(
    desk: OutboxDesk,
) -> None:
    desk.scenario()
    desk.domain_scenario()
    documented = documented_fields()

    seen_types = set()
    for row in outbox_rows(desk.engine):
        seen_types.add(row.type)
        family = row.type.split(".")[0] + ".*"
        assert row.type in documented, f"{row.type} is not in docs/events.md"
        allowed = documented["*"] | documented[row.type] | documented.get(family, set())
        missing = set(json.loads(row.payload)) - allowed
        assert not missing, f"{row.type}: fields {sorted(missing)} not in docs/events.md"

    # The scenario drives an order through every status the OMS can emit.
    assert {f"order.{st.value}" for st in OrderStatus} - seen_types == {
        "order.initialized"  # never emitted: an order is born submitted or denied
    }
    for st in OrderStatus:
        if st is not OrderStatus.INITIALIZED:
            assert f"order.{st.value}" in documented
    for kind in ("account.opened", "cash.deposited", "cash.withdrawal_requested",
                 "cash.withdrawal_approved", "cash.withdrawal_rejected",
                 "cash.destination_added", "cash.withdrawal_held", "cash.withdrawal_released",
                 "account.limits_set", "account.state_changed", "symbol.halted",
                 "symbol.resumed"):  # fmt: skip
        assert kind in documented and kind in seen_types
