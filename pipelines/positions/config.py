"""The positions flow's configuration: margin call and stop-out levels per account type, the
house currency, exposure limits per symbol and per currency, and the flow's timings.

Read from TOML (``load_config``); ``pipelines/positions/positions.example.toml`` is a
documented example. Levels and limits are decimals written as strings (``"100"``) or
integers, never TOML floats: a float has already lost digits, and a limit is money. The
timings (``[flow]``) are durations in seconds and may be floats. Anything the file gets
wrong (an unknown key, a symbol the catalogue does not list, a currency with no minor unit,
a stop-out level not under the call level) is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final

from trading.catalogue import Catalogue, default_catalogue
from trading.errors import ConfigError, UnknownSymbol
from trading.instrument import AccountType
from trading.money import is_currency
from trading.risk import DEFAULT_CALL_LEVEL, DEFAULT_STOP_OUT_LEVEL


def _default_levels() -> dict[str, MarginLevels]:
    # A cash account holds no margin, so its level is never defined and these never fire;
    # they are here so that every account type has levels to look up.
    return {t.value: MarginLevels() for t in AccountType}


@dataclass(frozen=True, slots=True)
class MarginLevels:
    """Margin level thresholds, in percent of used margin (equity / used margin × 100).

    At or under ``call`` the account is in margin call (an alert); at or under ``stop_out``
    the house closes positions until the level is back above it.
    """

    call: Decimal = DEFAULT_CALL_LEVEL
    stop_out: Decimal = DEFAULT_STOP_OUT_LEVEL

    def __post_init__(self) -> None:
        for name in ("call", "stop_out"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ConfigError(f"{name} must be a finite Decimal, got {value!r}")
        if not Decimal(0) < self.stop_out < self.call:
            raise ConfigError(
                f"levels must satisfy 0 < stop_out < call, got stop_out {self.stop_out} "
                f"and call {self.call}"
            )


@dataclass(frozen=True, slots=True)
class PositionsConfig:
    """Everything the positions flow decides with. Plain dicts (not mapping proxies) so that
    it pickles into a Bytewax flow's closures."""

    levels: dict[str, MarginLevels] = field(default_factory=_default_levels)
    house_currency: str = "USD"
    # |house position value| per symbol, in the house currency, major units.
    symbol_limits: dict[str, Decimal] = field(default_factory=dict)
    # |house net amount value| per currency, in the house currency, major units.
    currency_limits: dict[str, Decimal] = field(default_factory=dict)
    snapshot_s: float = 60.0  # lake snapshot interval: each one marks every account
    # A stop-out close with no outcome after this long is given up; the next evaluation may
    # send the next step (a close refused before any order event never reports back).
    close_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name, levels in self.levels.items():
            if name not in {t.value for t in AccountType}:
                raise ConfigError(
                    f"levels.{name}: unknown account type; known: {', '.join(AccountType)}"
                )
            if not isinstance(levels, MarginLevels):
                raise ConfigError(f"levels.{name} must be MarginLevels, got {levels!r}")
        if not isinstance(self.house_currency, str) or not is_currency(self.house_currency):
            raise ConfigError(f"house.currency: unknown currency {self.house_currency!r}")
        for where, limits in (
            ("symbols", self.symbol_limits),
            ("currencies", self.currency_limits),
        ):
            for key, limit in limits.items():
                if not isinstance(limit, Decimal) or not limit.is_finite() or limit <= 0:
                    raise ConfigError(
                        f"limits.{where}.{key} must be a positive Decimal, got {limit!r}"
                    )
        for currency in self.currency_limits:
            if not is_currency(currency):
                raise ConfigError(f"limits.currencies.{currency}: unknown currency")
        for name in ("snapshot_s", "close_timeout_s"):
            value = getattr(self, name)
            if not _is_seconds(value):
                raise ConfigError(
                    f"flow.{name} must be a positive number of seconds, got {value!r}"
                )

    def levels_for(self, account_type: str) -> MarginLevels:
        """The levels of an account type; the defaults for a type the file does not name."""
        return self.levels.get(account_type) or MarginLevels()

    @property
    def close_timeout_ns(self) -> int:
        return int(self.close_timeout_s * 1_000_000_000)


_SECTIONS: Final = frozenset({"levels", "house", "limits", "flow"})
_LEVEL_KEYS: Final = frozenset({"call", "stop_out"})
_HOUSE_KEYS: Final = frozenset({"currency"})
_LIMIT_KEYS: Final = frozenset({"symbols", "currencies"})
_FLOW_KEYS: Final = frozenset({"snapshot_s", "close_timeout_s"})


