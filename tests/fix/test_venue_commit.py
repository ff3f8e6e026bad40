"""Nothing leaves the house before it is durable: the FIX adapter sends a batch's requests
only once the OMS stored the batch, in order, and never those of a batch the store refused.

A real quickfix session to the LP simulator and a real store; the store refuses a batch
through a trigger on the orders table (an order whose client order id starts with
``doomed``), so the OMS's own failure path runs: reload, split, run again. What reached the
LP is counted at the LP (``LpSim.received``): one session delivers in order, so once the
last expected message is in, any message sent before it is in too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fix.venue_rig import FixRig, start_rig
from trading.commands import AmendOrder, CancelOrder, Command, OrderAck, Result, SubmitOrder
from trading.errors import StoreError
from trading.oms.engine import Prepared
from trading.oms.service import OMSService
from trading.validate import order_request

_SQLITE_TRIGGER = """
CREATE TRIGGER refuse_doomed BEFORE INSERT ON orders
WHEN NEW.client_order_id LIKE 'doomed%'
BEGIN SELECT RAISE(ABORT, 'the store refuses this order'); END
"""
_PG_TRIGGER = (
    """
CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF left(NEW.client_order_id, 6) = 'doomed' THEN
    RAISE EXCEPTION 'the store refuses this order';
  END IF;
  RETURN NEW;
END $$
""",
    """
