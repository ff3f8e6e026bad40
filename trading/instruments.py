"""Instruments and the symbol catalogue.

An `Instrument` is the specification of one tradable symbol: its price grid (tick size,
price precision), its quantity grid (lot size, minimum and maximum, in lots), the units of
the underlying per lot, its leverage, markup group, account type and trading session, and its
financing: the annual swap rates of a long and a short position, in percent of the notional
(negative: the client pays), and the day count they accrue on (360 for FX and metals, the
money-market convention of their currencies; 365 otherwise). A cash instrument is fully paid
and borrows nothing, so its rates are zero.

Prices and quantities are `Decimal` at the edges and integers inside: a price is stored as
`price × 10**price_precision`, a quantity in lots as `quantity × 10**qty_precision`, where
`qty_precision` is the number of decimals of the lot size. The conversions are exact; an
input that is off the grid raises `InvalidPrice` or `InvalidQuantity`, never rounds
silently. Rounding is explicit (`round_price_to_tick`, `round_qty_to_lot`, with a `decimal`
rounding mode).

The `Catalogue` loads the instruments, leverage classes and sessions from a TOML file (by
default `trading/data/instruments.toml`), checks it, and answers look-ups by canonical
symbol (`get`) or by any vendor spelling (`resolve`).
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
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
    InvalidOperation,
)
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Final

from trading.errors import ConfigError, InvalidPrice, InvalidQuantity, InvalidType, UnknownSymbol
from trading.sessions import TradingSession

__all__ = [
    "AccountType",
    "AssetClass",
    "Catalogue",
    "CatalogueError",
    "Instrument",
    "default_catalogue",
]

MAX_STORED_INT: Final = 2**63 - 1
"""The largest scaled price or quantity: storage columns are signed 64-bit integers."""

_MAX_DIGITS: Final = 60  # an input with more significant digits than this is not a price
_MAX_MAGNITUDE: Final = 20  # ... nor one of 10**21 or more
_MAX_PRECISION: Final = 12
_POWERS_OF_TEN: Final[tuple[int, ...]] = tuple(int(10**i) for i in range(_MAX_PRECISION + 1))
_EXACT: Final = Context(prec=_MAX_DIGITS + _MAX_PRECISION)
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
_SYMBOL_RE: Final = re.compile(r"^[A-Z0-9]+(?:/[A-Z0-9]+)?$")
_CURRENCY_RE: Final = re.compile(r"^[A-Z0-9]{2,10}$")
_DATA_FILE: Final = "data/instruments.toml"
_MAX_SWAP_DECIMALS: Final = 6


class CatalogueError(ConfigError):
    """The instrument catalogue (file or objects) is malformed: a configuration error."""


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
        object.__setattr__(self, "_tick_int", tick_int)
        object.__setattr__(self, "_lot_int", lot_int)
        object.__setattr__(self, "_min_int", min_int)
        object.__setattr__(self, "_max_int", max_int)
        object.__setattr__(self, "_qty_precision", qty_precision)
        unit = self.contract_size / (_POWERS_OF_TEN[qty_precision] * self.price_scale)
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
            or not 0 <= self.price_precision <= _MAX_PRECISION
        ):
            raise self._invalid(f"price_precision must be an integer 0..{_MAX_PRECISION}")
        tick_int = _exact_int(self.tick_size, self.price_precision)
        if _digits(self.tick_size) != (1,) or tick_int is None:
            raise self._invalid(
                f"tick_size {self.tick_size} must be a power-of-ten step (1, 0.1, 0.01, ...) "
                f"with at most price_precision = {self.price_precision} decimals"
            )
        qty_precision = _decimals(self.lot_size)
        lot_int = _exact_int(self.lot_size, qty_precision)
        if qty_precision > _MAX_PRECISION or lot_int is None:
            raise self._invalid(f"lot_size {self.lot_size} has more than {_MAX_PRECISION} decimals")
        min_int = _exact_int(self.min_qty, qty_precision)
        max_int = _exact_int(self.max_qty, qty_precision)
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
        return _POWERS_OF_TEN[self.price_precision]

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
        return Decimal(value).scaleb(-self.price_precision, _EXACT)

    def round_price_to_tick(self, price: Decimal, rounding: str) -> Decimal:
        """`price` rounded to a multiple of the tick size with a `decimal.ROUND_*` mode.

        The result may be zero or negative if `price` is; `price_to_int` rejects those.
        """
        num, den = self._scaled(price, self.price_precision, InvalidPrice, "price")
        ticks = _round_div(num, den * self._tick_int, rounding)
        return self.price_from_int(ticks * self._tick_int)

    # --- the quantity grid --------------------------------------------------------------------

    @property
    def qty_precision(self) -> int:
        """The number of decimals of the lot size (2 for a lot size of 0.01)."""
        return self._qty_precision

    @property
    def qty_scale(self) -> int:
        """10**qty_precision: a quantity in lots is stored as `quantity × qty_scale`."""
        return _POWERS_OF_TEN[self._qty_precision]

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
        return Decimal(value).scaleb(-self._qty_precision, _EXACT)

    def round_qty_to_lot(self, qty: Decimal, rounding: str) -> Decimal:
        """`qty` rounded to a multiple of the lot size (bounds are not checked)."""
        num, den = self._scaled(qty, self._qty_precision, InvalidQuantity, "quantity")
        lots = _round_div(num, den * self._lot_int, rounding)
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
            return _scaled_fraction(value, places)
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


# --- exact decimal arithmetic ---------------------------------------------------------------


def _digits(value: Decimal) -> tuple[int, ...]:
    """The coefficient digits of a finite Decimal without trailing zeros."""
    digits = value.as_tuple().digits
    kept = len(bytes(digits).rstrip(b"\0")) or 1
    return digits[:kept]


def _decimals(value: Decimal) -> int:
    """The number of decimals of a finite Decimal, trailing zeros ignored (0.010 → 2)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    return max(0, -(exponent + len(digits) - len(_digits(value))))


