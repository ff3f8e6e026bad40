"""``FixVenue``: an A-book venue on a quickfix initiator session to one liquidity provider.

The OMS calls ``submit``/``cancel``/``replace`` in its writer's thread while it prepares a
batch; they answer ``[]`` (or at once a refusal when the session is down or the LP does not
take the order's type or TIF) and hold the 35=D/F/G for that batch: nothing leaves the house
before it is durable. ``committed`` (the OMS stored the batch; batches commit in the order
they began, ``begin_batch``) writes the held requests' ClOrdIDs and sends them, in order,
stamped with the time they are sent; ``reset`` (the OMS reloads its state after a commit
failed) takes back every request still held, so the LP never works an order the store never
had. Outside a batch (no OMS: the adapter's own benchmarks and tools) a request goes at once.

Everything the LP says arrives in quickfix's thread, is read into plain values
(``messages.read``), translated (``mapping.translate``) and handed to the handler the OMS
bound, which queues it for the writer: no quickfix thread touches the OMS's state.

Idempotence: exec ids are ``<lp>:<order_id>:<ExecID>`` (the LP's ExecID is unique per
trading day at best, and a restarted LP may start again at 1: our order id makes it unique
in the store). An exec id already forwarded is not forwarded again (PossDup resends,
repeated status answers); fills are also counted by CumQty (``mapping``). The forwarded set
starts from the drop copy: what the OMS stored before a restart.

In doubt: at a logout every order the adapter still works is in doubt (``in_doubt``); at
every logon the adapter asks the status of each (35=H, or one 35=AF with
``status_request = "mass"``, then 35=H for any order its answers left out) and reconciles
from the answers; nothing moves until the LP answers. An order request quickfix would
resend (PossDup, at the LP's resend request) is not resent blind, possibly stale: its
order's status is asked instead, and an LP that never had it says so (rejected).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import quickfix as fix

from trading.catalogue import Catalogue
from trading.orders import Order
from trading.quotes import Quote
from trading.venues.base import ExecKind, ExecutionReport, ReportHandler
from trading.venues.dropcopy import DropCopy, dropcopy_dir
from trading.venues.fix import messages as M
from trading.venues.fix.app import App
from trading.venues.fix.chains import Chain, Chains, suffix
from trading.venues.fix.config import LpConfig
from trading.venues.fix.held import Held, Outbox
from trading.venues.fix.journal import Exceptions
from trading.venues.fix.mapping import Translation, translate
from trading.venues.fix.marketdata import restore_sigint
from trading.venues.fix.settings import initiator_settings, session_dir

# Importing quickfix took Ctrl-C from Python (see restore_sigint): `simulate --venues` and
# `oms run --venues` must still log their sessions out on it.
restore_sigint()

log = logging.getLogger(__name__)

_SENT_MAX = 100_000  # outgoing seq nums remembered to match a session or business reject
_ORDER_MSGS = frozenset({"D", "F", "G"})
_SEEN_DAYS = 7  # drop copy days read at start for the exec ids already applied


class FixVenue:
    def __init__(self, lp: LpConfig, catalogue: Catalogue, clock: Callable[[], int],
                 home: Path) -> None:  # fmt: skip
        self.lp = lp
        self.name = lp.name
        self._catalogue = catalogue
        self._clock = clock
        self.home = home
        self.dir = session_dir(home, lp.name)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.chains = Chains(self.dir / "orders.jsonl")
        self.exceptions = Exceptions(self.dir / "exceptions.csv")
        self.dropcopy = DropCopy(dropcopy_dir(home, lp.name), catalogue)
        self._seen: set[str] = _exec_ids_in(self.dropcopy.directory)
        self._handler: ReportHandler | None = None
        self._lock = threading.RLock()
        # Its own lock: toApp runs under quickfix's session mutex, which the OMS's thread may
        # wait for while holding ``_lock`` (in a send): taking ``_lock`` there could deadlock.
        self._sent_lock = threading.Lock()
        self._sent: OrderedDict[int, tuple[str, str]] = OrderedDict()
        self._up = threading.Event()
        self._session: fix.SessionID | None = None
        self._initiator: fix.ThreadedSocketInitiator | None = None
        self._app = App(self)
        self.in_doubt: set[int] = set()
        self.logons = 0
        # Requests held until their batch is stored (under _lock: the writer's thread holds,
        # the committer's releases).
        self._outbox = Outbox(self.chains, self._send, clock)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Bring the initiator up (quickfix connects, and reconnects, in its own thread)."""
        if self._initiator is not None:
            return
        cfg = self.dir / "session.cfg"
        cfg.write_text(initiator_settings(self.lp, self.home), encoding="utf-8")
        settings = fix.SessionSettings(str(cfg))
        self._initiator = fix.ThreadedSocketInitiator(
            self._app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings)
        )
        self._initiator.start()

    def stop(self) -> None:
        """Log out and stop; the session's store keeps sequence numbers for the next start."""
        if self._initiator is not None:
            self._initiator.stop()
            self._initiator = None
        self._up.clear()
        self.dropcopy.close()

    def is_up(self) -> bool:
        return self._up.is_set()

    def wait_up(self, timeout_s: float) -> bool:
        return self._up.wait(timeout_s)

    def takes(self, order: Order) -> bool:
        return order.type in self.lp.order_types and order.tif in self.lp.tifs

    # -- the venue interface ---------------------------------------------------------------------

    def bind(self, handler: ReportHandler) -> None:
        self._handler = handler

    def submit(self, order: Order) -> list[ExecutionReport]:
        sent = self.chains.by_order.get(order.order_id)
        terms = f"{order.account_id}|{order.fingerprint}"
        if sent is not None and not sent.ended and sent.terms == terms:
            # The OMS runs a batch again after its store refused it: the order went out the
            # first time (a message on the wire cannot be rolled back), its reports will come.
            return []
        refusal = self._refusal(order)
        if refusal is not None:
            return self._local(order, ExecKind.REJECTED, refusal)
        inst = self._catalogue.get(order.symbol)
        with self._lock:
            chain, cl, prev = self.chains.mint(order.order_id, order.account_id, order.symbol,
                                               order.side, terms)  # fmt: skip
            chain.filled, chain.notional = order.filled_qty, order.filled_notional
            # Built now: the order's terms as the OMS decided them (the object moves on).
            msg = M.new_order(self.lp.begin_string, order, inst, cl, self._clock())
            self._outbox.hold(Held(chain, cl, "new", msg, prev))
        return []

    def cancel(self, order: Order) -> list[ExecutionReport]:
        chain = self.chains.by_order.get(order.order_id)
        if chain is None or chain.ended:
            return self._local(order, ExecKind.CANCEL_REJECTED, "not_working_at_lp")
        if not self.is_up():
            return self._local(order, ExecKind.CANCEL_REJECTED, self._down())
        inst = self._catalogue.get(order.symbol)
        with self._lock:
            cl = self.chains.mint_ask(chain, "cancel")
            msg = M.cancel_request(self.lp.begin_string, order, inst, cl, chain.live,
                                   self._clock())  # fmt: skip
            self._outbox.hold(Held(chain, cl, "cancel", msg))
        return []

    def replace(
        self, order: Order, qty: int, price: int | None, trigger_price: int | None
    ) -> list[ExecutionReport]:
        chain = self.chains.by_order.get(order.order_id)
        if chain is None or chain.ended:
            return self._local(order, ExecKind.REPLACE_REJECTED, "not_working_at_lp")
        if not self.is_up():
            return self._local(order, ExecKind.REPLACE_REJECTED, self._down())
        inst = self._catalogue.get(order.symbol)
        with self._lock:
            cl = self.chains.mint_ask(chain, "replace")
            msg = M.replace_request(self.lp.begin_string, order, inst, cl, chain.live,
                                    self._clock(), qty, price, trigger_price)  # fmt: skip
            self._outbox.hold(Held(chain, cl, "replace", msg))
        return []

    def begin_batch(self) -> None:
        with self._lock:
            self._outbox.begin()

    def reset(self) -> None:
        """Take back every request held for a batch not committed, newest first (it never
        left: the LP never had it). The orders sent stay: the LP works them, the chains are
        on disk. (Reports forwarded but not stored are requeued by the OMS; their drop copy
        rows wait.)"""
        with self._lock:
            self._outbox.drop()

    def restore(self, order: Order) -> None:
        """Take the OMS's stored view of a working order (never below what was forwarded).

        An order the store holds with no chain never left: the process stopped between the
        commit and the send. It is not sent now (the market may have moved for as long as
        the OMS was down): it is rejected (canceled, if its cancel was stored too)."""
        with self._lock:
            chain = self.chains.by_order.get(order.order_id)
            if chain is None:
                self._never_sent(order)
                return
            if order.filled_qty > chain.filled:
                chain.filled, chain.notional = order.filled_qty, order.filled_notional
            chain.acked = chain.acked or order.status.value != "submitted"

    def on_quote(self, quote: Quote) -> list[ExecutionReport]:
        return []  # the LP works the orders

    def on_time(self, now_ns: int) -> list[ExecutionReport]:
        return []  # the LP expires them, and says so

    def committed(self, exec_ids: frozenset[str]) -> None:
        """The OMS stored its oldest batch in flight: its requests go out, in order."""
        with self._lock:
            self._outbox.release_oldest()
        self.dropcopy.committed(exec_ids)

    # -- internals ---------------------------------------------------------------------------------

    def _down(self) -> str:
        return f"lp_down: the FIX session to {self.name} is not logged on"

    def _refusal(self, order: Order) -> str | None:
        if not self.is_up():
            return self._down()
        if order.type not in self.lp.order_types:
            return f"lp_refuses: {self.name} takes no {order.type.value} orders"
        if order.tif not in self.lp.tifs:
            return f"lp_refuses: {self.name} takes no {order.tif.value} orders"
        return None

    def _never_sent(self, order: Order) -> None:
        if order.status.value not in ("submitted", "pending_cancel"):
            log.error("%s: order %d is %s in the store but has no ClOrdID here",
                      self.name, order.order_id, order.status.value)  # fmt: skip
            return
        reason = f"not_sent: the OMS stopped before the order went to {self.name}"
        kind = ExecKind.REJECTED if order.status.value == "submitted" else ExecKind.CANCELED
        reports = self._local(order, kind, reason)
        if self._handler is not None:
            self._handler(reports)

    def _local(self, order: Order, kind: ExecKind, reason: str) -> list[ExecutionReport]:
        now = self._clock()
        r = ExecutionReport(f"{self.name}:{order.order_id}:local:{kind.value}:{now}",
                            order.order_id, kind, now, reason=reason, venue=self.name)  # fmt: skip
        self.dropcopy.record(order.account_id, order.symbol, order.side.value, [r])
        return [r]

    def _send(self, message: fix.Message) -> None:
        if self._session is None or not fix.Session.sendToTarget(message, self._session):
            log.warning("%s: message not sent now (session down): it is in doubt", self.name)

    def _emit(self, chain: Chain, t: Translation) -> None:
        fresh = [r for r in t.reports if r.exec_id not in self._seen]
        if t.live is not None:
            self.chains.live(chain, t.live)
        if t.end is not None:
            self.chains.end(chain, t.end)
            self.in_doubt.discard(chain.order_id)
        if not fresh:
            return
        self._seen.update(r.exec_id for r in fresh)
        self.dropcopy.record(chain.account_id, chain.symbol, chain.side.value, fresh)
        if self._handler is not None:
            self._handler(fresh)

    # -- quickfix's thread -------------------------------------------------------------------------

    def on_create(self, session: fix.SessionID) -> None:
        self._session = M.own_session_id(session)

    def on_logon(self, session: fix.SessionID) -> None:
        with self._lock:
            self._session = M.own_session_id(session)
            self.logons += 1
            working = self.chains.working()
            self.in_doubt |= {c.order_id for c in working}
            self._up.set()
            if not working:
                return
            if self.lp.status_request == "mass":
                bs = self.lp.begin_string
                self._send(M.mass_status_request(bs, f"{self.name}-{self._clock()}"))
                return
            for c in working:
                self.ask_status(c.order_id)

    def ask_status(self, order_id: int) -> None:
        """Ask the LP the status of a working order (35=H); the order is in doubt until the
        answer comes."""
        with self._lock:
            c = self.chains.by_order.get(order_id)
            if c is None or c.ended:
                return
            self.in_doubt.add(order_id)
            self._send(M.status_request(self.lp.begin_string, c.live, c.symbol, c.side))

    def on_logout(self) -> None:
        with self._lock:
            self._up.clear()
            self.in_doubt |= {c.order_id for c in self.chains.working()}

    def on_sent(self, message: fix.Message) -> None:
        """Remember which request went out under which seq num; refuse to resend an order
        request blind after a reconnection (its status is asked instead)."""
        h = message.getHeader()
        msg_type = str(h.getField(M.MSG_TYPE))
        cl = str(message.getField(M.CL_ORD_ID)) if message.isSetField(M.CL_ORD_ID) else ""
        if msg_type in _ORDER_MSGS and h.isSetField(M.POSS_DUP) and h.getField(M.POSS_DUP) == "Y":
            oid = M.order_id_of(cl)
            if oid is not None:
                # Asked from another thread: this one holds quickfix's session mutex in the
                # middle of a resend; the request goes out after it.
                threading.Thread(target=self.ask_status, args=(oid,), daemon=True).start()
            raise fix.DoNotSend()
        with self._sent_lock:
            self._sent[int(h.getField(M.MSG_SEQ_NUM))] = (msg_type, cl)
            if len(self._sent) > _SENT_MAX:
                self._sent.popitem(last=False)

    def on_message(self, message: fix.Message) -> None:
        m = M.read(message)
        now = self._clock()
        with self._lock:
            if m.msg_type in ("8", "9"):
                self._on_report(m, now)
            elif m.msg_type in ("3", "j"):
                self._on_reject(m, now)

    def _on_report(self, m: M.Inbound, now: int) -> None:
        oid = M.order_id_of(m.cl_ord_id) or M.order_id_of(m.orig_cl_ord_id)
        chain = self.chains.by_order.get(oid) if oid is not None else None
        if chain is None:
            self.exceptions.record(now, "unknown_cl_ord_id", m)
            return
        if max(suffix(m.cl_ord_id), suffix(m.orig_cl_ord_id)) < chain.floor:
            # An order sent under this id before the OMS's store refused its batch, and the id
            # went to another order: its reports are not that order's.
            self.exceptions.record(now, "orphan_order_at_lp", m)
            return
        inst = self._catalogue.get(chain.symbol)
        t = translate(self.name, m, chain, inst, now)
        if t.exception is not None:
            self.exceptions.record(now, t.exception, m)
        if m.exec_type == "I" or m.exec_trans_type == "3":
            self.in_doubt.discard(chain.order_id)
        self._emit(chain, t)
        if m.last_report:
            # The mass status is complete: an order it left out is asked about on its own
            # (an LP that never had it says so), not assumed gone.
            for left in sorted(self.in_doubt):
                self.ask_status(left)

    def _on_reject(self, m: M.Inbound, now: int) -> None:
        with self._sent_lock:
            sent = self._sent.get(m.ref_seq_num) if m.ref_seq_num is not None else None
        msg_type, cl = sent if sent is not None else (m.ref_msg_type or "", m.business_ref_id)
        oid = M.order_id_of(cl)
        chain = self.chains.by_order.get(oid) if oid is not None else None
        kind = {"D": ExecKind.REJECTED, "F": ExecKind.CANCEL_REJECTED,
                "G": ExecKind.REPLACE_REJECTED}.get(msg_type)  # fmt: skip
        if chain is None or kind is None:
            # A reject of a heartbeat, a status request or a message from before a restart:
            # nothing moves; the desk sees it.
            self.exceptions.record(now, f"reject_of_{msg_type or 'unknown'}_message", m)
            return
        t = Translation()
        what = "session reject" if m.msg_type == "3" else "business reject"
        reason = m.text or f"{what} {m.reject_code or ''}".strip()
        t.reports.append(ExecutionReport(f"{self.name}:{cl}:{m.msg_type}", chain.order_id, kind,
                                         now, reason=reason, venue=self.name))  # fmt: skip
        if kind is ExecKind.REJECTED:
            t.end = "rejected"
        else:
            chain.asks.pop(cl or "", None)
        self._emit(chain, t)


def _exec_ids_in(directory: Path, days: int = _SEEN_DAYS) -> set[str]:
    """Exec ids in the venue's drop copy of its last ``days`` trading days: the reports the
    OMS stored. Older repeats need no guard here: a working order's fills are counted by
    CumQty, and a report for a closed order is an exception in the OMS, not a booking."""
    ids: set[str] = set()
    if not directory.is_dir():
        return ids
    for path in sorted(directory.glob("*.csv"))[-days:]:
        with path.open(encoding="ascii") as f:
            next(f, None)
            ids.update(line.split(",", 1)[0] for line in f if line.strip())
    return ids
