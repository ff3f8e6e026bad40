"""The project's LP simulator: a quickfix acceptor (FIX 4.2 and 4.4 on one port) that does on
demand what a real counterparty will not.

In a thread (tests)::

    sim = LpSim(port, home=tmp / "lp")       # SenderCompID LP1, TargetCompID BOURSE
    sim.start(); sim.plan("partial:0.3,0.2")  # the next order: two partial fills, then rests
    ...; sim.fill(order_id, "0.5"); sim.drop(); sim.stop()

or as a process: ``python -m trading.venues.fix.lpsim --port 5001 --default fill``.

Each NewOrderSingle takes the next planned action (``plan``), else ``default``:

| action | what the LP does |
|---|---|
| ``fill`` | acknowledges (New), then fills the whole order at its limit price (market: ``price``) |
| ``partial:Q1,Q2`` | acknowledges, fills Q1 then Q2 lots, rests the remainder |
| ``rest`` | acknowledges; the order rests (``fill``, ``restate``, cancel and replace later) |
| ``reject:TEXT`` | rejects it (ExecType 8, Text) |
| ``session_reject`` | a session-level reject (35=3, bad OrdType), as QuickFIX's executor does |
| ``delay`` | as ``fill``, but holds every report of the order until ``release()`` |
| ``silent_fill`` | fills it and says nothing (a disconnect "mid-order": only 35=H tells) |
| ``duplicate`` | acknowledges and fills, then sends the fill again with PossDupFlag=Y |
| ``gap`` | skips a sequence number before the fill: the initiator must ask a resend |
| ``unknown`` | answers with a report for a ClOrdID never sent |
| ``ask_resend`` | acknowledges, then asks the initiator to resend the order's message |

Cancels and replaces take ``plan_cancel``'s next answer: ``ok`` (default), ``reject:TEXT``
(35=9) or ``business_reject`` (35=j, as the executor). 35=H and 35=AF are answered from the
book (an unknown order: OrdStatus 8), 35=H with a business reject when ``answers_status``
is off (as QuickFIX's executor). quickfix 1.16 acceptors listen on every interface; the
simulator's sessions accept logons from 127.0.0.1 only (AllowedRemoteAddresses).
"""

from __future__ import annotations

import argparse
import itertools
import signal
import threading
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import quickfix as fix

from trading.venues.fix import messages as M
from trading.venues.fix.settings import acceptor_settings


@dataclass
class SimOrder:
    cl_ord_id: str  # the ClOrdID in force
    order_id: str  # the LP's OrderID
    symbol: str
    side: str
    qty: Decimal
    price: Decimal | None
    session: fix.SessionID
    cum: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    status: str = "0"
    held: bool = False
    last: str = ""  # the last report sent, as text (``repeat`` sends it again)

    @property
    def leaves(self) -> Decimal:
        return self.qty - self.cum if self.status in ("0", "1") else Decimal(0)

    @property
    def avg(self) -> Decimal:
        return self.notional / self.cum if self.cum else Decimal(0)


