"""``/v1/accounts/{account_id}/orders``: submit, list, get, cancel and amend the caller's
orders. Commands go to the OMS through the bus as the caller; reads come from the store.

**Idempotency.** A submission is keyed by its ``Idempotency-Key`` header, else by its
``client_order_id``. The key becomes the bus command id (a hash of the user and the key,
``views.keyed_command_id``), and the OMS keeps every command's reply in its command log
in the same transaction as its effect: the same key with the same body is answered with
the original reply, byte for byte, whatever happened since (the order filled, the API
restarted, another worker took the retry); the same key with another body is refused by
the OMS (``duplicate_command_id``), answered 409 ``idempotency_conflict``. Nothing is kept
in the API, so there is no second store to expire or to disagree with the OMS. A key with
no client order id gets one derived from the key, so that a retry sends the same body.

A risk denial or a venue rejection is recorded by the OMS as an order, and answered as a
problem with the core's reason code (``insufficient_margin``: 409; ``rate_limited``: 429)
and the ``order_id``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from serving.api.deps import CurrentUser, StateDep
from serving.api.problems import API_CODES, Problem, from_reply, responses
from serving.api.views import (
    DECIMAL,
    KEY,
    actor_of,
    avg_price_text,
    decode_cursor,
    encode_cursor,
    idempotency_conflict,
    instrument,
    keyed_command_id,
    owned_account,
    price_text,
    qty_text,
    time_ns,
)
from trading.bounds import INT64_MAX
from trading.store.read import OrderView, order, orders_page

router = APIRouter(prefix="/v1/accounts/{account_id}/orders", tags=["orders"])

COID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
_NOT_FOUND = responses(404)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrderIn(_In):
    symbol: str = Field(min_length=1, max_length=32, examples=["EUR/USD"])
    side: Literal["buy", "sell"]
    type: Literal["market", "limit", "stop", "stop_limit"] = "market"
    qty: str = Field(pattern=DECIMAL, description="lots, a decimal string", examples=["1.5"])
    price: str | None = Field(default=None, pattern=DECIMAL, description="the limit price")
    trigger_price: str | None = Field(default=None, pattern=DECIMAL, description="the stop")
    tif: Literal["gtc", "ioc", "fok", "day", "gtd"] = "gtc"
    expire_at: AwareDatetime | None = Field(default=None, description="with tif gtd only")
    client_order_id: str | None = Field(
        default=None, pattern=COID, description="unique per account; absent: one is made"
    )
    reference_price: str | None = Field(default=None, pattern=DECIMAL)
    max_slippage_ticks: int | None = Field(default=None, ge=0, le=1_000_000)


class AmendIn(_In):
    qty: str | None = Field(default=None, pattern=DECIMAL)
    price: str | None = Field(default=None, pattern=DECIMAL)
    trigger_price: str | None = Field(default=None, pattern=DECIMAL)


class OrderAckOut(BaseModel):
    """The OMS's answer to a command about an order."""

    order_id: int
    account_id: int
    client_order_id: str
    symbol: str | None = None
    status: str
    reason: str | None
    duplicate: bool
    qty: str | None = None
    filled_qty: str | None = None
    avg_price: str | None = None


class OrderOut(BaseModel):
    order_id: int
    account_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    tif: str
    qty: str
    price: str | None
    trigger_price: str | None
    expire_ns: int | None
    status: str
    filled_qty: str
    avg_price: str | None
    reason: str | None
    created_ns: int
    updated_ns: int


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None = Field(description="opaque: pass as `cursor` for the next page")


def order_out(v: OrderView) -> OrderOut:
    inst = instrument(v.symbol)
    avg = avg_price_text(inst, v.filled_notional, v.filled_qty)
    return OrderOut(
        order_id=v.order_id,
        account_id=v.account_id,
        client_order_id=v.client_order_id,
        symbol=v.symbol,
        side=v.side.value,
        type=v.type.value,
        tif=v.tif.value,
        qty=qty_text(inst, v.qty),
        price=price_text(inst, v.price),
        trigger_price=price_text(inst, v.trigger_price),
        expire_ns=v.expire_ns,
        status=v.status.value,
        filled_qty=qty_text(inst, v.filled_qty),
        avg_price=avg,
        reason=v.reason,
        created_ns=v.created_ns,
        updated_ns=v.updated_ns,
    )


def _ack(reply_result: dict[str, Any]) -> OrderAckOut:
    """The ack, or the denial or rejection as a problem carrying the core's reason code."""
    ack = OrderAckOut(**{k: v for k, v in reply_result.items() if k in OrderAckOut.model_fields})
    if ack.status in ("denied", "rejected"):
        text = ack.reason or ack.status
        code = text.split(":", 1)[0].strip() or ack.status
        status = API_CODES["rate_limited"] if code == "rate_limited" else 409
        raise Problem(
            status,
            code,
            text,
            order_id=ack.order_id,
            order_status=ack.status,
            client_order_id=ack.client_order_id,
        )
    return ack


