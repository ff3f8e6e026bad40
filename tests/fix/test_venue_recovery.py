"""FixVenue across disconnects and restarts: orders in doubt are asked about at logon and
reconciled from the LP's answers, never assumed; chains and applied exec ids survive."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.fix.venue_rig import FixRig, start_rig, wait_for
from trading.commands import CancelOrder
from trading.orders import Order
from trading.store import schema as s
from trading.validate import order_request
from trading.venues.base import ExecKind, ExecutionReport


@pytest.fixture(params=["FIX.4.4", "FIX.4.2"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FixRig]:
    r = start_rig(tmp_path, f"sqlite:///{tmp_path}/bourse.db", request.param)
    yield r
    r.close()


def _lots(rig: FixRig, text: str) -> int:
    return rig.catalogue.get("EUR/USD").qty_to_int(Decimal(text))


def _exceptions_in_store(rig: FixRig) -> int:
    with rig.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(s.exec_exceptions)).scalar_one())


def test_disconnect_mid_order_when_the_lp_filled_it_then_the_status_on_logon_fills_it(
    rig: FixRig,
) -> None:
    rig.sim.plan("silent_fill")
    oid = rig.submit("c1", qty="2", price="1.10010")
    assert rig.sim.wait(lambda: ("D", f"{oid}.0") in rig.sim.received)
    assert rig.status(oid) == "submitted"
    rig.sim.drop()
    rig.settle(lambda: rig.status(oid) == "filled")
    assert rig.venue.logons == 2
    assert ("H", f"{oid}.0") in rig.sim.received
    fills = [e for e in rig.executions(oid) if e.kind == "fill"]
    assert [(e.exec_id, e.qty) for e in fills] == [(f"lp1:{oid}:cum:{_lots(rig, '2')}",
                                                    _lots(rig, "2"))]  # fmt: skip
    assert oid not in rig.venue.in_doubt
    assert rig.verify() == []


def test_disconnect_mid_order_when_the_lp_says_nothing_then_the_order_stays_in_doubt(
    rig: FixRig,
) -> None:
    rig.sim.plan("delay")
    oid = rig.submit("c1")
    assert rig.sim.wait(lambda: ("D", f"{oid}.0") in rig.sim.received)
    rig.sim.drop()
    assert rig.sim.wait(lambda: ("H", f"{oid}.0") in rig.sim.received)
    rig.oms.execute([])
    # Logged on again and asked; no answer yet: nothing is assumed.
    assert rig.venue.is_up() and oid in rig.venue.in_doubt
    assert rig.status(oid) == "submitted"
    rig.sim.release()  # the held acknowledgement, fill and status answer
    rig.settle(lambda: rig.status(oid) == "filled" and oid not in rig.venue.in_doubt)
    assert [e.qty for e in rig.executions(oid) if e.kind == "fill"] == [_lots(rig, "1")]
    assert rig.verify() == []


def test_mass_status_when_configured_then_one_35_af_reconciles_every_order(
    tmp_path: Path,
) -> None:
    rig = start_rig(tmp_path, f"sqlite:///{tmp_path}/bourse.db", status_request="mass")
    try:
        rig.sim.plan("silent_fill", "rest")
        filled = rig.submit("c1")
        resting = rig.submit("c2")
        assert rig.sim.wait(lambda: len(rig.sim.orders) == 2)
        rig.settle(lambda: rig.status(resting) == "accepted")
        rig.sim.drop()
        rig.settle(lambda: rig.status(filled) == "filled")
        assert [t for t, _ in rig.sim.received].count("AF") == 1
        assert "H" not in [t for t, _ in rig.sim.received]
        assert rig.status(resting) == "accepted"
    finally:
        rig.close()


def test_restart_when_an_order_rests_then_the_chain_and_the_order_carry_on(rig: FixRig) -> None:
    rig.sim.plan("rest")
    oid = rig.submit("c1")
    rig.settle(lambda: rig.status(oid) == "accepted")
    rig.restart_venue()
    assert rig.sim.wait(lambda: ("H", f"{oid}.0") in rig.sim.received)
    rig.sim.fill(oid, "0.4")
    rig.settle(lambda: rig.status(oid) == "partially_filled")
    rig.oms.execute_one(CancelOrder(1, oid))
    rig.settle(lambda: rig.status(oid) == "canceled")
    # The cancel after the restart continued the chain from disk: <order>.1, not <order>.0.
    assert ("F", f"{oid}.1") in rig.sim.received
    assert rig.order_row(oid).filled_qty == _lots(rig, "0.4")
    assert rig.verify() == []


def test_restart_when_the_lp_resends_an_applied_fill_then_it_changes_nothing(
    rig: FixRig,
) -> None:
    oid = rig.submit("c1")
    rig.settle(lambda: rig.status(oid) == "filled")
    rig.restart_venue()
    before = (rig.executions(oid), _exceptions_in_store(rig))
    rig.sim.repeat(oid)
    rig.settle(lambda: any("43=Y" in line for line in _log(rig)))
    for _ in range(5):
        rig.oms.execute([])
    assert (rig.executions(oid), _exceptions_in_store(rig)) == before
    assert rig.verify() == []


def test_restated_report_when_the_lp_cancels_unsolicited_then_canceled(rig: FixRig) -> None:
    rig.sim.plan("rest")
    oid = rig.submit("c1")
    rig.settle(lambda: rig.status(oid) == "accepted")
    rig.sim.restate(oid, "4", text="restated: instrument halted")
    rig.settle(lambda: rig.status(oid) == "canceled")


def _log(rig: FixRig) -> list[str]:
    out: list[str] = []
    for path in (rig.venue.dir / "log").glob("*.messages.current.log"):
        out += path.read_text(errors="replace").replace("\x01", "|").splitlines()
    return out


def test_resend_request_for_an_order_when_the_lp_asks_then_not_resent_but_its_status_asked(
    rig: FixRig,
) -> None:
    rig.sim.plan("ask_resend")
    oid = rig.submit("c1")
    rig.settle(lambda: rig.status(oid) == "accepted")
    # At the venue's next message (a heartbeat) the LP sees a gap and asks a resend: the order
    # is gap-filled, not sent twice, and its status is asked instead.
    assert rig.sim.wait(lambda: ("H", f"{oid}.0") in rig.sim.received)
    assert rig.sim.received.count(("D", f"{oid}.0")) == 1
    sent = [line for line in _log(rig) if "|49=BOURSE|" in line]
    assert any("|35=4|" in line and "|123=Y|" in line for line in sent), "no gap fill sent"
    rig.sim.fill(oid, "1")
    rig.settle(lambda: rig.status(oid) == "filled")
    assert rig.verify() == []


def test_status_request_when_the_lp_refuses_it_then_the_order_stays_in_doubt_unchanged(
    rig: FixRig,
) -> None:
    rig.sim.answers_status = False
    rig.sim.plan("silent_fill")
    oid = rig.submit("c1")
    assert rig.sim.wait(lambda: ("D", f"{oid}.0") in rig.sim.received)
    rig.sim.drop()
    assert rig.sim.wait(lambda: ("H", f"{oid}.0") in rig.sim.received)
    rig.settle(lambda: "reject_of_H_message" in rig.venue.exceptions.path.read_text())
    rig.oms.execute([])
    assert rig.status(oid) == "submitted" and oid in rig.venue.in_doubt
    assert rig.executions(oid) == []


def test_mass_status_when_the_lp_leaves_an_order_out_then_it_is_asked_about_alone(
    tmp_path: Path,
) -> None:
    rig = start_rig(tmp_path, f"sqlite:///{tmp_path}/bourse.db", status_request="mass")
    try:
        rig.sim.plan("silent_fill", "rest")
        known = rig.submit("c1")
        lost = rig.submit("c2")
        assert rig.sim.wait(lambda: len(rig.sim.orders) == 2)
        rig.settle(lambda: rig.status(lost) == "accepted")
        # The LP loses the second order: its mass status answer leaves it out.
        del rig.sim.orders[f"{lost}.0"]
        del rig.sim._by_cl[f"{lost}.0"]
        rig.sim.drop()
        rig.settle(lambda: rig.status(known) == "filled" and rig.status(lost) == "rejected")
        assert ("H", f"{lost}.0") in rig.sim.received
        assert ("H", f"{known}.0") not in rig.sim.received
        assert rig.order_row(lost).reason == "unknown order"
        assert rig.verify() == []
    finally:
        rig.close()


def test_reset_on_logon_when_configured_then_both_sides_restart_at_one_and_orders_carry_on(
    tmp_path: Path,
) -> None:
    rig = start_rig(tmp_path, f"sqlite:///{tmp_path}/bourse.db", reset_on_logon=True)
    try:
        rig.sim.plan("rest")
        oid = rig.submit("c1")
        rig.settle(lambda: rig.status(oid) == "accepted")
        rig.sim.drop()
        assert rig.sim.wait(lambda: ("H", f"{oid}.0") in rig.sim.received)
        logons = [line for line in _log(rig) if "|35=A|" in line and "|49=BOURSE|" in line]
        assert len(logons) == 2
        assert all("|141=Y|" in line and "|34=1|" in line for line in logons)
        rig.sim.fill(oid, "1")
        rig.settle(lambda: rig.status(oid) == "filled")
        assert rig.verify() == []
    finally:
        rig.close()


def test_submit_when_the_oms_runs_an_order_again_after_a_refused_commit_then_sent_once(
    rig: FixRig,
) -> None:
    got: list[ExecutionReport] = []
    rig.venue.bind(got.extend)
    rig.sim.plan("rest", "rest", "rest")
    rig.venue.begin_batch()
    assert rig.venue.submit(_order(rig, 900)) == []
    rig.venue.reset()  # the store refused the batch: the OMS reloads its state
    rig.venue.begin_batch()
    assert rig.venue.submit(_order(rig, 900)) == []  # the same order, run again
    assert rig.venue.submit(_order(rig, 901)) == []
    rig.venue.committed(frozenset())
    # One session delivers in order: once 901 is in, a second 900 would be in too.
    assert rig.sim.wait(lambda: ("D", "901.0") in rig.sim.received)
    assert [cl for t, cl in rig.sim.received if t == "D"] == ["900.0", "901.0"]
    assert wait_for(lambda: len(got) == 2)  # both acknowledged


def test_submit_when_the_oms_gives_the_id_to_another_order_then_the_first_is_an_orphan(
    rig: FixRig,
) -> None:
    got: list[ExecutionReport] = []
    rig.venue.bind(got.extend)
    rig.sim.plan("rest", "rest")
    # Sent at once, outside any batch (as the adapter sent every request before it held
    # them for the OMS's commit: a chains file from then may hold such an order).
    rig.venue.submit(_order(rig, 900, qty="1"))
    rig.venue.submit(_order(rig, 900, qty="2"))  # another order under the same id
    assert rig.sim.wait(lambda: ("D", "900.1") in rig.sim.received)
    rig.sim.fill(900, "1")  # fills the first order, "900.0", at the LP
    path = rig.venue.exceptions.path
    assert wait_for(lambda: "|32=1|" in path.read_text())
    rows = [line for line in path.read_text().splitlines() if "|32=1|" in line]
    assert len(rows) == 1 and ",orphan_order_at_lp," in rows[0]
    # The second order saw its acknowledgement (and perhaps the first's, before it was
    # sent); never the first order's fill.
    assert ExecKind.FILL not in [r.kind for r in got]


def _order(rig: FixRig, order_id: int, qty: str = "1") -> Order:
    req = order_request(rig.catalogue, account_id=1, client_order_id=f"x{order_id}",
                        symbol="EUR/USD", side="buy", type="limit", qty=qty,
                        price="1.10010")  # fmt: skip
    return Order.from_request(order_id, req, rig.clock())
