"""The command wire format, without I/O: the command types on the wire and their JSON bodies.

A command on the bus is a type name (the command's class name, ``"SubmitOrder"``) and a JSON
object body in human units: quantities in lots, prices and amounts as decimal strings
(``"1.5"``, ``"1.08512"``, ``"100.00"``), dates as ISO strings, enums as their values, ids
and nanosecond times as JSON integers. The host decodes a body into the integer command of
``trading.commands`` through the edge builders (orders: ``trading.validate.order_request``;
clients, accounts, limits, funding, house closes: ``trading.bus.edge``), so bad input is
refused with the code an in-process caller gets and changes nothing. A body field the type
does not know is refused too: a misspelt ``"prcie"`` must not pass as an order without a
price. Who asks and why travel in the entry (``trading.bus.registry.decode_command``).

The registry (``trading.bus.registry``) derives each body from its dataclass, so a new
command type needs one registration line here. docs/commands.md is the contract; a test
keeps it in step. Replies are ``trading.bus.wire``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trading.bus import edge
from trading.bus.kinds import (
    BODY_MAX,
    REASON_MAX,
    Choice,
    Context,
    Currency,
    Dec,
    Int,
    IsoDate,
    Lots,
    Money,
    Symbol,
    Text,
    Units,
    amend_symbol,
)
from trading.bus.registry import (
    REGISTRY,
    FieldSpec,
    _generic_decoder,
    _generic_encoder,
    check_names,
    decode_command,
    derive_fields,
    encode_command,
    entry_reason,
    register,
    type_of,
)
from trading.clients import EMAIL_MAX, NAME_MAX, NATIONAL_ID_MAX, ClientKind
from trading.commands import (
    AddDestination,
    AmendOrder,
    CancelOrder,
    ClosePosition,
    Command,
    CreateClient,
    DecideWithdrawal,
    Deposit,
    HaltSymbol,
    HoldWithdrawal,
    OpenAccount,
    ReleaseWithdrawal,
    RequestWithdrawal,
    SetAccountState,
    SetLimits,
    SubmitOrder,
)
from trading.errors import InvalidIdentifier, InvalidOrder
from trading.funding import LABEL_MAX, PROVIDER_REF_MAX, DepositMethod, DestinationKind
from trading.instrument import AccountType
from trading.validate import order_request

__all__ = [
    "BODY_MAX", "REGISTRY", "Context", "decode_command", "encode_command", "entry_reason",
    "register", "type_of",
]  # fmt: skip

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
    check_names(body, _ORDER_FIELDS)
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

# The wire's vocabulary: one registration per command type. Rollover, ExpireDue, QuoteUpdate
# and ApplyReports are the host's own (its clock, bourse:quotes, its venue): not on the wire.
_LOTS = Dec('decimal string in lots, e.g. "50"')
_REASON = Text(REASON_MAX, doc="why; the entry's `reason` when absent")
register(CreateClient, build=edge.create_client, kind=Choice(ClientKind), name=Text(NAME_MAX),
         country=Text(2, doc='ISO 3166-1 alpha-2 code, e.g. "FR"'), email=Text(EMAIL_MAX),
         birth_date=IsoDate(), lei=Text(20, doc="LEI, 20 characters (entities)"),
         national_id=Text(NATIONAL_ID_MAX, doc="MiFIR national client id (persons)"))  # fmt: skip
register(OpenAccount, build=edge.open_account, currency=Currency(), tier=Text(32),
         account_type=Choice(AccountType))  # fmt: skip
register(SetLimits, build=edge.set_limits, leverage=Int(doc="integer, 1..the tier's cap"),
         max_position_lots=_LOTS, max_order_lots=_LOTS,
         max_order_notional=Dec('decimal string in the account currency, e.g. "250000"'),
         max_orders_per_second=Int(doc="integer"))  # fmt: skip
register(Deposit, build=edge.deposit, optional=("ref",), currency=Currency(),
         amount=Money("currency"), ref=Text(64), method=Choice(DepositMethod),
         instrument_fingerprint=Text(64, doc="the provider's token of the card or wallet"),
         provider=Text(32), provider_ref=Text(PROVIDER_REF_MAX))  # fmt: skip
register(AddDestination, build=edge.add_destination, kind=Choice(DestinationKind),
         label=Text(LABEL_MAX), instrument=Text(64, doc="IBAN, card/wallet token or address"),
         currency=Currency())  # fmt: skip
register(RequestWithdrawal, build=edge.request_withdrawal, required=("destination_id",),
         currency=Currency(), amount=Money("currency"))  # fmt: skip
register(HoldWithdrawal, build=edge.hold_withdrawal, optional=("reason",), reason=_REASON)
register(ReleaseWithdrawal, build=edge.release_withdrawal, optional=("reason",), reason=_REASON)
register(DecideWithdrawal, build=edge.decide_withdrawal, reason=_REASON)
register(SubmitOrder, decode=_decode_order, encode=_encode_order, fields=_ORDER_FIELDS)
register(CancelOrder)
register(AmendOrder, decode=_decode_amend, encode=_encode_amend, fields=_AMEND_FIELDS)
register(ClosePosition, build=edge.close_position, optional=("qty", "reason"),
         symbol=Symbol(), qty=Lots(), reason=_REASON)  # fmt: skip
register(SetAccountState)
register(HaltSymbol, symbol=Symbol())