def _scaled_fraction(value: Decimal, places: int) -> tuple[int, int]:
    """(num, den) with value × 10**places == num / den exactly, den a power of ten ≥ 1.

    Raises ValueError (a phrase that completes "<value> ...") for non-finite values, values
    of 10**21 or more or non-zero below 10**-60 in size, and values with more than 60
    significant digits, so that the integers stay small.
    """
    if not value.is_finite():
        raise ValueError("is not a finite number")
    sign, all_digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    digits = _digits(value)  # trailing zeros dropped, so that den is as small as can be
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


def _exact_int(value: Decimal, places: int) -> int | None:
    """value × 10**places if that is an integer, else None."""
    try:
        num, den = _scaled_fraction(value, places)
    except ValueError:
        return None
    return num if den == 1 else None


def _round_div(num: int, den: int, rounding: str) -> int:
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


# --- the catalogue --------------------------------------------------------------------------


def _alias_key(name: str) -> str:
    return name.strip().upper()


class Catalogue:
    """The instruments, their sessions and the leverage classes, checked as a whole."""

    __slots__ = ("_by_key", "_by_symbol", "_leverage_classes", "_sessions", "source")

    def __init__(
        self,
        instruments: Iterable[Instrument],
        sessions: Mapping[str, TradingSession],
        leverage_classes: Mapping[str, int],
        *,
        source: str = "<memory>",
    ) -> None:
        self.source = source
        self._sessions = MappingProxyType(dict(sessions))
        self._leverage_classes = MappingProxyType(dict(leverage_classes))
        by_symbol: dict[str, Instrument] = {}
        by_key: dict[str, Instrument] = {}
        owner: dict[str, str] = {}  # alias key → what claimed it, for the error message
        for inst in instruments:
            if inst.symbol in by_symbol:
                raise CatalogueError(f"{source}: symbol {inst.symbol} is listed twice")
            if inst.session not in self._sessions:
                raise CatalogueError(
                    f"{source}: {inst.symbol}: unknown session {inst.session!r}; "
                    f"known: {', '.join(sorted(self._sessions))}"
                )
            limit = self._leverage_classes.get(inst.leverage_class)
            if limit is None:
                raise CatalogueError(
                    f"{source}: {inst.symbol}: unknown leverage_class {inst.leverage_class!r}; "
                    f"known: {', '.join(sorted(self._leverage_classes))}"
                )
            if inst.max_leverage > limit:
                raise CatalogueError(
                    f"{source}: {inst.symbol}: max_leverage {inst.max_leverage} is above its "
                    f"leverage class {inst.leverage_class} ({limit})"
                )
            by_symbol[inst.symbol] = inst
            for name, what in [(inst.symbol, "symbol"), *((a, "alias") for a in inst.aliases)]:
                key = _alias_key(name)
                if key in owner:
                    raise CatalogueError(
                        f"{source}: {inst.symbol}: {what} {name!r} clashes with "
                        f"{owner[key]} (names are compared case-insensitively)"
                    )
                owner[key] = f"{what} {name!r} of {inst.symbol}"
                by_key[key] = inst
        self._by_symbol = by_symbol
        self._by_key = by_key

    # --- loading ------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | None = None) -> Catalogue:
        """Load and check a catalogue file; the packaged `trading/data/instruments.toml`
        when `path` is None. Raises CatalogueError naming the file and the faulty entry."""
        if path is None:
            text = resources.files("trading").joinpath(_DATA_FILE).read_text("utf-8")
            return cls.from_toml(text, source=f"trading/{_DATA_FILE}")
        return cls.from_toml(Path(path).read_text("utf-8"), source=str(path))

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<string>") -> Catalogue:
        """Parse and check a catalogue from TOML text. Decimal values are written as strings
        ("0.00001") or integers; a bare TOML float is read exactly as a Decimal."""
        try:
            data = tomllib.loads(text, parse_float=Decimal)
        except tomllib.TOMLDecodeError as exc:
            raise CatalogueError(f"{source}: not valid TOML: {exc}") from exc
        _check_keys(
            source, "the file", data, required={"leverage_classes", "sessions", "instruments"}
        )

        leverage_classes = _table(source, "leverage_classes", data["leverage_classes"])
        levels: dict[str, int] = {}
        for name, value in leverage_classes.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CatalogueError(
                    f"{source}: leverage_classes.{name} must be an integer ≥ 1, got {value!r}"
                )
            levels[name] = value

        sessions: dict[str, TradingSession] = {}
        for name, table in _table(source, "sessions", data["sessions"]).items():
            try:
                sessions[name] = TradingSession.from_config(
                    name, _table(source, f"sessions.{name}", table)
                )
            except ValueError as exc:
                raise CatalogueError(f"{source}: {exc}") from exc

        entries = data["instruments"]
        if not isinstance(entries, list):
            raise CatalogueError(
                f"{source}: 'instruments' must be an array of tables ([[instruments]])"
            )
        instruments = [
            _instrument_from_table(source, index, entry, levels)
            for index, entry in enumerate(entries)
        ]
        return cls(instruments, sessions, levels, source=source)

    # --- look-ups -----------------------------------------------------------------------------

    def get(self, symbol: str) -> Instrument:
        """The instrument with this canonical symbol (exact spelling); raises UnknownSymbol."""
        try:
            return self._by_symbol[symbol]
        except (KeyError, TypeError):
            raise UnknownSymbol(f"unknown symbol {symbol!r}", symbol=str(symbol)) from None

    def resolve(self, name: str) -> Instrument:
        """The instrument named by its canonical symbol or any alias, ignoring case and
        surrounding spaces ("eurusd", "EUR-USD", "BTCUSDT"); raises UnknownSymbol."""
        found = self._by_key.get(_alias_key(name)) if isinstance(name, str) else None
        if found is None:
            raise UnknownSymbol(f"unknown symbol {name!r}", symbol=str(name))
        return found

    def session_for(self, symbol: str) -> TradingSession:
        """The trading session of the instrument with this canonical symbol."""
        return self._sessions[self.get(symbol).session]

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_symbol.values())

    def __len__(self) -> int:
        return len(self._by_symbol)

    def __repr__(self) -> str:
        return f"Catalogue({len(self)} instruments from {self.source})"

    @property
    def symbols(self) -> tuple[str, ...]:
        """The canonical symbols, in file order."""
        return tuple(self._by_symbol)

    @property
    def sessions(self) -> Mapping[str, TradingSession]:
        return self._sessions

    @property
    def leverage_classes(self) -> Mapping[str, int]:
        return self._leverage_classes


