"""Financing (swap) of open positions at the daily cut-off, and end-of-day marks: pure.

A position held over a cut-off (``trading.rollover``) pays or earns, per night,

    |net quantity| × contract size × mark × rate / 100 / day count

in the instrument's quote currency, where the rate is the catalogue's annual percentage for
the position's side (``Instrument.swap_rate``: negative when the client pays) and the mark
is the end-of-day quote (a long at the bid, a short at the ask, as positions are valued
everywhere else). The amount is converted to the account currency at the end-of-day rate and
rounded once, half to even, to the currency's minor unit: the arithmetic before that is exact
(fractions), so nothing rounds twice.

Booking: ``financing_entry`` moves the amount between the client's cash and the house's
financing account (``ledger.house_financing``); a client who earns is paid by the house.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Final

from trading import ledger as L
from trading.bounds import INT64_MAX
from trading.errors import InvalidRollover
from trading.instrument import Instrument
from trading.money import exponent
from trading.quotes import Quote

__all__ = [
    "EodMark",
    "FinancingCharge",
    "compute_financing",
    "eod_mark",
    "financing",
    "financing_entry",
    "financing_ref",
]

_RATE_TEXT_MAX: Final = 48
_QUOTE_DECIMALS: Final = Decimal("1e-10")  # the exact quote amount, shown to 10 decimals


@dataclass(frozen=True, slots=True)
class EodMark:
    """The end-of-day quote of a symbol at a cut-off (prices in the instrument's units)."""

    symbol: str
    trade_date: dt.date
    bid: int
    ask: int
    ts_ns: int  # the quote's own time, at or before the cut-off

    def mark_for(self, net_qty: int) -> int:
        """The price a position is valued at: a long at the bid, a short at the ask."""
        return self.bid if net_qty > 0 else self.ask


def eod_mark(quote: Quote, trade_date: dt.date) -> EodMark:
    """The end-of-day mark of ``quote``; refuses a crossed or empty quote."""
    if not 0 < quote.bid <= quote.ask:
        raise InvalidRollover(
            f"{quote.symbol}: bid {quote.bid} and ask {quote.ask} are no end-of-day mark",
            symbol=quote.symbol,
        )
    return EodMark(quote.symbol, trade_date, quote.bid, quote.ask, quote.ts_ns)


@dataclass(frozen=True, slots=True)
class FinancingCharge:
    """One position's financing at one cut-off, as statements list it."""

    symbol: str
    net_qty: int
    mark: int
    rate: Decimal  # annual percent, the side's
    nights: int
    day_count: int
    amount_quote: Decimal  # in the quote currency, to 10 decimals (for statements)
    quote_currency: str
    conversion_rate: Decimal  # account currency per unit of the quote currency
    amount: int  # booked: account currency minor units, signed (> 0: the client earns)
    currency: str


def _exact_quote(
    net_qty: int, mark: int, instrument: Instrument, rate: Decimal, nights: int
) -> Fraction:
    if type(net_qty) is not int or type(mark) is not int or mark <= 0:
        raise InvalidRollover(f"{instrument.symbol}: quantity and mark must be integers, mark > 0")
    if type(nights) is not int or not 1 <= nights <= 400:
        raise InvalidRollover(f"{instrument.symbol}: nights must be 1..400, got {nights!r}")
    if not isinstance(rate, Decimal) or not rate.is_finite():
        raise InvalidRollover(f"{instrument.symbol}: the rate must be a finite Decimal")
    notional = (
        Fraction(abs(net_qty) * mark)
        * Fraction(instrument.contract_size)
        / (instrument.qty_scale * instrument.price_scale)
    )
    return notional * Fraction(rate) / 100 * nights / instrument.day_count


def compute_financing(
    net_qty: int,
    mark: int,
    instrument: Instrument,
    rate: Decimal,
    nights: int,
    conversion_rate: Decimal,
    account_ccy: str,
) -> FinancingCharge:
    """The financing of a position of ``net_qty`` lot steps (signed) over ``nights`` at
    ``rate`` (annual percent, the side's: ``instrument.swap_rate(net_qty)``)."""
    if (
        not isinstance(conversion_rate, Decimal)
        or not conversion_rate.is_finite()
        or (conversion_rate <= 0)
    ):
        raise InvalidRollover(
            f"conversion rate must be a positive Decimal, got {conversion_rate!r}"
        )
    if len(str(conversion_rate)) > _RATE_TEXT_MAX:  # what financing.conversion_rate holds
        raise InvalidRollover(f"conversion rate {conversion_rate} has too many digits to record")
    exact = _exact_quote(net_qty, mark, instrument, rate, nights)
    scaled = exact * Fraction(conversion_rate) * 10 ** exponent(account_ccy)
    amount = round(scaled)  # Fraction rounds half to even
    if abs(amount) > INT64_MAX:
        raise InvalidRollover(f"{instrument.symbol}: financing of {amount} does not fit 64 bits")
    quote = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
        _QUOTE_DECIMALS, ROUND_HALF_EVEN
    )
    return FinancingCharge(
        instrument.symbol, net_qty, mark, rate, nights, instrument.day_count, quote,
        instrument.quote, conversion_rate, amount, account_ccy,
    )  # fmt: skip


def financing(
    net_qty: int,
    mark: int,
    instrument: Instrument,
    rate: Decimal,
    nights: int,
    conversion_rate: Decimal,
    account_ccy: str,
) -> int:
    """The financing in ``account_ccy`` minor units, rounded half to even: > 0 the client
    earns, < 0 the client pays, 0 flat or at a zero rate."""
    return compute_financing(
        net_qty, mark, instrument, rate, nights, conversion_rate, account_ccy
    ).amount


def financing_ref(account_id: int, symbol: str, trade_date: dt.date) -> str:
    """The ledger reference of a position's financing for one cut-off (at most 64 chars)."""
    return f"financing:{account_id}:{L.commodity_of(symbol)}:{trade_date.isoformat()}"


def financing_entry(
    account_id: int, charge: FinancingCharge, trade_date: dt.date
) -> L.Entry | None:
    """The ledger transaction of a charge (kind ``financing``), None when it is zero."""
    if charge.amount == 0:
        return None
    return L.entry(
        "financing",
        account_id,
        financing_ref(account_id, charge.symbol, trade_date),
        L.transfer(
            L.house_financing(charge.currency),
            L.client_cash(account_id, charge.currency),
            charge.currency,
            charge.amount,
        ),
        memo=f"swap {charge.symbol} {charge.net_qty} x{charge.nights} @ {charge.rate}%",
    )
