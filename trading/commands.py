"""What the OMS is asked to do, and what it answers.

Commands are plain frozen values, validated into integers at the edge (``trading.validate``,
``trading.validate_accounts``, ``trading.validate_funding``) so that a batch of them can be
executed in one transaction.

Every command carries an ``actor`` (who asked: a user, ``risk-desk``, ``pipelines.fraud``;
empty means the OMS's own actor) and, where a person or a rule decides, a ``reason``; both are
keyword-only so that positional callers are unaffected, and the audit log records both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from trading.clients import ClientKind
from trading.funding import DepositMethod, DestinationKind
from trading.instrument import AccountType
from trading.orders import OrderRequest, OrderStatus
from trading.quotes import Quote
from trading.risk import AccountState
from trading.venues.base import ExecutionReport


@dataclass(frozen=True, slots=True)
class CreateClient:
    client_id: int
    kind: ClientKind
    name: str
    country: str
    email: str
    birth_date: dt.date | None = None  # persons
    lei: str | None = None  # entities
    national_id: str | None = None  # persons: MiFIR national client identifier
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class OpenAccount:
    account_id: int
    currency: str = "USD"
    tier: str = "retail"
    client_id: int | None = None  # None: an account from before clients (tests, simulation)
    account_type: AccountType = AccountType.MARGIN
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class SetLimits:
    """The account's own leverage and limits; replaces the whole set (None: the tier's)."""

    account_id: int
    leverage: int | None = None
    max_position_lots: Decimal | None = None
    max_order_lots: Decimal | None = None
    max_order_notional: Decimal | None = None  # account currency
    max_orders_per_second: int | None = None
    actor: str = field(default="", kw_only=True)
    reason: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class Deposit:
    account_id: int
    currency: str
    amount: int  # minor units, > 0
    ref: str
    method: DepositMethod | None = None  # None: a deposit from before methods (back office)
    instrument_fingerprint: str | None = None
    provider: str | None = None
    provider_ref: str | None = None  # with provider: the idempotency key
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class AddDestination:
    account_id: int
    kind: DestinationKind
    label: str
    instrument: str  # normalized IBAN (bank), fingerprint (card, e-wallet), address (crypto)
    currency: str
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class RequestWithdrawal:
    account_id: int
    currency: str
    amount: int
    destination_id: int | None = None  # required by the edge builder; None: legacy callers
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class HoldWithdrawal:
    withdrawal_id: int
    reason: str
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class ReleaseWithdrawal:
    withdrawal_id: int
    reason: str
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class DecideWithdrawal:
    withdrawal_id: int
    approve: bool
    reason: str = ""
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    request: OrderRequest
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class CancelOrder:
    account_id: int
    order_id: int
    actor: str = field(default="", kw_only=True)
    reason: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class AmendOrder:
    account_id: int
    order_id: int
    qty: int | None = None
    price: int | None = None
    trigger_price: int | None = None
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class ClosePosition:
    """A house-initiated market close that only reduces: ``qty`` in lot steps, None = all."""

    account_id: int
    symbol: str
    qty: int | None
    reason: str
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class ApplyReports:
    """Execution reports from an asynchronous venue (FIX), applied idempotently by exec id."""

    reports: Sequence[ExecutionReport]
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class QuoteUpdate:
    quote: Quote
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class ExpireDue:
    now_ns: int
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class Rollover:
    """The host's timer: record end-of-day marks and post financing for every cut-off passed
    up to ``now_ns`` (``trading.rollover``, ``trading.financing``)."""

    now_ns: int
    actor: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class SetAccountState:
    account_id: int
    state: AccountState
    actor: str = field(default="", kw_only=True)
    reason: str = field(default="", kw_only=True)


@dataclass(frozen=True, slots=True)
class HaltSymbol:
    symbol: str
    halted: bool
    actor: str = field(default="", kw_only=True)
    reason: str = field(default="", kw_only=True)


Command = (
    CreateClient | OpenAccount | SetLimits | Deposit | AddDestination | RequestWithdrawal
    | HoldWithdrawal | ReleaseWithdrawal | DecideWithdrawal | SubmitOrder | CancelOrder
    | AmendOrder | ClosePosition | ApplyReports | QuoteUpdate | ExpireDue | Rollover
    | SetAccountState | HaltSymbol
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