class LpSim(fix.Application):  # type: ignore[misc]
    def __init__(self, port: int, home: Path, *, sender_comp_id: str = "LP1",
                 target_comp_id: str = "BOURSE", begin_strings: tuple[str, ...] = ("FIX.4.4",
                 "FIX.4.2"), default: str = "fill", price: Decimal | None = None,
                 reset_on_logon: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.port, self.home, self.default, self.price = port, home, default, price
        self._cfg = acceptor_settings(port=port, begin_strings=begin_strings,
                                      sender_comp_id=sender_comp_id,
                                      target_comp_id=target_comp_id, home=home,
                                      reset_on_logon=reset_on_logon)  # fmt: skip
        self._plans: deque[str] = deque()
        self._cancel_plans: deque[str] = deque()
        self.orders: dict[str, SimOrder] = {}  # by the first ClOrdID of the chain
        self._by_cl: dict[str, SimOrder] = {}
        self._held: list[tuple[fix.Message, fix.SessionID]] = []
        self._ids = itertools.count(1)
        self.received: list[tuple[str, str]] = []  # (MsgType, ClOrdID) of app messages
        self.logons = 0
        self._cond = threading.Condition()
        self._acceptor: fix.ThreadedSocketAcceptor | None = None
        self._sessions: set[str] = set()
        self._poss_dup = 0  # messages to send next marked PossDupFlag=Y
        self.answers_status = True  # False: 35=H gets a business reject, as the executor's

    # -- driving it ---------------------------------------------------------------------------

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        cfg = self.home / "acceptor.cfg"
        cfg.write_text(self._cfg, encoding="utf-8")
        settings = fix.SessionSettings(str(cfg))
        self._acceptor = fix.ThreadedSocketAcceptor(self, fix.FileStoreFactory(settings), settings,
                                            fix.FileLogFactory(settings))  # fmt: skip
        self._acceptor.start()

    def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.stop()
            self._acceptor = None

    def plan(self, *actions: str) -> None:
        with self._cond:
            self._plans.extend(actions)

    def plan_cancel(self, *answers: str) -> None:
        with self._cond:
            self._cancel_plans.extend(answers)

    def wait(self, predicate: object, timeout_s: float = 20.0) -> bool:
        """Wait until ``predicate()`` holds (checked whenever the LP receives something)."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout_s)  # type: ignore[arg-type]

    def order(self, order_id: int) -> SimOrder:
        with self._cond:
            return self.orders[M.clordid(order_id, 0)]

    def fill(self, order_id: int, qty: str, price: str | None = None) -> None:
        o = self.order(order_id)
        px = Decimal(price) if price is not None else self._price(o)
        assert px is not None, "no price to fill at"
        self._send(self._fill(o, Decimal(qty), px), o.session)

    def restate(self, order_id: int, ord_status: str, text: str = "restated") -> None:
        o = self.order(order_id)
        o.status = ord_status
        self._send(self._report(o, "D", text=text), o.session)

    def repeat(self, order_id: int) -> None:
        """Send the order's last report again, marked PossDupFlag=Y (a resend by hand)."""
        o = self.order(order_id)
        with self._cond:
            self._poss_dup += 1
        fix.Session.sendToTarget(fix.Message(o.last), o.session)

    def release(self) -> None:
        """Send the reports held by ``delay``."""
        with self._cond:
            held, self._held = self._held, []
        for msg, sid in held:
            fix.Session.sendToTarget(msg, sid)

    def drop(self) -> None:
        """Cut every connection (no logout): the initiator reconnects on its own."""
        for key in list(self._sessions):
            session = fix.Session.lookupSession(fix.SessionID(*key.split("|")))
            if session is not None:
                session.disconnect()

    def send_unknown(self, begin_string: str = "FIX.4.4") -> None:
        for key in self._sessions:
            sid = fix.SessionID(*key.split("|"))
            if sid.getBeginString().getValue() != begin_string:
                continue
            o = SimOrder("999999999.7", "LP-X", "EUR/USD", "1", Decimal(1), Decimal("1.1"), sid)
            self._send(self._fill(o, Decimal(1), Decimal("1.1")), sid)

    # -- quickfix's callbacks ------------------------------------------------------------------

    def onCreate(self, sid: fix.SessionID) -> None:
        pass

    def onLogon(self, sid: fix.SessionID) -> None:
        with self._cond:
            self.logons += 1
            self._sessions.add("|".join((sid.getBeginString().getValue(),
                                         sid.getSenderCompID().getValue(),
                                         sid.getTargetCompID().getValue())))  # fmt: skip
            self._cond.notify_all()

    def onLogout(self, sid: fix.SessionID) -> None:
        pass

    def toAdmin(self, message: fix.Message, sid: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, sid: fix.SessionID) -> None:
        pass

    def toApp(self, message: fix.Message, sid: fix.SessionID) -> None:
        # quickfix strips PossDupFlag from what the application sends: a resend "by hand"
        # gets it back here, after that.
        with self._cond:
            if not self._poss_dup:
                return
            self._poss_dup -= 1
        h = message.getHeader()
        h.setField(M.POSS_DUP, "Y")
        h.setField(122, str(h.getField(52)))  # OrigSendingTime

    def fromApp(self, message: fix.Message, sid: fix.SessionID) -> None:
        m = M.read(message)
        sid = M.own_session_id(sid)
        with self._cond:
            self.received.append((m.msg_type, m.cl_ord_id or ""))
            self._cond.notify_all()
        match m.msg_type:
            case "D":
                self._on_new(m, message, sid)
            case "F" | "G":
                self._on_cancel(m, sid)
            case "H" if self.answers_status:
                self._on_status(m, sid)
            case "AF":
                self._on_mass_status(m, sid)
            case _:
                raise fix.UnsupportedMessageType()

    # -- the book --------------------------------------------------------------------------------

    def _price(self, o: SimOrder) -> Decimal | None:
        return o.price if o.price is not None else self.price

    def _on_new(self, m: M.Inbound, message: fix.Message, sid: fix.SessionID) -> None:
        with self._cond:
            action = self._plans.popleft() if self._plans else self.default
        if action == "session_reject":
            raise fix.IncorrectTagValue(M.ORD_TYPE_TAG)
        assert m.cl_ord_id is not None and m.order_qty is not None and m.side is not None
        o = SimOrder(m.cl_ord_id, f"LP-{next(self._ids)}", m.symbol or "", m.side, m.order_qty,
                     m.price, sid, held=action == "delay")  # fmt: skip
        with self._cond:
            self.orders[m.cl_ord_id] = self._by_cl[m.cl_ord_id] = o
            self._cond.notify_all()
        kind, _, arg = action.partition(":")
        if kind == "reject":
            o.status = "8"
            self._send(self._report(o, "8", text=arg or "rejected by lpsim"), sid)
            return
        if kind == "unknown":
            self.send_unknown(sid.getBeginString().getValue())
            return
        px = self._price(o)
        if kind == "silent_fill":
            if px is not None:
                o.cum, o.notional, o.status = o.qty, o.qty * px, "2"
            return
        self._send(self._report(o, "0"), sid)
        if kind == "ask_resend":
            # Forget having received this order's message (quickfix counts it after this
            # callback): the initiator's next message shows a gap, and the LP asks a resend.
            session = fix.Session.lookupSession(sid)
            session.setNextTargetMsgSeqNum(session.getExpectedTargetNum() - 1)
            return
        if kind == "rest" or px is None:
            return
        if kind == "partial":
            for q in arg.split(","):
                self._send(self._fill(o, Decimal(q), px), sid)
            return
        if kind == "gap":
            session = fix.Session.lookupSession(sid)
            session.setNextSenderMsgSeqNum(session.getExpectedSenderNum() + 1)
        fill = self._fill(o, o.qty, px)
        self._send(fill, sid)
        if kind == "duplicate":
            with self._cond:
                self._poss_dup += 1
            fix.Session.sendToTarget(fix.Message(fill.toString()), sid)

    def _on_cancel(self, m: M.Inbound, sid: fix.SessionID) -> None:
        with self._cond:
            answer = self._cancel_plans.popleft() if self._cancel_plans else "ok"
            o = self._by_cl.get(m.orig_cl_ord_id or "")
        if answer == "business_reject":
            raise fix.UnsupportedMessageType()
        replace = m.msg_type == "G"
        if o is None or o.leaves <= 0 or answer.startswith("reject"):
            text = answer.partition(":")[2] or ("unknown order" if o is None else "too late")
            self._send(self._cancel_reject(m, o, replace, text), sid)
            return
        assert m.cl_ord_id is not None
        o.cl_ord_id = m.cl_ord_id
        self._by_cl[m.cl_ord_id] = o
        if replace:
            o.qty = m.order_qty if m.order_qty is not None else o.qty
            o.price = m.price if m.price is not None else o.price
            self._send(self._report(o, "5", orig=m.orig_cl_ord_id), sid)
        else:
            o.status = "4"
            self._send(self._report(o, "4", orig=m.orig_cl_ord_id), sid)

    def _on_status(self, m: M.Inbound, sid: fix.SessionID) -> None:
        o = self._by_cl.get(m.cl_ord_id or "")
        if o is None:
            o = SimOrder(m.cl_ord_id or "", "NONE", m.symbol or "", m.side or "1", Decimal(0),
                         None, sid, status="8")  # fmt: skip
            self._send(self._report(o, "I", text="unknown order"), sid)
            return
        self._send(self._report(o, "I"), sid)

    def _on_mass_status(self, m: M.Inbound, sid: fix.SessionID) -> None:
        mine = [o for o in self.orders.values() if o.session.toString() == sid.toString()]
        for i, o in enumerate(mine, 1):
            r = self._report(o, "I")
            r.setField(M.MASS_STATUS_REQ_ID, m.mass_status_req_id or "")
            r.setField(M.TOT_NUM_REPORTS, str(len(mine)))
            r.setField(M.LAST_RPT_REQUESTED, "Y" if i == len(mine) else "N")
            self._send(r, sid)

    # -- messages ----------------------------------------------------------------------------------

    def _send(self, message: fix.Message, sid: fix.SessionID) -> None:
        o = self._by_cl.get(str(message.getField(M.CL_ORD_ID)))
        if o is not None:
            o.last = message.toString()
        if o is not None and o.held:
            with self._cond:
                self._held.append((message, sid))
            return
        fix.Session.sendToTarget(message, sid)

    def _fill(self, o: SimOrder, qty: Decimal, px: Decimal) -> fix.Message:
        qty = min(qty, o.qty - o.cum)
        o.cum += qty
        o.notional += qty * px
        o.status = "2" if o.cum >= o.qty else "1"
        fix42 = o.session.getBeginString().getValue() == "FIX.4.2"
        r = self._report(o, o.status if fix42 else "F")
        r.setField(M.LAST_QTY, str(qty))
        r.setField(M.LAST_PX, str(px))
        return r

    def _report(self, o: SimOrder, exec_type: str, *, text: str | None = None,
                orig: str | None = None) -> fix.Message:  # fmt: skip
        bs = o.session.getBeginString().getValue()
        r = fix.Message()
        r.getHeader().setField(fix.BeginString(bs))
        r.getHeader().setField(fix.MsgType("8"))
        r.setField(M.ORDER_ID, o.order_id)
        r.setField(M.EXEC_ID, f"E{next(self._ids)}")
        if bs == "FIX.4.2":
            status = exec_type == "I"
            r.setField(M.EXEC_TRANS_TYPE, "3" if status else "0")
            exec_type = o.status if status else exec_type
        r.setField(M.EXEC_TYPE, exec_type)
        r.setField(M.ORD_STATUS, o.status)
        r.setField(M.CL_ORD_ID, o.cl_ord_id)
        if orig is not None:
            r.setField(M.ORIG_CL_ORD_ID, orig)
        r.setField(M.SYMBOL, o.symbol)
        r.setField(M.SIDE_TAG, o.side)
        r.setField(M.ORDER_QTY, str(o.qty))
        if o.price is not None:
            r.setField(M.PRICE, str(o.price))
        r.setField(M.LEAVES_QTY, str(o.leaves))
        r.setField(M.CUM_QTY, str(o.cum))
        r.setField(M.AVG_PX, str(o.avg))
        if text:
            r.setField(M.TEXT, text)
        return r

    def _cancel_reject(self, m: M.Inbound, o: SimOrder | None, replace: bool,
                       text: str) -> fix.Message:  # fmt: skip
        r = fix.Message()
        r.getHeader().setField(fix.BeginString(m.raw.split("|", 1)[0].removeprefix("8=")))
        r.getHeader().setField(fix.MsgType("9"))
        r.setField(M.ORDER_ID, o.order_id if o else "NONE")
        r.setField(M.CL_ORD_ID, m.cl_ord_id or "")
        r.setField(M.ORIG_CL_ORD_ID, m.orig_cl_ord_id or "")
        r.setField(M.ORD_STATUS, o.status if o else "8")
        r.setField(M.CXL_REJ_RESPONSE_TO, "2" if replace else "1")
        r.setField(M.TEXT, text)
        return r


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m trading.venues.fix.lpsim", description=__doc__
                                .split("\n\n")[0])  # fmt: skip
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--home", type=Path, default=Path("lpsim"))
    p.add_argument("--sender-comp-id", default="LP1")
    p.add_argument("--target-comp-id", default="BOURSE")
    p.add_argument("--default", default="fill", help="the action for every order (fill, rest...)")
    p.add_argument("--price", type=Decimal, default=None, help="the price market orders fill at")
    p.add_argument("--reset-on-logon", action="store_true")
    a = p.parse_args(argv)
    sim = LpSim(a.port, a.home, sender_comp_id=a.sender_comp_id, target_comp_id=a.target_comp_id,
                default=a.default, price=a.price, reset_on_logon=a.reset_on_logon)  # fmt: skip
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    sim.start()
    print(f"lpsim listening on port {a.port} (FIX.4.4 and FIX.4.2)", flush=True)
    done.wait()
    sim.stop()


if __name__ == "__main__":
    main()
