"""Edge validation: a client's input, in decimal strings, into the integer commands.

Each problem raises its own ``InvalidInput`` subclass with a specific code and message, and
nothing is changed: validation happens before the OMS sees the command.

Every integer is bounded here to what the store holds (signed 64-bit columns; the slippage
bound is a 32-bit column), and every text field to its column and to printable characters.
A value the store cannot hold must be refused at the edge: inside a group commit it would
fail the whole batch, every other client's commands with it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TypeVar

from trading.bounds import check_text
from trading.catalogue import Catalogue
from trading.commands import (
    AmendOrder,
    CancelOrder,
    DecideWithdrawal,
    Deposit,
    OpenAccount,
    RequestWithdrawal,
)
from trading.errors import (
    InvalidAmount,
    InvalidExpiry,
    InvalidIdentifier,
    InvalidInput,
    InvalidOrder,
    InvalidPrice,
    InvalidSlippage,
    UnknownSymbol,
)
from trading.instrument import MAX_STORED_INT, Instrument
from trading.money import exponent, parse_decimal, to_minor_exact
from trading.orders import OrderRequest, OrderType, Side, TimeInForce

E = TypeVar("E", bound=StrEnum)

# FIX ClOrdID-friendly: printable, no spaces, bounded (``orders.client_order_id`` is 64).
# ``fullmatch``, not ``match`` with ``$``: ``$`` also matches before a trailing newline.
CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")
# ``orders.max_slippage_ticks`` is an INTEGER column: 32 bits on PostgreSQL.
MAX_SLIPPAGE_TICKS = 2**31 - 1
# One cash movement. Far below 2**63 so that the balances summing many of them stay storable:
# 10**15 minor units is ten trillion dollars, or ten million bitcoin.
MAX_AMOUNT_MINOR = 10**15
# Column lengths of the text a client chooses.
REF_LENGTH = 64  # ledger_txns.ref
REASON_LENGTH = 256  # kept in the audit payload; bounded so no client fills the log


def _enum(kind: type[E], value: object, what: str) -> E:
    try:
        return kind(str(value).lower())
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidOrder(f"{what} {value!r} is not one of: {allowed}") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def identifier(value: object, what: str) -> int:
    """A positive id that fits the store's 64-bit columns."""
    if not _is_int(value) or not 0 < value <= MAX_STORED_INT:  # type: ignore[operator]
        raise InvalidIdentifier(
            f"{what} must be a positive 64-bit integer, got {value!r}", field=what
        )
    return value  # type: ignore[return-value]


def text(value: object, what: str, max_length: int, *, empty: bool = False) -> str:
    """A client's free text: a string of at most ``max_length`` characters, none of them a
    control, format or separator character, with no white space at either end (``"dup\n"``,
    ``"dup "`` and ``"dup"`` must not become three keys): ``trading.bounds.check_text``."""
    return check_text(value, what, max_length, min_len=0 if empty else 1)


