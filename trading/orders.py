"""Orders and their lifecycle.

The lifecycle is one table, ``TRANSITIONS``; ``Order.apply`` checks a move against it,
makes it, and appends the event to the order's history. Anything else raises
``InvalidStateTransition``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from trading.errors import InvalidStateTransition


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    GTC = "gtc"
    DAY = "day"
    IOC = "ioc"
    FOK = "fok"
    GTD = "gtd"


class Initiator(StrEnum):
    """Who placed an order: the client, or the house (a stop-out, a close of a halted
    account); a house order records its reason (``orders.house_reason``)."""

    CLIENT = "client"
    HOUSE = "house"


class OrderStatus(StrEnum):
    INITIALIZED = "initialized"
    DENIED = "denied"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TRIGGERED = "triggered"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    PENDING_REPLACE = "pending_replace"
    EXPIRED = "expired"


S = OrderStatus
_WORKING = (S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED)

TRANSITIONS: frozenset[tuple[OrderStatus, OrderStatus]] = frozenset(
    {
        (S.INITIALIZED, S.DENIED),
        (S.INITIALIZED, S.SUBMITTED),
        (S.SUBMITTED, S.ACCEPTED),
        (S.SUBMITTED, S.REJECTED),
        # Some venues fill or cancel (IOC/FOK) before they acknowledge.
        (S.SUBMITTED, S.PARTIALLY_FILLED),
        (S.SUBMITTED, S.FILLED),
        (S.SUBMITTED, S.CANCELED),
        (S.SUBMITTED, S.PENDING_CANCEL),
        (S.ACCEPTED, S.REJECTED),  # a stop whose market order breaches the slippage rule
        (S.ACCEPTED, S.TRIGGERED),
        (S.ACCEPTED, S.PARTIALLY_FILLED),
        (S.ACCEPTED, S.FILLED),
        (S.ACCEPTED, S.PENDING_CANCEL),
        (S.ACCEPTED, S.PENDING_REPLACE),
        (S.ACCEPTED, S.CANCELED),
        (S.ACCEPTED, S.EXPIRED),
        (S.TRIGGERED, S.REJECTED),
        (S.TRIGGERED, S.PARTIALLY_FILLED),
        (S.TRIGGERED, S.FILLED),
        (S.TRIGGERED, S.PENDING_CANCEL),
        (S.TRIGGERED, S.PENDING_REPLACE),
        (S.TRIGGERED, S.CANCELED),
        (S.TRIGGERED, S.EXPIRED),
        (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, S.FILLED),
        (S.PARTIALLY_FILLED, S.PENDING_CANCEL),
        (S.PARTIALLY_FILLED, S.PENDING_REPLACE),
        (S.PARTIALLY_FILLED, S.CANCELED),  # IOC remainder, or a cancel of the rest
        (S.PARTIALLY_FILLED, S.EXPIRED),
        # A cancel is a request: the venue may refuse it (back to the working state) or a
        # fill may race it.
        (S.PENDING_CANCEL, S.CANCELED),
        (S.PENDING_CANCEL, S.ACCEPTED),
        (S.PENDING_CANCEL, S.TRIGGERED),
        (S.PENDING_CANCEL, S.PARTIALLY_FILLED),
        (S.PENDING_CANCEL, S.FILLED),
        (S.PENDING_CANCEL, S.EXPIRED),
        # A replace is a request too: replaced (back to working with new terms), refused,
        # or overtaken by a fill, a cancel or expiry.
        (S.PENDING_REPLACE, S.ACCEPTED),
        (S.PENDING_REPLACE, S.TRIGGERED),
        (S.PENDING_REPLACE, S.PARTIALLY_FILLED),
        (S.PENDING_REPLACE, S.FILLED),
        (S.PENDING_REPLACE, S.PENDING_CANCEL),
        (S.PENDING_REPLACE, S.CANCELED),
        (S.PENDING_REPLACE, S.EXPIRED),
    }
)

TERMINAL: frozenset[OrderStatus] = frozenset(
    {S.DENIED, S.REJECTED, S.FILLED, S.CANCELED, S.EXPIRED}
)
WORKING: frozenset[OrderStatus] = frozenset(_WORKING)
_PENDING = frozenset({S.PENDING_CANCEL, S.PENDING_REPLACE})


def check_transition(current: OrderStatus, new: OrderStatus) -> None:
    if (current, new) not in TRANSITIONS:
        raise InvalidStateTransition(
            f"{current.value} -> {new.value}", from_status=current.value, to_status=new.value
        )


class OrderEvent(NamedTuple):
    """One move of an order; ``data`` holds what the move carried (a fill, a reason).

    A named tuple, not a frozen dataclass: as immutable, and cheaper to make (three per
    market order)."""

    order_id: int
    status: OrderStatus
    ts_ns: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a client asks for, already validated against the instrument (integers)."""

    account_id: int
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    qty: int
    price: int | None = None  # limit price, price-int units
    trigger_price: int | None = None  # stop trigger
    tif: TimeInForce = TimeInForce.GTC
    expire_ns: int | None = None
    # Slippage rule: the price the client saw, and how far the fill may stray from it.
    reference_price: int | None = None
    max_slippage_ticks: int | None = None

    def fingerprint(self) -> str:
        """Canonical text of the request: the same client order id must carry the same one."""
        # str() of each field, joined by "|" (an f-string formats int, None and str alike).
        return (
            f"{self.symbol}|{self.side._value_}|{self.type._value_}|{self.qty}|{self.price}|"
            f"{self.trigger_price}|{self.tif._value_}|{self.expire_ns}|{self.reference_price}|"
            f"{self.max_slippage_ticks}"
        )


