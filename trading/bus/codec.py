"""The command wire format, without I/O: command types, their JSON bodies, and replies.

A command on the bus is a type name (the command's class name, ``"SubmitOrder"``) and a JSON
object body in human units: quantities in lots, prices and amounts as decimal strings
(``"1.5"``, ``"1.08512"``, ``"100.00"``), ids and nanosecond times as JSON integers. The
host decodes a body into the integer command of ``trading.commands`` (orders through
``trading.validate.order_request``), so bad input is refused at the edge with a specific code
and changes nothing. A body field the type does not know is refused too: a misspelt
``"prcie"`` must not pass as an order without a price.

The registry is generic over the command dataclasses: ``register(Deposit, amount=Money(
"currency"))`` derives the body from the dataclass's fields (integers, flags, text, enums
from their annotations; money, prices and quantities named by a kind), so a new command type
needs one registration line. docs/commands.md is the contract; a test keeps it in step.

A reply is ``{"command_id", "ok": true, "result": {...}}`` or ``{"command_id", "ok": false,
"error": {"code", "message", "details": {...}}}`` with a code of the ``trading.errors`` tree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, Union, get_args, get_origin, get_type_hints

from trading.commands import (
    AmendOrder,
    CancelOrder,
    Command,
    DecideWithdrawal,
    Deposit,
    Done,
    HaltSymbol,
    OpenAccount,
    OrderAck,
    RequestWithdrawal,
    Result,
    SetAccountState,
    SubmitOrder,
)
from trading.errors import (
    BourseError,
    InvalidIdentifier,
    InvalidInput,
    InvalidOrder,
    MalformedCommand,
    MissingField,
    UnknownCommandType,
    error_classes,
)
from trading.instruments import Catalogue
from trading.money import format_minor, is_currency, parse_decimal, to_minor_exact
from trading.oms.commandlog import Envelope
from trading.validate import order_request

# Bounds of an entry's fields: what the store's columns hold, and no more.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@\-]{0,63}$")
TYPE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
REASON_MAX = 256
BODY_MAX = 65_536  # bytes of body JSON
INT64_MAX = 2**63 - 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_CANONICAL = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class Context:
    """What decoding and encoding need beyond the body: the catalogue, and the symbol of an
    open order (an amend's prices are in its instrument's units; the host reads the OMS)."""

    catalogue: Catalogue
    symbol_of: Callable[[int], str | None] | None = None


# -- field kinds ------------------------------------------------------------------------------


class Kind:
    """How one body field is spelled on the wire and read back."""

    doc = ""

    def decode(self, name: str, value: Any, body: Mapping[str, Any], ctx: Context) -> Any:
        raise NotImplementedError

    def encode(self, value: Any, cmd: Any, ctx: Context) -> Any:
        return value


class Int(Kind):
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

    def decode(self, name: str, value: Any, body: Mapping[str, Any], ctx: Context) -> Any:
        if not isinstance(value, bool):
            raise MalformedCommand(f"{name} must be true or false, got {value!r}", field=name)
        return value


class Text(Kind):
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
        if len(value) > self.max_len or _CONTROL.search(value):
            raise self.error(
                f"{name} must be at most {self.max_len} characters without control characters",
                field=name,
            )
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise self.error(f"{name} {value!r} is not well formed", field=name)
        return value


class Choice(Kind):
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

    def decode(self, name: str, value: Any, body: Mapping[str, Any], ctx: Context) -> Any:
        if not isinstance(value, str) or not is_currency(value):
            raise InvalidInput(f"unknown currency {value!r}", field=name)
        return value


class Symbol(Kind):
    doc = 'symbol as the catalogue spells it, e.g. "EUR/USD"'

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


def _amend_symbol(cmd: Any, ctx: Context) -> str:
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
        inst = ctx.catalogue.get(_amend_symbol(cmd, ctx))
        conv = inst.qty_from_int if self.what == "qty" else inst.price_from_int
        return str(conv(value))


# -- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind
    required: bool
    wire_only: bool = False  # on the wire for decoding, not a field of the command


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    cls: type
    fields: tuple[FieldSpec, ...]
    decode: Callable[[Mapping[str, Any], Context], Command]
    encode: Callable[[Any, Context], dict[str, Any]]


REGISTRY: dict[str, CommandSpec] = {}


def _infer(tp: Any) -> tuple[Kind, bool]:
    """The kind of an annotated type, and whether ``None`` is allowed."""
    optional = False
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        optional, tp = len(args) < len(get_args(tp)), args[0]
    if tp is bool:
        return Flag(), optional
    if tp is int:
        return Int(), optional
    if tp is str:
        return Text(), optional
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        return Choice(tp), optional
    raise TypeError(f"no wire kind for {tp!r}: name one in register()")


def register(
    cls: type,
    *,
    name: str | None = None,
    wire_only: Mapping[str, Kind] | None = None,
    decode: Callable[[Mapping[str, Any], Context], Command] | None = None,
    encode: Callable[[Any, Context], dict[str, Any]] | None = None,
    fields: tuple[FieldSpec, ...] | None = None,
    **kinds: Kind,
) -> CommandSpec:
    """Put a command dataclass on the wire under ``name`` (default: its class name).

    Each field's kind comes from ``kinds`` or its annotation; a field without a default is
    required. ``wire_only`` fields travel in the body for decoding but are not the
    command's. ``decode``/``encode``/``fields`` replace the generic ones (``SubmitOrder``).
    """
    type_name = name or cls.__name__
    if type_name in REGISTRY:
        raise ValueError(f"command type {type_name} registered twice")
    if fields is None:
        fields = derive_fields(cls, wire_only, kinds)
    spec = CommandSpec(
        type_name,
        cls,
        fields,
        decode or _generic_decoder(cls, fields),
        encode or _generic_encoder(fields),
    )
    REGISTRY[type_name] = spec
    return spec


def derive_fields(
    cls: type, wire_only: Mapping[str, Kind] | None, kinds: Mapping[str, Kind]
) -> tuple[FieldSpec, ...]:
    hints = get_type_hints(cls)
    specs = [FieldSpec(n, kind, True, True) for n, kind in (wire_only or {}).items()]
    for f in dataclasses.fields(cls):
        kind = kinds[f.name] if f.name in kinds else _infer(hints[f.name])[0]
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        specs.append(FieldSpec(f.name, kind, not has_default))
    return tuple(specs)


def _check_names(body: Mapping[str, Any], fields: tuple[FieldSpec, ...]) -> None:
    known = {f.name for f in fields}
    unknown = sorted(set(body) - known)
    if unknown:
        raise MalformedCommand(f"unknown field(s): {', '.join(unknown)}", fields=unknown)
    missing = [f.name for f in fields if f.required and body.get(f.name) is None]
    if missing:
        raise MissingField(f"missing field(s): {', '.join(missing)}", fields=missing)


def _generic_decoder(
    cls: type, fields: tuple[FieldSpec, ...]
) -> Callable[[Mapping[str, Any], Context], Command]:
    def decode(body: Mapping[str, Any], ctx: Context) -> Command:
        _check_names(body, fields)
        # wire-only fields first: the others may need them (an amend's symbol).
        for f in fields:
            if f.wire_only:
                f.kind.decode(f.name, body[f.name], body, ctx)
        values = {
            f.name: f.kind.decode(f.name, body[f.name], body, ctx)
            for f in fields
            if not f.wire_only and body.get(f.name) is not None
        }
        return cls(**values)  # type: ignore[no-any-return]

    return decode


def _generic_encoder(fields: tuple[FieldSpec, ...]) -> Callable[[Any, Context], dict[str, Any]]:
    def encode(cmd: Any, ctx: Context) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for f in fields:
            if f.wire_only:
                continue
            value = getattr(cmd, f.name)
            if value is not None:
                body[f.name] = f.kind.encode(value, cmd, ctx)
        return body

    return encode


# -- SubmitOrder: its body is the order request of trading.validate ------------------------------

_ORDER_FIELDS = (
    FieldSpec("account_id", Int(), True),
    FieldSpec(
        "client_order_id",
        Text(
            64,
            error=InvalidIdentifier,
            doc="1-64 of letters, digits and `._:-`; unique per account",
        ),
        True,
    ),
    FieldSpec("symbol", Symbol(), True),
    FieldSpec("side", Text(8, doc='"buy" or "sell"'), True),
    FieldSpec("type", Text(16, doc='"market" (default), "limit", "stop" or "stop_limit"'), False),
    FieldSpec("qty", Units("qty"), True),
    FieldSpec("price", Units("price"), False),
    FieldSpec("trigger_price", Units("price"), False),
    FieldSpec("tif", Text(8, doc='"gtc" (default), "ioc", "fok", "day" or "gtd"'), False),
    FieldSpec("expire_ns", Int(doc="integer, UTC nanoseconds"), False),
    FieldSpec("reference_price", Units("price"), False),
    FieldSpec("max_slippage_ticks", Int(0, 1_000_000, "integer, ticks, 0..1000000"), False),
)
_ORDER_INTS = ("account_id", "expire_ns", "max_slippage_ticks")
_ORDER_TEXT = ("client_order_id", "symbol", "side", "type", "tif")


# JSON types and bounds first; trading.validate checks the meaning.
_ORDER_CHECKS = tuple(
    (f.name, f.kind if f.name in _ORDER_INTS or f.name == "client_order_id" else Text(64))
    for f in _ORDER_FIELDS
    if f.name in _ORDER_INTS or f.name in _ORDER_TEXT
)


def _decode_order(body: Mapping[str, Any], ctx: Context) -> Command:
    _check_names(body, _ORDER_FIELDS)
    kwargs = {k: v for k, v in body.items() if v is not None}
    for name, kind in _ORDER_CHECKS:
        if name in kwargs:
            kind.decode(name, kwargs[name], body, ctx)
    return SubmitOrder(order_request(ctx.catalogue, **kwargs))


def _encode_order(cmd: Any, ctx: Context) -> dict[str, Any]:
    r = cmd.request
    inst = ctx.catalogue.get(r.symbol)
    body: dict[str, Any] = {
        "account_id": r.account_id, "client_order_id": r.client_order_id, "symbol": r.symbol,
        "side": r.side.value, "type": r.type.value, "qty": str(inst.qty_from_int(r.qty)),
        "tif": r.tif.value,
    }  # fmt: skip
    for key in ("price", "trigger_price", "reference_price"):
        if getattr(r, key) is not None:
            body[key] = str(inst.price_from_int(getattr(r, key)))
    for key in ("expire_ns", "max_slippage_ticks"):
        if getattr(r, key) is not None:
            body[key] = getattr(r, key)
    return body


def _decode_amend(body: Mapping[str, Any], ctx: Context) -> Command:
    cmd = _amend_decoder(body, ctx)
    assert isinstance(cmd, AmendOrder)
    if ctx.symbol_of is not None:
        held = ctx.symbol_of(cmd.order_id)
        # An open order's symbol never changes, so this read needs no lock; an order that
        # is not open is refused by the OMS whatever the units.
        if held is not None and held != ctx.catalogue.resolve(body["symbol"]).symbol:
            raise InvalidOrder(f"order {cmd.order_id} is an order of {held}, not {body['symbol']}")
    return cmd


def _encode_amend(cmd: Any, ctx: Context) -> dict[str, Any]:
    return {"symbol": _amend_symbol(cmd, ctx), **_amend_encoder(cmd, ctx)}


_AMEND_FIELDS = derive_fields(
    AmendOrder, {"symbol": Symbol()},
    {"qty": Units("qty"), "price": Units("price"), "trigger_price": Units("price")},
)  # fmt: skip
_amend_decoder = _generic_decoder(AmendOrder, _AMEND_FIELDS)
_amend_encoder = _generic_encoder(_AMEND_FIELDS)

# The wire's vocabulary: one line per command type.
register(OpenAccount, currency=Currency(), tier=Text(32))
register(Deposit, currency=Currency(), amount=Money("currency"), ref=Text(64))
register(RequestWithdrawal, currency=Currency(), amount=Money("currency"))
register(DecideWithdrawal, reason=Text(REASON_MAX))
register(SubmitOrder, decode=_decode_order, encode=_encode_order, fields=_ORDER_FIELDS)
register(CancelOrder)
register(AmendOrder, decode=_decode_amend, encode=_encode_amend, fields=_AMEND_FIELDS)
register(SetAccountState)
register(HaltSymbol, symbol=Symbol())


def type_of(command: Command) -> str:
    for spec in REGISTRY.values():
        if type(command) is spec.cls:
            return spec.name
    raise UnknownCommandType(f"{type(command).__name__} is not a bus command")


def encode_command(command: Command, ctx: Context) -> tuple[str, dict[str, Any]]:
    """A command as ``(type, body)`` in human units."""
    name = type_of(command)
    return name, REGISTRY[name].encode(command, ctx)


def decode_command(type_name: str, body: Mapping[str, Any], ctx: Context) -> Command:
    spec = REGISTRY.get(type_name)
    if spec is None:
        raise UnknownCommandType(
            f"unknown command type {type_name!r}", known=sorted(REGISTRY)
        )  # fmt: skip
    return spec.decode(body, ctx)


# -- entries: what a client puts on the stream ------------------------------------------------

ENTRY_FIELDS = ("command_id", "type", "reply_to", "actor", "reason", "body")
REQUIRED_ENTRY_FIELDS = ("command_id", "type", "reply_to", "actor", "body")


def fingerprint(type_name: str, body: Mapping[str, Any]) -> str:
    """sha256 of the type and the canonical body: what makes two sends the same command."""
    return hashlib.sha256(f"{type_name}\n{_CANONICAL(body)}".encode()).hexdigest()


def entry_fields(
    command_id: str, type_name: str, body: Mapping[str, Any], reply_to: str, actor: str,
    reason: str = "",
) -> dict[str, str]:  # fmt: skip
    fields = {
        "command_id": command_id, "type": type_name, "reply_to": reply_to, "actor": actor,
        "body": _JSON(body),
    }  # fmt: skip
    if reason:
        fields["reason"] = reason
    return fields


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def reply_address(fields: Mapping[Any, Any], reply_prefix: str) -> str | None:
    """The entry's reply address when it is one the host may write to, else ``None``."""
    raw = fields.get("reply_to", fields.get(b"reply_to"))
    if raw is None:
        return None
    text = _text(raw)
    if not text.startswith(reply_prefix) or not ID_PATTERN.fullmatch(text[len(reply_prefix) :]):
        return None
    return text


