"""trading.risk over plain inputs: each pre-trade check alone, and the margin arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from trading.catalogue import default_catalogue
from trading.config import FeeSchedule, TierLimits
from trading.instrument import AccountType, Instrument
from trading.money import to_minor
from trading.orders import OrderRequest, OrderType, Side
from trading.positions import Lot, Position
from trading.quotes import Quote
from trading.risk import (
    AccountState,
    Denial,
    DenialCode,
    Market,
    RateLimiter,
    check_order,
    commission,
    free_margin,
    leverage,
    margin_held,
    opening_qty,
    required_margin,
    unrealized,
)

CAT = default_catalogue()
EURUSD = CAT.get("EUR/USD")  # 1 lot = 100 qty units; price 1.10010 = 110010
USDJPY = CAT.get("USD/JPY")  # price 150.020 = 150020
BTCUSD = CAT.get("BTC/USD")  # a cash instrument; 1 BTC = 10,000 qty units
EUR_QUOTE = Quote("EUR/USD", 110_000, 110_010, 0)
FEES = FeeSchedule()
SECOND = 1_000_000_000


@dataclass
class Account:
    account_id: int = 1
    currency: str = "USD"
    state: AccountState = AccountState.ACTIVE
    account_type: AccountType = AccountType.MARGIN
    positions: dict[str, Position] = field(default_factory=dict)


def _long(inst: Instrument, qty: int, price: int) -> Position:
    pos = Position(1, inst.symbol)
    pos.add_lot(Lot(1, 1, inst.symbol, qty, qty, price, 0, "open", 0))
    return pos


def _req(side: Side = Side.BUY, qty: int = 100, type_: OrderType = OrderType.MARKET,
         symbol: str = "EUR/USD", price: int | None = None) -> OrderRequest:  # fmt: skip
    return OrderRequest(1, "c1", symbol, side, type_, qty, price=price)


def _market(**kw: object) -> Market:
    base: dict[str, object] = {
        "restricted": frozenset(), "halted": frozenset(), "session_open": True,
        "quote": EUR_QUOTE, "rate": Decimal(1),
    }  # fmt: skip
    base.update(kw)
    return Market(**base)  # type: ignore[arg-type]


def _check(
    req: OrderRequest | None = None,
    acct: Account | None = None,
    market: Market | None = None,
    limits: TierLimits | None = None,
    limiter: RateLimiter | None = None,
    free: int = 10**12,
    inst: Instrument = EURUSD,
    ts: int = 0,
) -> Denial | None:
    return check_order(
        acct or Account(), inst, req or _req(), ts, limits or TierLimits(),
        limiter or RateLimiter(), market or _market(), 30, FEES, lambda: free,
    )  # fmt: skip


def _code(denial: Denial | None) -> DenialCode | None:
    return denial.code if denial else None


# -- each check alone -----------------------------------------------------------------------


def test_check_when_every_input_is_fine_then_no_denial() -> None:
    assert _check() is None


def test_check_when_account_halted_then_denied_even_to_reduce() -> None:
    acct = Account(state=AccountState.HALTED, positions={"EUR/USD": _long(EURUSD, 100, 110_000)})
    assert _code(_check(_req(Side.SELL), acct)) is DenialCode.ACCOUNT_HALTED


def test_check_when_reducing_only_then_opening_denied_and_reducing_allowed() -> None:
    acct = Account(
        state=AccountState.REDUCING_ONLY, positions={"EUR/USD": _long(EURUSD, 100, 110_000)}
    )
    assert _code(_check(_req(Side.BUY), acct)) is DenialCode.REDUCING_ONLY
    assert _check(_req(Side.SELL, qty=100), acct) is None
    # Selling more than held flips the position: that opens exposure.
    assert _code(_check(_req(Side.SELL, qty=200), acct)) is DenialCode.REDUCING_ONLY


def test_check_when_over_the_rate_then_denied_until_a_second_passed() -> None:
    limiter = RateLimiter()
    limits = TierLimits(max_orders_per_second=2)
    assert _check(limiter=limiter, limits=limits, ts=0) is None
    assert _check(limiter=limiter, limits=limits, ts=1) is None
    assert _code(_check(limiter=limiter, limits=limits, ts=2)) is DenialCode.RATE_LIMITED
    assert _check(limiter=limiter, limits=limits, ts=SECOND + 1) is None


@pytest.mark.parametrize(
    ("market", "code"),
    [
        (_market(restricted=frozenset({"EUR/USD"})), DenialCode.SYMBOL_RESTRICTED),
        (_market(halted={"EUR/USD"}), DenialCode.SYMBOL_HALTED),
        (_market(session_open=False), DenialCode.SESSION_CLOSED),
        (_market(quote=None), DenialCode.NO_QUOTE),
        (_market(rate=None), DenialCode.NO_CONVERSION_RATE),
    ],
)
def test_check_when_the_market_refuses_then_its_code(market: Market, code: DenialCode) -> None:
    assert _code(_check(market=market)) is code


def test_check_when_a_limit_order_has_no_quote_then_priced_at_its_limit() -> None:
    req = _req(type_=OrderType.LIMIT, price=109_000)
    assert _check(req, market=_market(quote=None)) is None


def test_check_when_order_too_large_then_qty_or_notional_denied() -> None:
    assert _code(_check(_req(qty=2_100))) is DenialCode.MAX_ORDER_QTY  # 21 lots > 20
    small = TierLimits(max_order_notional=Decimal(100_000))
    denial = _check(_req(qty=100), limits=small)  # 110,010 USD > 100,000
    assert _code(denial) is DenialCode.MAX_ORDER_NOTIONAL
    assert denial is not None and denial.details["notional"] == "110010.00"


def test_check_when_position_would_pass_its_limit_then_denied_but_reducing_passes() -> None:
    acct = Account(positions={"EUR/USD": _long(EURUSD, 4_950, 110_000)})  # 49.5 lots
    assert _code(_check(_req(qty=100), acct)) is DenialCode.POSITION_LIMIT
    assert _check(_req(Side.SELL, qty=100), acct) is None


def test_check_when_selling_more_than_held_on_a_cash_instrument_then_short_sale() -> None:
    quote = Quote("BTC/USD", 6_000_000, 6_001_000, 0)
    acct = Account(positions={"BTC/USD": _long(BTCUSD, 10_000, 6_000_000)})
    denial = _check(_req(Side.SELL, 20_000, symbol="BTC/USD"), acct, _market(quote=quote),
                    inst=BTCUSD)  # fmt: skip
    assert _code(denial) is DenialCode.SHORT_SALE


def test_check_margin_when_free_margin_is_one_cent_short_then_denied() -> None:
    # 1 lot at the ask 1.10010: 110,010 USD / 30 = 3,667.00 margin + 3.50 commission.
    assert _check(free=367_050) is None
    denial = _check(free=367_049)
    assert _code(denial) is DenialCode.INSUFFICIENT_MARGIN
    assert denial is not None and denial.details == {
        "required": "3670.50", "free_margin": "3670.49"
    }  # fmt: skip


def test_check_margin_when_the_order_only_reduces_then_it_needs_only_its_fees() -> None:
    acct = Account(positions={"EUR/USD": _long(EURUSD, 100, 110_000)})
    assert _check(_req(Side.SELL), acct, free=350) is None
    assert _code(_check(_req(Side.SELL), acct, free=349)) is DenialCode.INSUFFICIENT_MARGIN
    # A resting reducing order needs nothing now: it pays when it fills.
    limit = _req(Side.SELL, type_=OrderType.LIMIT, price=111_000)
    assert _check(limit, acct, free=-1_000) is None


# -- the margin arithmetic --------------------------------------------------------------------


def test_leverage_when_tier_caps_then_the_lower_and_cash_is_one() -> None:
    assert leverage(EURUSD, 30) == 30
    assert leverage(EURUSD, 10) == 10
    assert leverage(EURUSD, 0) == 1
    assert leverage(BTCUSD, 100) == 1


def test_commission_per_lot_and_in_basis_points() -> None:
    assert commission(EURUSD, 250, Decimal(0), "USD", FEES) == 875  # 2.5 lots x 3.50
    # 10 bps of 60,010.00 USD = 60.01 USD.
    assert commission(BTCUSD, 10_000, Decimal("60010.00"), "USD", FEES) == 6_001


def test_margin_held_rounds_up_to_the_minor_unit() -> None:
    # 0.01 lot at 1.10001: 1,100.01 USD / 30 = 36.667 -> 36.67 (never under-held).
    assert margin_held(EURUSD, 1, 110_001, Decimal(1), 30, "USD") == 3_667
    assert margin_held(EURUSD, -1, 110_001, Decimal(1), 30, "USD") == 3_667


def test_opening_qty_for_same_side_reduce_and_flip() -> None:
    assert opening_qty(0, 100) == 100
    assert opening_qty(100, 50) == 50  # adds
    assert opening_qty(100, -50) == -50  # reduces only
    assert opening_qty(100, -150) == 50  # flips: 50 opens on the other side


def test_required_margin_cross_currency_converts_at_the_rate() -> None:
    rate = 1 / Decimal("150.01")  # JPY -> USD
    got = required_margin(USDJPY, 100, 150_020, rate, 30, 350, "USD")
    expected = Decimal(100 * 150_020) * USDJPY.unit_value * rate / 30 + Decimal("3.50")
    assert got == expected
    assert Decimal("3337.05") < got < Decimal("3337.06")  # 100,006.67 USD / 30 + 3.50


def test_unrealized_marks_longs_at_bid_shorts_at_ask_and_converts() -> None:
    quotes = {
        "EUR/USD": Quote("EUR/USD", 110_100, 110_110, 0),
        "USD/JPY": Quote("USD/JPY", 151_000, 151_020, 0),
    }
    rates = {("USD", "USD"): Decimal(1), ("JPY", "USD"): 1 / Decimal("151.01")}
    long_eur = _long(EURUSD, 100, 110_000)  # +100 pips on 1 lot at the bid: +100.00 USD
    short_jpy = Position(1, "USD/JPY")
    short_jpy.add_lot(Lot(2, 1, "USD/JPY", -100, -100, 150_000, 0, "o", 0))  # at 150.000

    got = unrealized([long_eur, short_jpy], "USD", CAT.get, quotes.get,
                     lambda a, b: rates.get((a, b)))  # fmt: skip

    # Short 1 lot from 150.000 marked at the ask 151.020: -1.020 x 100,000 JPY.
    jpy = Decimal(-100 * 151_020 + 100 * 150_000) * USDJPY.unit_value * rates[("JPY", "USD")]
    assert got == to_minor(Decimal(100) + jpy, "USD", ROUND_HALF_EVEN)
    assert got == 10_000 - 67_545


def test_unrealized_when_no_quote_or_rate_then_the_position_counts_zero() -> None:
    pos = _long(EURUSD, 100, 110_000)
    assert unrealized([pos], "USD", CAT.get, lambda s: None, lambda a, b: Decimal(1)) == 0
    assert unrealized([pos], "USD", CAT.get, lambda s: EUR_QUOTE, lambda a, b: None) == 0


def test_free_margin_is_cash_plus_unrealized() -> None:
    assert free_margin(100_000, -30_000) == 70_000


# -- account types, house closes, changed limits ---------------------------------------------


def test_check_when_cash_account_sells_short_then_denied_even_on_a_margin_instrument() -> None:
    cash = Account(account_type=AccountType.CASH)
    assert _code(_check(_req(Side.SELL), cash)) is DenialCode.SHORT_SALE
    assert _check(_req(Side.SELL), Account()) is None


def test_check_when_house_skips_then_halted_account_and_no_margin_pass_but_halt_does_not() -> None:
    from trading.house import SKIPPED_CHECKS

    acct = Account(state=AccountState.HALTED, positions={"EUR/USD": _long(EURUSD, 100, 110_000)})

    def house(market: Market | None = None) -> Denial | None:
        return check_order(
            acct, EURUSD, _req(Side.SELL), 0, TierLimits(), RateLimiter(),
            market or _market(), 30, FEES, lambda: -10**9, SKIPPED_CHECKS,
        )  # fmt: skip

    assert _code(_check(_req(Side.SELL), acct, free=-(10**9))) is DenialCode.ACCOUNT_HALTED
    assert house() is None
    assert _code(house(_market(halted={"EUR/USD"}))) is DenialCode.SYMBOL_HALTED
    assert _code(house(_market(session_open=False))) is DenialCode.SESSION_CLOSED
    assert _code(house(_market(quote=None))) is DenialCode.NO_QUOTE


def test_rate_limiter_when_limit_raised_then_log_resized_and_still_limits() -> None:
    limiter = RateLimiter()
    assert all(limiter.allow(1, i, 2) for i in range(2))
    assert not limiter.allow(1, 3, 2)
    # Raised to 4: two more fit in the same second, then it refuses again.
    assert limiter.allow(1, 4, 4) and limiter.allow(1, 5, 4)
    assert not limiter.allow(1, 6, 4)
