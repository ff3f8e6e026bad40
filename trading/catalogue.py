"""The symbol catalogue: the instruments, leverage classes and sessions, checked as a whole.

The `Catalogue` loads them from a TOML file (by default `trading/data/instruments.toml`),
checks it, and answers look-ups by canonical symbol (`get`) or by any vendor spelling
(`resolve`).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Final

from trading.errors import ConfigError, UnknownSymbol
from trading.instrument import AccountType, AssetClass, Instrument
from trading.sessions import TradingSession

_DATA_FILE: Final = "data/instruments.toml"


class CatalogueError(ConfigError):
    """The instrument catalogue (file or objects) is malformed: a configuration error."""


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

# The regulatory identifiers, all optional strings; and whether trades are reported.
_IDENTIFIERS: Final = ("isin", "cfi", "full_name", "underlying", "underlying_isin")

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
_OPTIONAL: Final = frozenset(
    {"base", "quote", "aliases", "swap_long", "swap_short", "day_count", "reportable"}
    | set(_IDENTIFIERS)
)


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

    identifiers = {key: text(key) for key in _IDENTIFIERS if key in table}
    reportable = table.get("reportable", True)
    if not isinstance(reportable, bool):
        raise fail(f"reportable must be true or false, got {reportable!r}")

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
            isin=identifiers.get("isin"),
            cfi=identifiers.get("cfi"),
            full_name=identifiers.get("full_name"),
            underlying=identifiers.get("underlying"),
            underlying_isin=identifiers.get("underlying_isin"),
            reportable=reportable,
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
