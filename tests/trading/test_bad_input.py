"""Bad input gets a specific error, with its code, and changes nothing in the store.

Each case runs on SQLite and PostgreSQL against a store that already holds something (two
funded accounts, a filled order and a resting one), and compares every table's row count,
the cached balances, the orders and the audit head before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.trading.builders import Rig, make_rig, store_snapshot
from trading import validate
from trading.commands import AmendOrder, CancelOrder, Deposit, RequestWithdrawal
from trading.errors import (
    BourseError,
    DestinationNotRegistered,
    InsufficientFunds,
    InvalidAmount,
    InvalidExpiry,
    InvalidIdentifier,
    InvalidInput,
    InvalidOrder,
    InvalidPrice,
    InvalidQuantity,
    InvalidSlippage,
    InvalidText,
    NotFound,
    UnknownSymbol,
)
from trading.validate import amount_minor

# What a client sends, as the API would pass it on: one field wrong at a time.
BAD_ORDERS: dict[str, tuple[dict[str, Any], type[BourseError], str]] = {
    "unknown symbol": ({"symbol": "EUR/XYZ"}, UnknownSymbol, "unknown_symbol"),
    "symbol not a string": ({"symbol": 42}, UnknownSymbol, "unknown_symbol"),
    "negative price": ({"type": "limit", "price": "-1.10000"}, InvalidPrice, "invalid_price"),
    "zero price": ({"type": "limit", "price": "0"}, InvalidPrice, "invalid_price"),
    "off-tick price": ({"type": "limit", "price": "1.100005"}, InvalidPrice, "invalid_price"),
    "off-tick trigger": (
        {"type": "stop", "trigger_price": "1.1000001"},
        InvalidPrice,
        "invalid_price",
    ),
    "price not a number": ({"type": "limit", "price": "1,1"}, InvalidInput, "invalid_input"),
    "qty not a lot multiple": ({"qty": "0.015"}, InvalidQuantity, "invalid_quantity"),
    "qty below minimum": (
        {"symbol": "BTC/USDT", "qty": "0.00005"},
        InvalidQuantity,
        "invalid_quantity",
    ),
    "qty above maximum": ({"qty": "50.01"}, InvalidQuantity, "invalid_quantity"),
    "zero qty": ({"qty": "0"}, InvalidQuantity, "invalid_quantity"),
    "negative qty": ({"qty": "-1"}, InvalidQuantity, "invalid_quantity"),
    "float qty": ({"qty": 1.0}, InvalidInput, "invalid_input"),
    "float price": ({"type": "limit", "price": 1.1}, InvalidInput, "invalid_input"),
    "empty client order id": ({"client_order_id": ""}, InvalidIdentifier, "invalid_identifier"),
    "client order id with spaces": (
        {"client_order_id": "my order"},
        InvalidIdentifier,
        "invalid_identifier",
    ),
    "client order id of 65 characters": (
        {"client_order_id": "a" * 65},
        InvalidIdentifier,
        "invalid_identifier",
    ),
    "client order id not a string": (
        {"client_order_id": 12345},
        InvalidIdentifier,
        "invalid_identifier",
    ),
    "client order id None": ({"client_order_id": None}, InvalidIdentifier, "invalid_identifier"),
    "zero account id": ({"account_id": 0}, InvalidIdentifier, "invalid_identifier"),
    "negative account id": ({"account_id": -3}, InvalidIdentifier, "invalid_identifier"),
    "account id as text": ({"account_id": "1"}, InvalidIdentifier, "invalid_identifier"),
    "account id as bool": ({"account_id": True}, InvalidIdentifier, "invalid_identifier"),
    "limit without price": ({"type": "limit"}, InvalidOrder, "invalid_order"),
    "market with price": ({"price": "1.10000"}, InvalidOrder, "invalid_order"),
    "stop without trigger": ({"type": "stop"}, InvalidOrder, "invalid_order"),
    "unknown side": ({"side": "short"}, InvalidOrder, "invalid_order"),
    "unknown type": ({"type": "iceberg"}, InvalidOrder, "invalid_order"),
    "unknown time in force": ({"tif": "forever"}, InvalidOrder, "invalid_order"),
    "gtd without expiry": (
        {"type": "limit", "price": "1.09000", "tif": "gtd"},
        InvalidOrder,
        "invalid_order",
    ),
    "negative slippage bound": ({"max_slippage_ticks": -1}, InvalidSlippage, "invalid_slippage"),
    # Values that pass every business rule but that the store cannot hold.
    "gtd expiry of 10**30 ns": (
        {"type": "limit", "price": "1.09000", "tif": "gtd", "expire_ns": 10**30},
        InvalidExpiry,
        "invalid_expiry",
    ),
    "gtd expiry of 2**63 ns": (
        {"type": "limit", "price": "1.09000", "tif": "gtd", "expire_ns": 2**63},
        InvalidExpiry,
        "invalid_expiry",
    ),
    "gtd expiry not an integer": (
        {"type": "limit", "price": "1.09000", "tif": "gtd", "expire_ns": "soon"},
        InvalidExpiry,
        "invalid_expiry",
    ),
    "slippage bound of 10**30 ticks": (
        {"max_slippage_ticks": 10**30},
        InvalidSlippage,
        "invalid_slippage",
    ),
    "slippage bound beyond a 32-bit column": (
        {"max_slippage_ticks": 2**31},
        InvalidSlippage,
        "invalid_slippage",
    ),
    "price overflowing once scaled": (
        {"type": "limit", "price": "1e30"},
        InvalidPrice,
        "invalid_price",
    ),
    "price whose notional overflows": (
        {"type": "limit", "price": "92233720368547.75807"},
        InvalidPrice,
        "invalid_price",
    ),
    "reference price overflowing once scaled": (
        {"reference_price": "1e25"},
        InvalidPrice,
        "invalid_price",
    ),
    "quantity overflowing once scaled": ({"qty": "1e30"}, InvalidQuantity, "invalid_quantity"),
    "account id beyond 64 bits": ({"account_id": 2**63}, InvalidIdentifier, "invalid_identifier"),
    "client order id with a trailing newline": (
        {"client_order_id": "filled-1\n"},
        InvalidIdentifier,
        "invalid_identifier",
    ),
    "client order id of 64 characters and a newline": (
        {"client_order_id": "a" * 64 + "\n"},
        InvalidIdentifier,
        "invalid_identifier",
    ),
    "client order id with a NUL": (
        {"client_order_id": "abc\x00"},
        InvalidIdentifier,
        "invalid_identifier",
    ),
}


@pytest.fixture
def rig(store_dsn: str) -> Rig:
    """A store with history: two funded accounts, a filled order, a resting limit order."""
    rig = make_rig(store_dsn)
    rig.open_accounts(1, 2)
    assert (rig.destination(1), rig.destination(2)) == (1, 2)
    rig.oms.execute_one(rig.submit(1, "filled-1", qty="1"))
    rig.oms.execute_one(rig.submit(1, "resting-1", type="limit", price="1.09000"))
    return rig


def assert_refused_and_unchanged(
    rig: Rig, act: Callable[[], Any], error: type[BourseError], code: str
) -> None:
    before = store_snapshot(rig.engine)
    rig.clock.advance(1_000_000)
    with pytest.raises(error) as caught:
        act()
    assert type(caught.value) is error, repr(caught.value)
    assert caught.value.code == code
    assert caught.value.to_dict()["code"] == code
    assert store_snapshot(rig.engine) == before


@pytest.mark.parametrize("case", list(BAD_ORDERS))
def test_submit_when_input_is_bad_then_specific_error_and_nothing_changes(
    rig: Rig, case: str
) -> None:
    fields, error, code = BAD_ORDERS[case]
    request: dict[str, Any] = {
        "account_id": 1,
        "client_order_id": "new-1",
        "symbol": "EUR/USD",
        "side": "buy",
    }
    request.update({"qty": "1", **fields})

    def act() -> None:
        r = dict(request)
        cmd = rig.submit(r.pop("account_id"), r.pop("client_order_id"), **r)
        rig.oms.execute_one(cmd)

    assert_refused_and_unchanged(rig, act, error, code)


def _float(value: float) -> Any:
    """A float where the types say int: what a careless caller might pass."""
    return value


BAD_CASH: dict[str, tuple[Callable[[], Any], type[BourseError], str]] = {
    "deposit of zero": (lambda: Deposit(1, "USD", 0, "d0"), InvalidInput, "invalid_input"),
    "negative deposit": (lambda: Deposit(1, "USD", -100, "d1"), InvalidInput, "invalid_input"),
    "float deposit": (lambda: Deposit(1, "USD", _float(10.5), "d2"), InvalidInput, "invalid_input"),
    "deposit in unknown currency": (
        lambda: Deposit(1, "XYZ", 100, "d3"),
        InvalidInput,
        "invalid_input",
    ),
    "deposit to unknown account": (lambda: Deposit(99, "USD", 100, "d4"), NotFound, "not_found"),
    "withdrawal of zero": (
        lambda: RequestWithdrawal(1, "USD", 0, 1),
        InvalidInput,
        "invalid_input",
    ),
    "float withdrawal": (
        lambda: RequestWithdrawal(1, "USD", _float(0.5), 1),
        InvalidInput,
        "invalid_input",
    ),
    "withdrawal beyond funds": (
        lambda: RequestWithdrawal(2, "USD", 10_000_001, 2),
        InsufficientFunds,
        "insufficient_funds",
    ),
    "withdrawal of cash held as margin": (
        lambda: RequestWithdrawal(1, "USD", 10_000_000, 1),
        InsufficientFunds,
        "insufficient_funds",
    ),
    "withdrawal to no destination": (
        lambda: RequestWithdrawal(1, "USD", 100),
        DestinationNotRegistered,
        "destination_not_registered",
    ),
    "withdrawal to an unregistered destination": (
        lambda: RequestWithdrawal(1, "USD", 100, 99),
        DestinationNotRegistered,
        "destination_not_registered",
    ),
    "withdrawal to another account's destination": (
        lambda: RequestWithdrawal(1, "USD", 100, 2),
        DestinationNotRegistered,
        "destination_not_registered",
    ),
    "withdrawal in another currency than its destination's": (
        lambda: RequestWithdrawal(1, "EUR", 100, 1),
        DestinationNotRegistered,
        "destination_not_registered",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASH))
def test_cash_when_input_is_bad_then_specific_error_and_nothing_changes(
    rig: Rig, case: str
) -> None:
    make, error, code = BAD_CASH[case]
    assert_refused_and_unchanged(rig, lambda: rig.oms.execute_one(make()), error, code)


@pytest.mark.parametrize(
    ("text", "error"),
    [("0", "positive"), ("-5", "positive"), ("10.001", "decimal places"), ("ten", "number")],
)
def test_amount_when_zero_negative_or_too_fine_then_invalid_input(text: str, error: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        amount_minor(text, "USD")
    assert caught.value.code == "invalid_input"
    assert error in caught.value.message


def test_amount_when_float_then_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="float"):
        amount_minor(10.5, "USD")


def _resting(rig: Rig) -> int:
    order = next(o for o in rig.oms._open.values() if o.client_order_id == "resting-1")
    return order.order_id


BAD_ORDER_COMMANDS: dict[str, tuple[Callable[[Rig], Any], type[BourseError], str]] = {
    "cancel of unknown order": (lambda rig: CancelOrder(1, 999), NotFound, "not_found"),
    "cancel of a filled order": (lambda rig: CancelOrder(1, 1), NotFound, "not_found"),
    "cancel from another account": (
        lambda rig: CancelOrder(2, _resting(rig)),
        NotFound,
        "not_found",
    ),
    "amend of unknown order": (lambda rig: AmendOrder(1, 999, qty=200), NotFound, "not_found"),
    "amend from another account": (
        lambda rig: AmendOrder(2, _resting(rig), qty=200),
        NotFound,
        "not_found",
    ),
    "amend to a negative price": (
        lambda rig: AmendOrder(1, _resting(rig), price=-109_000),
        InvalidPrice,
        "invalid_price",
    ),
    "amend to a zero price": (
        lambda rig: AmendOrder(1, _resting(rig), price=0),
        InvalidPrice,
        "invalid_price",
    ),
    "amend to a float qty": (
        lambda rig: AmendOrder(1, _resting(rig), qty=_float(1.5)),
        InvalidInput,
        "invalid_input",
    ),
    "amend above the instrument's maximum": (
        lambda rig: AmendOrder(1, _resting(rig), qty=5_001),
        InvalidQuantity,
        "invalid_quantity",
    ),
    "amend of a trigger on a limit order": (
        lambda rig: AmendOrder(1, _resting(rig), trigger_price=110_000),
        InvalidOrder,
        "invalid_order",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ORDER_COMMANDS))
def test_cancel_or_amend_when_bad_then_specific_error_and_nothing_changes(
    rig: Rig, case: str
) -> None:
    make, error, code = BAD_ORDER_COMMANDS[case]
    assert_refused_and_unchanged(rig, lambda: rig.oms.execute_one(make(rig)), error, code)


# Cash commands as the edge builds them (``trading.validate``), then executed: the value the
# store could not hold is refused before the OMS, and nothing changes.
EDGE_CASH: dict[str, tuple[Callable[[], Any], type[BourseError], str]] = {
    "deposit of 10**25 USD": (
        lambda: validate.deposit(1, "USD", "1" + "0" * 25, "big-1"),
        InvalidAmount,
        "invalid_amount",
    ),
    "deposit of 10**25 USD in minor units": (
        lambda: validate.deposit(1, "USD", 10**27, "big-2"),
        InvalidAmount,
        "invalid_amount",
    ),
    "deposit of 1e999999": (
        lambda: validate.deposit(1, "USD", "1e999999", "big-3"),
        InvalidAmount,
        "invalid_amount",
    ),
    "deposit with a reference of 65 characters": (
        lambda: validate.deposit(1, "USD", "10", "r" * 65),
        InvalidText,
        "invalid_text",
    ),
    "deposit with a reference ending in a newline": (
        lambda: validate.deposit(1, "USD", "10", "seed-1\n"),
        InvalidText,
        "invalid_text",
    ),
    "deposit with an empty reference": (
        lambda: validate.deposit(1, "USD", "10", ""),
        InvalidText,
        "invalid_text",
    ),
    "deposit in a currency that is not text": (
        lambda: validate.deposit(1, ["USD"], "10", "x"),
        InvalidInput,
        "invalid_input",
    ),
    "deposit to an account id beyond 64 bits": (
        lambda: validate.deposit(2**64, "USD", "10", "x"),
        InvalidIdentifier,
        "invalid_identifier",
    ),
    "withdrawal of 10**25 USD": (
        lambda: validate.withdrawal_request(1, "USD", "1" + "0" * 25, 1),
        InvalidAmount,
        "invalid_amount",
    ),
    "withdrawal decision with a control character in its reason": (
        lambda: validate.withdrawal_decision(1, True, "ok\x1b[2J"),
        InvalidText,
        "invalid_text",
    ),
    "withdrawal decision of an id beyond 64 bits": (
        lambda: validate.withdrawal_decision(2**63, False, "no"),
        InvalidIdentifier,
        "invalid_identifier",
    ),
    "account opened with an id beyond 64 bits": (
        lambda: validate.open_account(2**63, "USD", "retail"),
        InvalidIdentifier,
        "invalid_identifier",
    ),
    "account opened with a tier carrying a newline": (
        lambda: validate.open_account(5, "USD", "retail\n"),
        InvalidText,
        "invalid_text",
    ),
    "cancel of an order id beyond 64 bits": (
        lambda: validate.cancel_order(1, 10**30),
        InvalidIdentifier,
        "invalid_identifier",
    ),
}


@pytest.mark.parametrize("case", list(EDGE_CASH))
def test_cash_when_value_cannot_be_stored_then_specific_error_and_nothing_changes(
    rig: Rig, case: str
) -> None:
    make, error, code = EDGE_CASH[case]
    assert_refused_and_unchanged(rig, lambda: rig.oms.execute([make()]), error, code)


def test_amend_when_price_overflows_the_store_then_invalid_price_and_nothing_changes(
    rig: Rig,
) -> None:
    def act() -> None:
        cmd = validate.amend_order(rig.catalogue, "EUR/USD", account_id=1,
                                   order_id=_resting(rig), price="1e20")  # fmt: skip
        rig.oms.execute([cmd])

    assert_refused_and_unchanged(rig, act, InvalidPrice, "invalid_price")


def test_edge_builders_when_values_fit_then_the_oms_executes_them(rig: Rig) -> None:
    deposit = validate.deposit(2, "USD", "10.25", "psp-ref-1")
    assert deposit.amount == 1025
    withdrawal = validate.withdrawal_request(2, "USD", 500, 2)
    amend = validate.amend_order(rig.catalogue, "EUR/USD", account_id=1,
                                 order_id=_resting(rig), price="1.08000")  # fmt: skip
    results = rig.oms.execute([deposit, withdrawal, amend])
    assert not any(isinstance(r, Exception) for r in results), results
    assert rig.oms.cash_available(2) == 10_000_000 + 1025 - 500


def test_client_order_id_when_it_differs_only_by_a_newline_then_refused_not_a_second_order(
    rig: Rig,
) -> None:
    with pytest.raises(InvalidIdentifier):
        rig.submit(1, "filled-1\n")
    assert sum(o.client_order_id.startswith("filled-1") for o in _orders(rig)) == 1


def _orders(rig: Rig) -> list[Any]:
    from sqlalchemy import select

    from trading.store import schema as s

    with rig.engine.connect() as conn:
        return list(conn.execute(select(s.orders)))