def _send(
    state: Any,
    user: Any,
    type_name: str,
    body: dict[str, Any],
    command_id: str | None,
    order: OrderView | None = None,
) -> dict[str, Any]:
    reply = state.bus.send_raw(
        type_name,
        body,
        state.settings.api_command_timeout_s,
        command_id=command_id,
        actor=actor_of(user),
    )
    if reply.ok:
        return reply.result or {}
    if reply.code == "duplicate_command_id":
        raise idempotency_conflict()
    if order is not None and reply.code == "not_found":
        # The order exists (read just before): the OMS no longer holds it open.
        raise Problem(409, "invalid_transition", f"order {order.order_id} is no longer open",
                      order_id=order.order_id)  # fmt: skip
    raise from_reply(reply)


@router.post(
    "",
    status_code=201,
    response_model=OrderAckOut,
    responses=responses(404, 409),
)
def submit_order(
    account_id: int,
    body: OrderIn,
    user: CurrentUser,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header(pattern=KEY)] = None,
) -> OrderAckOut:
    """Submit an order. Retry with the same ``Idempotency-Key`` (or client order id) and
    the same body to get the original answer; another body under it is 409."""
    with state.reader.connect() as conn:
        owned_account(conn, user, account_id)
    key = idempotency_key or body.client_order_id
    coid = body.client_order_id or (
        "k-" + hashlib.sha256(key.encode()).hexdigest()[:40] if key else "a-" + uuid.uuid4().hex
    )
    wire: dict[str, Any] = {
        "account_id": account_id,
        "client_order_id": coid,
        "symbol": body.symbol,
        "side": body.side,
        "type": body.type,
        "qty": body.qty,
        "tif": body.tif,
        "price": body.price,
        "trigger_price": body.trigger_price,
        "expire_ns": time_ns(body.expire_at),
        "reference_price": body.reference_price,
        "max_slippage_ticks": body.max_slippage_ticks,
    }
    wire = {k: v for k, v in wire.items() if v is not None}
    command_id = keyed_command_id(user, "order", key) if key else None
    return _ack(_send(state, user, "SubmitOrder", wire, command_id))


@router.get("", response_model=OrderPage, responses=_NOT_FOUND)
def list_orders(
    account_id: int,
    user: CurrentUser,
    state: StateDep,
    status: Annotated[list[str] | None, Query(description="repeat for several")] = None,
    symbol: Annotated[str | None, Query(max_length=32)] = None,
    from_: Annotated[
        dt.datetime | None, Query(alias="from", description="created at or after")
    ] = None,
    to: Annotated[dt.datetime | None, Query(description="created before")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> OrderPage:
    """The account's orders, newest first, a page at a time."""
    statuses = [x for s in status for x in s.split(",") if x] if status else None
    sym = instrument(symbol).symbol if symbol else None
    with state.reader.connect() as conn:
        owned_account(conn, user, account_id)
        page = orders_page(
            conn,
            account_id,
            statuses=statuses,
            symbol=sym,
            since_ns=time_ns(from_),
            until_ns=time_ns(to),
            cursor=decode_cursor(cursor),
            limit=limit,
        )
    return OrderPage(
        items=[order_out(v) for v in page.items], next_cursor=encode_cursor(page.next_cursor)
    )


def _owned_order(state: Any, user: Any, account_id: int, order_id: int) -> OrderView:
    with state.reader.connect() as conn:
        owned_account(conn, user, account_id)
        found = order(conn, account_id, order_id) if 0 < order_id <= INT64_MAX else None
    if found is None:
        raise Problem.of("not_found", f"no order {order_id}", order_id=order_id)
    return found


@router.get("/{order_id}", response_model=OrderOut, responses=_NOT_FOUND)
def get_order(account_id: int, order_id: int, user: CurrentUser, state: StateDep) -> OrderOut:
    return order_out(_owned_order(state, user, account_id, order_id))


@router.delete("/{order_id}", response_model=OrderAckOut, responses=_NOT_FOUND)
def cancel_order(account_id: int, order_id: int, user: CurrentUser, state: StateDep) -> OrderAckOut:
    """Cancel a working order; one that can no longer be is 409 ``invalid_transition``."""
    found = _owned_order(state, user, account_id, order_id)
    body = {"account_id": account_id, "order_id": order_id}
    return OrderAckOut(**_pick(_send(state, user, "CancelOrder", body, None, found)))


@router.patch("/{order_id}", response_model=OrderAckOut, responses=_NOT_FOUND)
def amend_order(
    account_id: int, order_id: int, body: AmendIn, user: CurrentUser, state: StateDep
) -> OrderAckOut:
    """Change a working order's quantity or prices."""
    if body.qty is None and body.price is None and body.trigger_price is None:
        raise Problem.of("invalid_input", "nothing to amend: give qty, price or trigger_price")
    found = _owned_order(state, user, account_id, order_id)
    wire = {
        "symbol": found.symbol,
        "account_id": account_id,
        "order_id": order_id,
        **body.model_dump(exclude_none=True),
    }
    return OrderAckOut(**_pick(_send(state, user, "AmendOrder", wire, None, found)))


def _pick(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k in OrderAckOut.model_fields}
