"""What the OMS is asked to do, and what it answers.

Commands are plain frozen values, validated into integers at the edge (``trading.validate``)
so that a batch of them can be executed in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trading.orders import OrderRequest, OrderStatus
from trading.quotes import Quote
from trading.risk import AccountState
from trading.venues.base import ExecutionReport


@dataclass(frozen=True, slots=True)
class OpenAccount:
    account_id: int
    currency: str = "USD"
    tier: str = "retail"


@dataclass(frozen=True, slots=True)
class Deposit:
    account_id: int
    currency: str
    amount: int  # minor units, > 0
    ref: str


@dataclass(frozen=True, slots=True)
class RequestWithdrawal:
    account_id: int
    currency: str
    amount: int


@dataclass(frozen=True, slots=True)
class DecideWithdrawal:
    withdrawal_id: int
    approve: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    request: OrderRequest


@dataclass(frozen=True, slots=True)
class CancelOrder:
    account_id: int
    order_id: int


@dataclass(frozen=True, slots=True)
class AmendOrder:
    account_id: int
    order_id: int
    qty: int | None = None
    price: int | None = None
    trigger_price: int | None = None


@dataclass(frozen=True, slots=True)
class ApplyReports:
    """Execution reports from an asynchronous venue (FIX), applied idempotently by exec id."""

    reports: Sequence[ExecutionReport]


@dataclass(frozen=True, slots=True)
class QuoteUpdate:
    quote: Quote


@dataclass(frozen=True, slots=True)
class ExpireDue:
    now_ns: int


@dataclass(frozen=True, slots=True)
class SetAccountState:
    account_id: int
    state: AccountState


@dataclass(frozen=True, slots=True)
class HaltSymbol:
    symbol: str
    halted: bool


Command = (
    OpenAccount | Deposit | RequestWithdrawal | DecideWithdrawal | SubmitOrder | CancelOrder
    | AmendOrder | ApplyReports | QuoteUpdate | ExpireDue | SetAccountState | HaltSymbol
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OrderAck:
    order_id: int
    account_id: int
    client_order_id: str
    status: OrderStatus
    qty: int
    filled_qty: int
    filled_notional: int
    reason: str | None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Done:
    """A command that changed state; ``ref`` names what it created or touched."""

    ref: str
    detail: str = ""


Result = OrderAck | Done | Exception
