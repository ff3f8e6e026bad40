"""What a command handler is: a function of the OMS, the command and the batch's reads.

Handlers live in modules grouped by what they touch (``orders``, ``cash``, ``accounts``,
``house``),
each exporting ``HANDLERS``, a table keyed by command type; the engine dispatches with one
dictionary lookup per command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trading.accounts import LimitOverrides
from trading.commands import Result
from trading.config import TierLimits
from trading.funding import WithdrawalStatus
from trading.instrument import AccountType
from trading.positions import Position
from trading.risk import AccountState

if TYPE_CHECKING:
    from trading.oms.engine import OMS


@dataclass(slots=True)
class Known:
    """What a batch read from the store's history before it ran (``OMS._prefetch``)."""

    # (account id, client order id) -> the stored order's row, for retries of closed orders.
    orders: dict[tuple[int, str], Any] = field(default_factory=dict)
    # Exec ids already recorded (applied or refused).
    execs: set[str] = field(default_factory=set)
    # (provider, provider reference) -> the stored deposits row, for retried deposits.
    deposits: dict[tuple[str, str], Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Account:
    """An account as the OMS holds it in memory."""

    account_id: int
    currency: str
    tier: str
    state: AccountState
    cash_id: int = 0
    margin_id: int = 0
    positions: dict[str, Position] = field(default_factory=dict)
    client_id: int | None = None
    account_type: AccountType = AccountType.MARGIN
    # SetLimits: the account's own leverage and limits (None: the tier's), and the limits in
    # force with them, computed once when they change.
    leverage: int | None = None
    overrides: LimitOverrides | None = None
    limits: TierLimits | None = None


@dataclass(slots=True)
class _Withdrawal:
    withdrawal_id: int
    account_id: int
    currency: str
    amount: int
    requested_ns: int
    status: WithdrawalStatus = WithdrawalStatus.REQUESTED
    destination_id: int | None = None
    held_ns: int | None = None
    hold_reason: str | None = None
    released_ns: int | None = None
    release_reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Destination:
    """A registered withdrawal destination; ``display`` is all events and audit show."""

    destination_id: int
    account_id: int
    kind: str
    label: str
    currency: str
    instrument: str
    display: str


Handler = Callable[["OMS", Any, Known], Result]
