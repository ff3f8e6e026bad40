"""Money: Decimal at the edges, integers of minor units inside.

Rounding is always explicit. A currency's minor unit is its smallest booked step (cents for
USD, whole yen for JPY, satoshi for BTC).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import TYPE_CHECKING

from trading.errors import InvalidInput

if TYPE_CHECKING:
    from trading.instrument import Instrument

# ISO 4217 exponents, plus the crypto units the catalogue quotes in.
MINOR_UNIT_EXPONENT: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "AUD": 2, "CAD": 2, "NZD": 2, "SEK": 2,
    "NOK": 2, "SGD": 2, "HKD": 2, "JPY": 0, "USDT": 6, "USDC": 6, "BTC": 8, "ETH": 8,
    "SOL": 8,
}  # fmt: skip


def is_currency(code: str) -> bool:
    return code in MINOR_UNIT_EXPONENT


def exponent(currency: str) -> int:
    try:
        return MINOR_UNIT_EXPONENT[currency]
    except KeyError:
        raise InvalidInput(f"unknown currency {currency!r}", currency=currency) from None


def parse_decimal(value: object, what: str = "amount") -> Decimal:
    """A Decimal from an edge value; floats are refused because they already lost digits."""
    if isinstance(value, float):
        raise InvalidInput(f"{what} must be a decimal string, not a float: {value!r}")
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{what} is not a number: {value!r}") from None
    if not result.is_finite():
        raise InvalidInput(f"{what} is not finite: {value!r}")
    return result


_ONE = Decimal(1)


def to_minor(amount: Decimal, currency: str, rounding: str = ROUND_HALF_EVEN) -> int:
    """Decimal amount -> integer minor units, rounding explicitly."""
    exp = MINOR_UNIT_EXPONENT.get(currency)
    if exp is None:
        exp = exponent(currency)  # raises
    return int(amount.scaleb(exp).quantize(_ONE, rounding=rounding))


def to_minor_exact(amount: Decimal, currency: str) -> int:
    """Decimal amount -> minor units; refuses amounts finer than the currency's minor unit."""
    exp = exponent(currency)
    scaled = amount.scaleb(exp)
    if scaled != scaled.to_integral_value():
        raise InvalidInput(
            f"{amount} {currency} has more than {exp} decimal places",
            currency=currency,
            amount=str(amount),
        )
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def format_minor(minor: int, currency: str) -> str:
    exp = exponent(currency)
    return f"{from_minor(minor, currency):.{exp}f}"


def notional(instrument: Instrument, qty: int, price: int) -> Decimal:
    """Quote-currency value of ``qty`` (lot units) at ``price`` (price units), exact."""
    return Decimal(qty * price) * instrument.unit_value


def notional_in(instrument: Instrument, qty: int, price: int, rate: Decimal) -> Decimal:
    """``notional`` converted at ``rate`` (units of the target currency per quote unit)."""
    return Decimal(qty * price) * instrument.unit_value * rate