@dataclass(slots=True)
class Order:
    order_id: int
    account_id: int
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    qty: int
    price: int | None
    trigger_price: int | None
    tif: TimeInForce
    expire_ns: int | None
    reference_price: int | None
    max_slippage_ticks: int | None
    fingerprint: str
    created_ns: int
    status: OrderStatus = OrderStatus.INITIALIZED
    filled_qty: int = 0
    # Sum of qty*price over fills; the average price is exact integer arithmetic.
    filled_notional: int = 0
    updated_ns: int = 0
    reason: str | None = None
    # The working state a pending cancel/replace returns to when the venue refuses it.
    resume_status: OrderStatus | None = None
    pending_qty: int | None = None
    pending_price: int | None = None
    pending_trigger_price: int | None = None
    history: list[OrderEvent] = field(default_factory=list)
    # A house order (``ClosePosition``) says so, and why.
    initiator: Initiator = Initiator.CLIENT
    house_reason: str | None = None
    # Where it was sent: the routing rule that chose (None: the OMS runs one venue, no
    # routing) and the venue (the B-book or an LP; None: no LP was live, rejected).
    route: str | None = None
    venue: str | None = None

    @classmethod
    def from_request(cls, order_id: int, request: OrderRequest, ts_ns: int) -> Order:
        return cls(
            order_id=order_id,
            account_id=request.account_id,
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            qty=request.qty,
            price=request.price,
            trigger_price=request.trigger_price,
            tif=request.tif,
            expire_ns=request.expire_ns,
            reference_price=request.reference_price,
            max_slippage_ticks=request.max_slippage_ticks,
            fingerprint=request.fingerprint(),
            created_ns=ts_ns,
            updated_ns=ts_ns,
        )

    @property
    def leaves_qty(self) -> int:
        return self.qty - self.filled_qty

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def apply(self, status: OrderStatus, ts_ns: int, **data: Any) -> OrderEvent:
        return self.apply_data(status, ts_ns, data)

    def apply_data(self, status: OrderStatus, ts_ns: int, data: dict[str, Any]) -> OrderEvent:
        """``apply`` with the move's data as a dict, which the event keeps (not copied)."""
        current = self.status
        if (current, status) not in TRANSITIONS:
            check_transition(current, status)  # raises
        if status in _PENDING and current in WORKING:
            self.resume_status = current
        self.status = status
        self.updated_ns = ts_ns
        event = OrderEvent(self.order_id, status, ts_ns, data)
        self.history.append(event)
        return event

    def add_fill(self, qty: int, price: int) -> None:
        """Account for a fill; the caller has already checked it does not overfill."""
        assert 0 < qty <= self.leaves_qty, (qty, self.leaves_qty)
        self.filled_qty += qty
        self.filled_notional += qty * price
