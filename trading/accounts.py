"""Accounts: the account type, and per-account leverage and limits over the tier's.

Two independent settings describe an account:

- ``tier`` (``retail``, ``professional``; ``RiskConfig.tiers``) is the client's regulatory
  category and risk tier: it sets the default limits and the leverage cap (ESMA: retail
  1:30 at most).
- ``account_type`` (``AccountType``: ``margin`` or ``cash``, the same enum an instrument's
  catalogue entry uses) says how the account funds positions. A margin account trades
  margin instruments on leverage and cash instruments fully funded; a cash account funds
  every position in full (leverage 1) and cannot sell short, on any instrument, and pays
  or earns no financing (nothing is borrowed). Old accounts are margin accounts.

Per account, ``SetLimits`` may set a leverage and any of the tier's limits. An override
replaces the tier's value in either direction (a bespoke limit for one client) except the
leverage, which may only lower the tier's cap: the cap is regulatory. ``SetLimits`` replaces
the whole set: a field left None falls back to the tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from trading.config import TierLimits
from trading.errors import InvalidLimits
from trading.instrument import AccountType, Instrument

__all__ = [
    "MAX_LEVERAGE",
    "AccountType",
    "LimitOverrides",
    "check_leverage_override",
    "check_overrides",
    "effective_leverage",
    "effective_limits",
    "finances_positions",
    "short_allowed",
]

MAX_LEVERAGE: Final = 1000
# Bounds that keep an override storable and sane: lots and notionals are Decimal text in the
# store (``account_limits``), so bound their size and their decimals.
_MAX_LIMIT: Final = Decimal(10) ** 15
_MAX_DECIMALS: Final = 8
MAX_ORDERS_PER_SECOND: Final = 100_000


@dataclass(frozen=True, slots=True)
class LimitOverrides:
    """An account's own limits; None keeps the tier's value."""

    max_position_lots: Decimal | None = None
    max_order_lots: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_orders_per_second: int | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__)


def _check_decimal(name: str, value: Decimal | None) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidLimits(f"{name} must be a finite Decimal, got {value!r}", field=name)
    if value <= 0 or value >= _MAX_LIMIT:
        raise InvalidLimits(f"{name} must be > 0 and < 10**15, got {value}", field=name)
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > _MAX_DECIMALS:
        raise InvalidLimits(f"{name} has more than {_MAX_DECIMALS} decimals: {value}", field=name)


def check_overrides(overrides: LimitOverrides) -> LimitOverrides:
    """``overrides`` if each value is positive, bounded and storable; else InvalidLimits."""
    _check_decimal("max_position_lots", overrides.max_position_lots)
    _check_decimal("max_order_lots", overrides.max_order_lots)
    _check_decimal("max_order_notional", overrides.max_order_notional)
    rate = overrides.max_orders_per_second
    if rate is not None and (type(rate) is not int or not 1 <= rate <= MAX_ORDERS_PER_SECOND):
        raise InvalidLimits(
            f"max_orders_per_second must be an integer 1..{MAX_ORDERS_PER_SECOND}, got {rate!r}",
            field="max_orders_per_second",
        )
    return overrides


def effective_limits(tier_limits: TierLimits, overrides: LimitOverrides | None) -> TierLimits:
    """The tier's limits with the account's overrides in their place."""
    if overrides is None or overrides.empty:
        return tier_limits
    changes = {
        name: getattr(overrides, name)
        for name in LimitOverrides.__slots__
        if getattr(overrides, name) is not None
    }
    return tier_limits.model_copy(update=changes)


def check_leverage_override(leverage: int | None, tier_cap: int) -> int | None:
    """A per-account leverage: an integer from 1 to the tier's cap, or None (the tier's)."""
    if leverage is None:
        return None
    if type(leverage) is not int or not 1 <= leverage <= min(tier_cap, MAX_LEVERAGE):
        raise InvalidLimits(
            f"leverage must be an integer from 1 to the tier's cap {tier_cap}, got {leverage!r}",
            field="leverage",
            tier_cap=tier_cap,
        )
    return leverage


def effective_leverage(
    instrument: Instrument,
    tier_cap: int,
    account_type: AccountType = AccountType.MARGIN,
    override: int | None = None,
) -> int:
    """The leverage a position in ``instrument`` gets: 1 on a cash account or for a cash
    instrument, else the least of the instrument's, the tier's and the account's."""
    if account_type is AccountType.CASH or instrument.account_type is AccountType.CASH:
        return 1
    cap = min(instrument.max_leverage, tier_cap)
    if override is not None:
        cap = min(cap, override)
    return max(1, cap)


def short_allowed(account_type: AccountType, instrument: Instrument) -> bool:
    """Whether a position may go below zero: only a margin instrument on a margin account."""
    return account_type is AccountType.MARGIN and instrument.account_type is AccountType.MARGIN


def finances_positions(account_type: AccountType) -> bool:
    """Whether the account's positions pay or earn financing (swap) at the daily cut-off:
    a cash account borrows nothing (and cash instruments have zero rates in the catalogue)."""
    return account_type is AccountType.MARGIN