def command_id_of(fields: Mapping[Any, Any]) -> str:
    raw = fields.get("command_id", fields.get(b"command_id"))
    text = _text(raw) if raw is not None else ""
    return text if ID_PATTERN.fullmatch(text) else ""


def parse_entry(fields: Mapping[Any, Any], ctx: Context, reply_prefix: str) -> Envelope:
    """A stream entry into the command it carries; raises a wire error (``BourseError``)."""
    f = {_text(k): _text(v) for k, v in fields.items()}
    missing = [k for k in REQUIRED_ENTRY_FIELDS if k not in f]
    if missing:
        raise MissingField(f"entry lacks field(s): {', '.join(missing)}", fields=missing)
    if not ID_PATTERN.fullmatch(f["command_id"]):
        raise MalformedCommand(
            "command_id must be 1-64 characters of letters, digits and ._:@- starting with a "
            "letter or digit",
            field="command_id",
        )
    if reply_address(f, reply_prefix) is None:
        raise MalformedCommand(
            f"reply_to must be {reply_prefix}<id> with an id like a command id", field="reply_to"
        )
    if not ID_PATTERN.fullmatch(f["actor"]):
        raise MalformedCommand("actor must be 1-64 characters like a command id", field="actor")
    reason = f.get("reason", "")
    if len(reason) > REASON_MAX or _CONTROL.search(reason):
        raise MalformedCommand(
            f"reason must be at most {REASON_MAX} characters without control characters",
            field="reason",
        )
    if not TYPE_PATTERN.fullmatch(f["type"]):
        raise UnknownCommandType(f"unknown command type {f['type'][:64]!r}", known=sorted(REGISTRY))
    if len(f["body"].encode()) > BODY_MAX:
        raise MalformedCommand(f"body is longer than {BODY_MAX} bytes", field="body")
    try:
        body = json.loads(f["body"])
    except ValueError as exc:
        raise MalformedCommand(f"body is not JSON: {exc}", field="body") from None
    if not isinstance(body, dict):
        raise MalformedCommand("body must be a JSON object", field="body")
    command = decode_command(f["type"], body, ctx)
    symbol = body.get("symbol") if isinstance(body.get("symbol"), str) else None
    if isinstance(command, SubmitOrder):
        symbol = command.request.symbol
    elif isinstance(command, CancelOrder) and ctx.symbol_of is not None:
        symbol = ctx.symbol_of(command.order_id)
    elif symbol is not None:
        symbol = ctx.catalogue.resolve(symbol).symbol
    return Envelope(
        command_id=f["command_id"],
        type=f["type"],
        fingerprint=fingerprint(f["type"], body),
        command=command,
        actor=f["actor"],
        reason=reason,
        symbol=symbol,
    )


