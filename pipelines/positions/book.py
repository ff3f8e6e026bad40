"""An account's book as the positions flow keeps it, from the OMS's events alone.

Cash, margin and withdrawals pending per currency, and per symbol the net position, its
cost and its open lots (FIFO, as ``docs/events.md`` "Rebuilding positions and margin from
fills alone" says). Every amount is an integer in the unit of the event that moved it; the
book never rounds. ``apply`` checks what it reads and raises ``BadEvent`` (the event is set
aside, the book unchanged) or ``OutOfStep`` (the book disagrees with the event: the
account is rebuilt from the store).

The state is small plain data (ints, strs, dicts), because it goes into the flow's
recovery snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trading.events import OutboxEvent


class BadEvent(ValueError):
    """An event the book cannot apply (a field missing or of the wrong type, an unknown
    type): it is dead-lettered with this message, and the book is unchanged."""


class OutOfStep(RuntimeError):
    """The event does not fit the book (a lot it closes is not open, the position it states
    differs): the account is rebuilt from the store."""


@dataclass(slots=True)
class Holding:
    """One symbol of an account: the net position, its cost and its open lots."""

    net: int = 0  # lot steps, signed
    cost: int = 0  # signed sum of remaining × open price
    # lot_id -> [remaining (signed), open price, margin held]; insertion order is FIFO order
    lots: dict[int, list[int]] = field(default_factory=dict)

    def __reduce__(self) -> tuple[type[Holding], tuple[int, int, dict[int, list[int]]]]:
        # Positional state pickles about three times faster than a slotted dataclass's
        # default (a dict of its slots per object), and books are pickled at every epoch.
        return (Holding, (self.net, self.cost, self.lots))


@dataclass(slots=True)
class AccountBook:
    account_id: int
    currency: str = ""  # "" until its ``account.opened`` (or a rebuild) says
    account_type: str = "margin"
    tier: str = ""
    state: str = "active"
    last_seq: int = 0
    cash: dict[str, int] = field(default_factory=dict)
    margin: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    holdings: dict[str, Holding] = field(default_factory=dict)

    def __reduce__(self) -> tuple[type[AccountBook], tuple[Any, ...]]:
        return (AccountBook, (self.account_id, self.currency, self.account_type, self.tier,
                              self.state, self.last_seq, self.cash, self.margin, self.pending,
                              self.holdings))  # fmt: skip

    @property
    def used_margin(self) -> int:
        return self.margin.get(self.currency, 0)


@dataclass(frozen=True, slots=True)
class Applied:
    """What an event moved: the symbols whose holding changed, whether money moved, and
    whether it is an order event of a house order (a stop-out's outcome)."""

    symbols: tuple[str, ...] = ()
    money: bool = False
    house_order: bool = False


NOTHING = Applied()
_NO_EFFECT = frozenset(
    {
        "cash.destination_added",
        "cash.withdrawal_held",
        "cash.withdrawal_released",
        "position.financing_skipped",
        "account.limits_set",
    }
)


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if type(value) is not int:  # bool is an int subclass and a float is not money
        raise BadEvent(f"field {key!r} must be an integer, got {value!r}"[:200])
    return value


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadEvent(f"field {key!r} must be a non-empty string, got {value!r}"[:200])
    return value


def _add(sums: dict[str, int], currency: str, amount: int) -> None:
    total = sums.get(currency, 0) + amount
    if total:
        sums[currency] = total
    else:
        sums.pop(currency, None)


def apply(book: AccountBook, event: OutboxEvent, body: dict[str, Any]) -> Applied:
    """Apply one event (already deduplicated, next in the account's sequence)."""
    kind = event.type
    if kind.startswith("order."):
        if "exec_id" in body:
            return _fill(book, body)
        return Applied(house_order=body.get("initiator") == "house")
    if kind.startswith("cash."):
        return _cash(book, kind, body)
    if kind == "account.opened":
        book.currency = _str(body, "currency")
        book.tier = _str(body, "tier")
        book.account_type = str(body.get("account_type") or "margin")
        return Applied(money=True)
    if kind == "account.state_changed":
        book.state = _str(body, "state")
        return Applied(money=True)
    if kind == "position.financed":
        amount = _int(body, "amount")
        if amount:
            _add(book.cash, _str(body, "currency"), amount)
        return Applied(money=bool(amount))
    if kind in _NO_EFFECT:
        return NOTHING
    raise BadEvent(f"unknown event type {kind!r}"[:200])


def _cash(book: AccountBook, kind: str, body: dict[str, Any]) -> Applied:
    if kind in _NO_EFFECT:
        return NOTHING
    amount = _int(body, "amount")
    currency = _str(body, "currency")
    if amount <= 0:
        raise BadEvent(f"{kind} amount must be positive, got {amount}")
    if kind == "cash.deposited":
        _add(book.cash, currency, amount)
    elif kind == "cash.withdrawal_requested":
        _add(book.cash, currency, -amount)
        _add(book.pending, currency, amount)
    elif kind == "cash.withdrawal_approved":
        _add(book.pending, currency, -amount)
    elif kind == "cash.withdrawal_rejected":
        _add(book.pending, currency, -amount)
        _add(book.cash, currency, amount)
    else:
        raise BadEvent(f"unknown event type {kind!r}"[:200])
    return Applied(money=True)


def _fill(book: AccountBook, body: dict[str, Any]) -> Applied:
    symbol = _str(body, "symbol")
    currency = _str(body, "currency")
    held, released = _int(body, "margin_held"), _int(body, "margin_released")
    realized, commission = _int(body, "realized"), _int(body, "commission")
    position = _int(body, "position")
    closed = body.get("closed_lots")
    opened = body.get("opened_lot")
    if not isinstance(closed, list) or not (opened is None or isinstance(opened, dict)):
        raise BadEvent("a fill needs closed_lots (a list) and opened_lot (an object or absent)")
    slices = [(_int(c, "lot_id"), _int(c, "qty"), _int(c, "margin_released")) for c in closed]
    new_lot = None
    if opened is not None:
        new_lot = (_int(opened, "lot_id"), _int(opened, "qty"), _int(opened, "price"),
                   _int(opened, "margin"))  # fmt: skip
    holding = book.holdings.get(symbol) or Holding()
    # Check every slice against the book before changing anything.
    for lot_id, qty, _ in slices:
        lot = holding.lots.get(lot_id)
        if lot is None or abs(qty) > abs(lot[0]) or (qty > 0) != (lot[0] > 0):
            raise OutOfStep(f"fill {body.get('exec_id')!r} closes {qty} of lot {lot_id}, "
                            f"which holds {lot[0] if lot else 'nothing'}")  # fmt: skip
    for lot_id, qty, margin_released in slices:
        lot = holding.lots[lot_id]
        lot[0] -= qty
        lot[2] -= margin_released
        holding.net -= qty
        holding.cost -= qty * lot[1]
        if lot[0] == 0:
            del holding.lots[lot_id]
    if new_lot is not None:
        lot_id, qty, price, margin = new_lot
        holding.lots[lot_id] = [qty, price, margin]
        holding.net += qty
        holding.cost += qty * price
    if holding.net != position:
        raise OutOfStep(f"fill {body.get('exec_id')!r} leaves {symbol} at {position}, "
                        f"the book at {holding.net}")  # fmt: skip
    if holding.net:
        book.holdings[symbol] = holding
    else:
        book.holdings.pop(symbol, None)
    _add(book.cash, currency, realized - commission - held + released)
    _add(book.margin, currency, held - released)
    return Applied((symbol,), True, body.get("initiator") == "house")
