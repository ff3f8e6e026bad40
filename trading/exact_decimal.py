"""Exact decimal arithmetic for the price and quantity grids.

A `Decimal` is turned into an exact fraction over a power of ten, so that grid checks and
rounding never go through a binary float or a context precision that could round silently.
Inputs are bounded (60 significant digits, below 10**21) so that the integers stay small.
"""

from __future__ import annotations

from decimal import (
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
)
from typing import Final

from trading.errors import ConfigError

_MAX_DIGITS: Final = 60  # an input with more significant digits than this is not a price
_MAX_MAGNITUDE: Final = 20  # ... nor one of 10**21 or more
MAX_PRECISION: Final = 12
POWERS_OF_TEN: Final[tuple[int, ...]] = tuple(int(10**i) for i in range(MAX_PRECISION + 1))
EXACT: Final = Context(prec=_MAX_DIGITS + MAX_PRECISION)
_ROUNDINGS: Final = frozenset(
    {
        ROUND_05UP,
        ROUND_CEILING,
        ROUND_DOWN,
        ROUND_FLOOR,
        ROUND_HALF_DOWN,
        ROUND_HALF_EVEN,
        ROUND_HALF_UP,
        ROUND_UP,
    }
)


def coefficient_digits(value: Decimal) -> tuple[int, ...]:
    """The coefficient digits of a finite Decimal without trailing zeros."""
    digits = value.as_tuple().digits
    kept = len(bytes(digits).rstrip(b"\0")) or 1
    return digits[:kept]


def decimals(value: Decimal) -> int:
    """The number of decimals of a finite Decimal, trailing zeros ignored (0.010 → 2)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    return max(0, -(exponent + len(digits) - len(coefficient_digits(value))))


def scaled_fraction(value: Decimal, places: int) -> tuple[int, int]:
    """(num, den) with value × 10**places == num / den exactly, den a power of ten ≥ 1.

    Raises ValueError (a phrase that completes "<value> ...") for non-finite values, values
    of 10**21 or more or non-zero below 10**-60 in size, and values with more than 60
    significant digits, so that the integers stay small.
    """
    if not value.is_finite():
        raise ValueError("is not a finite number")
    sign, all_digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    digits = coefficient_digits(value)  # trailing zeros dropped, so that den is as small as can be
    exponent += len(all_digits) - len(digits)
    if len(digits) > _MAX_DIGITS:
        raise ValueError(f"has more than {_MAX_DIGITS} significant digits")
    coefficient = int("".join(map(str, digits)))
    if coefficient == 0:
        return 0, 1
    magnitude = exponent + len(digits) - 1  # value.adjusted()
    if magnitude > _MAX_MAGNITUDE:
        raise ValueError("is too large")
    if magnitude < -_MAX_DIGITS:
        raise ValueError("is too small")
    if sign:
        coefficient = -coefficient
    shift = exponent + places
    if shift >= 0:
        return coefficient * 10**shift, 1
    return coefficient, 10**-shift


def exact_int(value: Decimal, places: int) -> int | None:
    """value × 10**places if that is an integer, else None."""
    try:
        num, den = scaled_fraction(value, places)
    except ValueError:
        return None
    return num if den == 1 else None


def round_div(num: int, den: int, rounding: str) -> int:
    """num / den (den > 0) rounded to an integer with a `decimal` rounding mode."""
    if rounding not in _ROUNDINGS:
        raise ConfigError(f"unknown rounding mode {rounding!r}")
    floor, rest = divmod(num, den)
    if rest == 0:
        return floor
    ceiling = floor + 1
    toward_zero, away = (floor, ceiling) if num > 0 else (ceiling, floor)
    directed = {
        ROUND_FLOOR: floor,
        ROUND_CEILING: ceiling,
        ROUND_DOWN: toward_zero,
        ROUND_UP: away,
        ROUND_05UP: away if abs(toward_zero) % 5 == 0 else toward_zero,
    }
    if rounding in directed:
        return directed[rounding]
    twice = 2 * rest
    if twice != den:  # not a tie: to the nearest
        return floor if twice < den else ceiling
    ties = {
        ROUND_HALF_UP: away,
        ROUND_HALF_DOWN: toward_zero,
        ROUND_HALF_EVEN: floor if floor % 2 == 0 else ceiling,
    }
    return ties[rounding]
