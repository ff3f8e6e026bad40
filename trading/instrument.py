"""The `Instrument` type: one tradable symbol and its price and quantity grids.

An `Instrument` is the specification of one tradable symbol: its price grid (tick size,
price precision), its quantity grid (lot size, minimum and maximum, in lots), the units of
the underlying per lot, its leverage, markup group, account type and trading session, and its
financing: the annual swap rates of a long and a short position, in percent of the notional
(negative: the client pays), and the day count they accrue on (360 for FX and metals, the
money-market convention of their currencies; 365 otherwise). A cash instrument is fully paid
and borrows nothing, so its rates are zero.

The identifiers the regulator's transaction report (MiFIR RTS 22) needs are optional: an ISIN
where the instrument has one (listed shares), otherwise the full name, the CFI code (ISO
10962) and the underlying (an index name and its ISIN, or nothing: the symbol itself) that
RTS 22 asks of an instrument not admitted to trading, such as a CFD. ``reportable`` is false
for what is not a MiFID II financial instrument (spot crypto), whose trades are not reported.

Prices and quantities are `Decimal` at the edges and integers inside: a price is stored as
`price × 10**price_precision`, a quantity in lots as `quantity × 10**qty_precision`, where
`qty_precision` is the number of decimals of the lot size. The conversions are exact; an
input that is off the grid raises `InvalidPrice` or `InvalidQuantity`, never rounds
silently. Rounding is explicit (`round_price_to_tick`, `round_qty_to_lot`, with a `decimal`
rounding mode).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Final

from trading.bounds import INT64_MAX
from trading.checksums import luhn_ok
from trading.errors import ConfigError, InvalidPrice, InvalidQuantity, InvalidType
from trading.exact_decimal import (
    EXACT,
    MAX_PRECISION,
    POWERS_OF_TEN,
    coefficient_digits,
    decimals,
    exact_int,
    round_div,
    scaled_fraction,
)

MAX_STORED_INT: Final = INT64_MAX
"""The largest scaled price or quantity: storage columns are signed 64-bit integers."""

_SYMBOL_RE: Final = re.compile(r"^[A-Z0-9]+(?:/[A-Z0-9]+)?$")
_CURRENCY_RE: Final = re.compile(r"^[A-Z0-9]{2,10}$")
_MAX_SWAP_DECIMALS: Final = 6
_ISIN_RE: Final = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")
_CFI_RE: Final = re.compile(r"^[A-Z]{6}$")
# The lengths auth.016 allows: a full name (Max350Text), an index name (Max25Text).
FULL_NAME_MAX: Final = 350
UNDERLYING_NAME_MAX: Final = 25


class AssetClass(StrEnum):
    FX = "fx"
    METAL = "metal"
    INDEX = "index"
    CRYPTO = "crypto"
    EQUITY = "equity"


class AccountType(StrEnum):
    MARGIN = "margin"  # leveraged: positions hold margin
    CASH = "cash"  # fully funded: leverage 1


_PAIR_CLASSES: Final = frozenset({AssetClass.FX, AssetClass.METAL, AssetClass.CRYPTO})
_DAY_COUNT_360: Final = frozenset({AssetClass.FX, AssetClass.METAL})


@dataclass(frozen=True, slots=True)
class Instrument:
    """The specification of one tradable symbol.

    Quantities are in lots; one lot is `contract_size` units of `base`. PnL is in `quote`.
    `max_leverage` is the leverage the instrument allows (1 for cash instruments).
    """

    symbol: str
    asset_class: AssetClass
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    contract_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    price_precision: int
    leverage_class: str
    max_leverage: int
    symbol_group: str
    account_type: AccountType
    session: str
    aliases: tuple[str, ...] = ()
    swap_long: Decimal = Decimal(0)
    swap_short: Decimal = Decimal(0)
    day_count: int = 0  # 0: by asset class (360 for FX and metals, 365 otherwise)
    # Regulatory identifiers (RTS 22): see the module docstring.
    isin: str | None = None
    cfi: str | None = None
    full_name: str | None = None
    underlying: str | None = None
    underlying_isin: str | None = None
    reportable: bool = True
    # Derived integers, computed once in __post_init__.
    _tick_int: int = field(init=False, repr=False, compare=False)
    _lot_int: int = field(init=False, repr=False, compare=False)
    _min_int: int = field(init=False, repr=False, compare=False)
    _max_int: int = field(init=False, repr=False, compare=False)
    _qty_precision: int = field(init=False, repr=False, compare=False)
    _unit_value: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check_identity()
        tick_int, lot_int, min_int, max_int, qty_precision = self._check_grids()
        self._check_leverage()
        self._check_swaps()
        self._check_identifiers()
        object.__setattr__(self, "_tick_int", tick_int)
        object.__setattr__(self, "_lot_int", lot_int)
        object.__setattr__(self, "_min_int", min_int)
        object.__setattr__(self, "_max_int", max_int)
        object.__setattr__(self, "_qty_precision", qty_precision)
        unit = self.contract_size / (POWERS_OF_TEN[qty_precision] * self.price_scale)
        object.__setattr__(self, "_unit_value", unit)

    def _invalid(self, message: str) -> ConfigError:
        return ConfigError(f"{self.symbol}: {message}")

    def _check_identity(self) -> None:
        if not isinstance(self.symbol, str) or not _SYMBOL_RE.match(self.symbol):
            raise ConfigError(
                f"symbol {self.symbol!r} must be upper-case letters and digits, "
                "optionally BASE/QUOTE"
            )
        if not isinstance(self.asset_class, AssetClass):
            raise self._invalid(f"asset_class {self.asset_class!r} is not an AssetClass")
        if not isinstance(self.account_type, AccountType):
            raise self._invalid(f"account_type {self.account_type!r} is not an AccountType")
        for name in ("base", "quote"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _CURRENCY_RE.match(value):
                raise self._invalid(
                    f"{name} {value!r} must be 2 to 10 upper-case letters or digits"
                )
        if self.asset_class in _PAIR_CLASSES and self.symbol != f"{self.base}/{self.quote}":
            raise self._invalid(f"a {self.asset_class} symbol must be {self.base}/{self.quote}")
        for name in ("leverage_class", "symbol_group", "session"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise self._invalid(f"{name} must be a non-empty string")
        if not isinstance(self.aliases, tuple) or not all(
            isinstance(a, str) and a.strip() for a in self.aliases
        ):
            raise self._invalid("aliases must be a tuple of non-empty strings")

    def _check_grids(self) -> tuple[int, int, int, int, int]:
        """(tick_int, lot_int, min_int, max_int, qty_precision), after checking the grids."""
        for name in ("tick_size", "lot_size", "contract_size", "min_qty", "max_qty"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise self._invalid(f"{name} must be a positive Decimal, got {value!r}")
        if (
            not isinstance(self.price_precision, int)
            or isinstance(self.price_precision, bool)
            or not 0 <= self.price_precision <= MAX_PRECISION
        ):
            raise self._invalid(f"price_precision must be an integer 0..{MAX_PRECISION}")
        tick_int = exact_int(self.tick_size, self.price_precision)
        if coefficient_digits(self.tick_size) != (1,) or tick_int is None:
            raise self._invalid(
                f"tick_size {self.tick_size} must be a power-of-ten step (1, 0.1, 0.01, ...) "
                f"with at most price_precision = {self.price_precision} decimals"
            )
        qty_precision = decimals(self.lot_size)
        lot_int = exact_int(self.lot_size, qty_precision)
        if qty_precision > MAX_PRECISION or lot_int is None:
            raise self._invalid(f"lot_size {self.lot_size} has more than {MAX_PRECISION} decimals")
        min_int = exact_int(self.min_qty, qty_precision)
        max_int = exact_int(self.max_qty, qty_precision)
        for name, value in (("min_qty", min_int), ("max_qty", max_int)):
            if value is None or value % lot_int:
                raise self._invalid(
                    f"{name} {getattr(self, name)} is not a multiple of lot_size {self.lot_size}"
                )
        assert min_int is not None and max_int is not None
        if min_int > max_int:
            raise self._invalid(f"min_qty {self.min_qty} is above max_qty {self.max_qty}")
        if max_int > MAX_STORED_INT:
            raise self._invalid(f"max_qty {self.max_qty} does not fit the 64-bit storage")
        return tick_int, lot_int, min_int, max_int, qty_precision

    def _check_leverage(self) -> None:
        if (
            not isinstance(self.max_leverage, int)
            or isinstance(self.max_leverage, bool)
            or self.max_leverage < 1
        ):
            raise self._invalid(f"max_leverage must be an integer ≥ 1, got {self.max_leverage!r}")
        if self.account_type is AccountType.CASH and self.max_leverage != 1:
            raise self._invalid(f"a cash instrument has max_leverage 1, got {self.max_leverage}")

    def _check_swaps(self) -> None:
        for name in ("swap_long", "swap_short"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or abs(value) > 100:
                raise self._invalid(
                    f"{name} must be a Decimal percentage within ±100, got {value!r}"
                )
            exponent = value.as_tuple().exponent
            assert isinstance(exponent, int)
            if -exponent > _MAX_SWAP_DECIMALS:
                raise self._invalid(f"{name} {value} has more than {_MAX_SWAP_DECIMALS} decimals")
            if self.account_type is AccountType.CASH and value != 0:
                raise self._invalid(
                    f"a cash instrument is fully paid: {name} must be 0, got {value}"
                )
        if self.day_count == 0:
            by_class = 360 if self.asset_class in _DAY_COUNT_360 else 365
            object.__setattr__(self, "day_count", by_class)
        elif self.day_count not in (360, 365) or isinstance(self.day_count, bool):
            raise self._invalid(f"day_count must be 360 or 365, got {self.day_count!r}")

    def _check_identifiers(self) -> None:
        for name in ("isin", "underlying_isin"):
            value = getattr(self, name)
            if value is not None and not is_isin(value):
                raise self._invalid(f"{name} {value!r} is not an ISIN with a valid check digit")
        if self.cfi is not None and (not isinstance(self.cfi, str) or not _CFI_RE.match(self.cfi)):
            raise self._invalid(f"cfi {self.cfi!r} is not a CFI code (6 upper-case letters)")
        for name, limit in (("full_name", FULL_NAME_MAX), ("underlying", UNDERLYING_NAME_MAX)):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, str) or not value.strip() or len(value) > limit
            ):
                raise self._invalid(f"{name} must be a non-empty string of at most {limit} chars")
        if not isinstance(self.reportable, bool):
            raise self._invalid(f"reportable must be true or false, got {self.reportable!r}")

    def swap_rate(self, net_qty: int) -> Decimal:
        """The annual rate, in percent, of a position of ``net_qty`` (signed): ``swap_long``
        for a long, ``swap_short`` for a short, 0 when flat."""
        if net_qty > 0:
            return self.swap_long
        if net_qty < 0:
            return self.swap_short
        return Decimal(0)

    # --- the price grid -----------------------------------------------------------------------

    @property
    def price_scale(self) -> int:
        """10**price_precision: a price is stored as `price × price_scale`."""
        return POWERS_OF_TEN[self.price_precision]

    @property
    def unit_value(self) -> Decimal:
        """Quote-currency value of one stored quantity unit times one stored price unit."""
        return self._unit_value

    @property
    def tick_int(self) -> int:
        """The tick size in stored price units (1 when the tick is the last decimal)."""
        return self._tick_int

    def price_to_int(self, price: Decimal) -> int:
        """The stored integer of `price`; raises InvalidPrice if not positive or off-tick."""
        num, den = self._scaled(price, self.price_precision, InvalidPrice, "price")

        def invalid(reason: str) -> InvalidPrice:
            return InvalidPrice(
                f"{self.symbol}: price {price} {reason}",
                symbol=self.symbol,
                price=str(price),
                tick_size=str(self.tick_size),
            )

        if num <= 0:
            raise invalid(f"must be positive (tick size {self.tick_size})")
        if den != 1 or num % self._tick_int:
            raise invalid(f"is not a multiple of the tick size {self.tick_size}")
        if num > MAX_STORED_INT:
            raise invalid(f"is too large (tick size {self.tick_size})")
        return num

    def price_from_int(self, value: int) -> Decimal:
        """The Decimal price of a stored integer, with exactly `price_precision` decimals."""
        return Decimal(value).scaleb(-self.price_precision, EXACT)

    def round_price_to_tick(self, price: Decimal, rounding: str) -> Decimal:
        """`price` rounded to a multiple of the tick size with a `decimal.ROUND_*` mode.

        The result may be zero or negative if `price` is; `price_to_int` rejects those.
        """
        num, den = self._scaled(price, self.price_precision, InvalidPrice, "price")
        ticks = round_div(num, den * self._tick_int, rounding)
        return self.price_from_int(ticks * self._tick_int)

    # --- the quantity grid --------------------------------------------------------------------

    @property
    def qty_precision(self) -> int:
        """The number of decimals of the lot size (2 for a lot size of 0.01)."""
        return self._qty_precision

    @property
    def qty_scale(self) -> int:
        """10**qty_precision: a quantity in lots is stored as `quantity × qty_scale`."""
        return POWERS_OF_TEN[self._qty_precision]

    @property
    def lot_int(self) -> int:
        """The lot size in stored quantity units."""
        return self._lot_int

    def qty_to_int(self, qty: Decimal) -> int:
        """The stored integer of a quantity in lots; raises InvalidQuantity if it is not
        positive, not a multiple of the lot size, below the minimum or above the maximum."""
        num, den = self._scaled(qty, self._qty_precision, InvalidQuantity, "quantity")

        def invalid(reason: str) -> InvalidQuantity:
            return InvalidQuantity(
                f"{self.symbol}: quantity {qty} {reason}",
                symbol=self.symbol,
                quantity=str(qty),
                lot_size=str(self.lot_size),
                min_qty=str(self.min_qty),
                max_qty=str(self.max_qty),
            )

        if num <= 0:
            raise invalid("must be positive")
        if den != 1 or num % self._lot_int:
            raise invalid(f"is not a multiple of the lot size {self.lot_size}")
        if num < self._min_int:
            raise invalid(f"is below the minimum {self.min_qty}")
        if num > self._max_int:
            raise invalid(f"is above the maximum {self.max_qty}")
        return num

    def qty_from_int(self, value: int) -> Decimal:
        """The Decimal quantity (in lots) of a stored integer."""
        return Decimal(value).scaleb(-self._qty_precision, EXACT)

    def round_qty_to_lot(self, qty: Decimal, rounding: str) -> Decimal:
        """`qty` rounded to a multiple of the lot size (bounds are not checked)."""
        num, den = self._scaled(qty, self._qty_precision, InvalidQuantity, "quantity")
        lots = round_div(num, den * self._lot_int, rounding)
        return self.qty_from_int(lots * self._lot_int)

    # --- internals ----------------------------------------------------------------------------

    def _scaled(
        self,
        value: Decimal,
        places: int,
        error: type[InvalidPrice] | type[InvalidQuantity],
        what: str,
    ) -> tuple[int, int]:
        if not isinstance(value, Decimal):
            raise InvalidType(
                f"{self.symbol}: a {what} must be a Decimal, got {type(value).__name__}"
            )
        try:
            return scaled_fraction(value, places)
        except ValueError as exc:
            step, size = (
                ("tick_size", self.tick_size)
                if error is InvalidPrice
                else ("lot_size", self.lot_size)
            )
            raise error(
                f"{self.symbol}: {what} {value} {exc} ({step.replace('_', ' ')} {size})",
                symbol=self.symbol,
                **{what: str(value), step: str(size)},
            ) from None


def is_isin(value: object) -> bool:
    """Whether ``value`` is an ISIN (ISO 6166): country, 9 characters, a Luhn check digit over
    the letters read as numbers (A=10 ... Z=35)."""
    if not isinstance(value, str) or not _ISIN_RE.match(value):
        return False
    return luhn_ok("".join(str(int(char, 36)) for char in value))
