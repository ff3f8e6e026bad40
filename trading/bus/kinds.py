"""Field kinds of the command wire format: how one body field is spelled in JSON and read
back into the integer commands (decimal strings for money, prices and quantities; JSON
integers for ids and times; bounded text). ``trading.bus.codec`` builds command types from
them; the bounds here are what the store's columns hold, and no more.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from trading.bounds import INT64_MAX
from trading.catalogue import Catalogue
from trading.errors import InvalidInput, MalformedCommand
from trading.money import format_minor, is_currency, parse_decimal, to_minor_exact

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@\-]{0,63}$")
TYPE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
REASON_MAX = 256
BODY_MAX = 65_536  # bytes of body JSON
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
CANONICAL = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class Context:
    """What decoding and encoding need beyond the body: the catalogue, and the symbol of an
    open order (an amend's prices are in its instrument's units; the host reads the OMS)."""

    catalogue: Catalogue
    symbol_of: Callable[[int], str | None] | None = None
    # The OMS's clock (a client's age is checked on its date) and the risk config's tiers;
    # without them the engine alone checks the age and the tier.
    clock: Callable[[], int] | None = None
    tiers: frozenset[str] | None = None


# -- field kinds ------------------------------------------------------------------------------


class Kind:
    """How one body field is spelled on the wire and read back."""

    doc = ""
    # The JSON types a value may have, checked before an edge builder reads it (None: the
    # builder checks: a decimal may come as a string or an integer, never as a float).
    json_types: tuple[type, ...] | None = None

    def decode(self, name: str, value: Any, body: Mapping[str, Any], ctx: Context) -> Any:
        raise NotImplementedError

    def encode(self, value: Any, cmd: Any, ctx: Context) -> Any:
        return value


class Int(Kind):
    json_types = (int,)

    def __init__(self, low: int = 1, high: int = INT64_MAX, doc: str = "integer") -> None:
        self.low, self.high, self.doc = low, high, doc

    def decode(self, name: str, value: Any, body: Mapping[str, Any], ctx: Context) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            raise MalformedCommand(f"{name} must be a JSON integer, got {value!r}", field=name)
        if not self.low <= value <= self.high:
            raise InvalidInput(
                f"{name} must be in {self.low}..{self.high}, got {value}", field=name
            )
        return value


class Flag(Kind):
    doc = "`true` or `false`"
    json_types = (bool,)

    def decode(self, name: str, value: Any, body: Mapping[str, Any], ctx: Context) -> Any:
        if not isinstance(value, bool):
            raise MalformedCommand(f"{name} must be true or false, got {value!r}", field=name)
        return value


class Text(Kind):
    json_types = (str,)

    def __init__(
        self,
        max_len: int = 64,
        pattern: re.Pattern[str] | None = None,
        error: type[InvalidInput] = InvalidInput,
        doc: str = "",
    ) -> None:
        self.max_len, self.pattern, self.error = max_len, pattern, error
        self.doc = doc or f"string, at most {max_len} characters, no control characters"

    def decode(self, name: str, value: Any, body: Mapping[str, Any], ctx: Context) -> Any:
        if not isinstance(value, str):
            raise MalformedCommand(f"{name} must be a string, got {value!r}", field=name)
        if len(value) > self.max_len or CONTROL.search(value):
            raise self.error(
                f"{name} must be at most {self.max_len} characters without control characters",
                field=name,
            )
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise self.error(f"{name} {value!r} is not well formed", field=name)
        return value


class Choice(Kind):
    json_types = (str,)

    def __init__(self, enum: type[StrEnum]) -> None:
        self.enum = enum
        self.doc = "one of " + ", ".join(f'"{m.value}"' for m in enum)

    def decode(self, name: str, value: Any, body: Mapping[str, Any], ctx: Context) -> Any:
        try:
            return self.enum(value)
        except ValueError:
            raise InvalidInput(f"{name} {value!r} is not {self.doc}", field=name) from None

    def encode(self, value: Any, cmd: Any, ctx: Context) -> Any:
        return value.value


class Currency(Kind):
    doc = 'currency code, e.g. "USD"'
    json_types = (str,)

    def decode(self, name: str, value: Any, body: Mapping[str, Any], ctx: Context) -> Any:
        if not isinstance(value, str) or not is_currency(value):
            raise InvalidInput(f"unknown currency {value!r}", field=name)
        return value


class Symbol(Kind):
    doc = 'symbol as the catalogue spells it, e.g. "EUR/USD"'
    json_types = (str,)

    def decode(self, name: str, value: Any, body: Mapping[str, Any], ctx: Context) -> Any:
        if not isinstance(value, str):
            raise MalformedCommand(f"{name} must be a string, got {value!r}", field=name)
        return ctx.catalogue.resolve(value).symbol


class Money(Kind):
    """A positive amount, a decimal string in the currency named by another field."""

    def __init__(self, currency_field: str) -> None:
        self.currency_field = currency_field
        self.doc = f'decimal string in units of `{currency_field}`, e.g. "100.00"; > 0'

    def decode(self, name: str, value: Any, body: Mapping[str, Any], ctx: Context) -> Any:
        currency = body.get(self.currency_field, "USD")
        amount = parse_decimal(value, name)
        if amount <= 0:
            raise InvalidInput(f"{name} must be positive, got {amount}", field=name)
        return to_minor_exact(amount, currency)

    def encode(self, value: Any, cmd: Any, ctx: Context) -> Any:
        return format_minor(value, getattr(cmd, self.currency_field))


def amend_symbol(cmd: Any, ctx: Context) -> str:
    symbol = ctx.symbol_of(cmd.order_id) if ctx.symbol_of else None
    if symbol is None:
        raise InvalidInput(
            f"order {cmd.order_id}: its symbol is needed to write an amend in human units"
        )
    return symbol


class Units(Kind):
    """A price or a quantity of the instrument named by the body's ``symbol`` field."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.doc = (
            'decimal string in lots, e.g. "1.5"'
            if what == "qty"
            else 'decimal string in the quote currency, e.g. "1.08512"'
        )

    def decode(self, name: str, value: Any, body: Mapping[str, Any], ctx: Context) -> Any:
        inst = ctx.catalogue.resolve(body["symbol"])
        number = parse_decimal(value, name)
        return inst.qty_to_int(number) if self.what == "qty" else inst.price_to_int(number)

    def encode(self, value: Any, cmd: Any, ctx: Context) -> Any:
        inst = ctx.catalogue.get(amend_symbol(cmd, ctx))
        conv = inst.qty_from_int if self.what == "qty" else inst.price_from_int
        return str(conv(value))


class IsoDate(Kind):
    doc = 'ISO date string, "YYYY-MM-DD"'
    json_types = (str,)

    def encode(self, value: Any, cmd: Any, ctx: Context) -> Any:
        return value.isoformat()


class Dec(Kind):
    """A decimal string carried as a ``Decimal`` by the command (a limit in lots or money)."""

    def __init__(self, doc: str) -> None:
        self.doc = doc

    def encode(self, value: Any, cmd: Any, ctx: Context) -> Any:
        return str(value)


class Lots(Kind):
    """A quantity in lots of the instrument the command's own ``symbol`` names."""

    doc = 'decimal string in lots, e.g. "1.5"'

    def encode(self, value: Any, cmd: Any, ctx: Context) -> Any:
        return str(ctx.catalogue.get(cmd.symbol).qty_from_int(value))


def check_json_type(name: str, value: Any, kind: Kind) -> None:
    """``MalformedCommand`` for a value of the wrong JSON type (a string id, a numeric flag)."""
    types_ = kind.json_types
    if types_ is None:
        return
    if not isinstance(value, types_) or (isinstance(value, bool) and bool not in types_):
        raise MalformedCommand(f"{name} has the wrong JSON type: {value!r}", field=name)
