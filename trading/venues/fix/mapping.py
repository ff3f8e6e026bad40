"""What an LP's message means for the OMS: ``Inbound`` -> ``ExecutionReport``s.

Pure (no quickfix): the adapter calls ``translate`` under its lock with the order's
``Chain``, which it updates (what was forwarded: acknowledged, cumulative fill).

ExecutionReport (35=8), by ExecType (150; FIX 4.2's ExecTransType 20 says status, bust or
correction):

| ExecType | FIX | OMS |
|---|---|---|
| 0 New | both | ACCEPTED (once) |
| 1 Partial fill, 2 Fill | 4.2 | FILL |
| F Trade | 4.4 | FILL |
| 4 Canceled | both | CANCELED |
| 5 Replaced | both | REPLACED (OrderQty, Price, StopPx now in force) |
| 8 Rejected | both | REJECTED (Text, else OrdRejReason) |
| C Expired, 3 Done for day | both | EXPIRED |
| A Pending new, 6 Pending cancel, E Pending replace | both | nothing (journal only) |
| D Restated | both | by OrdStatus: canceled, expired, rejected as above; else an exception |
| I Order status (4.4), ExecTransType 3 (4.2) | both | reconciliation, below |
| H Trade cancel, G Trade correct; ExecTransType 1, 2 | both | an exception (not applied) |

Fills are counted by CumQty (14): a report forwards only what takes the order's cumulative
quantity past what was already forwarded, so a fill seen twice (a resend under another
ExecID, or a status answer that already caught it up) is applied once. Any report whose
CumQty is above what was forwarded (a status answer after a disconnect, a cancel that
raced a fill) first forwards a catch-up fill for the difference, priced so that the
order's average matches AvgPx (6), rounded to the tick.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from trading.instrument import Instrument
from trading.venues.base import ExecKind, ExecutionReport
from trading.venues.fix.chains import Chain
from trading.venues.fix.messages import Inbound

FILL_TYPES = frozenset({"1", "2", "F"})
STATUS_END = {"2": "filled", "4": "canceled", "8": "rejected", "C": "expired", "3": "expired"}


def price_int(inst: Instrument, px: Decimal) -> int:
    return int((px * inst.price_scale).to_integral_value(ROUND_HALF_EVEN))


def qty_int(inst: Instrument, qty: Decimal) -> int:
    return int((qty * inst.qty_scale).to_integral_value(ROUND_HALF_EVEN))


class Translation:
    """The reports one message makes, and what the adapter records beside them."""

    __slots__ = ("end", "exception", "live", "reports")

    def __init__(self) -> None:
        self.reports: list[ExecutionReport] = []
        self.exception: str | None = None  # a reason: the message goes to the exceptions file
        self.live: str | None = None  # a ClOrdID now in force (a replace took effect)
        self.end: str | None = None  # the order's final state, when this message ends it


def _reason(m: Inbound, what: str) -> str:
    if m.text:
        return m.text
    return f"{what} {m.reject_code}" if m.reject_code else what


def translate(
    lp: str, m: Inbound, chain: Chain, inst: Instrument, now_ns: int
) -> Translation:  # fmt: skip
    t = Translation()
    oid = chain.order_id
    base = f"{lp}:{oid}:"

    def report(kind: ExecKind, tag: str, **kw: object) -> None:
        t.reports.append(
            ExecutionReport(base + tag, oid, kind, now_ns, venue=lp, **kw)  # type: ignore[arg-type]
        )

    if m.msg_type == "9":
        to_replace = m.cxl_rej_response_to == "2"
        kind = ExecKind.REPLACE_REJECTED if to_replace else ExecKind.CANCEL_REJECTED
        chain.asks.pop(m.cl_ord_id or "", None)
        report(kind, f"{m.cl_ord_id}:9", reason=_reason(m, "cancel rejected"))
        return t

    exec_type = m.exec_type or ""
    trans = m.exec_trans_type
    if trans in ("1", "2") or exec_type in ("H", "G"):
        t.exception = "trade_bust_or_correction"
        return t
    status = exec_type == "I" or trans == "3"
    xid = m.exec_id or f"seq{m.seq_num}"

    if exec_type in FILL_TYPES and not status:
        _fill(t, chain, inst, m, base + xid, now_ns, lp)
        if m.ord_status == "2":
            t.end = "filled"
        return t

    _catch_up(t, chain, inst, m, base, now_ns, lp)
    state = m.ord_status if status or exec_type == "D" else exec_type
    if status and m.ord_status == "0" and not chain.acked:
        chain.acked = True
        report(ExecKind.ACCEPTED, f"status:new:{m.cl_ord_id}")
        return t
    tag = f"status:{state}" if status else xid
    match state:
        case "0":
            if not chain.acked:
                chain.acked = True
                report(ExecKind.ACCEPTED, tag)
        case "4":
            report(ExecKind.CANCELED, tag, **({"reason": m.text} if m.text else {}))
            t.end = "canceled"
        case "5":
            report(
                ExecKind.REPLACED, tag,
                qty=qty_int(inst, m.order_qty) if m.order_qty is not None else None,
                price=price_int(inst, m.price) if m.price is not None else None,
                trigger_price=price_int(inst, m.stop_px) if m.stop_px is not None else None,
            )  # fmt: skip
            chain.asks.pop(m.cl_ord_id or "", None)
            t.live = m.cl_ord_id
        case "8":
            what = "unknown to the LP" if status else "rejected by the LP"
            report(ExecKind.REJECTED, tag, reason=_reason(m, what))
            t.end = "rejected"
        case "C" | "3":
            report(ExecKind.EXPIRED, tag)
            t.end = "expired"
        case "2":
            t.end = "filled" if t.reports or chain.filled else None
        case "1" | "A" | "6" | "E":
            pass  # working, or a request the LP has not answered yet: nothing moves
        case _:
            t.exception = f"unmapped_exec_type {exec_type} ord_status {m.ord_status}"
    if exec_type == "D" and state not in ("4", "8", "C", "3"):
        t.exception = "restated: terms restated by the LP are not applied"
    return t


def _fill(
    t: Translation, chain: Chain, inst: Instrument, m: Inbound, exec_id: str, now_ns: int,
    lp: str,
) -> None:  # fmt: skip
    if m.last_qty is None or m.last_px is None:
        t.exception = "fill without LastQty/LastPx"
        return
    last = qty_int(inst, m.last_qty)
    if m.cum_qty is not None:
        # Only what moves the cumulative quantity past what was forwarded is new.
        last = min(last, qty_int(inst, m.cum_qty) - chain.filled)
    chain.acked = True
    if last <= 0:
        return
    px = price_int(inst, m.last_px)
    chain.filled += last
    chain.notional += last * px
    t.reports.append(
        ExecutionReport(exec_id, chain.order_id, ExecKind.FILL, now_ns, last_qty=last,
                        last_price=px, venue=lp)
    )  # fmt: skip


def _catch_up(
    t: Translation, chain: Chain, inst: Instrument, m: Inbound, base: str, now_ns: int,
    lp: str,
) -> None:  # fmt: skip
    if m.cum_qty is None:
        return
    cum = qty_int(inst, m.cum_qty)
    missing = cum - chain.filled
    if missing <= 0:
        return
    if m.avg_px is None or m.avg_px <= 0:
        t.exception = "a fill is missing and the report has no AvgPx"
        return
    total = m.avg_px * cum  # price x quantity-ints
    known = Decimal(chain.notional) / inst.price_scale
    px_dec = (total - known) / missing
    px = price_int(inst, px_dec) if px_dec > 0 else price_int(inst, m.avg_px)
    chain.acked = True
    chain.filled = cum
    chain.notional += missing * px
    t.reports.append(
        ExecutionReport(f"{base}cum:{cum}", chain.order_id, ExecKind.FILL, now_ns,
                        last_qty=missing, last_price=px, venue=lp)
    )  # fmt: skip