def load_config(path: Path | None, catalogue: Catalogue | None = None) -> PositionsConfig:
    """The configuration in the TOML file ``path``; the defaults when ``path`` is None.

    Symbols are checked against ``catalogue`` (the packaged one by default); an alias is
    accepted and stored under its canonical symbol.
    """
    if path is None:
        return PositionsConfig()
    try:
        doc = tomllib.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the positions config: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return config_from_mapping(doc, catalogue or default_catalogue(), source=str(path))


def config_from_mapping(
    doc: Mapping[str, object], catalogue: Catalogue, *, source: str = "<config>"
) -> PositionsConfig:
    """The configuration in a parsed TOML document (see ``load_config``)."""
    _known(doc, _SECTIONS, "", source)
    levels = _default_levels()
    for name, table in _table(doc, "levels", source).items():
        where = f"levels.{name}"
        if name not in levels:
            raise ConfigError(
                f"{source}: {where}: unknown account type; known: {', '.join(sorted(levels))}"
            )
        entry = _as_table(table, where, source)
        _known(entry, _LEVEL_KEYS, where, source)
        default = levels[name]
        call = _decimal(entry.get("call", default.call), f"{where}.call", source)
        stop_out = _decimal(entry.get("stop_out", default.stop_out), f"{where}.stop_out", source)
        try:
            levels[name] = MarginLevels(call=call, stop_out=stop_out)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {where}: {exc}") from None
    house = _table(doc, "house", source)
    _known(house, _HOUSE_KEYS, "house", source)
    currency = house.get("currency", "USD")
    if not isinstance(currency, str) or not is_currency(currency):
        raise ConfigError(f"{source}: house.currency: unknown currency {currency!r}")
    limits = _table(doc, "limits", source)
    _known(limits, _LIMIT_KEYS, "limits", source)
    symbol_limits: dict[str, Decimal] = {}
    for name, value in _as_table(limits.get("symbols", {}), "limits.symbols", source).items():
        where = f"limits.symbols.{name}"
        try:
            symbol = catalogue.resolve(name).symbol
        except UnknownSymbol:
            raise ConfigError(f"{source}: {where}: unknown symbol {name!r}") from None
        if symbol in symbol_limits:
            raise ConfigError(f"{source}: {where}: {symbol} is given twice")
        symbol_limits[symbol] = _positive(value, where, source)
    currency_limits: dict[str, Decimal] = {}
    for name, value in _as_table(limits.get("currencies", {}), "limits.currencies", source).items():
        where = f"limits.currencies.{name}"
        if not is_currency(name):
            raise ConfigError(f"{source}: {where}: unknown currency {name!r}")
        currency_limits[name] = _positive(value, where, source)
    flow = _table(doc, "flow", source)
    _known(flow, _FLOW_KEYS, "flow", source)
    return PositionsConfig(
        levels=levels,
        house_currency=currency,
        symbol_limits=symbol_limits,
        currency_limits=currency_limits,
        snapshot_s=_seconds(flow.get("snapshot_s", 60.0), "flow.snapshot_s", source),
        close_timeout_s=_seconds(flow.get("close_timeout_s", 30.0), "flow.close_timeout_s", source),
    )


def _known(table: Mapping[str, object], known: frozenset[str], where: str, source: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        keys = ", ".join(f"{where}.{k}" if where else k for k in unknown)
        raise ConfigError(f"{source}: unknown key(s) {keys}; known: {', '.join(sorted(known))}")


def _as_table(value: object, where: str, source: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {where} must be a table, got {value!r}")
    return value


def _table(doc: Mapping[str, object], key: str, source: str) -> Mapping[str, object]:
    return _as_table(doc.get(key, {}), key, source)


def _decimal(value: object, where: str, source: str) -> Decimal:
    # bool is an int; a float already lost digits (0.1 is not one tenth).
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ConfigError(f"{source}: {where}: not a decimal: {value!r}") from None
    elif isinstance(value, float):
        raise ConfigError(
            f'{source}: {where}: write a decimal as a string ("{value}"), not a float'
        )
    else:
        raise ConfigError(f"{source}: {where}: not a decimal: {value!r}")
    if not result.is_finite():
        raise ConfigError(f"{source}: {where}: not finite: {value!r}")
    return result


def _positive(value: object, where: str, source: str) -> Decimal:
    result = _decimal(value, where, source)
    if result <= 0:
        raise ConfigError(f"{source}: {where}: must be positive, got {result}")
    return result


def _seconds(value: object, where: str, source: str) -> float:
    if not _is_seconds(value):
        raise ConfigError(f"{source}: {where}: must be a positive number of seconds, got {value!r}")
    assert isinstance(value, int | float)
    return float(value)


def _is_seconds(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value > 0