def currency(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"currency must be a currency code, got {value!r}", field="currency")
    exponent(value)  # raises InvalidInput for an unknown currency
    return value


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
    identifier(account_id, "account id")
    if not isinstance(client_order_id, str) or not CLIENT_ORDER_ID.fullmatch(client_order_id):
        raise InvalidIdentifier(
            f"client order id {client_order_id!r} must be 1-64 characters of letters, digits "
            "and ._:- starting with a letter or digit",
            field="client order id",
        )
    if not isinstance(symbol, str):
        raise UnknownSymbol(f"unknown symbol {symbol!r}", symbol=str(symbol))
    inst = catalogue.resolve(symbol)
    side_ = _enum(Side, side, "side")
    type_ = _enum(OrderType, type, "order type")
    tif_ = _enum(TimeInForce, tif, "time in force")
    qty_int = inst.qty_to_int(parse_decimal(qty, "quantity"))

    def px(value: object | None, what: str) -> int | None:
        if value is None:
            return None
        return _notional_bounded(inst, inst.price_to_int(parse_decimal(value, what)), what)

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
    if expire_ns is not None and (not _is_int(expire_ns) or not 0 < expire_ns <= MAX_STORED_INT):
        raise InvalidExpiry(
            f"expiry must be UTC nanoseconds in 1..{MAX_STORED_INT}, got {expire_ns!r}",
            field="expire_ns",
        )
    if type_ is OrderType.MARKET and tif_ is TimeInForce.GTD:
        raise InvalidOrder("a market order cannot be good till date")
    if max_slippage_ticks is not None and (
        not _is_int(max_slippage_ticks) or not 0 <= max_slippage_ticks <= MAX_SLIPPAGE_TICKS
    ):
        raise InvalidSlippage(
            f"max slippage must be a whole number of ticks in 0..{MAX_SLIPPAGE_TICKS}, "
            f"got {max_slippage_ticks!r}",
            field="max_slippage_ticks",
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


def _notional_bounded(inst: Instrument, price_int: int, what: str) -> int:
    # An order's filled notional (qty × price, summed over its fills) is a 64-bit column: a
    # price that would overflow it at the instrument's largest quantity is not a price.
    largest = inst.qty_to_int(inst.max_qty)
    if price_int * largest > MAX_STORED_INT:
        raise InvalidPrice(
            f"{inst.symbol}: {what} {inst.price_from_int(price_int)} is too large: "
            f"its notional at {inst.max_qty} lots does not fit the store",
            symbol=inst.symbol,
            field=what,
        )
    return price_int


def amount_minor(value: object, currency: str) -> int:
    """A positive cash amount, exact to the currency's minor unit, at most
    ``MAX_AMOUNT_MINOR`` minor units."""
    amount = parse_decimal(value, "amount")
    if amount <= 0:
        raise InvalidInput(f"amount must be positive, got {amount}")
    if amount.adjusted() > 40:  # a bound before scaling, so 1e999999 costs nothing
        raise InvalidAmount(f"amount {amount} {currency} is too large", field="amount")
    minor = to_minor_exact(amount, currency)
    return _amount_bounded(minor, currency)


def _amount_bounded(minor: object, currency_: str) -> int:
    if not _is_int(minor) or not 0 < minor <= MAX_AMOUNT_MINOR:  # type: ignore[operator]
        raise InvalidAmount(
            f"amount must be 1..{MAX_AMOUNT_MINOR} {currency_} minor units, got {minor!r}",
            field="amount",
            currency=currency_,
        )
    return minor  # type: ignore[return-value]


def open_account(
    account_id: object, currency_: object = "USD", tier: object = "retail"
) -> OpenAccount:
    return OpenAccount(
        identifier(account_id, "account id"), currency(currency_), text(tier, "tier", 32)
    )


def deposit(account_id: object, currency_: object, amount: object, ref: object) -> Deposit:
    """A deposit of ``amount`` (a decimal string, or an int of minor units) under the payment
    provider's reference ``ref``."""
    cur = currency(currency_)
    minor = _amount_bounded(amount, cur) if _is_int(amount) else amount_minor(amount, cur)
    return Deposit(identifier(account_id, "account id"), cur, minor,
                   text(ref, "deposit reference", REF_LENGTH))  # fmt: skip


def withdrawal_request(
    account_id: object, currency_: object, amount: object, destination_id: object
) -> RequestWithdrawal:
    """A withdrawal to a destination registered on the account (``AddDestination``)."""
    cur = currency(currency_)
    minor = _amount_bounded(amount, cur) if _is_int(amount) else amount_minor(amount, cur)
    return RequestWithdrawal(identifier(account_id, "account id"), cur, minor,
                             identifier(destination_id, "destination id"))  # fmt: skip


def withdrawal_decision(
    withdrawal_id: object, approve: object, reason: object = ""
) -> DecideWithdrawal:
    if not isinstance(approve, bool):
        raise InvalidInput(f"approve must be true or false, got {approve!r}", field="approve")
    return DecideWithdrawal(identifier(withdrawal_id, "withdrawal id"), approve,
                            text(reason, "reason", REASON_LENGTH, empty=True))  # fmt: skip


def cancel_order(account_id: object, order_id: object) -> CancelOrder:
    return CancelOrder(identifier(account_id, "account id"), identifier(order_id, "order id"))


def amend_order(
    catalogue: Catalogue,
    symbol: str,
    *,
    account_id: object,
    order_id: object,
    qty: object | None = None,
    price: object | None = None,
    trigger_price: object | None = None,
) -> AmendOrder:
    """New terms for an open order of ``symbol``, in decimal strings, on its grid."""
    if not isinstance(symbol, str):
        raise UnknownSymbol(f"unknown symbol {symbol!r}", symbol=str(symbol))
    inst = catalogue.resolve(symbol)
    if qty is None and price is None and trigger_price is None:
        raise InvalidOrder("an amend changes the quantity, the price or the trigger price")

    def px(value: object | None, what: str) -> int | None:
        if value is None:
            return None
        return _notional_bounded(inst, inst.price_to_int(parse_decimal(value, what)), what)

    return AmendOrder(
        identifier(account_id, "account id"),
        identifier(order_id, "order id"),
        None if qty is None else inst.qty_to_int(parse_decimal(qty, "quantity")),
        px(price, "price"),
        px(trigger_price, "trigger price"),
    )
