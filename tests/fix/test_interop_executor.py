"""Interop with the QuickFIX C++ engine's example `executor` (FIX 4.4), run on loopback.

What it does is in its source (libquickfix-doc's examples/executor/C++/Application.cpp):
every limit order filled at once with one report at the order's price, any other order type
refused with IncorrectTagValue on tag 40 (a session-level reject, 35=3), and no handler for
cancel or replace (UnsupportedMessageType: a business message reject, 35=j).
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
    start_executor,
)
from tests.fix.initiator import Initiator, transact_time
from tests.fix.interop_rig import start_oms_rig

CLIENT = "BOURSE"


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[Counterparty]:
    try:
        cp = start_executor(tmp_path / "executor", clients=[CLIENT])
    except CounterpartyError as exc:  # a missing package fails, never skips
        pytest.fail(str(exc), pytrace=False)
    with cp:
        yield cp


@pytest.fixture
def client(executor: Counterparty, tmp_path: Path) -> Iterator[Initiator]:
    with Initiator(
        tmp_path / "client", executor.port, "FIX.4.4", [(CLIENT, executor.comp_id)]
    ) as ini:
        ini.wait_logon()
        yield ini


def _order(cl_ord_id: str, ord_type: str, qty: str, price: str | None) -> list[tuple[int, str]]:
    fields = [(11, cl_ord_id), (55, "EUR/USD"), (54, "1"), (60, transact_time()),
              (38, qty), (40, ord_type), (59, "0")]  # fmt: skip
    return fields + ([(44, price)] if price is not None else [])


def test_executor_when_started_then_it_listens_on_loopback_only(executor: Counterparty) -> None:
    assert listening_on(executor.port) == [f"127.0.0.1:{executor.port}"]


def test_executor_when_a_limit_order_arrives_then_one_report_fills_it_at_its_price(
    client: Initiator, executor: Counterparty
) -> None:
    client.send(CLIENT, "D", _order("lim-1", "2", "250000", "1.08345"))

    report = client.expect(lambda m: m.type == "8" and m.get(11) == "lim-1", "a report")

    assert (report[150], report[39]) == ("F", "2")  # ExecType trade, OrdStatus filled
    assert Decimal(report[32]) == Decimal("250000") == Decimal(report[14])  # LastQty, CumQty
    assert Decimal(report[151]) == 0  # LeavesQty
    assert Decimal(report[31]) == Decimal("1.08345") == Decimal(report[6])  # LastPx, AvgPx
    assert report[54] == "1" and report[55] == "EUR/USD"
    # One report: nothing else arrived for the order.
    client.send(CLIENT, "D", _order("lim-2", "2", "1000", "1.08"))
    client.expect(lambda m: m.type == "8" and m.get(11) == "lim-2", "the next report")
    assert not [m for m in client.inbox() if m.get(11) == "lim-1"]


def test_executor_when_a_market_order_arrives_then_it_is_rejected_at_session_level(
    client: Initiator,
) -> None:
    client.send(CLIENT, "D", _order("mkt-1", "1", "1000", None))

    reject = client.expect(lambda m: m.type == "3", "a session reject (35=3)")

    assert reject[371] == "40"  # RefTagID: the order type
    assert reject[373] == "5"  # SessionRejectReason: value is incorrect for this tag
    assert reject[372] == "D"
    assert "incorrect" in reject[58].lower()  # the text the adapter records as the reason
    assert not [m for m in client.inbox() if m.type == "8"]


@pytest.mark.parametrize(
    ("msg_type", "fields"),
    [
        ("F", [(41, "lim-9"), (11, "cxl-9"), (55, "EUR/USD"), (54, "1"), (38, "1000")]),
        (
            "G",
            [
                (41, "lim-9"),
                (11, "rpl-9"),
                (55, "EUR/USD"),
                (54, "1"),
                (38, "2000"),
                (40, "2"),
                (44, "1.0801"),
            ],
        ),
    ],
    ids=["cancel", "replace"],
)
def test_executor_when_asked_to_cancel_or_replace_then_a_business_reject_answers(
    client: Initiator, msg_type: str, fields: list[tuple[int, str]]
) -> None:
    client.send(CLIENT, "D", _order("lim-9", "2", "1000", "1.08"))
    client.expect(lambda m: m.type == "8" and m.get(11) == "lim-9", "the fill")

    client.send(CLIENT, msg_type, [*fields, (60, transact_time())])

    reject = client.expect(lambda m: m.type == "j", "a business message reject (35=j)")
    assert reject[372] == msg_type  # RefMsgType
    assert reject[380] == "3"  # BusinessRejectReason: unsupported message type


# --- through the adapter: a real OMS whose venue is a FixVenue on executor ------------------


def test_oms_when_routed_to_executor_then_limits_fill_at_the_lp_and_markets_end_rejected(
    executor: Counterparty, tmp_path: Path, store_dsn: str
) -> None:
    rig = start_oms_rig(tmp_path, store_dsn, executor, CLIENT)
    try:
        inst = rig.catalogue.get("EUR/USD")
        limit_id = rig.submit("lim-1", qty="2", price="1.10010")
        market_id = rig.submit("mkt-1", qty="1", price=None, type="market", tif="ioc")

        rig.settle(lambda: rig.status(limit_id) == "filled")
        rig.settle(lambda: rig.status(market_id) == "rejected")

        fills = [e for e in rig.executions(limit_id) if e.kind == "fill"]
        assert [(e.venue, e.qty, e.price) for e in fills] == [
            ("executor", inst.qty_to_int(Decimal("2")), inst.price_to_int(Decimal("1.10010")))
        ]
        reason = rig.order_row(market_id).reason
        assert reason and "incorrect" in reason.lower(), reason  # executor's 35=3 text
        assert not [e for e in rig.executions(market_id) if e.kind == "fill"]
        assert rig.verify() == []
    finally:
        rig.close()
