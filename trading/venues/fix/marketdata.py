"""A FIX market-data session: top-of-book quotes from a liquidity provider (35=V, W, X, Y).

An initiator session to one LP (an ``[[lp]]`` of the venues file marked
``market_data = true``: its host, port, BeginString, CompIDs, heartbeat, reconnect interval
and session times): on every logon it subscribes (35=V, SubscriptionRequestType 1:
snapshot plus updates, MarketDepth 1, MDUpdateType 1: incremental) to bids and offers of
its symbols. The LP answers a full refresh per symbol (35=W), then incremental refreshes
(35=X: new, change or delete of a bid or offer), or a request reject (35=Y) naming the
reason. Every message that moves a symbol's top of book yields one ``MdQuote`` of that
symbol, queued for the reader (``drain``): quickfix calls in from its own thread, the
reader polls from another, and nothing else is shared.

A disconnect empties the books (a stale top of book is worse than none): the next logon
subscribes again and the LP's snapshot rebuilds them. Sequence gaps and resends are
quickfix's job; quotes are not stored for resend by this side (nothing is sent but 35=V).

Prices and sizes stay the LP's decimal text as ``Decimal``s; the tick pipeline
(``pipelines.ticks.fix_source``) turns them into its integer units. Event time is the
message's SendingTime (52), receive time the wall clock when quickfix handed it over.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import quickfix as fix
import quickfix42 as fix42
import quickfix44 as fix44

from trading.venues.fix.config import LpConfig
from trading.venues.fix.settings import spec_path

log = logging.getLogger(__name__)


def restore_sigint() -> None:
    """Puts Python's SIGINT handler back at the C level.

    quickfix's module init resets SIGINT to the C default (QuickfixPython.cpp), while Python
    still believes its handler is there: Ctrl-C would kill the process at once, without a
    logout or the run's last writes. Only the main thread may set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return
    handler = signal.getsignal(signal.SIGINT)
    if handler is not None:
        signal.signal(signal.SIGINT, handler)


restore_sigint()

# Bound on the quotes queued per symbol between two polls; beyond it the oldest go (counted
# in ``dropped``): a reader that stalls must not grow the process without limit.
QUEUE_MAX = 100_000
_BID, _OFFER = "0", "1"
_NEW, _CHANGE, _DELETE = "0", "1", "2"


@dataclass(frozen=True, slots=True)
class MdQuote:
    """One symbol's top of book after a message from the LP (None: that side is empty)."""

    symbol: str  # as the LP wrote it
    seq: int  # per session, from 0, in the order received
    ts_ns: int  # the message's SendingTime, UTC nanoseconds
    recv_ns: int  # when quickfix handed it over, time.time_ns()
    bid: Decimal | None
    ask: Decimal | None
    bid_size: Decimal | None
    ask_size: Decimal | None


@dataclass(frozen=True, slots=True)
class MdReject:
    """A subscription the LP refused (35=Y), or a message this side could not read."""

    symbols: tuple[str, ...]
    reason: str


def session_settings(lp: LpConfig, directory: Path) -> str:
    """The initiator's settings: validation on, a store and log of its own under ``directory``
    (never the order session's, which another process may hold)."""
    return "\n".join([
        "[DEFAULT]",
        "ConnectionType=initiator",
        f"FileStorePath={directory / 'store'}",
        f"FileLogPath={directory / 'log'}",
        "UseDataDictionary=Y",
        f"DataDictionary={spec_path(lp.begin_string)}",
        "ValidateUserDefinedFields=N",
        # A subscription is made again on each logon: nothing of an old session is wanted.
        "ResetOnLogon=Y",
        "PersistMessages=N",
        "SocketNodelay=Y",
        "",
        "[SESSION]",
        f"BeginString={lp.begin_string}",
        f"SenderCompID={lp.sender_comp_id}",
        f"TargetCompID={lp.target_comp_id}",
        f"SocketConnectHost={lp.host}",
        f"SocketConnectPort={lp.port}",
        f"HeartBtInt={lp.heartbeat_s}",
        f"ReconnectInterval={lp.reconnect_s}",
        f"StartTime={lp.session_start}",
        f"EndTime={lp.session_end}",
        "",
    ])  # fmt: skip


