"""Execution reports applied to the OMS's orders: status moves, and fills booked.

A report the OMS cannot apply (unknown order, an overfill, a replace below what is filled)
is recorded as an exception row, never silently dropped, and changes nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from trading.errors import InvalidStateTransition
from trading.fills import Fill, book_fill
from trading.orders import Order, OrderStatus, check_transition
from trading.positions import Position
from trading.store.repository import closure_row, exception_row, execution_row
from trading.venues.base import ExecKind, ExecutionReport

if TYPE_CHECKING:
    from trading.oms.engine import OMS

S = OrderStatus


def apply_reports(
    oms: OMS, reports: Iterable[ExecutionReport], actor: str, record: bool = False
) -> int:
    """Apply reports in order. ``record``: keep the exec id of every report, not only of
    fills, so that a venue repeating any message changes nothing (for outside venues;
    the B-book's own acknowledgements are unique by construction)."""
    applied = 0
    seen, inflight, open_ = oms._seen_exec, oms._inflight_execs, oms._open
    for report in reports:
        if report.exec_id in seen or report.exec_id in inflight:
            continue
        seen.add(report.exec_id)
        order = open_.get(report.order_id)
        if order is None:
            _exception(oms, report, "unknown_or_closed_order")
            continue
        try:
            if not _apply_report(oms, order, report):
                continue  # refused: recorded as an exception, not audited as applied
        except InvalidStateTransition as exc:
            _exception(oms, report, "invalid_transition", str(exc))
            continue
        applied += 1
        if record and report.kind is not ExecKind.FILL:
            oms._batch.add(
                "executions",
                execution_row(report.exec_id, order.order_id, order.account_id,
                              report.kind.value, 0, 0, 0, report.venue or oms.venue.name,
                              report.ts_ns),
            )  # fmt: skip
        if actor:
            oms.journal.audit(f"exec.{report.kind.value}", f"order:{order.order_id}",
                              {"exec_id": report.exec_id, "qty": report.last_qty,
                               "price": report.last_price}, actor=actor)  # fmt: skip
    return applied


def _exception(oms: OMS, report: ExecutionReport, reason: str, detail: str = "") -> None:
    oms._batch.add(
        "exec_exceptions",
        exception_row(oms._next("exception"), report.exec_id, report.order_id, reason,
                      detail or repr(report), report.ts_ns),
    )  # fmt: skip


def _resume(order: Order) -> OrderStatus:
    if order.filled_qty:
        return S.PARTIALLY_FILLED
    return order.resume_status or S.ACCEPTED


def _apply_report(oms: OMS, order: Order, r: ExecutionReport) -> bool:
    """Apply one report; False if it was refused (and recorded as an exception)."""
    ts = r.ts_ns
    match r.kind:
        case ExecKind.FILL:
            return _fill(oms, order, r)
        case ExecKind.ACCEPTED:
            oms._move(order, S.ACCEPTED, ts)
        case ExecKind.REJECTED:
            oms._move(order, S.REJECTED, ts, reason=r.reason or "rejected by venue")
        case ExecKind.TRIGGERED:
            oms._move(order, S.TRIGGERED, ts)
        case ExecKind.CANCELED:
            oms._move(order, S.CANCELED, ts, **({"reason": r.reason} if r.reason else {}))
        case ExecKind.EXPIRED:
            oms._move(order, S.EXPIRED, ts)
        case ExecKind.CANCEL_REJECTED:
            if order.status is S.PENDING_CANCEL:
                oms._move(order, _resume(order), ts, cancel_rejected=r.reason)
        case ExecKind.REPLACED:
            # Refuse an out-of-turn replace before touching the terms, or memory would
            # keep terms the store never gets.
            check_transition(order.status, _resume(order))
            if r.qty is not None and r.qty <= order.filled_qty:
                _exception(oms, r, "replace_below_filled",
                           f"qty {r.qty}, {order.filled_qty} already filled")  # fmt: skip
                return False
            order.qty = r.qty if r.qty is not None else order.qty
            order.price = r.price
            order.trigger_price = r.trigger_price
            order.pending_qty = order.pending_price = order.pending_trigger_price = None
            oms._move(order, _resume(order), ts, replaced=True)
        case ExecKind.REPLACE_REJECTED:
            order.pending_qty = order.pending_price = order.pending_trigger_price = None
            oms._batch.order_changed(order)
            if order.status is S.PENDING_REPLACE:
                oms._move(order, _resume(order), ts, replace_rejected=r.reason)
    return True


def _fill(oms: OMS, order: Order, r: ExecutionReport) -> bool:
    """Book a fill; False if it was refused (and recorded as an exception)."""
    if r.last_qty <= 0 or r.last_price <= 0:
        _exception(oms, r, "invalid_fill", f"qty {r.last_qty} price {r.last_price}")
        return False
    if r.last_qty > order.leaves_qty:
        _exception(oms, r, "overfill", f"fill of {r.last_qty} exceeds the {order.leaves_qty} left")
        return False
    acct = oms._accounts[order.account_id]
    inst = oms.catalogue.get(order.symbol)
    ccy = acct.currency
    rate = oms._rate(inst, ccy)
    if rate is None:
        _exception(oms, r, "no_conversion_rate", f"{inst.quote} -> {ccy}")
        return False
    pos = acct.positions.get(order.symbol)
    if pos is None:
        pos = acct.positions[order.symbol] = Position(acct.account_id, order.symbol)
    venue = r.venue or oms.venue.name
    batch = oms._batch
    fill = book_fill(
        pos, inst, currency=ccy, side_sign=order.side.sign, side_name=order.side._value_,
        qty=r.last_qty, price=r.last_price, markup=r.markup, ts_ns=r.ts_ns,
        exec_id=r.exec_id, venue=venue, rate=rate, lev=oms._leverage(acct, inst),
        fees=oms.config.fees, next_lot_id=lambda: oms._next("lot"),
    )  # fmt: skip
    if fill.close_entry is not None:
        txn_id = oms._post(fill.close_entry, r.ts_ns)
        for c in fill.closed:
            batch.add(
                "lot_closures",
                closure_row(oms._next("closure"), c.lot, c.qty, c.close_price, r.exec_id,
                            r.ts_ns, str(c.realized_quote.normalize()), inst.quote, c.realized,
                            txn_id),
            )  # fmt: skip
            batch.lot_changed(c.lot)
    if fill.opened is not None:
        batch.new_lots[fill.opened.lot_id] = fill.opened
        assert fill.open_entry is not None
        oms._post(fill.open_entry, r.ts_ns)
    if not pos.lots:
        del acct.positions[order.symbol]
    batch.add(
        "executions",
        execution_row(r.exec_id, order.order_id, acct.account_id, r.kind._value_, r.last_qty,
                      r.last_price, fill.commission, venue, r.ts_ns),
    )  # fmt: skip
    order.add_fill(r.last_qty, r.last_price)
    status = S.FILLED if order.leaves_qty == 0 else S.PARTIALLY_FILLED
    data: dict[str, Any] = {
        "exec_id": r.exec_id, "last_qty": r.last_qty, "last_price": r.last_price,
        "commission": fill.commission, "realized": fill.realized, "currency": ccy,
        "position": pos.net,
    }  # fmt: skip
    oms._move_data(order, status, r.ts_ns, fill_fields(fill, rate, venue, r.markup, data))
    return True


def fill_fields(
    fill: Fill, rate: Decimal, venue: str, markup: int, fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a fill event carries beyond the order: enough for a consumer to rebuild the
    account's lots and margin exactly, with no read of the store (docs/events.md). Added
    to ``fields`` when given (the event's data so far), else to a new dict."""
    if fields is None:
        fields = {}
    fields["closed_lots"] = [
        {"lot_id": c.lot.lot_id, "qty": c.qty, "open_price": c.open_price,
         "realized": c.realized, "realized_quote": format(c.realized_quote.normalize(), "f"),
         "margin_released": c.margin_released}
        for c in fill.closed
    ]  # fmt: skip
    fields["margin_held"] = fill.margin_held
    fields["margin_released"] = fill.margin_released
    fields["conversion_rate"] = str(rate)
    fields["venue"] = venue
    fields["markup"] = markup
    fields["markup_amount"] = fill.markup
    lot = fill.opened
    if lot is not None:
        fields["opened_lot"] = {"lot_id": lot.lot_id, "qty": lot.qty, "price": lot.price,
                                "margin": lot.margin}  # fmt: skip
    return fields
