"""Pre-trade risk: each check returns ``None`` or a coded ``Denial`` with its numbers.

Denials are data, not exceptions: the OMS records them on the order (status ``denied``).
Checks run cheapest first; the first that fails decides.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from trading.config import TierLimits
from trading.instruments import AccountType, Instrument


class DenialCode(StrEnum):
    ACCOUNT_HALTED = "account_halted"
    REDUCING_ONLY = "reducing_only"
    RATE_LIMITED = "rate_limited"
    SYMBOL_RESTRICTED = "symbol_restricted"
    SYMBOL_HALTED = "symbol_halted"
    SESSION_CLOSED = "session_closed"
    NO_QUOTE = "no_quote"
    NO_CONVERSION_RATE = "no_conversion_rate"
    MAX_ORDER_QTY = "max_order_qty"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    POSITION_LIMIT = "position_limit"
    SHORT_SALE = "short_sale_not_allowed"
    INSUFFICIENT_MARGIN = "insufficient_margin"


class AccountState(StrEnum):
    ACTIVE = "active"
    REDUCING_ONLY = "reducing_only"
    HALTED = "halted"


@dataclass(frozen=True, slots=True)
class Denial:
    code: DenialCode
    message: str
    details: dict[str, str] = field(default_factory=dict)

    def reason(self) -> str:
        return f"{self.code.value}: {self.message}"


class RateLimiter:
    """At most ``limit`` orders per account in any one-second window (sliding log)."""

    __slots__ = ("_log",)

    def __init__(self) -> None:
        self._log: dict[int, deque[int]] = {}

    def allow(self, account_id: int, now_ns: int, limit: int) -> bool:
        log = self._log.get(account_id)
        if log is None:
            log = self._log[account_id] = deque(maxlen=max(limit, 1))
        horizon = now_ns - 1_000_000_000
        while log and log[0] <= horizon:
            log.popleft()
        if len(log) >= limit:
            return False
        log.append(now_ns)
        return True


def check_account_state(state: AccountState, reduces_only: bool) -> Denial | None:
    if state is AccountState.HALTED:
        return Denial(DenialCode.ACCOUNT_HALTED, "the account is halted")
    if state is AccountState.REDUCING_ONLY and not reduces_only:
        return Denial(
            DenialCode.REDUCING_ONLY, "the account may only reduce positions", {"state": state}
        )
    return None


def check_order_size(
    instrument: Instrument, qty_lots: Decimal, notional: Decimal, currency: str, limits: TierLimits
) -> Denial | None:
    if qty_lots > limits.max_order_lots:
        return Denial(
            DenialCode.MAX_ORDER_QTY,
            f"{qty_lots} lots exceeds the {limits.max_order_lots} lots allowed per order",
            {"qty_lots": str(qty_lots), "max_order_lots": str(limits.max_order_lots)},
        )
    if notional > limits.max_order_notional:
        return Denial(
            DenialCode.MAX_ORDER_NOTIONAL,
            f"notional {notional:.2f} {currency} exceeds {limits.max_order_notional} {currency}",
            {"notional": f"{notional:.2f}", "max_order_notional": str(limits.max_order_notional)},
        )
    return None


def check_position(
    instrument: Instrument, position_lots: Decimal, signed_qty_lots: Decimal, limits: TierLimits
) -> Denial | None:
    after = position_lots + signed_qty_lots
    if abs(after) > abs(position_lots) and abs(after) > limits.max_position_lots:
        return Denial(
            DenialCode.POSITION_LIMIT,
            f"position would be {after} lots, beyond the {limits.max_position_lots} lots limit",
            {"position_lots": str(position_lots), "after_lots": str(after),
             "max_position_lots": str(limits.max_position_lots)},
        )  # fmt: skip
    if instrument.account_type is AccountType.CASH and after < 0:
        return Denial(
            DenialCode.SHORT_SALE,
            f"{instrument.symbol} trades on a cash account: cannot sell more than the "
            f"{position_lots} held",
            {"position_lots": str(position_lots), "after_lots": str(after)},
        )
    return None


def check_margin(required: Decimal, free_margin: Decimal, currency: str) -> Denial | None:
    if required > free_margin:
        return Denial(
            DenialCode.INSUFFICIENT_MARGIN,
            f"needs {required:.2f} {currency} of margin and fees, {free_margin:.2f} free",
            {"required": f"{required:.2f}", "free_margin": f"{free_margin:.2f}"},
        )
    return None