# -- replies ----------------------------------------------------------------------------------

_CODES: dict[str, type[BourseError]] = {}


def error_codes() -> dict[str, type[BourseError]]:
    """Every code a reply's error may carry, with its class."""
    if not _CODES:
        _CODES.update({cls.code: cls for cls in error_classes()})
    return _CODES


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def error_body(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, BourseError):
        details = {k: _plain(v) for k, v in exc.details.items()}
        return {"code": exc.code, "message": exc.message, "details": details}
    return {"code": BourseError.code, "message": repr(exc), "details": {}}


def result_body(result: Result, catalogue: Catalogue, symbol: str | None) -> dict[str, Any]:
    if isinstance(result, Done):
        return {"ref": result.ref, "detail": result.detail}
    assert isinstance(result, OrderAck), result
    body: dict[str, Any] = {
        "order_id": result.order_id, "account_id": result.account_id,
        "client_order_id": result.client_order_id, "status": result.status.value,
        "reason": result.reason, "duplicate": result.duplicate,
    }  # fmt: skip
    if symbol is not None and symbol in catalogue:
        inst = catalogue.get(symbol)
        body["symbol"] = symbol
        body["qty"] = str(inst.qty_from_int(result.qty))
        body["filled_qty"] = str(inst.qty_from_int(result.filled_qty))
        avg = None
        if result.filled_qty:
            exact = Decimal(result.filled_notional) / result.filled_qty
            places = Decimal(1).scaleb(-(inst.price_precision + 3))
            avg = str(exact.scaleb(-inst.price_precision).quantize(places, ROUND_HALF_EVEN))
        body["avg_price"] = avg
    else:  # no instrument to scale by: the stored integers
        body.update(qty=result.qty, filled_qty=result.filled_qty,
                    filled_notional=result.filled_notional)  # fmt: skip
    return body


