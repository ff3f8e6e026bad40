"""Specification of trading.house: a house close only reduces."""

from __future__ import annotations

import pytest

from trading.errors import InvalidOrder, NotFound
from trading.house import SKIPPED_CHECKS, close_quantity, close_request
from trading.orders import OrderType, Side, TimeInForce
from trading.risk import DenialCode
from trading.validate import CLIENT_ORDER_ID


def test_close_quantity_when_all_then_the_whole_position_on_the_other_side() -> None:
    assert close_quantity(150, None, "EUR/USD") == (Side.SELL, 150)
    assert close_quantity(-30, None, "EUR/USD") == (Side.BUY, 30)
    assert close_quantity(150, 50, "EUR/USD") == (Side.SELL, 50)


def test_close_quantity_when_it_would_reverse_or_is_flat_then_refused() -> None:
    with pytest.raises(InvalidOrder, match="only reduces"):
        close_quantity(100, 101, "EUR/USD")
    with pytest.raises(InvalidOrder):
        close_quantity(100, 0, "EUR/USD")
    with pytest.raises(NotFound):
        close_quantity(0, None, "EUR/USD")


def test_close_request_when_built_then_a_market_ioc_with_an_id_no_client_can_use() -> None:
    request = close_request(7, "EUR/USD", -30, None, 12)
    assert (request.side, request.qty, request.type, request.tif) == (
        Side.BUY, 30, OrderType.MARKET, TimeInForce.IOC,
    )  # fmt: skip
    assert request.client_order_id == ":house:12"
    assert not CLIENT_ORDER_ID.match(request.client_order_id)  # no client id can clash


def test_skipped_checks_when_listed_then_are_denial_codes_and_keep_halt_session_quote() -> None:
    codes = {code.value for code in DenialCode}
    assert codes >= SKIPPED_CHECKS
    assert {"symbol_halted", "session_closed", "no_quote"} <= codes - SKIPPED_CHECKS
