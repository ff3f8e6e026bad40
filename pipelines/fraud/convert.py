"""From what the OMS and the API write to what the features read: ``ml.events.Event``.

An OMS event (``docs/events.md``) becomes an ``Event`` of the labelled file's kinds
(deposit, withdrawal, destination added, order, fill), a change of a withdrawal's state
(held, released, approved, rejected: the flow tracks which withdrawals are pending), an
account's client (``account.opened``), or nothing (every other type). A login entry
(``docs/activity.md``) becomes a login ``Event``. Money is converted exactly (minor units ->
``Decimal``), quantities and prices through the catalogue; a field missing or of the wrong
kind raises ``Malformed`` with the reason the dead letter carries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from ml.events import METHODS, Event
from trading.catalogue import Catalogue
from trading.errors import InvalidInput
from trading.events import OutboxEvent
from trading.money import from_minor

# The OMS's deposit methods as the feature file names them.
_METHODS: Final = {
    "bank_transfer": "bank",
    "card": "card",
    "ewallet": "ewallet",
    "crypto": "crypto",
}
_SIDES: Final = frozenset({"buy", "sell"})
# A withdrawal's later events: the state each leaves it in.
WITHDRAWAL_STATES: Final = {
    "cash.withdrawal_held": "held",
    "cash.withdrawal_released": "requested",
    "cash.withdrawal_approved": "approved",
    "cash.withdrawal_rejected": "rejected",
}


class Malformed(ValueError):
    """An event or entry the flow cannot read; the message is the dead letter's reason."""


class NoClient(Malformed):
    """An event the features need a client for, of an account with none known."""


@dataclass(frozen=True, slots=True)
class Opened:
    """``account.opened``: the account's client (None for an account without one)."""

    account_id: int
    client_id: int | None


@dataclass(frozen=True, slots=True)
class WithdrawalMove:
    """A pending withdrawal held, released or decided."""

    account_id: int
    withdrawal_id: int
    state: str  # "held", "requested" (released), "approved", "rejected"


Converted = Event | Opened | WithdrawalMove | None


