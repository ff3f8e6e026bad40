"""A command the store cannot hold fails alone: every other command of its group commit
(and, through the service, of the batches prepared after it) is stored and answered."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest
from sqlalchemy import func, select

from tests.trading.builders import Rig, make_rig
from trading import ledger as L
from trading.commands import Command, Deposit, OrderAck, QuoteUpdate, Result
from trading.errors import StoreError
from trading.oms.service import OMSService
from trading.orders import OrderStatus
from trading.store import schema as s
from trading.store.verify import verify_audit, verify_ledger
from trading.venues.base import ExecKind, ExecutionReport

# Passes the OMS's own checks (a positive integer) but no BIGINT column holds it.
POISON = 10**25


@pytest.fixture
def rig(store_dsn: str) -> Rig:
    r = make_rig(store_dsn)
    r.open_accounts(1, 2, 3, 4)
    return r


def _count(rig: Rig, table: object) -> int:
    with rig.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _assert_stored_honestly(rig: Rig, results: list[Result], poisoned: set[int]) -> None:
    for i, r in enumerate(results):
        if i in poisoned:
            assert isinstance(r, StoreError), r
        else:
            assert isinstance(r, OrderAck) and r.status is OrderStatus.FILLED, r
    assert _count(rig, s.orders) == len(results) - len(poisoned)
    # The poisoned deposit left no trace: the seed deposits are the only ones.
    assert (
        _count(rig, s.ledger_txns.select().where(s.ledger_txns.c.kind == "deposit").subquery()) == 4
    )
    with rig.engine.connect() as conn:
        assert verify_ledger(conn) == [] and verify_audit(conn) == []


def _batch(rig: Rig, n: int, poison_at: set[int]) -> list[Command]:
    cmds: list[Command] = []
    for i in range(n):
        if i in poison_at:
            cmds.append(Deposit(1 + i % 4, "USD", POISON, f"poison-{i}"))
        else:
            side = "buy" if i % 3 else "sell"
            cmds.append(rig.submit(1 + i % 4, f"h{i}", side=side, qty="0.1"))
    return cmds


def test_execute_when_one_command_cannot_be_stored_then_only_it_fails(rig: Rig) -> None:
    cash = rig.oms.cash_available(1)
    results = rig.oms.execute(_batch(rig, 40, {17}))

    _assert_stored_honestly(rig, results, {17})
    assert rig.oms.cash_available(2) < cash  # account 2's orders paid commission


def test_execute_when_two_commands_cannot_be_stored_then_both_fail_alone(rig: Rig) -> None:
    results = rig.oms.execute(_batch(rig, 33, {0, 32}))

    _assert_stored_honestly(rig, results, {0, 32})
    # Memory and store agree after the isolation: the next batch runs on the stored state.
    assert isinstance(rig.oms.execute([rig.submit(1, "after", qty="0.1")])[0], OrderAck)


@pytest.mark.parametrize("pipelined", [True, False])
def test_service_when_a_batch_holds_a_poisoned_command_then_every_honest_order_fills(
    rig: Rig, pipelined: bool
) -> None:
    cmds = _batch(rig, 200, {57})
    with OMSService(rig.oms, max_batch=40, pipelined=pipelined) as svc:
        futures: list[Future[Result]] = [svc.submit(c) for c in cmds]
        results = [f.result(timeout=60) for f in futures]

    _assert_stored_honestly(rig, results, {57})
    assert svc.batches >= 5


def test_service_when_a_commit_fails_once_then_its_batch_and_the_next_run_again(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_commit = rig.oms.commit
    calls = {"n": 0}
    gate = threading.Event()

    def flaky_commit(prepared: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            gate.wait(10)  # let the writer prepare the next batch on top of this one
            raise RuntimeError("disk full")
        real_commit(prepared)  # type: ignore[arg-type]

    monkeypatch.setattr(rig.oms, "commit", flaky_commit)
    with OMSService(rig.oms, max_batch=1, pipelined=True) as svc:
        first = svc.submit(rig.submit(1, "f1", qty="1"))
        second = svc.submit(rig.submit(1, "f2", qty="1"))
        gate.set()
        results = [first.result(timeout=30), second.result(timeout=30)]

    # A passing failure costs nobody anything: both ran again on the reloaded state.
    assert all(isinstance(r, OrderAck) and r.status is OrderStatus.FILLED for r in results)
    assert _count(rig, s.orders) == 2
    with rig.engine.connect() as conn:
        assert verify_ledger(conn) == [] and verify_audit(conn) == []


def test_late_reports_when_a_venue_thread_delivers_during_batches_then_none_is_lost(
    rig: Rig,
) -> None:
    # Resting limit orders far from the market: only the venue thread's reports fill them.
    acks = [
        rig.oms.execute_one(rig.submit(1, f"r{i}", type="limit", price="1.00000", qty="1"))
        for i in range(10)
    ]
    order_ids = [a.order_id for a in acks if isinstance(a, OrderAck)]
    inst = rig.catalogue.get("EUR/USD")
    price = inst.price_to_int(inst.price_from_int(100_000))
    deliver = rig.venue._handler
    assert deliver is not None
    per_order = 20  # one lot unit each: 20 of the 100 units of every order
    done = threading.Event()

    def venue_thread() -> None:
        for k in range(1, per_order + 1):
            for oid in order_ids:
                deliver([ExecutionReport(f"X{oid}-{k}", oid, ExecKind.FILL, rig.clock(),
                                         last_qty=1, last_price=price, venue="bbook")])  # fmt: skip
                time.sleep(0.0001)  # spread over many batches
        done.set()

    quote = QuoteUpdate(rig.quote("EUR/USD", "1.10000", "1.10010"))
    t = threading.Thread(target=venue_thread)
    t.start()
    while not done.is_set():
        results = rig.oms.execute([quote, quote])
        assert not any(isinstance(r, Exception) for r in results)
    t.join()
    rig.oms.execute([quote])  # takes whatever came after the last batch

    assert _count(rig, s.executions) == per_order * len(order_ids)
    for oid in order_ids:
        order = rig.oms.open_order(oid)
        assert order is not None and order.filled_qty == per_order
    assert rig.oms.position(1, "EUR/USD").net == per_order * len(order_ids)  # type: ignore[union-attr]
    assert rig.oms.balance(L.client_position(1, "EUR/USD")) == per_order * len(order_ids)


def test_late_report_when_its_batch_fails_to_commit_then_it_is_stored_after_all(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ack = rig.oms.execute_one(rig.submit(1, "rest", type="limit", price="1.00000", qty="1"))
    assert isinstance(ack, OrderAck)
    deliver = rig.venue._handler
    assert deliver is not None
    real_commit = rig.oms.commit
    calls = {"n": 0}

    def commit_failing_once(prepared: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("disk full")
        real_commit(prepared)  # type: ignore[arg-type]

    monkeypatch.setattr(rig.oms, "commit", commit_failing_once)
    deliver([ExecutionReport("X-late", ack.order_id, ExecKind.FILL, rig.clock(),
                             last_qty=30, last_price=100_000, venue="bbook")])  # fmt: skip
    results = rig.oms.execute([rig.submit(2, "honest", qty="0.1")])

    assert isinstance(results[0], OrderAck) and results[0].status is OrderStatus.FILLED
    order = rig.oms.open_order(ack.order_id)
    assert order is not None and order.filled_qty == 30
    with rig.engine.connect() as conn:
        stored = conn.execute(
            select(s.orders.c.filled_qty).where(s.orders.c.order_id == ack.order_id)
        ).scalar_one()
        assert stored == 30
        assert verify_ledger(conn) == [] and verify_audit(conn) == []
