"""FIX messages in and out: the orders the adapter sends, and what it reads from reports.

Out: NewOrderSingle (35=D), OrderCancelRequest (35=F), OrderCancelReplaceRequest (35=G),
OrderStatusRequest (35=H), OrderMassStatusRequest (35=AF, FIX 4.4). In: every message is read
into an ``Inbound`` (plain Python values) in quickfix's thread, so that what follows never
touches a quickfix object. Quantities go out as lots and prices as decimals, both plain
decimal strings on the instrument's grid.

ClOrdIDs: ``<order_id>.<n>``: ``n`` is 0 for the order, and counts its cancel and replace
requests; the order id is read back from any ClOrdID of its chain (``order_id_of``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

import quickfix as fix

from trading.instrument import Instrument
from trading.orders import Order, OrderType, Side, TimeInForce

SIDE: Final = {Side.BUY: "1", Side.SELL: "2"}
SIDE_OF: Final = {v: k for k, v in SIDE.items()}
ORD_TYPE: Final = {
    OrderType.MARKET: "1", OrderType.LIMIT: "2", OrderType.STOP: "3", OrderType.STOP_LIMIT: "4",
}  # fmt: skip
TIF: Final = {
    TimeInForce.DAY: "0", TimeInForce.GTC: "1", TimeInForce.IOC: "3", TimeInForce.FOK: "4",
    TimeInForce.GTD: "6",
}  # fmt: skip

# Tags read or written (FIX 4.2 and 4.4 share the numbers; 32 is LastShares in 4.2).
ACCOUNT, AVG_PX, CL_ORD_ID, CUM_QTY, EXEC_ID, EXEC_TRANS_TYPE = 1, 6, 11, 14, 17, 20
HANDL_INST, LAST_PX, LAST_QTY, MSG_SEQ_NUM, MSG_TYPE, ORDER_ID = 21, 31, 32, 34, 35, 37
ORDER_QTY, ORD_STATUS, ORD_TYPE_TAG, ORIG_CL_ORD_ID, POSS_DUP, PRICE = 38, 39, 40, 41, 43, 44
REF_SEQ_NUM, SIDE_TAG, SYMBOL, TEXT, TIF_TAG, TRANSACT_TIME = 45, 54, 55, 58, 59, 60
POSS_RESEND, STOP_PX, EXPIRE_TIME, EXEC_TYPE, LEAVES_QTY = 97, 99, 126, 150, 151
CXL_REJ_REASON, ORD_REJ_REASON, REF_TAG_ID, REF_MSG_TYPE = 102, 103, 371, 372
SESSION_REJECT_REASON, BUSINESS_REJECT_REF_ID, BUSINESS_REJECT_REASON = 373, 379, 380
CXL_REJ_RESPONSE_TO, MASS_STATUS_REQ_ID, MASS_STATUS_REQ_TYPE = 434, 584, 585
TOT_NUM_REPORTS, LAST_RPT_REQUESTED = 911, 912


def clordid(order_id: int, n: int) -> str:
    return f"{order_id}.{n}"


def order_id_of(cl_ord_id: str | None) -> int | None:
    """The order id a ClOrdID of ours carries; None for one we never make."""
    if not cl_ord_id:
        return None
    head, dot, n = cl_ord_id.partition(".")
    if not dot or not head.isdigit() or not n.isdigit() or head.startswith("0"):
        return None
    return int(head)


def fix_time(ts_ns: int) -> str:
    t = dt.datetime.fromtimestamp(ts_ns / 1e9, dt.UTC)
    return t.strftime("%Y%m%d-%H:%M:%S.") + f"{(ts_ns // 1_000_000) % 1000:03d}"


def own_session_id(sid: fix.SessionID) -> fix.SessionID:
    """A copy of a SessionID quickfix lends to a callback (its own may not outlive it)."""
    return fix.SessionID(sid.getBeginString().getValue(), sid.getSenderCompID().getValue(),
                         sid.getTargetCompID().getValue())  # fmt: skip


def _message(begin_string: str, msg_type: str) -> fix.Message:
    m = fix.Message()
    header = m.getHeader()
    header.setField(fix.BeginString(begin_string))
    header.setField(fix.MsgType(msg_type))
    return m


def _order_fields(
    m: fix.Message, order: Order, inst: Instrument, qty: int, price: int | None,
    trigger_price: int | None, now_ns: int,
) -> None:  # fmt: skip
    m.setField(HANDL_INST, "1")  # automated, no broker intervention
    m.setField(SYMBOL, order.symbol)
    m.setField(SIDE_TAG, SIDE[order.side])
    m.setField(TRANSACT_TIME, fix_time(now_ns))
    m.setField(ORDER_QTY, str(inst.qty_from_int(qty)))
    m.setField(ORD_TYPE_TAG, ORD_TYPE[order.type])
    if price is not None and order.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        m.setField(PRICE, str(inst.price_from_int(price)))
    if trigger_price is not None and order.type in (OrderType.STOP, OrderType.STOP_LIMIT):
        m.setField(STOP_PX, str(inst.price_from_int(trigger_price)))
    m.setField(TIF_TAG, TIF[order.tif])
    if order.tif is TimeInForce.GTD and order.expire_ns is not None:
        m.setField(EXPIRE_TIME, fix_time(order.expire_ns))


def new_order(
    begin_string: str, order: Order, inst: Instrument, cl_ord_id: str, now_ns: int
) -> fix.Message:
    m = _message(begin_string, "D")
    m.setField(CL_ORD_ID, cl_ord_id)
    m.setField(ACCOUNT, str(order.account_id))
    _order_fields(m, order, inst, order.qty, order.price, order.trigger_price, now_ns)
    return m


def cancel_request(
    begin_string: str, order: Order, inst: Instrument, cl_ord_id: str, orig: str, now_ns: int
) -> fix.Message:
    m = _message(begin_string, "F")
    m.setField(ORIG_CL_ORD_ID, orig)
    m.setField(CL_ORD_ID, cl_ord_id)
    m.setField(ACCOUNT, str(order.account_id))
    m.setField(SYMBOL, order.symbol)
    m.setField(SIDE_TAG, SIDE[order.side])
    m.setField(TRANSACT_TIME, fix_time(now_ns))
    m.setField(ORDER_QTY, str(inst.qty_from_int(order.qty)))
    return m


def replace_request(
    begin_string: str, order: Order, inst: Instrument, cl_ord_id: str, orig: str, now_ns: int,
    qty: int, price: int | None, trigger_price: int | None,
) -> fix.Message:  # fmt: skip
    m = _message(begin_string, "G")
    m.setField(ORIG_CL_ORD_ID, orig)
    m.setField(CL_ORD_ID, cl_ord_id)
    m.setField(ACCOUNT, str(order.account_id))
    _order_fields(m, order, inst, qty, price, trigger_price, now_ns)
    return m


def status_request(begin_string: str, cl_ord_id: str, symbol: str, side: Side) -> fix.Message:
    m = _message(begin_string, "H")
    m.setField(CL_ORD_ID, cl_ord_id)
    m.setField(SYMBOL, symbol)
    m.setField(SIDE_TAG, SIDE[side])
    return m


def mass_status_request(begin_string: str, request_id: str) -> fix.Message:
    m = _message(begin_string, "AF")
    m.setField(MASS_STATUS_REQ_ID, request_id)
    m.setField(MASS_STATUS_REQ_TYPE, "7")  # status for all orders
    return m


@dataclass(frozen=True, slots=True)
class Inbound:
    """What the adapter reads from one incoming message."""

    msg_type: str
    seq_num: int
    poss_dup: bool
    cl_ord_id: str | None = None
    orig_cl_ord_id: str | None = None
    exec_id: str | None = None
    exec_type: str | None = None
    exec_trans_type: str | None = None
    ord_status: str | None = None
    symbol: str | None = None
    side: str | None = None
    account: str | None = None
    last_qty: Decimal | None = None
    last_px: Decimal | None = None
    cum_qty: Decimal | None = None
    avg_px: Decimal | None = None
    order_qty: Decimal | None = None
    price: Decimal | None = None
    stop_px: Decimal | None = None
    text: str | None = None
    reject_code: str | None = None  # OrdRejReason, CxlRejReason, session/business reason
    cxl_rej_response_to: str | None = None
    ref_seq_num: int | None = None
    ref_msg_type: str | None = None
    business_ref_id: str | None = None
    mass_status_req_id: str | None = None
    last_report: bool = False  # LastRptRequested: the last answer to a mass status request
    raw: str = ""


def _get(fm: fix.FieldMap, tag: int) -> str | None:
    return str(fm.getField(tag)) if fm.isSetField(tag) else None


def _dec(fm: fix.FieldMap, tag: int) -> Decimal | None:
    v = _get(fm, tag)
    if v is None:
        return None
    try:
        d = Decimal(v)
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _int(fm: fix.FieldMap, tag: int) -> int | None:
    v = _get(fm, tag)
    return int(v) if v is not None and v.isdigit() else None


def read(message: fix.Message) -> Inbound:
    h = message.getHeader()
    m = message
    code = next(
        (v for t in (ORD_REJ_REASON, CXL_REJ_REASON, SESSION_REJECT_REASON,
                     BUSINESS_REJECT_REASON) if (v := _get(m, t)) is not None),
        None,
    )  # fmt: skip
    return Inbound(
        msg_type=str(h.getField(MSG_TYPE)),
        seq_num=_int(h, MSG_SEQ_NUM) or 0,
        poss_dup=_get(h, POSS_DUP) == "Y" or _get(h, POSS_RESEND) == "Y",
        cl_ord_id=_get(m, CL_ORD_ID),
        orig_cl_ord_id=_get(m, ORIG_CL_ORD_ID),
        exec_id=_get(m, EXEC_ID),
        exec_type=_get(m, EXEC_TYPE),
        exec_trans_type=_get(m, EXEC_TRANS_TYPE),
        ord_status=_get(m, ORD_STATUS),
        symbol=_get(m, SYMBOL),
        side=_get(m, SIDE_TAG),
        account=_get(m, ACCOUNT),
        last_qty=_dec(m, LAST_QTY),
        last_px=_dec(m, LAST_PX),
        cum_qty=_dec(m, CUM_QTY),
        avg_px=_dec(m, AVG_PX),
        order_qty=_dec(m, ORDER_QTY),
        price=_dec(m, PRICE),
        stop_px=_dec(m, STOP_PX),
        text=_get(m, TEXT),
        reject_code=code,
        cxl_rej_response_to=_get(m, CXL_REJ_RESPONSE_TO),
        ref_seq_num=_int(m, REF_SEQ_NUM),
        ref_msg_type=_get(m, REF_MSG_TYPE),
        business_ref_id=_get(m, BUSINESS_REJECT_REF_ID),
        mass_status_req_id=_get(m, MASS_STATUS_REQ_ID),
        last_report=_get(m, LAST_RPT_REQUESTED) == "Y",
        raw=m.toString().replace("\x01", "|"),
    )
