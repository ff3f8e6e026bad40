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

A reply (``trading.bus.wire``) is ``{"command_id", "ok": true, "result": {...}}`` or
``{"command_id", "ok": false, "error": {"code", "message", "details": {...}}}`` with a code
of the ``trading.errors`` tree.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Union, get_args, get_origin, get_type_hints

from trading.bus.kinds import (
    BODY_MAX,
    REASON_MAX,
    Choice,
    Context,
    Currency,
    Flag,
    Int,
    Kind,
    Money,
    Symbol,
    Text,
    Units,
    amend_symbol,
)
from trading.commands import (
    AmendOrder,
    CancelOrder,
    Command,
    DecideWithdrawal,
    Deposit,
    HaltSymbol,
    OpenAccount,
    RequestWithdrawal,
    SetAccountState,
    SubmitOrder,
)
from trading.errors import (
    InvalidIdentifier,
    InvalidOrder,
    MalformedCommand,
    MissingField,
    UnknownCommandType,
)
from trading.validate import order_request

__all__ = ["BODY_MAX", "REGISTRY", "Context", "decode_command", "encode_command", "register"]

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
    return {"symbol": amend_symbol(cmd, ctx), **_amend_encoder(cmd, ctx)}


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