def _body(event: OutboxEvent) -> dict[str, Any]:
    try:
        body = json.loads(event.payload)
    except ValueError as exc:
        raise Malformed(f"payload is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise Malformed("payload is not a JSON object")
    return body


def _int(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if value is None:
        raise Malformed(f"{name} missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{name} is not an integer: {str(value)[:40]!r}")
    return value


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise Malformed(f"{name} missing")
    if not isinstance(value, str) or not value:
        raise Malformed(f"{name} is not a non-empty string: {str(value)[:40]!r}")
    return value


def _opt_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Malformed(f"{name} is not a string: {str(value)[:40]!r}")
    return value


def _money(body: Mapping[str, Any]) -> tuple[Decimal, str]:
    amount = _int(body, "amount")
    currency = _text(body, "currency")
    try:
        return from_minor(amount, currency), currency
    except InvalidInput:
        raise Malformed(f"currency {currency!r} unknown") from None


def _instrument(catalogue: Catalogue, body: Mapping[str, Any]) -> Any:
    symbol = _text(body, "symbol")
    try:
        return catalogue.get(symbol)
    except InvalidInput:
        raise Malformed(f"symbol {symbol!r} not in the catalogue") from None


def _side(body: Mapping[str, Any]) -> str:
    side = _text(body, "side")
    if side not in _SIDES:
        raise Malformed(f"side {side!r} is not buy or sell")
    return side


def convert_event(event: OutboxEvent, client_id: int | None, catalogue: Catalogue) -> Converted:
    """What ``event`` tells the flow. ``client_id``: the account's client as known so far
    (None: unknown, and the event then needs none — an ``account.opened``, or a type the
    flow does not read; otherwise ``Malformed``)."""
    kind = event.type
    if kind == "account.opened":
        body = _body(event)
        cid = body.get("client_id")
        if cid is not None and (isinstance(cid, bool) or not isinstance(cid, int)):
            raise Malformed(f"client_id is not an integer: {str(cid)[:40]!r}")
        return Opened(event.account_id, cid)
    if kind in WITHDRAWAL_STATES:
        body = _body(event)
        return WithdrawalMove(
            event.account_id, _int(body, "withdrawal_id"), WITHDRAWAL_STATES[kind]
        )
    if kind not in _READ and not kind.startswith("order."):
        return None
    if kind.startswith("order.") and kind != "order.submitted":
        body = _body(event)
        if "exec_id" not in body:
            return None  # a move of the order that filled nothing
        return _fill(event, body, _client(event, client_id), catalogue)
    body = _body(event)
    return _READ[kind](event, body, _client(event, client_id), catalogue)


def _client(event: OutboxEvent, client_id: int | None) -> int:
    if client_id is None:
        raise NoClient(f"account {event.account_id} has no known client")
    return client_id


def _deposit(ev: OutboxEvent, body: Mapping[str, Any], client: int, _cat: Catalogue) -> Event:
    amount, currency = _money(body)
    method = _opt_text(body, "method")
    if method is not None:
        if method not in _METHODS:
            raise Malformed(f"method {method!r} unknown")
        method = _METHODS[method]
    fingerprint = _opt_text(body, "instrument_fingerprint")
    return Event(ev.ts_ns, "deposit", client, ev.account_id, amount=amount, currency=currency,
                 method=method, instrument_id=fingerprint)  # fmt: skip


def _kind(body: Mapping[str, Any]) -> str:
    kind = _text(body, "kind")
    if kind not in METHODS:
        raise Malformed(f"kind {kind!r} is not one of {', '.join(METHODS)}")
    return kind


def _destination(ev: OutboxEvent, body: Mapping[str, Any], client: int, _cat: Catalogue) -> Event:
    dest = str(_int(body, "destination_id"))
    return Event(ev.ts_ns, "destination_added", client, ev.account_id, method=_kind(body),
                 currency=_opt_text(body, "currency"), destination_id=dest)  # fmt: skip


def _withdrawal(ev: OutboxEvent, body: Mapping[str, Any], client: int, _cat: Catalogue) -> Event:
    amount, currency = _money(body)
    return Event(ev.ts_ns, "withdrawal", client, ev.account_id, amount=amount, currency=currency,
                 method=_kind(body), destination_id=str(_int(body, "destination_id")),
                 withdrawal_id=_int(body, "withdrawal_id"))  # fmt: skip


def _order(ev: OutboxEvent, body: Mapping[str, Any], client: int, cat: Catalogue) -> Event:
    inst = _instrument(cat, body)
    price = body.get("price")
    if price is not None and (isinstance(price, bool) or not isinstance(price, int)):
        raise Malformed(f"price is not an integer: {str(price)[:40]!r}")
    return Event(ev.ts_ns, "order", client, ev.account_id, symbol=inst.symbol, side=_side(body),
                 qty=inst.qty_from_int(_int(body, "qty")),
                 price=None if price is None else inst.price_from_int(price))  # fmt: skip


def _fill(ev: OutboxEvent, body: Mapping[str, Any], client: int, cat: Catalogue) -> Event:
    inst = _instrument(cat, body)
    return Event(ev.ts_ns, "fill", client, ev.account_id, symbol=inst.symbol, side=_side(body),
                 qty=inst.qty_from_int(_int(body, "last_qty")),
                 price=inst.price_from_int(_int(body, "last_price")))  # fmt: skip


_READ: Final = {
    "cash.deposited": _deposit,
    "cash.destination_added": _destination,
    "cash.withdrawal_requested": _withdrawal,
    "order.submitted": _order,
}


def convert_login(fields: Mapping[str, str]) -> Event | None:
    """A login entry's ``Event``; None for an attempt naming no client (staff, an unknown
    user: nothing to score). ``Malformed`` for a time or a client that is not a number."""
    ts = fields.get("ts_ns", "")
    try:
        ts_ns = int(ts)
    except ValueError:
        raise Malformed(f"ts_ns is not an integer: {ts[:40]!r}") from None
    client = fields.get("client_id", "")
    if not client:
        return None
    try:
        client_id = int(client)
    except ValueError:
        raise Malformed(f"client_id is not an integer: {client[:40]!r}") from None
    success = fields.get("success", "")
    if success not in ("true", "false"):
        raise Malformed(f"success is not true or false: {success[:40]!r}")
    return Event(ts_ns, "login", client_id, None, device_id=fields.get("device_id") or None,
                 ip=fields.get("ip") or None, country=fields.get("country") or None,
                 success=success == "true")  # fmt: skip
