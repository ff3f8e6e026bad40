"""Edge validation: a client's order, in decimal strings, into an ``OrderRequest`` of integers.

Each problem raises its own ``InvalidInput`` subclass with a specific code and message, and
nothing is changed: validation happens before the OMS sees the command.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TypeVar

from trading.errors import InvalidIdentifier, InvalidInput, InvalidOrder, UnknownSymbol
from trading.instruments import Catalogue
from trading.money import parse_decimal, to_minor_exact
from trading.orders import OrderRequest, OrderType, Side, TimeInForce

E = TypeVar("E", bound=StrEnum)

# FIX ClOrdID-friendly: printable, no spaces, bounded.
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")


def _enum(kind: type[E], value: object, what: str) -> E:
    try:
        return kind(str(value).lower())
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidOrder(f"{what} {value!r} is not one of: {allowed}") from None


def order_request(
    catalogue: Catalogue,
    *,
    account_id: int,
    client_order_id: str,
    symbol: str,
    side: str,
    type: str = "market",
    qty: object,
    price: object | None = None,
    trigger_price: object | None = None,
    tif: str = "gtc",
    expire_ns: int | None = None,
    reference_price: object | None = None,
    max_slippage_ticks: int | None = None,
) -> OrderRequest:
    if not isinstance(account_id, int) or isinstance(account_id, bool) or account_id <= 0:
        raise InvalidIdentifier(f"account id must be a positive integer, got {account_id!r}")
    if not isinstance(client_order_id, str) or not CLIENT_ORDER_ID.match(client_order_id):
        raise InvalidIdentifier(
            f"client order id {client_order_id!r} must be 1-64 characters of letters, digits "
            "and ._:- starting with a letter or digit"
        )
    if not isinstance(symbol, str):
        raise UnknownSymbol(f"unknown symbol {symbol!r}", symbol=str(symbol))
    inst = catalogue.resolve(symbol)
    side_ = _enum(Side, side, "side")
    type_ = _enum(OrderType, type, "order type")
    tif_ = _enum(TimeInForce, tif, "time in force")
    qty_int = inst.qty_to_int(parse_decimal(qty, "quantity"))

    def px(value: object | None, what: str) -> int | None:
        return None if value is None else inst.price_to_int(parse_decimal(value, what))

    price_int = px(price, "price")
    trigger_int = px(trigger_price, "trigger price")
    ref_int = px(reference_price, "reference price")
    needs_price = type_ in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    needs_trigger = type_ in (OrderType.STOP, OrderType.STOP_LIMIT)
    if needs_price != (price_int is not None):
        raise InvalidOrder(
            f"a {type_.value} order {'needs' if needs_price else 'takes no'} limit price"
        )
    if needs_trigger != (trigger_int is not None):
        raise InvalidOrder(
            f"a {type_.value} order {'needs' if needs_trigger else 'takes no'} trigger price"
        )
    if (tif_ is TimeInForce.GTD) != (expire_ns is not None):
        raise InvalidOrder("an expiry time goes with time in force gtd, and only with it")
    if type_ is OrderType.MARKET and tif_ is TimeInForce.GTD:
        raise InvalidOrder("a market order cannot be good till date")
    if max_slippage_ticks is not None and (
        not isinstance(max_slippage_ticks, int) or max_slippage_ticks < 0
    ):
        raise InvalidOrder(
            f"max slippage must be a whole number of ticks ≥ 0, got {max_slippage_ticks!r}"
        )
    return OrderRequest(
        account_id=account_id,
        client_order_id=client_order_id,
        symbol=inst.symbol,
        side=side_,
        type=type_,
        qty=qty_int,
        price=price_int,
        trigger_price=trigger_int,
        tif=tif_,
        expire_ns=expire_ns,
        reference_price=ref_int,
        max_slippage_ticks=max_slippage_ticks,
    )


def amount_minor(value: object, currency: str) -> int:
    """A positive cash amount, exact to the currency's minor unit."""
    amount = parse_decimal(value, "amount")
    if amount <= 0:
        raise InvalidInput(f"amount must be positive, got {amount}")
    return to_minor_exact(amount, currency)
