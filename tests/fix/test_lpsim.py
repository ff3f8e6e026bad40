"""The LP simulator as a process (``python -m trading.venues.fix.lpsim``) and its answers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fix.venue_rig import WAIT_S, free_port, lp_for, wait_for
from tests.trading.builders import FakeClock
from trading.catalogue import default_catalogue
from trading.orders import Order
from trading.validate import order_request
from trading.venues.base import ExecKind, ExecutionReport
from trading.venues.fix.lpsim import LpSim
from trading.venues.fix.venue import FixVenue

CAT = default_catalogue()


def _order(order_id: int, type: str = "limit", price: str | None = "1.10010") -> Order:
    req = order_request(CAT, account_id=1, client_order_id=f"c{order_id}", symbol="EUR/USD",
                        side="sell", type=type, qty="1.5", price=price,
                        tif="day" if type == "limit" else "ioc")  # fmt: skip
    return Order.from_request(order_id, req, FakeClock()())


@pytest.fixture
def process_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trading.venues.fix.lpsim", "--port", str(port), "--home",
         str(tmp_path / "lpsim"), "--price", "1.20000"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert "listening" in proc.stdout.readline()
        yield port
    finally:
        proc.terminate()
        assert proc.wait(WAIT_S) == 0


@pytest.mark.parametrize("begin_string", ["FIX.4.4", "FIX.4.2"])
def test_lpsim_process_when_an_order_comes_then_it_acknowledges_and_fills_it(
    tmp_path: Path, process_port: int, begin_string: str
) -> None:
    got: list[ExecutionReport] = []
    venue = FixVenue(lp_for(process_port, begin_string), CAT, FakeClock(), tmp_path / "home")
    venue.bind(got.extend)
    venue.start()
    try:
        assert venue.wait_up(WAIT_S)
        assert venue.submit(_order(1)) == []
        assert venue.submit(_order(2, type="market", price=None)) == []
        assert wait_for(lambda: sum(r.kind is ExecKind.FILL for r in got) == 2)
        fills = {r.order_id: (r.last_qty, r.last_price) for r in got if r.kind is ExecKind.FILL}
        inst = CAT.get("EUR/USD")
        # The limit order fills at its limit, the market order at the simulator's --price.
        assert fills == {
            1: (inst.qty_to_int(Decimal("1.5")), inst.price_to_int(Decimal("1.10010"))),
            2: (inst.qty_to_int(Decimal("1.5")), inst.price_to_int(Decimal("1.20000"))),
        }
        assert [r.kind for r in got if r.order_id == 1] == [ExecKind.ACCEPTED, ExecKind.FILL]
    finally:
        venue.stop()


def test_lpsim_when_asked_the_status_of_an_order_it_never_had_then_rejected_unknown(
    tmp_path: Path,
) -> None:
    port = free_port()
    sim = LpSim(port, tmp_path / "lpsim", default="rest")
    sim.start()
    got: list[ExecutionReport] = []
    home = tmp_path / "home"
    lp = lp_for(port)
    venue = FixVenue(lp, CAT, FakeClock(), home)
    venue.bind(got.extend)
    try:
        venue.start()
        assert venue.wait_up(WAIT_S)
        venue.submit(_order(5))
        assert wait_for(lambda: [r.kind for r in got] == [ExecKind.ACCEPTED])
        # The LP loses the order (a new book on the same sessions): asked at the next logon,
        # it answers OrdStatus 8, and the adapter rejects the order with the LP's text.
        sim.orders.clear()
        sim._by_cl.clear()
        sim.drop()
        assert wait_for(lambda: len(got) == 2)
        assert (got[1].kind, got[1].reason) == (ExecKind.REJECTED, "unknown order")
        assert 5 not in venue.in_doubt
    finally:
        venue.stop()
        sim.stop()


def test_lpsim_when_planned_then_each_order_takes_the_next_action(tmp_path: Path) -> None:
    port = free_port()
    sim = LpSim(port, tmp_path / "lpsim", default="rest")
    sim.plan("reject:no credit", "partial:0.5")
    sim.start()
    got: list[ExecutionReport] = []
    venue = FixVenue(lp_for(port, "FIX.4.2"), CAT, FakeClock(), tmp_path / "home")
    venue.bind(got.extend)
    try:
        venue.start()
        assert venue.wait_up(WAIT_S)
        for oid in (1, 2, 3):
            venue.submit(_order(oid))
        assert wait_for(lambda: len(got) == 4)
        kinds = sorted((r.order_id, r.kind.value, r.reason or "", r.last_qty) for r in got)
        assert kinds == [
            (1, "rejected", "no credit", 0),
            (2, "accepted", "", 0), (2, "fill", "", 50),
            (3, "accepted", "", 0),
        ]  # fmt: skip
        assert sim.order(3).status == "0" and sim.order(2).cum == Decimal("0.5")
    finally:
        venue.stop()
        sim.stop()