def reply_text(command_id: str, result: Result | BaseException, ctx: Context,
               symbol: str | None = None) -> str:  # fmt: skip
    """The JSON reply to a command: its result, or its error."""
    if isinstance(result, BaseException):
        return _JSON({"command_id": command_id, "ok": False, "error": error_body(result)})
    body = result_body(result, ctx.catalogue, symbol)
    return _JSON({"command_id": command_id, "ok": True, "result": body})


@dataclass(frozen=True, slots=True)
class Reply:
    """A command's answer, the same from the bus and from the in-memory client."""

    command_id: str
    ok: bool
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    text: str = dataclasses.field(default="", compare=False, repr=False)

    @property
    def code(self) -> str | None:
        return None if self.error is None else str(self.error.get("code"))

    @classmethod
    def from_json(cls, text: str) -> Reply:
        data = json.loads(text)
        return cls(data["command_id"], bool(data["ok"]), data.get("result"), data.get("error"),
                   text)  # fmt: skip

    @classmethod
    def failure(cls, command_id: str, exc: BourseError) -> Reply:
        body = error_body(exc)
        return cls(command_id, False, None, body, _JSON({"command_id": command_id, "ok": False,
                                                         "error": body}))  # fmt: skip

    def unwrap(self) -> dict[str, Any]:
        """The result; raises the error as its ``trading.errors`` class otherwise."""
        if self.ok:
            return self.result or {}
        err = self.error or {}
        cls = error_codes().get(str(err.get("code")), BourseError)
        raise cls(str(err.get("message", "")), **(err.get("details") or {}))
