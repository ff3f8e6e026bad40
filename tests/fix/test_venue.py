"""FixVenue against the project's LP simulator on loopback, with a real OMS and store:
orders out over FIX 4.2 and 4.4, reports back through the OMS's queue, booked to the LP."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fix.venue_rig import FixRig, start_rig
from trading.commands import AmendOrder, CancelOrder
from trading.venues.dropcopy import dropcopy_dir

VERSIONS = ["FIX.4.4", "FIX.4.2"]


@pytest.fixture(params=VERSIONS)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FixRig]:
    r = start_rig(tmp_path, f"sqlite:///{tmp_path}/bourse.db", request.param)
    yield r
    r.close()


def _lots(rig: FixRig, text: str) -> int:
    return rig.catalogue.get("EUR/USD").qty_to_int(Decimal(text))


def _px(rig: FixRig, text: str) -> int:
    return rig.catalogue.get("EUR/USD").price_to_int(Decimal(text))


def test_limit_order_when_the_lp_fills_it_then_filled_at_the_lp_and_booked_to_its_venue(
    tmp_path: Path, store_dsn: str
) -> None:
    rig = start_rig(tmp_path, store_dsn)
    try:
        oid = rig.submit("c1", qty="2", price="1.10010")
        rig.settle(lambda: rig.status(oid) == "filled")
        row = rig.order_row(oid)
        assert row.filled_qty == _lots(rig, "2")
        assert row.filled_notional == _lots(rig, "2") * _px(rig, "1.10010")
        fills = [e for e in rig.executions(oid) if e.kind == "fill"]
        assert [(e.venue, e.qty) for e in fills] == [("lp1", _lots(rig, "2"))]
        assert fills[0].exec_id.startswith(f"lp1:{oid}:")
        assert rig.sim.order(oid).cum == Decimal(2)
        assert rig.verify() == []
    finally:
        rig.close()


def test_partial_fills_when_the_lp_fills_in_steps_then_quantities_and_average_add_up(
    rig: FixRig,
) -> None:
    rig.sim.plan("partial:0.3,0.2")
    oid = rig.submit("c1", qty="1", price="1.10020")
    rig.settle(lambda: rig.order_row(oid).filled_qty == _lots(rig, "0.5"))
    assert rig.status(oid) == "partially_filled"
    rig.sim.fill(oid, "0.5", "1.10000")
    rig.settle(lambda: rig.status(oid) == "filled")
    row = rig.order_row(oid)
    expected = _lots(rig, "0.5") * _px(rig, "1.10020") + _lots(rig, "0.5") * _px(rig, "1.10000")
    assert row.filled_notional == expected
    assert sorted(e.qty for e in rig.executions(oid) if e.kind == "fill") == sorted(
        [_lots(rig, "0.3"), _lots(rig, "0.2"), _lots(rig, "0.5")]
    )
    assert rig.verify() == []


def test_order_when_the_lp_rejects_it_then_rejected_with_the_lps_text(rig: FixRig) -> None:
    rig.sim.plan("reject:price away from market")
    oid = rig.submit("c1")
    rig.settle(lambda: rig.status(oid) == "rejected")
    assert rig.order_row(oid).reason == "price away from market"


def test_market_order_when_the_lp_rejects_it_at_session_level_then_rejected_with_its_text(
    rig: FixRig,
) -> None:
    rig.sim.plan("session_reject")
    oid = rig.submit("m1", type="market", price=None, tif="ioc")
    rig.settle(lambda: rig.status(oid) == "rejected")
    reason = rig.order_row(oid).reason
    assert reason and "incorrect" in reason.lower(), reason


def test_cancel_when_the_lp_cancels_then_canceled_and_the_chain_links_the_requests(
    rig: FixRig,
) -> None:
    rig.sim.plan("rest")
    oid = rig.submit("c1")
    rig.settle(lambda: rig.status(oid) == "accepted")
    rig.oms.execute_one(CancelOrder(1, oid))
    rig.settle(lambda: rig.status(oid) == "canceled")
    assert ("F", f"{oid}.1") in rig.sim.received
    assert rig.sim.order(oid).cl_ord_id == f"{oid}.1"


def test_cancel_when_the_lp_refuses_it_then_the_order_works_again(rig: FixRig) -> None:
    rig.sim.plan("rest")
    rig.sim.plan_cancel("reject:too late to cancel")
    oid = rig.submit("c1")
    rig.settle(lambda: rig.status(oid) == "accepted")
    rig.oms.execute_one(CancelOrder(1, oid))
    rig.settle(lambda: rig.status(oid) == "accepted" and ("F", f"{oid}.1") in rig.sim.received)
    order = rig.oms.open_order(oid)
    assert order is not None
    assert order.history[-1].data.get("cancel_rejected") == "too late to cancel"
    rig.sim.fill(oid, "1")
    rig.settle(lambda: rig.status(oid) == "filled")


def test_cancel_when_the_lp_answers_with_a_business_reject_then_the_order_works_again(
    rig: FixRig,
) -> None:
    rig.sim.plan("rest")
    rig.sim.plan_cancel("business_reject")
    oid = rig.submit("c1")
    rig.settle(lambda: rig.status(oid) == "accepted")
    rig.oms.execute_one(CancelOrder(1, oid))
    rig.settle(lambda: rig.status(oid) == "accepted" and ("F", f"{oid}.1") in rig.sim.received)
    order = rig.oms.open_order(oid)
    assert order is not None and order.history[-1].data.get("cancel_rejected")


def test_replace_when_the_lp_replaces_then_the_new_terms_are_in_force_on_both_sides(
    rig: FixRig,
) -> None:
    rig.sim.plan("rest")
    oid = rig.submit("c1", qty="1", price="1.09000")
    rig.settle(lambda: rig.status(oid) == "accepted")
    rig.oms.execute_one(AmendOrder(1, oid, qty=_lots(rig, "2"), price=_px(rig, "1.09500")))
    rig.settle(lambda: rig.order_row(oid).qty == _lots(rig, "2") and rig.status(oid) == "accepted")
    assert rig.order_row(oid).price == _px(rig, "1.09500")
    lp_order = rig.sim.order(oid)
    assert (lp_order.qty, lp_order.price, lp_order.cl_ord_id) == (
        Decimal("2.00"), Decimal("1.09500"), f"{oid}.1",
    )  # fmt: skip
    # A cancel after the replace names the replaced ClOrdID as its origin.
    rig.oms.execute_one(CancelOrder(1, oid))
    rig.settle(lambda: rig.status(oid) == "canceled")
    assert rig.sim.order(oid).cl_ord_id == f"{oid}.2"


def test_fill_when_the_lp_sends_it_again_as_possdup_then_applied_once(rig: FixRig) -> None:
    rig.sim.plan("duplicate")
    oid = rig.submit("c1")
    rig.settle(lambda: rig.status(oid) == "filled")
    poss_dup = _messages_in(rig, "43=Y")
    assert any("35=8" in line for line in poss_dup), "the resend never reached the venue"
    assert [e.qty for e in rig.executions(oid) if e.kind == "fill"] == [_lots(rig, "1")]
    assert rig.verify() == []


def test_sequence_gap_when_the_lp_skips_a_number_then_quickfix_asks_a_resend_and_fills(
    rig: FixRig,
) -> None:
    rig.sim.plan("gap")
    oid = rig.submit("c1")
    rig.settle(lambda: rig.status(oid) == "filled")
    assert _messages_in(rig, "35=2"), "no ResendRequest was sent"
    assert _messages_in(rig, "35=4"), "no SequenceReset came back"


def test_report_for_an_unknown_clordid_when_it_comes_then_recorded_and_nothing_moves(
    rig: FixRig,
) -> None:
    rig.sim.plan("rest")
    oid = rig.submit("c1")
    rig.settle(lambda: rig.status(oid) == "accepted")
    rig.sim.send_unknown(rig.lp.begin_string)
    rig.settle(lambda: rig.venue.exceptions.count == 1)
    text = rig.venue.exceptions.path.read_text()
    assert "unknown_cl_ord_id" in text and "999999999.7" in text
    assert rig.status(oid) == "accepted"
    assert rig.verify() == []


def test_drop_copy_when_reports_are_stored_then_written_with_the_stored_exec_ids(
    rig: FixRig,
) -> None:
    oid = rig.submit("c1")
    rig.settle(lambda: rig.status(oid) == "filled")
    rig.venue.dropcopy.close()
    files = sorted(dropcopy_dir(rig.home, "lp1").glob("*.csv"))
    assert len(files) == 1
    lines = files[0].read_text().splitlines()
    assert lines[0] == "exec_id,order_id,account_id,symbol,side,qty,price,ts_ns,kind"
    stored = {e.exec_id for e in rig.executions(oid)}
    copied = {line.split(",")[0] for line in lines[1:]}
    assert {x for x in copied if x.startswith(f"lp1:{oid}:")} >= {
        x for x in stored if x.startswith("lp1:")
    }
    fill = next(line for line in lines[1:] if line.endswith(",fill"))
    assert fill.split(",")[5:7] == ["1.00", "1.10010"]


def test_submit_when_the_session_is_down_then_rejected_at_once(rig: FixRig) -> None:
    rig.venue.stop()
    oid = rig.submit("c1")
    assert rig.status(oid) == "rejected"
    assert rig.order_row(oid).reason.startswith("lp_down")


def test_submit_when_the_lp_takes_no_such_order_type_then_rejected_at_once(
    tmp_path: Path,
) -> None:
    rig = start_rig(tmp_path, f"sqlite:///{tmp_path}/bourse.db", order_types=["limit"])
    try:
        oid = rig.submit("m1", type="market", price=None, tif="ioc")
        assert rig.status(oid) == "rejected"
        assert "takes no market orders" in rig.order_row(oid).reason
        assert not rig.sim.received
    finally:
        rig.close()


def _messages_in(rig: FixRig, needle: str) -> list[str]:
    logs = rig.venue.dir / "log"
    out: list[str] = []
    for path in logs.glob("*.messages.current.log"):
        for line in path.read_text(errors="replace").replace("\x01", "|").splitlines():
            if f"|{needle}|" in line:
                out.append(line)
    return out