CREATE TRIGGER refuse_doomed BEFORE INSERT ON orders
FOR EACH ROW EXECUTE FUNCTION refuse_doomed()
""",
)


@pytest.fixture
def rig(tmp_path: Path, store_dsn: str) -> Iterator[FixRig]:
    r = start_rig(tmp_path, store_dsn)
    try:
        r.sim.default = "rest"
        with r.engine.begin() as conn:
            if r.engine.dialect.name == "sqlite":
                conn.exec_driver_sql(_SQLITE_TRIGGER)
            else:
                for stmt in _PG_TRIGGER:
                    conn.exec_driver_sql(stmt)
        yield r
    finally:
        r.close()


def _submit(rig: FixRig, client_order_id: str, qty: str, account_id: int = 1) -> SubmitOrder:
    req = order_request(rig.catalogue, account_id=account_id, client_order_id=client_order_id,
                        symbol="EUR/USD", side="buy", type="limit", qty=qty,
                        price="1.10010", tif="gtc")  # fmt: skip
    return SubmitOrder(req)


def _sent(rig: FixRig, msg_type: str = "D") -> list[str]:
    with rig.sim._cond:
        return [cl for t, cl in rig.sim.received if t == msg_type]


def _chain_lines(rig: FixRig) -> list[dict[str, object]]:
    path = rig.venue.chains.path
    return [json.loads(line) for line in path.read_text().splitlines()]


def _acks(results: Sequence[Result]) -> list[int]:
    return [r.order_id for r in results if isinstance(r, OrderAck)]


def test_batch_when_the_store_refuses_its_commit_then_none_of_its_orders_reach_the_lp(
    rig: FixRig,
) -> None:
    results = rig.oms.execute([_submit(rig, "a", "0.01"), _submit(rig, "doomed", "0.02"),
                               _submit(rig, "c", "0.03")])  # fmt: skip
    assert isinstance(results[1], StoreError)
    a, c = _acks(results)
    # The batch failed whole, then ran again in parts: "c" took the order id the failed run
    # had given "doomed" (ids start again from the store).
    assert c == a + 1
    assert rig.sim.wait(lambda: f"{c}.0" in _sent(rig))
    assert _sent(rig) == [f"{a}.0", f"{c}.0"]  # once each, and never "doomed"'s terms
    assert rig.sim.order(c).qty == Decimal("0.03")
    # The chains file holds the requests that went out, and nothing else.
    assert [line.get("new") for line in _chain_lines(rig)] == [f"{a}.0", f"{c}.0"]
    assert "orphan_order_at_lp" not in _read(rig.venue.exceptions.path)
    rig.settle(lambda: rig.status(a) == rig.status(c) == "accepted")
    assert rig.verify() == []


def test_batch_when_committed_then_its_requests_reach_the_lp_in_order_stamped_when_sent(
    rig: FixRig,
) -> None:
    ids = _acks(rig.oms.execute([_submit(rig, f"o{i}", "0.01") for i in range(3)]))
    assert rig.sim.wait(lambda: len(_sent(rig)) == 3)
    rig.settle(lambda: all(rig.status(i) == "accepted" for i in ids))
    inst = rig.catalogue.get("EUR/USD")
    moves: list[Command] = [
        CancelOrder(1, ids[0]),
        AmendOrder(1, ids[1], qty=inst.qty_to_int(Decimal("0.05"))),
        CancelOrder(1, ids[2]),
    ]
    # The commit takes a while: the requests leave after it, and say so (TransactTime).
    prepared_at = rig.clock()
    sent_at = prepared_at + 5_000_000_000

    def slow_commit(prepared: Prepared, lo: int, hi: int) -> None:
        rig.clock.now_ns = sent_at

    results = rig.oms.execute(moves, before_commit=slow_commit)
    assert not any(isinstance(r, Exception) for r in results), results
    assert rig.sim.wait(lambda: len(_sent(rig, "F")) == 2)
    with rig.sim._cond:
        app = [(t, cl) for t, cl in rig.sim.received if t in "DFG"]
    assert app == [("D", f"{ids[0]}.0"), ("D", f"{ids[1]}.0"), ("D", f"{ids[2]}.0"),
                   ("F", f"{ids[0]}.1"), ("G", f"{ids[1]}.1"), ("F", f"{ids[2]}.1")]  # fmt: skip
    stamp = dt.datetime.fromtimestamp(sent_at / 1e9, dt.UTC).strftime("%Y%m%d-%H:%M:%S")
    out = [line for line in _messages_out(rig) if "|35=F|" in line or "|35=G|" in line]
    assert len(out) == 3 and all(f"|60={stamp}." in line for line in out)
    rig.settle(lambda: rig.status(ids[0]) == rig.status(ids[2]) == "canceled")
    assert rig.order_row(ids[1]).qty == inst.qty_to_int(Decimal("0.05"))


def test_pipelined_service_when_a_commit_fails_midway_then_the_lp_gets_the_stored_orders_in_order(
    rig: FixRig,
) -> None:
    names = [f"p{i}" for i in range(30)]
    names[11] = "doomed-11"
    names[23] = "doomed-23"
    futures: list[Future[Result]] = []
    with OMSService(rig.oms, max_batch=3, pipelined=True) as svc:
        for i, name in enumerate(names):
            futures.append(svc.submit(_submit(rig, name, "0.01", account_id=1 + i % 2)))
        results = [f.result(timeout=60) for f in futures]
    assert [isinstance(r, StoreError) for r in results] == [n.startswith("doomed") for n in names]
    stored = _acks(results)
    assert len(stored) == 28
    # Answered in the order they were sent, the orders were stored in that order too.
    assert stored == sorted(stored)
    assert rig.sim.wait(lambda: len(_sent(rig)) >= len(stored))
    assert _sent(rig) == [f"{oid}.0" for oid in stored]
    assert [line.get("new") for line in _chain_lines(rig)] == [f"{oid}.0" for oid in stored]
    rig.settle(lambda: all(rig.status(oid) == "accepted" for oid in stored))
    assert rig.verify() == []


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _messages_out(rig: FixRig) -> list[str]:
    out: list[str] = []
    for path in (rig.venue.dir / "log").glob("*.messages.current.log"):
        text = path.read_text(errors="replace").replace("\x01", "|")
        out += [line for line in text.splitlines() if "|49=BOURSE|" in line]
    return out


def test_restart_when_the_process_stopped_between_commit_and_send_then_the_order_is_rejected(
    rig: FixRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    (first,) = _acks(rig.oms.execute([_submit(rig, "first", "0.01")]))
    assert rig.sim.wait(lambda: _sent(rig) == [f"{first}.0"])
    rig.settle(lambda: rig.status(first) == "accepted")
    # The store takes the next batch, and the process dies before its requests leave.
    monkeypatch.setattr(rig.venue, "committed", lambda exec_ids: None)
    (lost,) = _acks(rig.oms.execute([_submit(rig, "lost", "0.02")]))
    assert rig.status(lost) == "submitted"
    rig.restart_venue()
    rig.settle(lambda: rig.status(lost) == "rejected")
    assert rig.order_row(lost).reason == ("not_sent: the OMS stopped before the order went to lp1")
    # The next order goes out; the lost one never did.
    (after,) = _acks(rig.oms.execute([_submit(rig, "after", "0.03")]))
    assert rig.sim.wait(lambda: f"{after}.0" in _sent(rig))
    assert _sent(rig) == [f"{first}.0", f"{after}.0"]
    assert rig.verify() == []
