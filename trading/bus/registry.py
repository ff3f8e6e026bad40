"""The registry of command types on the wire, generic over the command dataclasses.

``register(Deposit, amount=Money("currency"))`` derives a body from the dataclass's fields
(integers, flags, text, enums from their annotations; money, prices and quantities named by
a kind); ``build=`` hands the body to an edge builder instead (``trading.validate_accounts``,
``trading.validate_funding``), so that the bus refuses with the same codes and bounds as an
in-process caller. ``trading.bus.codec`` holds the vocabulary: one registration per type.

Who asks and why are not body fields: the entry carries them (``actor``, ``reason``), and
``decode_command`` puts them on the command. The keyword-only ``actor`` and ``reason`` of
every command are left out of its body; a ``reason`` that is a command's own positional field
(a hold, a decision, a house close) is a body field, and the entry's reason stands in for it
when the body has none.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Union, get_args, get_origin, get_type_hints

from trading.bounds import check_reason
from trading.bus.kinds import Choice, Context, Flag, Int, Kind, Text, check_json_type
from trading.commands import Command
from trading.errors import MalformedCommand, MissingField, UnknownCommandType

# keyword-only fields that come from the entry, never from the body
ENTRY_ONLY = ("actor", "reason")


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
    build: Build | None = None


# build(body with the entry's reason filled in, context, actor) -> the command
Build = Callable[[dict[str, Any], Context, str], Command]

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
    type_name: str | None = None,
    wire_only: Mapping[str, Kind] | None = None,
    decode: Callable[[Mapping[str, Any], Context], Command] | None = None,
    encode: Callable[[Any, Context], dict[str, Any]] | None = None,
    fields: tuple[FieldSpec, ...] | None = None,
    build: Build | None = None,
    optional: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
    **kinds: Kind,
) -> CommandSpec:
    """Put a command dataclass on the wire under ``type_name`` (default: its class name).

    Each field's kind comes from ``kinds`` or its annotation; a field without a default is
    required, unless named in ``optional`` (its builder decides); one in ``required`` is,
    whatever its default (kept for in-process callers from before). ``wire_only`` fields
    travel in the body for decoding but are not the command's. ``build`` makes the command from the
    body (an edge builder); ``decode``/``encode``/``fields`` replace the generic ones.
    """
    type_name = type_name or cls.__name__
    if type_name in REGISTRY:
        raise ValueError(f"command type {type_name} registered twice")
    if fields is None:
        fields = derive_fields(cls, wire_only, kinds, optional, required)
    if build is not None and decode is None:
        decode = _building_decoder(fields, build)
    spec = CommandSpec(
        type_name,
        cls,
        fields,
        decode or _generic_decoder(cls, fields),
        encode or _generic_encoder(fields),
        build,
    )
    REGISTRY[type_name] = spec
    return spec


def derive_fields(
    cls: type,
    wire_only: Mapping[str, Kind] | None,
    kinds: Mapping[str, Kind],
    optional: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
) -> tuple[FieldSpec, ...]:
    hints = get_type_hints(cls)
    specs = [FieldSpec(n, kind, True, True) for n, kind in (wire_only or {}).items()]
    for f in dataclasses.fields(cls):
        if f.kw_only and f.name in ENTRY_ONLY:
            continue
        kind = kinds[f.name] if f.name in kinds else _infer(hints[f.name])[0]
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        needed = (not has_default and f.name not in optional) or f.name in required
        specs.append(FieldSpec(f.name, kind, needed))
    return tuple(specs)


def check_names(body: Mapping[str, Any], fields: tuple[FieldSpec, ...]) -> None:
    known = {f.name for f in fields}
    unknown = sorted(set(body) - known)
    if unknown:
        raise MalformedCommand(f"unknown field(s): {', '.join(unknown)}", fields=unknown)
    missing = [f.name for f in fields if f.required and body.get(f.name) is None]
    if missing:
        raise MissingField(f"missing field(s): {', '.join(missing)}", fields=missing)


def precheck(body: Mapping[str, Any], fields: tuple[FieldSpec, ...]) -> None:
    """The names and JSON types of a body that an edge builder reads."""
    check_names(body, fields)
    for f in fields:
        if body.get(f.name) is not None:
            check_json_type(f.name, body[f.name], f.kind)


def _generic_decoder(
    cls: type, fields: tuple[FieldSpec, ...]
) -> Callable[[Mapping[str, Any], Context], Command]:
    def decode(body: Mapping[str, Any], ctx: Context) -> Command:
        check_names(body, fields)
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


def _building_decoder(
    fields: tuple[FieldSpec, ...], build: Build
) -> Callable[[Mapping[str, Any], Context], Command]:
    def decode(body: Mapping[str, Any], ctx: Context) -> Command:
        # Only the names here: the builder checks types, bounds and meaning, with the codes
        # an in-process caller gets.
        precheck(body, fields)
        return build({k: v for k, v in body.items() if v is not None}, ctx, "")

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


def _entry_fields(cls: type) -> tuple[bool, bool]:
    """(has a keyword-only reason, has a positional reason) of a command class."""
    kw = positional = False
    for f in dataclasses.fields(cls):
        if f.name == "reason":
            kw = f.kw_only is True
            positional = not kw
    return kw, positional


def type_of(command: Command) -> str:
    for spec in REGISTRY.values():
        if type(command) is spec.cls:
            return spec.name
    raise UnknownCommandType(f"{type(command).__name__} is not a bus command")


def encode_command(command: Command, ctx: Context) -> tuple[str, dict[str, Any]]:
    """A command as ``(type, body)`` in human units; its actor and keyword-only reason are
    the entry's (``entry_reason``), not the body's."""
    name = type_of(command)
    return name, REGISTRY[name].encode(command, ctx)


def entry_reason(command: Command) -> str:
    """The reason an entry carries for ``command``: its keyword-only reason, if it has one."""
    kw, _ = _entry_fields(type(command))
    return str(getattr(command, "reason", "")) if kw else ""


def decode_command(
    type_name: str, body: Mapping[str, Any], ctx: Context, *, actor: str = "", reason: str = ""
) -> Command:
    """The command of a body, asked by ``actor`` for ``reason`` (the entry's)."""
    spec = REGISTRY.get(type_name)
    if spec is None:
        raise UnknownCommandType(
            f"unknown command type {type_name!r}", known=sorted(REGISTRY)
        )  # fmt: skip
    kw_reason, own_reason = _entry_fields(spec.cls)
    if reason:
        reason = check_reason(reason)
    if spec.build is not None:
        precheck(body, spec.fields)
        values = {k: v for k, v in body.items() if v is not None}
        if own_reason:
            values["reason"] = values.get("reason") or reason
        command = spec.build(values, ctx, actor)
    else:
        command = spec.decode(body, ctx)
        if own_reason and not getattr(command, "reason", "") and reason:
            command = dataclasses.replace(command, reason=reason)  # type: ignore[arg-type]
    extra: dict[str, Any] = {"actor": actor} if actor else {}
    if kw_reason and reason:
        extra["reason"] = reason
    return dataclasses.replace(command, **extra) if extra else command