def sending_time_ns(text: str) -> int:
    """FIX UTCTimestamp (``YYYYMMDD-HH:MM:SS[.fraction]``, up to nanoseconds) as UTC ns."""
    whole, _, fraction = text.partition(".")
    base = datetime.strptime(whole, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    if fraction and (not fraction.isdigit() or len(fraction) > 9):
        raise ValueError(f"bad UTCTimestamp fraction in {text!r}")
    return int(base.timestamp()) * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


@dataclass(slots=True)
class _Top:
    bid: tuple[Decimal, Decimal | None] | None = None
    ask: tuple[Decimal, Decimal | None] | None = None

    def set(self, side: str, price: Decimal, size: Decimal | None) -> None:
        if side == _BID:
            self.bid = (price, size)
        elif side == _OFFER:
            self.ask = (price, size)

    def clear(self, side: str) -> None:
        if side == _BID:
            self.bid = None
        elif side == _OFFER:
            self.ask = None


def _decimal(group: Any, tag: int) -> Decimal | None:
    if not group.isSetField(tag):
        return None
    try:
        return Decimal(group.getField(tag))
    except InvalidOperation:
        raise ValueError(f"tag {tag} is not a decimal: {group.getField(tag)!r}") from None


class MarketDataSession(fix.Application):  # type: ignore[misc]
    """Top-of-book quotes of ``symbols`` from one LP; ``start()``, ``drain(symbol)``, ``stop()``."""

    def __init__(
        self, lp: LpConfig, symbols: Sequence[str], directory: Path,
        *, clock: Callable[[], int] = time.time_ns,
    ) -> None:  # fmt: skip
        super().__init__()
        if not symbols:
            raise ValueError("a market-data session needs at least one symbol")
        if lp.begin_string not in ("FIX.4.2", "FIX.4.4"):
            raise ValueError(f"unsupported BeginString {lp.begin_string!r}")
        self.lp = lp
        self.symbols = tuple(dict.fromkeys(symbols))
        self._dir = directory
        self._clock = clock
        self._fix = fix42 if lp.begin_string == "FIX.4.2" else fix44
        self._lock = threading.Lock()
        self._queues: dict[str, deque[MdQuote]] = {s: deque() for s in self.symbols}
        self._tops: dict[str, _Top] = {s: _Top() for s in self.symbols}
        self._seq = 0
        self._requests = 0
        self._request_symbol: dict[str, str] = {}  # MDReqID -> the symbol it subscribed
        self._logged_on = threading.Event()
        self.logons = 0
        self.dropped = 0
        self.rejects: list[MdReject] = []
        self._initiator: Any = None

    # --- the reader's side ------------------------------------------------------------

    def start(self) -> None:
        """Starts the initiator (non-blocking): it connects, retries every ``reconnect_s``."""
        if self._initiator is not None:
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        cfg = self._dir / "session.cfg"
        cfg.write_text(session_settings(self.lp, self._dir))
        settings = fix.SessionSettings(str(cfg))
        self._initiator = fix.SocketInitiator(
            self, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings)
        )
        self._initiator.start()

    def stop(self) -> None:
        """Logs out and stops the initiator (a no-op when it is not running)."""
        if self._initiator is not None:
            self._initiator.stop()
            self._initiator = None

    def is_up(self) -> bool:
        return self._logged_on.is_set()

    def wait_logon(self, timeout_s: float) -> bool:
        return self._logged_on.wait(timeout_s)

    def drain(self, symbol: str) -> list[MdQuote]:
        """The quotes of ``symbol`` received since the last drain, oldest first."""
        with self._lock:
            queue = self._queues[symbol]
            out = list(queue)
            queue.clear()
        return out

    def rejected(self, symbol: str) -> MdReject | None:
        """The LP's refusal of ``symbol``'s subscription, if it refused it."""
        with self._lock:
            return next((r for r in self.rejects if symbol in r.symbols), None)

    # --- quickfix's side (its thread) ----------------------------------------------------

    def onCreate(self, sessionID: Any) -> None:
        pass

    def onLogon(self, sessionID: Any) -> None:
        self.logons += 1
        self._logged_on.set()
        self._subscribe(sessionID)

    def onLogout(self, sessionID: Any) -> None:
        self._logged_on.clear()
        with self._lock:
            for symbol in self.symbols:
                self._tops[symbol] = _Top()

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        pass

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        pass

    def toApp(self, message: Any, sessionID: Any) -> None:
        pass

    def fromApp(self, message: Any, sessionID: Any) -> None:
        recv_ns = self._clock()
        kind = message.getHeader().getField(35)
        try:
            if kind == "W":
                self._on_snapshot(message, recv_ns)
            elif kind == "X":
                self._on_incremental(message, recv_ns)
            elif kind == "Y":
                self._on_reject(message)
        except (ValueError, fix.FieldNotFound) as exc:
            # A message quickfix validated but this side cannot use: kept as a reject, not
            # raised into quickfix's thread (which would only print it).
            with self._lock:
                self.rejects.append(MdReject((), f"unreadable 35={kind}: {exc}"))
            log.warning("%s: unreadable 35=%s: %s", self.lp.name, kind, exc)

    # --- messages -----------------------------------------------------------------------

    def _subscribe(self, session_id: Any) -> None:
        """One request per symbol, so that a 35=Y (which names the request) names it."""
        for symbol in self.symbols:
            self._requests += 1
            req_id = f"{self.lp.name}-{self._requests}"
            with self._lock:
                self._request_symbol[req_id] = symbol
            request = self._fix.MarketDataRequest()
            request.setField(fix.MDReqID(req_id))
            request.setField(
                fix.SubscriptionRequestType(fix.SubscriptionRequestType_SNAPSHOT_AND_UPDATES)
            )
            request.setField(fix.MarketDepth(1))
            request.setField(fix.MDUpdateType(fix.MDUpdateType_INCREMENTAL_REFRESH))
            types = self._fix.MarketDataRequest.NoMDEntryTypes()
            for entry_type in (fix.MDEntryType_BID, fix.MDEntryType_OFFER):
                types.setField(fix.MDEntryType(entry_type))
                request.addGroup(types)
            related = self._fix.MarketDataRequest.NoRelatedSym()
            related.setField(fix.Symbol(symbol))
            request.addGroup(related)
            fix.Session.sendToTarget(request, session_id)

    def _on_snapshot(self, message: Any, recv_ns: int) -> None:
        symbol = message.getField(55)
        if symbol not in self._tops:
            return  # not subscribed here (another session's symbol): nothing to update
        top = _Top()
        group = self._fix.MarketDataSnapshotFullRefresh.NoMDEntries()
        for i in range(1, int(message.getField(268)) + 1):
            message.getGroup(i, group)
            side, price = group.getField(269), _decimal(group, 270)
            if price is None:
                continue
            best = top.bid if side == _BID else top.ask if side == _OFFER else None
            better = best is None or (price > best[0] if side == _BID else price < best[0])
            if better:
                top.set(side, price, _decimal(group, 271))
        ts_ns = sending_time_ns(message.getHeader().getField(52))
        with self._lock:
            self._tops[symbol] = top
            self._emit(symbol, ts_ns, recv_ns)

    def _on_incremental(self, message: Any, recv_ns: int) -> None:
        touched: dict[str, None] = {}
        group = self._fix.MarketDataIncrementalRefresh.NoMDEntries()
        entries = []
        for i in range(1, int(message.getField(268)) + 1):
            message.getGroup(i, group)
            symbol = group.getField(55) if group.isSetField(55) else None
            if symbol is None:
                raise ValueError(f"entry {i} names no symbol (55)")
            entries.append((symbol, group.getField(279), group.getField(269),
                            _decimal(group, 270), _decimal(group, 271)))  # fmt: skip
        ts_ns = sending_time_ns(message.getHeader().getField(52))
        with self._lock:
            for symbol, action, side, price, size in entries:
                top = self._tops.get(symbol)
                if top is None:
                    continue
                if action == _DELETE:
                    top.clear(side)
                elif action in (_NEW, _CHANGE) and price is not None:
                    top.set(side, price, size)
                touched[symbol] = None
            for symbol in touched:
                self._emit(symbol, ts_ns, recv_ns)

    def _on_reject(self, message: Any) -> None:
        reason = message.getField(58) if message.isSetField(58) else ""
        code = message.getField(281) if message.isSetField(281) else ""
        text = f"MDReqRejReason {code}: {reason}" if code else reason or "rejected"
        req_id = message.getField(262)
        with self._lock:
            symbol = self._request_symbol.get(req_id)
            symbols = (symbol,) if symbol is not None else ()
            self.rejects.append(MdReject(symbols, f"{req_id}: {text}"))
        log.warning("%s: market data request rejected: %s", self.lp.name, text)

    def _emit(self, symbol: str, ts_ns: int, recv_ns: int) -> None:
        top = self._tops[symbol]
        queue = self._queues[symbol]
        if len(queue) >= QUEUE_MAX:
            queue.popleft()
            self.dropped += 1
        queue.append(MdQuote(
            symbol, self._seq, ts_ns, recv_ns,
            top.bid[0] if top.bid else None, top.ask[0] if top.ask else None,
            top.bid[1] if top.bid else None, top.ask[1] if top.ask else None,
        ))  # fmt: skip
        self._seq += 1
