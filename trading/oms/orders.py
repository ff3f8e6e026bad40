"""Command handlers that touch orders: submit, cancel, amend, and what the venue reports
(execution reports from outside, quotes and the clock that trigger resting orders)."""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING, Any

from trading.commands import (
    AmendOrder,
    ApplyReports,
    CancelOrder,
    Done,
    ExpireDue,
    OrderAck,
    QuoteUpdate,
    SubmitOrder,
)
from trading.errors import (
    ConflictError,
    InvalidInput,
    InvalidOrder,
    InvalidStateTransition,
    NotFound,
)
from trading.oms.handlers import Handler, Known, _Account
from trading.oms.reports import apply_reports
from trading.orders import Initiator, Order, OrderRequest, OrderStatus, OrderType, TimeInForce
from trading.risk import Market, check_order
from trading.venues.router import RouterVenue

if TYPE_CHECKING:
    from trading.oms.engine import OMS

S = OrderStatus
_NS_PER_DAY = 86_400 * 1_000_000_000


def _ack(o: Order, duplicate: bool = False) -> OrderAck:
    return OrderAck(o.order_id, o.account_id, o.client_order_id, o.status, o.qty,
                    o.filled_qty, o.filled_notional, o.reason, duplicate)  # fmt: skip


def _duplicate(oms: OMS, request: OrderRequest, known: Known) -> OrderAck | None:
    """The original order of a retried client order id: open, in this batch or one in
    flight, or in the store; a different request under the same id is a conflict."""
    key = (request.account_id, request.client_order_id)
    oid = oms._open_by_client.get(key)
    order = (
        oms._open[oid]
        if oid is not None
        else oms._batch.by_client.get(key) or oms._inflight_orders.get(key)
    )
    row: Any = known.orders.get(key)
    original: Any = order if order is not None else row
    if original is None:
        return None
    if original.fingerprint != request.fingerprint():
        raise ConflictError(
            f"client order id {request.client_order_id!r} was used for another order",
            order_id=original.order_id,
        )
    if order is not None:
        return _ack(order, duplicate=True)
    return OrderAck(row.order_id, row.account_id, row.client_order_id,
                    OrderStatus(row.status), row.qty, row.filled_qty,
                    row.filled_notional, row.reason, True)  # fmt: skip


def submit(oms: OMS, cmd: SubmitOrder, known: Known) -> OrderAck:
    request = cmd.request
    acct = oms._account(request.account_id)
    dup = _duplicate(oms, request, known)
    if dup is not None:
        return dup
    return place(oms, acct, request, Order.from_request(oms._next("order"), request, oms.clock()))


