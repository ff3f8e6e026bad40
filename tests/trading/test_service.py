"""OMSService: group commit for concurrent callers, pipelined, on a real store."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest
from sqlalchemy import func, select

from tests.trading.builders import Rig, make_rig
from trading.commands import ApplyReports, OrderAck, Result
from trading.oms.service import OMSService
from trading.orders import OrderStatus
from trading.store import schema as s
from trading.store.verify import verify_audit, verify_ledger
from trading.venues.base import ExecKind, ExecutionReport


@pytest.fixture
def rig(store_dsn: str) -> Rig:
    r = make_rig(store_dsn)
    r.open_accounts(*range(1, 9))
    return r


def _orders(rig: Rig) -> int:
    with rig.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(s.orders)).scalar_one())


@pytest.mark.parametrize("pipelined", [True, False])
def test_service_when_many_threads_submit_then_every_order_acked_once_and_ledger_holds(
    rig: Rig, pipelined: bool
) -> None:
    futures: list[Future[Result]] = []
    lock = threading.Lock()

    with OMSService(rig.oms, max_batch=16, pipelined=pipelined) as svc:

        def client(account_id: int) -> None:
            for i in range(40):
                side = "buy" if i % 3 else "sell"
                fut = svc.submit(rig.submit(account_id, f"t{i}", side=side, qty="0.1"))
                with lock:
                    futures.append(fut)

        threads = [threading.Thread(target=client, args=(a,)) for a in range(1, 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results = [f.result(timeout=60) for f in futures]

    assert all(isinstance(r, OrderAck) and r.status is OrderStatus.FILLED for r in results)
    assert len({r.order_id for r in results}) == 320  # type: ignore[union-attr]
    assert _orders(rig) == 320
    assert svc.batches > 1
    with rig.engine.connect() as conn:
        assert verify_ledger(conn) == [] and verify_audit(conn) == []


def test_service_when_retry_arrives_while_original_in_flight_then_original_returned(
    rig: Rig,
) -> None:
    with OMSService(rig.oms, max_batch=1, pipelined=True) as svc:
        futures = [svc.submit(rig.submit(1, "retry", qty="0.5")) for _ in range(6)]
        results = [f.result(timeout=30) for f in futures]

    acks = [r for r in results if isinstance(r, OrderAck)]
    assert len(acks) == 6 and len({a.order_id for a in acks}) == 1
    assert [a.duplicate for a in acks] == [False] + [True] * 5
    assert _orders(rig) == 1


def test_service_when_exec_report_repeated_across_batches_then_applied_once(rig: Rig) -> None:
    ack = rig.oms.execute_one(rig.submit(1, "lim", type="limit", price="1.05000", qty="1"))
    assert isinstance(ack, OrderAck)
    report = ExecutionReport("LP-1", ack.order_id, ExecKind.FILL, 1, last_qty=30,
                             last_price=105000, venue="bbook")  # fmt: skip

    with OMSService(rig.oms, max_batch=1, pipelined=True) as svc:
        futures = [svc.submit(ApplyReports([report])) for _ in range(4)]
        for f in futures:
            assert not isinstance(f.result(timeout=30), Exception)

    with rig.engine.connect() as conn:
        filled = conn.execute(
            select(s.orders.c.filled_qty).where(s.orders.c.order_id == ack.order_id)
        ).scalar_one()
    assert filled == 30


def test_prepare_when_next_batch_changes_the_same_order_and_lot_then_first_commit_stores_its_own_state(  # noqa: E501
    rig: Rig,
) -> None:
    first = rig.oms.prepare([rig.submit(1, "open", qty="1")])
    second = rig.oms.prepare([rig.submit(1, "close", side="sell", qty="1")])

    rig.oms.commit(first)  # as if the process died before the second commit

    with rig.engine.connect() as conn:
        lots = conn.execute(select(s.lots.c.remaining, s.lots.c.closed_ns)).all()
        assert [tuple(lot) for lot in lots] == [(100, None)]
        assert verify_ledger(conn) == []
    rig.oms.commit(second)
    with rig.engine.connect() as conn:
        assert [r[0] for r in conn.execute(select(s.lots.c.remaining))] == [0]
        assert verify_ledger(conn) == [] and verify_audit(conn) == []
