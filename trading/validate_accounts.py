"""Edge builders for clients, accounts, limits and house closes: input in, a command out.

Every builder checks what the store can hold (64-bit integers, text within its column, no
control characters) and what the domain allows, and raises a specific ``InvalidInput``; a
command that comes out can always be executed or refused without failing its batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from trading.accounts import MAX_LEVERAGE, LimitOverrides, check_overrides
from trading.bounds import INT64_MAX, check_actor, check_id, check_reason
from trading.catalogue import Catalogue
from trading.clients import Client, ClientKind, check_client
from trading.commands import ClosePosition, CreateClient, OpenAccount, SetLimits
from trading.errors import (
    InvalidAccount,
    InvalidClient,
    InvalidIdentifier,
    InvalidLimits,
    InvalidQuantity,
    UnknownSymbol,
)
from trading.instrument import AccountType
from trading.money import is_currency, parse_decimal


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _date(value: object) -> object:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise InvalidClient(
                f"birth_date: {value!r} is not a date YYYY-MM-DD", field="birth_date"
            ) from None
    return value


def create_client(
    *,
    client_id: int,
    kind: str,
    name: str,
    country: str,
    email: str,
    as_of: dt.date,
    birth_date: dt.date | str | None = None,
    lei: str | None = None,
    national_id: str | None = None,
    actor: str = "",
) -> CreateClient:
    """A ``CreateClient``: codes are upper-cased, the e-mail domain lower-cased, and every
    field checked (``trading.clients``); a person must be an adult on ``as_of``."""
    try:
        kind_ = ClientKind(str(kind).lower())
    except ValueError:
        raise InvalidClient(f"kind {kind!r} is not one of person, entity", field="kind") from None
    birth = _date(birth_date)
    client = check_client(
        Client(
            client_id=check_id(client_id, "client_id", InvalidClient),
            kind=kind_,
            name=name,
            country=_upper(country),  # type: ignore[arg-type]
            email=email,
            birth_date=birth,  # type: ignore[arg-type]
            lei=None if lei is None else _upper(lei),  # type: ignore[arg-type]
            national_id=None if national_id is None else _upper(national_id),  # type: ignore[arg-type]
        ),
        as_of,
    )
    return CreateClient(
        client.client_id, client.kind, client.name, client.country, client.email,
        client.birth_date, client.lei, client.national_id, actor=check_actor(actor),
    )  # fmt: skip


def open_account(
    *,
    account_id: int,
    client_id: int,
    currency: str,
    tiers: Iterable[str],
    tier: str = "retail",
    account_type: str = "margin",
    actor: str = "",
) -> OpenAccount:
    """An ``OpenAccount`` for a client, in a known currency, tier and account type."""
    account_id = check_id(account_id, "account_id", InvalidIdentifier)
    client_id = check_id(client_id, "client_id", InvalidIdentifier)
    if not isinstance(currency, str) or not is_currency(currency):
        raise InvalidAccount(f"unknown currency {currency!r}", field="currency")
    known = sorted(tiers)
    if tier not in known:
        raise InvalidAccount(f"tier {tier!r} is not one of {', '.join(known)}", field="tier")
    try:
        type_ = AccountType(str(account_type).lower())
    except ValueError:
        raise InvalidAccount(
            f"account type {account_type!r} is not one of {', '.join(AccountType)}",
            field="account_type",
        ) from None
    return OpenAccount(account_id, currency, tier, client_id, type_, actor=check_actor(actor))


def _decimal(value: object | None, field: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return parse_decimal(value, field)
    except Exception:
        raise InvalidLimits(f"{field} {value!r} is not a decimal number", field=field) from None


def set_limits(
    *,
    account_id: int,
    leverage: int | None = None,
    max_position_lots: object | None = None,
    max_order_lots: object | None = None,
    max_order_notional: object | None = None,
    max_orders_per_second: int | None = None,
    reason: str = "",
    actor: str = "",
) -> SetLimits:
    """A ``SetLimits``; the handler checks the leverage against the account's tier cap
    (``trading.accounts.check_leverage_override``), which only the engine knows."""
    account_id = check_id(account_id, "account_id", InvalidIdentifier)
    if leverage is not None and (type(leverage) is not int or not 1 <= leverage <= MAX_LEVERAGE):
        raise InvalidLimits(
            f"leverage must be an integer 1..{MAX_LEVERAGE}, got {leverage!r}", field="leverage"
        )
    overrides = check_overrides(
        LimitOverrides(
            _decimal(max_position_lots, "max_position_lots"),
            _decimal(max_order_lots, "max_order_lots"),
            _decimal(max_order_notional, "max_order_notional"),
            max_orders_per_second,
        )
    )
    return SetLimits(
        account_id, leverage, overrides.max_position_lots, overrides.max_order_lots,
        overrides.max_order_notional, overrides.max_orders_per_second,
        actor=check_actor(actor), reason=check_reason(reason),
    )  # fmt: skip


def close_position(
    catalogue: Catalogue,
    *,
    account_id: int,
    symbol: str,
    qty: object | None,
    reason: str,
    actor: str,
) -> ClosePosition:
    """A house ``ClosePosition``: ``qty`` in lots on the instrument's lot grid (a remainder
    below the order minimum may be closed), or None for the whole position; a reason and an
    actor are required, as the order records who closed it and why."""
    account_id = check_id(account_id, "account_id", InvalidIdentifier)
    if not isinstance(symbol, str):
        raise UnknownSymbol(f"unknown symbol {symbol!r}", symbol=str(symbol))
    inst = catalogue.resolve(symbol)
    qty_int: int | None = None
    if qty is not None:
        lots = parse_decimal(qty, "quantity")
        scaled = lots.scaleb(inst.qty_precision)
        if (
            lots <= 0
            or scaled != scaled.to_integral_value()
            or int(scaled) % inst.lot_int
            or scaled > INT64_MAX
        ):
            raise InvalidQuantity(
                f"{inst.symbol}: close quantity {qty} must be a positive multiple of the lot "
                f"size {inst.lot_size}",
                symbol=inst.symbol,
                quantity=str(qty),
            )
        qty_int = int(scaled)
    if not check_actor(actor):
        raise InvalidIdentifier("a house action names its actor", field="actor")
    return ClosePosition(
        account_id, inst.symbol, qty_int, check_reason(reason, required=True), actor=actor
    )