def place(
    oms: OMS, acct: _Account, request: OrderRequest, order: Order,
    skip: Container[str] = frozenset(),
) -> OrderAck:  # fmt: skip
    """Check a new order (``request`` made an ``Order``) before the trade, but for the checks
    named in ``skip``, and send it to the venue, or record it denied."""
    inst = oms.catalogue.get(order.symbol)
    ts = order.created_ns
    if order.tif is TimeInForce.DAY and order.expire_ns is None:
        # A day order lives until the end of the UTC trading day it was placed in.
        order.expire_ns = (ts // _NS_PER_DAY + 1) * _NS_PER_DAY
    batch = oms._batch
    batch.new_orders[order.order_id] = order
    batch.by_client[(order.account_id, order.client_order_id)] = order
    audit: dict[str, Any] = {"account_id": order.account_id,
                             "client_order_id": order.client_order_id,
                             "request": order.fingerprint}  # fmt: skip
    if order.initiator is not Initiator.CLIENT:
        audit["initiator"] = order.initiator.value
    oms.journal.audit("order.submit", f"order:{order.order_id}", audit)
    market = Market(
        oms.config.risk.restricted_symbols, oms._halted,
        oms.catalogue.session_for(inst.symbol).is_open_ns(ts), oms.quotes.get(inst.symbol),
        oms._rate(inst, acct.currency),
    )  # fmt: skip
    denial = check_order(
        acct, inst, request, ts, oms._limits(acct), oms._limiter, market,
        oms._leverage(acct, inst), oms.config.fees,
        lambda: oms._free_margin(acct), skip,
    )  # fmt: skip
    if denial is not None:
        oms._move(order, S.DENIED, ts, reason=denial.reason(), code=denial.code.value,
                  details=denial.details)  # fmt: skip
        return _ack(order)
    oms._open[order.order_id] = order
    oms._open_by_client[(order.account_id, order.client_order_id)] = order.order_id
    venue = oms.venue
    if isinstance(venue, RouterVenue):
        venue.assign(order, acct.tier)
    else:
        order.venue = venue.name
    oms._move(order, S.SUBMITTED, ts, route=order.route, venue=order.venue)
    apply_reports(oms, oms.venue.submit(order), actor="")
    return _ack(order)


def _open_order(oms: OMS, account_id: int, order_id: int) -> Order:
    order = oms._open.get(order_id)
    if order is None or order.account_id != account_id:
        raise NotFound(f"order {order_id} is not open on account {account_id}")
    return order


def cancel(oms: OMS, cmd: CancelOrder, known: Known) -> OrderAck:
    order = _open_order(oms, cmd.account_id, cmd.order_id)
    if order.status is S.PENDING_CANCEL:
        return _ack(order, duplicate=True)
    ts = oms.clock()
    oms.journal.audit("order.cancel", f"order:{order.order_id}", {"account_id": cmd.account_id})
    oms._move(order, S.PENDING_CANCEL, ts)
    apply_reports(oms, oms.venue.cancel(order), actor="")
    return _ack(order)


def amend(oms: OMS, cmd: AmendOrder, known: Known) -> OrderAck:
    order = _open_order(oms, cmd.account_id, cmd.order_id)
    # New terms are on the instrument's grid, as a submit's are (raises InvalidInput).
    inst = oms.catalogue.get(order.symbol)
    for value in (cmd.qty, cmd.price, cmd.trigger_price):
        if value is not None and type(value) is not int:
            raise InvalidInput(f"amended terms are integers of price or lot units: {value!r}")
    if cmd.qty is not None:
        inst.qty_to_int(inst.qty_from_int(cmd.qty))
    for px in (cmd.price, cmd.trigger_price):
        if px is not None:
            inst.price_to_int(inst.price_from_int(px))
    qty = order.qty if cmd.qty is None else cmd.qty
    price = order.price if cmd.price is None else cmd.price
    trigger = order.trigger_price if cmd.trigger_price is None else cmd.trigger_price
    if qty <= order.filled_qty:
        raise InvalidOrder(
            f"amended quantity {qty} must exceed the {order.filled_qty} already filled"
        )
    if cmd.price is not None and order.type not in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        raise InvalidOrder(f"a {order.type.value} order has no limit price to amend")
    if cmd.trigger_price is not None and order.type not in (OrderType.STOP, OrderType.STOP_LIMIT):
        raise InvalidOrder(f"a {order.type.value} order has no trigger price to amend")
    if order.status not in (S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED):
        raise InvalidStateTransition(
            f"{order.status.value} -> {S.PENDING_REPLACE.value}",
            from_status=order.status.value, to_status=S.PENDING_REPLACE.value,
        )  # fmt: skip
    limits = oms._limits(oms._accounts[order.account_id])
    if inst.qty_from_int(qty) > limits.max_order_lots:
        raise InvalidOrder(
            f"amended quantity {inst.qty_from_int(qty)} lots exceeds the "
            f"{limits.max_order_lots} lots allowed per order"
        )
    ts = oms.clock()
    oms.journal.audit("order.amend", f"order:{order.order_id}",
                      {"qty": qty, "price": price, "trigger_price": trigger})  # fmt: skip
    order.pending_qty, order.pending_price, order.pending_trigger_price = qty, price, trigger
    oms._move(order, S.PENDING_REPLACE, ts, new_qty=qty, new_price=price,
              new_trigger_price=trigger)  # fmt: skip
    apply_reports(oms, oms.venue.replace(order, qty, price, trigger), actor="")
    return _ack(order)


def reports(oms: OMS, cmd: ApplyReports, known: Known) -> Done:
    fresh = [r for r in cmd.reports if r.exec_id not in known.execs]
    n = apply_reports(oms, fresh, actor=cmd.actor or "venue", record=True)
    return Done("reports", f"{n} applied, {len(cmd.reports) - n} ignored")


def quote_update(oms: OMS, cmd: QuoteUpdate, known: Known) -> Done:
    oms.quotes.update(cmd.quote)
    apply_reports(oms, oms.venue.on_quote(cmd.quote), actor="venue")
    return Done(f"quote:{cmd.quote.symbol}")


def expire_due(oms: OMS, cmd: ExpireDue, known: Known) -> Done:
    n = apply_reports(oms, oms.venue.on_time(cmd.now_ns), actor="venue")
    return Done("expiry", f"{n} expired")


HANDLERS: dict[type, Handler] = {
    SubmitOrder: submit, CancelOrder: cancel, AmendOrder: amend, ApplyReports: reports,
    QuoteUpdate: quote_update, ExpireDue: expire_due,
}  # fmt: skip
