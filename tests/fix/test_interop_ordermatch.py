"""Interop with the QuickFIX C++ engine's example `ordermatch` (FIX 4.2), run on loopback.

Its rules, from its source (libquickfix-doc's examples/ordermatch): one book per symbol
over every session, price then time priority, a cross trades at the resting ask's price
for the smaller open quantity; every order is acknowledged (35=8, 150=0) before it
matches; Day limit orders only (anything else: 35=8 rejected, the reason in 58); a cancel
(35=F) is answered with 35=8 canceled. Two sessions trade with each other here.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fix.counterparties import (
    Counterparty,
    CounterpartyError,
    listening_on,
    start_ordermatch,
)
from tests.fix.initiator import Initiator, Received, transact_time
from tests.fix.interop_rig import start_oms_rig
from trading.commands import CancelOrder

BUYER, SELLER = "BOURSE1", "BOURSE2"
SYMBOL = "EUR/USD"


@pytest.fixture
def ordermatch(tmp_path: Path) -> Iterator[Counterparty]:
    try:
        cp = start_ordermatch(tmp_path / "ordermatch", clients=[BUYER, SELLER])
    except CounterpartyError as exc:  # a missing package fails, never skips
        pytest.fail(str(exc), pytrace=False)
    with cp:
        yield cp


@pytest.fixture
def clients(ordermatch: Counterparty, tmp_path: Path) -> Iterator[Initiator]:
    sessions = [(BUYER, ordermatch.comp_id), (SELLER, ordermatch.comp_id)]
    with Initiator(tmp_path / "clients", ordermatch.port, "FIX.4.2", sessions) as ini:
        ini.wait_logon()
        yield ini


def _order(
    cl_ord_id: str, side: str, qty: int, price: str, tif: str = "0"
) -> list[tuple[int, str]]:
    return [(11, cl_ord_id), (21, "1"), (55, SYMBOL), (54, side), (60, transact_time()),
            (38, str(qty)), (40, "2"), (44, price), (59, tif)]  # fmt: skip


def _report(ini: Initiator, to: str, cl_ord_id: str, exec_type: str) -> Received:
    return ini.expect(
        lambda m: m.type == "8" and m.sender == to and m.get(11) == cl_ord_id
        and m.get(150) == exec_type,
        f"35=8 150={exec_type} for {cl_ord_id} on {to}",
    )  # fmt: skip


def test_ordermatch_when_started_then_it_listens_on_loopback_only(ordermatch: Counterparty) -> None:
    assert listening_on(ordermatch.port) == [f"127.0.0.1:{ordermatch.port}"]


def test_ordermatch_when_day_limits_cross_then_both_sides_fill_partially_at_the_ask(
    clients: Initiator,
) -> None:
    bid_qty, first_ask_qty, second_ask_qty = 10_000, 4_000, 2_500
    bid_px, ask_px = Decimal("1.0852"), Decimal("1.0850")
    clients.send(BUYER, "D", _order("buy-1", "1", bid_qty, str(bid_px)))
    _report(clients, BUYER, "buy-1", "0")  # acknowledged, resting

    clients.send(SELLER, "D", _order("sell-1", "2", first_ask_qty, str(ask_px)))
    _report(clients, SELLER, "sell-1", "0")
    buy_fill = _report(clients, BUYER, "buy-1", "1")  # partially filled
    sell_fill = _report(clients, SELLER, "sell-1", "2")  # filled

    # A cross trades the smaller open quantity at the resting ask's price.
    assert int(Decimal(buy_fill[32])) == first_ask_qty == int(Decimal(sell_fill[32]))
    assert Decimal(buy_fill[31]) == ask_px == Decimal(sell_fill[31])
    assert (int(Decimal(buy_fill[14])), int(Decimal(buy_fill[151]))) == (
        first_ask_qty, bid_qty - first_ask_qty)  # fmt: skip
    assert (buy_fill[39], sell_fill[39], int(Decimal(sell_fill[151]))) == ("1", "2", 0)

    clients.send(SELLER, "D", _order("sell-2", "2", second_ask_qty, str(ask_px)))
    _report(clients, SELLER, "sell-2", "0")
    buy_fill_2 = _report(clients, BUYER, "buy-1", "1")
    executed = first_ask_qty + second_ask_qty
    assert int(Decimal(buy_fill_2[32])) == second_ask_qty
    assert int(Decimal(buy_fill_2[14])) == executed
    assert int(Decimal(buy_fill_2[151])) == bid_qty - executed
    _report(clients, SELLER, "sell-2", "2")


def test_ordermatch_when_a_resting_order_is_canceled_then_a_canceled_report_ends_it(
    clients: Initiator,
) -> None:
    clients.send(BUYER, "D", _order("buy-7", "1", 3_000, "1.0700"))
    _report(clients, BUYER, "buy-7", "0")

    clients.send(BUYER, "F", [(41, "buy-7"), (11, "cxl-7"), (55, SYMBOL), (54, "1"),
                              (38, "3000"), (60, transact_time())])  # fmt: skip

    canceled = _report(clients, BUYER, "buy-7", "4")
    assert canceled[39] == "4"
    assert int(Decimal(canceled[151])) == 0 and int(Decimal(canceled[14])) == 0
    # Canceled means gone from the book: a crossing sell now rests instead of trading.
    clients.send(SELLER, "D", _order("sell-7", "2", 1_000, "1.0600"))
    _report(clients, SELLER, "sell-7", "0")
    clients.send(SELLER, "D", _order("sell-8", "2", 1_000, "1.0600"))
    _report(clients, SELLER, "sell-8", "0")
    assert not [m for m in clients.inbox() if m.get(150) in ("1", "2")]


def test_ordermatch_when_an_order_is_not_day_then_it_is_rejected_with_the_reason(
    clients: Initiator,
) -> None:
    clients.send(BUYER, "D", _order("gtc-1", "1", 1_000, "1.0800", tif="1"))

    rejected = _report(clients, BUYER, "gtc-1", "8")
    assert rejected[39] == "8"
    assert rejected[58] == "Unsupported TIF, use Day"


# --- through the adapter: a real OMS whose venue is a FixVenue on ordermatch ----------------


def test_oms_when_two_clients_cross_at_ordermatch_then_partial_fill_then_cancel_the_rest(
    ordermatch: Counterparty, tmp_path: Path, store_dsn: str
) -> None:
    rig = start_oms_rig(tmp_path, store_dsn, ordermatch, BUYER,
                        order_types=["limit"], tifs=["day"])  # fmt: skip
    try:
        inst = rig.catalogue.get("EUR/USD")
        buy_id = rig.submit("b-1", account_id=1, qty="3", price="1.10010", tif="day")
        rig.settle(lambda: rig.status(buy_id) == "accepted")
        sell_id = rig.submit("s-1", account_id=2, qty="1", price="1.10000", side="sell",
                             tif="day")  # fmt: skip

        rig.settle(lambda: rig.status(sell_id) == "filled")
        rig.settle(lambda: rig.status(buy_id) == "partially_filled")
        # One lot traded at the ask's price (ordermatch's rule, whichever order rested).
        lot, ask = inst.qty_to_int(Decimal("1")), inst.price_to_int(Decimal("1.10000"))
        for oid in (buy_id, sell_id):
            fills = [(e.venue, e.qty, e.price) for e in rig.executions(oid) if e.kind == "fill"]
            assert fills == [("ordermatch", lot, ask)]
        assert rig.order_row(buy_id).filled_qty == lot

        rig.oms.execute_one(CancelOrder(1, buy_id))
        rig.settle(lambda: rig.status(buy_id) == "canceled")
        assert rig.order_row(buy_id).filled_qty == lot  # the fill stays; the rest is gone
        assert rig.verify() == []
    finally:
        rig.close()
