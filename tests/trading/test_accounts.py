"""Specification of trading.accounts: account type, limit overrides and leverage."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from trading.accounts import (
    LimitOverrides,
    check_leverage_override,
    check_overrides,
    effective_leverage,
    effective_limits,
    finances_positions,
    short_allowed,
)
from trading.catalogue import default_catalogue
from trading.config import RiskConfig, TierLimits
from trading.errors import InvalidLimits
from trading.instrument import AccountType

CATALOGUE = default_catalogue()
RETAIL = RiskConfig().tiers["retail"]


def test_effective_limits_when_no_overrides_then_the_tier_limits() -> None:
    assert effective_limits(RETAIL, None) is RETAIL
    assert effective_limits(RETAIL, LimitOverrides()) is RETAIL


def test_effective_limits_when_some_overridden_then_those_replace_the_tier_in_both_ways() -> None:
    limits = effective_limits(
        RETAIL, LimitOverrides(max_order_lots=D("2"), max_orders_per_second=500)
    )
    assert isinstance(limits, TierLimits)
    assert limits.max_order_lots == D("2") < RETAIL.max_order_lots
    assert limits.max_orders_per_second == 500 > RETAIL.max_orders_per_second
    assert limits.max_position_lots == RETAIL.max_position_lots
    assert limits.max_order_notional == RETAIL.max_order_notional
    assert RETAIL.max_order_lots == D(20)  # the tier itself is untouched


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (LimitOverrides(max_position_lots=D(0)), "max_position_lots"),
        (LimitOverrides(max_order_lots=D("-1")), "max_order_lots"),
        (LimitOverrides(max_order_notional=D("1e15")), "max_order_notional"),
        (LimitOverrides(max_order_notional=D("NaN")), "max_order_notional"),
        (LimitOverrides(max_order_lots=D("0.000000001")), "max_order_lots"),
        (LimitOverrides(max_orders_per_second=0), "max_orders_per_second"),
        (LimitOverrides(max_orders_per_second=True), "max_orders_per_second"),
        (LimitOverrides(max_orders_per_second=10**6), "max_orders_per_second"),
    ],
)
def test_check_overrides_when_out_of_bounds_then_invalid_limits_names_the_field(
    overrides: LimitOverrides, field: str
) -> None:
    with pytest.raises(InvalidLimits) as info:
        check_overrides(overrides)
    assert info.value.to_dict()["field"] == field
    assert info.value.code == "invalid_limits"


def test_check_leverage_override_when_above_the_tier_cap_then_refused() -> None:
    assert check_leverage_override(None, 30) is None
    assert check_leverage_override(10, 30) == 10
    for bad in (0, 31, True, 2**70):
        with pytest.raises(InvalidLimits):
            check_leverage_override(bad, 30)


def test_effective_leverage_when_overridden_then_the_least_of_instrument_tier_and_account() -> None:
    eurusd, gold, btc = CATALOGUE.get("EUR/USD"), CATALOGUE.get("XAU/USD"), CATALOGUE.get("BTC/USD")
    assert effective_leverage(eurusd, 30) == 30
    assert effective_leverage(eurusd, 100) == 30  # the instrument's ESMA class
    assert effective_leverage(gold, 30) == 20
    assert effective_leverage(eurusd, 30, AccountType.MARGIN, 5) == 5
    assert effective_leverage(gold, 30, AccountType.MARGIN, 25) == 20
    assert effective_leverage(eurusd, 30, AccountType.CASH) == 1
    assert effective_leverage(btc, 30) == 1


def test_short_and_financing_when_cash_account_or_instrument_then_neither() -> None:
    eurusd, aapl = CATALOGUE.get("EUR/USD"), CATALOGUE.get("AAPL")
    assert short_allowed(AccountType.MARGIN, eurusd)
    assert not short_allowed(AccountType.CASH, eurusd)
    assert not short_allowed(AccountType.MARGIN, aapl)
    assert finances_positions(AccountType.MARGIN) and not finances_positions(AccountType.CASH)