@functools.cache
def default_catalogue() -> Catalogue:
    """The packaged catalogue, loaded once per process."""
    return Catalogue.load()


# --- reading the file -----------------------------------------------------------------------

_REQUIRED: Final = frozenset(
    {
        "symbol",
        "asset_class",
        "tick_size",
        "price_precision",
        "lot_size",
        "contract_size",
        "min_qty",
        "max_qty",
        "leverage_class",
        "symbol_group",
        "account_type",
        "session",
    }
)
_OPTIONAL: Final = frozenset({"base", "quote", "aliases", "swap_long", "swap_short", "day_count"})


def _check_keys(
    source: str,
    where: str,
    table: Mapping[str, object],
    *,
    required: Iterable[str],
    optional: Iterable[str] = (),
) -> None:
    required = frozenset(required)
    allowed = required | frozenset(optional)
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise CatalogueError(
            f"{source}: {where}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(table))
    if missing:
        raise CatalogueError(f"{source}: {where}: missing key(s) {', '.join(missing)}")


def _table(source: str, where: str, value: object) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise CatalogueError(f"{source}: {where} must be a table")
    return value


def _instrument_from_table(
    source: str, index: int, entry: object, levels: Mapping[str, int]
) -> Instrument:
    table = _table(source, f"instruments[{index}]", entry)
    symbol = table.get("symbol")
    where = (
        f"instruments[{index}] ({symbol})" if isinstance(symbol, str) else (f"instruments[{index}]")
    )
    _check_keys(source, where, table, required=_REQUIRED, optional=_OPTIONAL)

    def fail(message: str) -> CatalogueError:
        return CatalogueError(f"{source}: {where}: {message}")

    def text(key: str) -> str:
        value = table[key]
        if not isinstance(value, str) or not value:
            raise fail(f"{key} must be a non-empty string, got {value!r}")
        return value

    def number(key: str) -> Decimal:
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise fail(f'{key} must be a decimal string such as "0.01", got {value!r}')
        try:
            return Decimal(value)
        except InvalidOperation:
            raise fail(f"{key} {value!r} is not a decimal number") from None

    symbol = text("symbol")
    try:
        asset_class = AssetClass(text("asset_class"))
    except ValueError:
        raise fail(
            f"asset_class {table['asset_class']!r} is not one of {', '.join(AssetClass)}"
        ) from None
    try:
        account_type = AccountType(text("account_type"))
    except ValueError:
        raise fail(
            f"account_type {table['account_type']!r} is not one of {', '.join(AccountType)}"
        ) from None

    if "/" in symbol:
        pair_base, _, pair_quote = symbol.partition("/")
        base = text("base") if "base" in table else pair_base
        quote = text("quote") if "quote" in table else pair_quote
        if (base, quote) != (pair_base, pair_quote):
            raise fail(f"base/quote {base}/{quote} disagree with the symbol")
    else:
        if "quote" not in table:
            raise fail(
                "quote (the currency PnL is in) is required for a symbol that is not BASE/QUOTE"
            )
        quote = text("quote")
        base = text("base") if "base" in table else symbol

    leverage_class = text("leverage_class")
    if leverage_class not in levels:
        raise fail(f"unknown leverage_class {leverage_class!r}; known: {', '.join(sorted(levels))}")
    max_leverage = 1 if account_type is AccountType.CASH else levels[leverage_class]

    aliases = table.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise fail("aliases must be a list of strings")

    swaps = [key for key in ("swap_long", "swap_short") if key in table]
    if account_type is AccountType.MARGIN and len(swaps) != 2:
        raise fail(
            "a margin instrument needs swap_long and swap_short (annual percent of the "
            "notional, negative when the client pays)"
        )
    day_count = table.get("day_count", 0)
    if not isinstance(day_count, int) or isinstance(day_count, bool):
        raise fail(f"day_count must be 360 or 365, got {day_count!r}")

    precision = table["price_precision"]
    if not isinstance(precision, int) or isinstance(precision, bool):
        raise fail(f"price_precision must be an integer, got {precision!r}")

    try:
        return Instrument(
            symbol=symbol,
            asset_class=asset_class,
            base=base,
            quote=quote,
            tick_size=number("tick_size"),
            lot_size=number("lot_size"),
            contract_size=number("contract_size"),
            min_qty=number("min_qty"),
            max_qty=number("max_qty"),
            price_precision=precision,
            leverage_class=leverage_class,
            max_leverage=max_leverage,
            symbol_group=text("symbol_group"),
            account_type=account_type,
            session=text("session"),
            aliases=tuple(aliases),
            swap_long=number("swap_long") if "swap_long" in table else Decimal(0),
            swap_short=number("swap_short") if "swap_short" in table else Decimal(0),
            day_count=day_count,
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
