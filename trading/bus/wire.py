"""Bus entries and replies: what a client puts on ``bourse:commands`` (``entry_fields``),
how the host reads it back into an ``Envelope`` (``parse_entry``: every field bounded, the
body decoded by ``trading.bus.codec``), and the JSON reply (``reply_text``, ``Reply``).
docs/commands.md is the contract.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from trading.bus.codec import REGISTRY, decode_command
from trading.bus.kinds import (
    BODY_MAX,
    CANONICAL,
    CONTROL,
    ID_PATTERN,
    JSON,
    REASON_MAX,
    TYPE_PATTERN,
    Context,
)
from trading.catalogue import Catalogue
from trading.commands import CancelOrder, Done, OrderAck, Result, SubmitOrder
from trading.errors import (
    BourseError,
    MalformedCommand,
    MissingField,
    UnknownCommandType,
    error_classes,
)
from trading.fields import text_of
from trading.oms.commandlog import Envelope

# -- entries: what a client puts on the stream ------------------------------------------------

ENTRY_FIELDS = ("command_id", "type", "reply_to", "actor", "reason", "body")
REQUIRED_ENTRY_FIELDS = ("command_id", "type", "reply_to", "actor", "body")


def fingerprint(type_name: str, body: Mapping[str, Any], reason: str = "") -> str:
    """sha256 of the type, the canonical body and the reason (the command's too, and in the
    audit log): what makes two sends the same command."""
    text = f"{type_name}\n{CANONICAL(body)}" + (f"\n{reason}" if reason else "")
    return hashlib.sha256(text.encode()).hexdigest()


def entry_fields(
    command_id: str, type_name: str, body: Mapping[str, Any], reply_to: str, actor: str,
    reason: str = "",
) -> dict[str, str]:  # fmt: skip
    fields = {
        "command_id": command_id, "type": type_name, "reply_to": reply_to, "actor": actor,
        "body": JSON(body),
    }  # fmt: skip
    if reason:
        fields["reason"] = reason
    return fields


def reply_address(fields: Mapping[Any, Any], reply_prefix: str) -> str | None:
    """The entry's reply address when it is one the host may write to, else ``None``."""
    raw = fields.get("reply_to", fields.get(b"reply_to"))
    if raw is None:
        return None
    text = text_of(raw, "replace")
    if not text.startswith(reply_prefix) or not ID_PATTERN.fullmatch(text[len(reply_prefix) :]):
        return None
    return text


def command_id_of(fields: Mapping[Any, Any]) -> str:
    raw = fields.get("command_id", fields.get(b"command_id"))
    text = text_of(raw, "replace") if raw is not None else ""
    return text if ID_PATTERN.fullmatch(text) else ""


def parse_entry(fields: Mapping[Any, Any], ctx: Context, reply_prefix: str) -> Envelope:
    """A stream entry into the command it carries; raises a wire error (``BourseError``)."""
    f = {text_of(k, "replace"): text_of(v, "replace") for k, v in fields.items()}
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
    if len(reason) > REASON_MAX or CONTROL.search(reason):
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
    command = decode_command(f["type"], body, ctx, actor=f["actor"], reason=reason)
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
        fingerprint=fingerprint(f["type"], body, reason),
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
        return JSON({"command_id": command_id, "ok": False, "error": error_body(result)})
    body = result_body(result, ctx.catalogue, symbol)
    return JSON({"command_id": command_id, "ok": True, "result": body})


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
        return cls(command_id, False, None, body, JSON({"command_id": command_id, "ok": False,
                                                         "error": body}))  # fmt: skip

    def unwrap(self) -> dict[str, Any]:
        """The result; raises the error as its ``trading.errors`` class otherwise."""
        if self.ok:
            return self.result or {}
        err = self.error or {}
        cls = error_codes().get(str(err.get("code")), BourseError)
        raise cls(str(err.get("message", "")), **(err.get("details") or {}))
