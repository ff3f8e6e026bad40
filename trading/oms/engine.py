"""The order management system: the single writer of the transactional store.

``OMS.execute(commands)`` runs a group of commands against the in-memory state and writes
everything they produced (orders, fills, ledger postings, lots, outbox events, audit
records) in one database transaction: group commit. A result is returned only after that
commit, so nothing is acknowledged before it is durable. If the commit fails, the state is
reloaded from the store and every command of the group answers ``StoreError``.

Memory holds what the hot path needs and is bounded by what is open: accounts and their
balances, working orders, open lots, pending withdrawals. A client order id of a closed
order is looked up in the store, once per batch for all the batch's submits.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import Engine, select

from trading import ledger as L
from trading.commands import (
    AmendOrder,
    ApplyReports,
    CancelOrder,
    Command,
    DecideWithdrawal,
    Deposit,
    Done,
    ExpireDue,
    HaltSymbol,
    OpenAccount,
    OrderAck,
    QuoteUpdate,
    RequestWithdrawal,
    Result,
    SetAccountState,
    SubmitOrder,
)
from trading.config import OMSConfig, TierLimits
from trading.errors import (
    BourseError,
    ConflictError,
    InsufficientFunds,
    InvalidInput,
    InvalidOrder,
    InvalidStateTransition,
    NotFound,
    StoreError,
)
from trading.fx import FxRates
from trading.instruments import AccountType, Catalogue, Instrument
from trading.money import exponent
from trading.oms.audit import GENESIS, record_hash
from trading.orders import (
    Order,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    OrderType,
    TimeInForce,
    check_transition,
)
from trading.positions import Lot, Position
from trading.quotes import InMemoryQuoteBook, QuoteSource
from trading.risk import (
    AccountState,
    Denial,
    DenialCode,
    RateLimiter,
    check_account_state,
    check_margin,
    check_order_size,
    check_position,
)
from trading.store import schema as s
from trading.store.engine import writer
from trading.store.repository import Batch, Snapshot, flush, load_snapshot
from trading.venues.base import ExecKind, ExecutionReport, Venue

S = OrderStatus

_NS_PER_DAY = 86_400 * 1_000_000_000
# One encoder each, made once: json.dumps with options builds a new encoder per call.
_EVENT_JSON = json.JSONEncoder(separators=(",", ":")).encode
_AUDIT_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode
_EVENT_TYPE = {st: f"order.{st.value}" for st in OrderStatus}


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch run against memory, waiting to be committed."""

    batch: Batch
    results: list[Result]
    exec_ids: frozenset[str]


@dataclass(slots=True)
class _Account:
    account_id: int
    currency: str
    tier: str
    state: AccountState
    cash_id: int = 0
    margin_id: int = 0
    positions: dict[str, Position] = field(default_factory=dict)
    seq: int = 0


@dataclass(slots=True)
class _Withdrawal:
    withdrawal_id: int
    account_id: int
    currency: str
    amount: int
    requested_ns: int


class OMS:
    def __init__(
        self,
        engine: Engine,
        catalogue: Catalogue,
        quotes: QuoteSource,
        venue: Venue,
        config: OMSConfig | None = None,
        clock: Callable[[], int] = time.time_ns,
        actor: str = "oms",
    ) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self.catalogue = catalogue
        self.quotes = quotes
        self.venue = venue
        self.config = config or OMSConfig()
        self.clock = clock
        self.actor = actor
        self.fx = FxRates(catalogue, quotes)
        self._factor: dict[str, Decimal] = {}
        self._late_reports: list[ExecutionReport] = []
        venue.bind(self._late_reports.extend)
        self.recover()

    # -- state ---------------------------------------------------------------------------------

    def recover(self) -> None:
        """(Re)build the in-memory state from the store."""
        with self.engine.connect() as conn:
            snap = load_snapshot(conn)
        self._load(snap)

    def _load(self, snap: Snapshot) -> None:
        self._ids = dict(snap.max_ids)
        self._ledger_ids: dict[str, int] = {}
        self._ledger_commodity: dict[int, str] = {}
        for r in snap.ledger_accounts:
            self._ledger_ids[r.code] = r.ledger_account_id
            self._ledger_commodity[r.ledger_account_id] = r.commodity
        self._balances: dict[int, int] = dict(snap.balances)
        self._accounts: dict[int, _Account] = {}
        for r in snap.accounts:
            acct = _Account(r.account_id, r.currency, r.tier, AccountState(r.state))
            acct.cash_id = self._ledger_ids.get(L.client_cash(r.account_id, r.currency), 0)
            acct.margin_id = self._ledger_ids.get(L.client_margin(r.account_id, r.currency), 0)
            acct.seq = snap.account_seqs.get(r.account_id, 0)
            self._accounts[r.account_id] = acct
        self._open: dict[int, Order] = {o.order_id: o for o in snap.open_orders}
        self._open_by_client: dict[tuple[int, str], int] = {
            (o.account_id, o.client_order_id): o.order_id for o in snap.open_orders
        }
        for lot in snap.open_lots:
            acct = self._accounts[lot.account_id]
            pos = acct.positions.get(lot.symbol)
            if pos is None:
                pos = acct.positions[lot.symbol] = Position(lot.account_id, lot.symbol)
            pos.add_lot(lot)
        self._withdrawals = {
            r.withdrawal_id: _Withdrawal(
                r.withdrawal_id, r.account_id, r.currency, r.amount, r.requested_ns
            )
            for r in snap.pending_withdrawals
        }
        self._audit_seq, self._audit_hash = snap.audit_head or (0, GENESIS)
        self._audit_head_exists = snap.audit_head is not None
        self._inflight_orders: dict[tuple[int, str], Order] = {}
        self._inflight_execs: set[str] = set()
        self._committed: deque[Prepared] = deque()
        self._halted: set[str] = set(snap.halted_symbols)
        self._limiter = RateLimiter()
        self._late_reports.clear()
        reset = getattr(self.venue, "reset", None)
        restore = getattr(self.venue, "restore", None)
        if reset is not None:
            reset()
        if restore is not None:
            for o in snap.open_orders:
                if o.status not in (S.INITIALIZED, S.SUBMITTED):
                    restore(o)

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    @property
    def open_order_count(self) -> int:
        return len(self._open)

    def open_order(self, order_id: int) -> Order | None:
        return self._open.get(order_id)

    def position(self, account_id: int, symbol: str) -> Position | None:
        acct = self._accounts.get(account_id)
        return acct.positions.get(symbol) if acct else None

    def balance(self, code: str) -> int:
        lid = self._ledger_ids.get(code)
        return self._balances.get(lid, 0) if lid else 0

    def cash_available(self, account_id: int, currency: str | None = None) -> int:
        """The client's free cash in minor units (client money is booked as a liability)."""
        acct = self._account(account_id)
        return -self.balance(L.client_cash(account_id, currency or acct.currency))

    # -- group commit ----------------------------------------------------------------------------

    def execute_one(self, command: Command) -> OrderAck | Done:
        result = self.execute([command])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def execute(self, commands: Sequence[Command]) -> list[Result]:
        """Run commands in order and commit all they produced in one transaction."""
        try:
            prepared = self.prepare(commands)
            self.commit(prepared)
        except Exception as exc:
            # The memory may hold half a batch: the store is the truth.
            self.recover()
            error = StoreError(f"batch of {len(commands)} commands not stored: {exc!r}")
            return [error] * len(commands)
        self.retire_committed()
        return prepared.results

    def prepare(self, commands: Sequence[Command]) -> Prepared:
        """Run commands against memory and gather what they wrote; nothing is stored yet.

        ``commit`` stores it. A writer may prepare the next batch while the previous one
        commits (``trading.oms.service``): batches not yet committed are "in flight", and a
        retry of their client order ids or exec ids is found in memory, not in the store.
        If a commit fails, everything prepared after it is void: the caller must wait for
        the commits in flight and ``recover()``.
        """
        self.retire_committed()
        batch = self._batch = Batch(audit_head_exists=self._audit_head_exists)
        self._seen_exec: set[str] = set()
        results: list[Result] = []
        known = self._prefetch(commands)
        for cmd in commands:
            try:
                results.append(self._dispatch(cmd, known))
            except BourseError as exc:
                results.append(exc)
            # Reports a venue delivered while we worked (resting orders it filled).
            while self._late_reports:
                late = list(self._late_reports)
                self._late_reports.clear()
                self._apply_reports(late, actor="venue")
        if self._audit_seq and batch.audit_head is None and batch.row_count():
            batch.audit_head = (self._audit_seq, self._audit_hash)
        if batch.audit_head is not None:
            self._audit_head_exists = True
        batch.freeze()
        self._inflight_orders.update(batch.by_client)
        self._inflight_execs |= self._seen_exec
        return Prepared(batch, results, frozenset(self._seen_exec))

    def commit(self, prepared: Prepared) -> None:
        """Write a prepared batch in one transaction. Safe to call from another thread."""
        with self._writer.begin() as conn:
            flush(conn, prepared.batch)
        self._committed.append(prepared)

    def retire_committed(self) -> None:
        """Forget the in-flight entries of batches now in the store (the writer's thread)."""
        while self._committed:
            done = self._committed.popleft()
            for key, order in done.batch.by_client.items():
                if self._inflight_orders.get(key) is order:
                    del self._inflight_orders[key]
            self._inflight_execs -= done.exec_ids

    def _prefetch(self, commands: Sequence[Command]) -> dict[str, Any]:
        """Look up in one query per kind what a batch needs from the store's history."""
        keys = {
            (c.request.account_id, c.request.client_order_id)
            for c in commands
            if isinstance(c, SubmitOrder)
            and (c.request.account_id, c.request.client_order_id) not in self._open_by_client
        }
        exec_ids = {r.exec_id for c in commands if isinstance(c, ApplyReports) for r in c.reports}
        known: dict[str, Any] = {"orders": {}, "execs": set()}
        with self.engine.connect() as conn:
            if keys:
                o = s.orders
                # Two IN lists walk the unique index on (account_id, client_order_id) in both
                # engines; a row-value IN made SQLite scan as the history grew. The cross
                # product is a superset, cut back to the exact pairs here.
                rows = conn.execute(
                    select(
                        o.c.order_id, o.c.account_id, o.c.client_order_id, o.c.fingerprint,
                        o.c.status, o.c.qty, o.c.filled_qty, o.c.filled_notional, o.c.reason,
                    ).where(
                        o.c.account_id.in_({a for a, _ in keys}),
                        o.c.client_order_id.in_({c for _, c in keys}),
                    )
                )  # fmt: skip
                known["orders"] = {
                    (r.account_id, r.client_order_id): r
                    for r in rows
                    if (r.account_id, r.client_order_id) in keys
                }
            if exec_ids:
                # Refused reports count as seen too: a repeat must not record them twice.
                e, x = s.executions, s.exec_exceptions
                rows = conn.execute(
                    select(e.c.exec_id)
                    .where(e.c.exec_id.in_(exec_ids))
                    .union(select(x.c.exec_id).where(x.c.exec_id.in_(exec_ids)))
                )
                known["execs"] = {r[0] for r in rows}
        return known

    def _dispatch(self, cmd: Command, known: dict[str, Any]) -> Result:
        match cmd:
            case SubmitOrder(request):
                return self._submit(request, known["orders"])
            case CancelOrder():
                return self._cancel(cmd)
            case AmendOrder():
                return self._amend(cmd)
            case ApplyReports(reports):
                fresh = [r for r in reports if r.exec_id not in known["execs"]]
                n = self._apply_reports(fresh, actor="venue", record=True)
                return Done("reports", f"{n} applied, {len(reports) - n} ignored")
            case QuoteUpdate(quote):
                if isinstance(self.quotes, InMemoryQuoteBook):
                    self.quotes.update(quote)
                on_quote = getattr(self.venue, "on_quote", None)
                if on_quote is not None:
                    self._apply_reports(on_quote(quote), actor="venue")
                return Done(f"quote:{quote.symbol}")
            case ExpireDue(now_ns):
                on_time = getattr(self.venue, "on_time", None)
                n = self._apply_reports(on_time(now_ns), actor="venue") if on_time else 0
                return Done("expiry", f"{n} expired")
            case Deposit():
                return self._deposit(cmd)
            case RequestWithdrawal():
                return self._request_withdrawal(cmd)
            case DecideWithdrawal():
                return self._decide_withdrawal(cmd)
            case OpenAccount():
                return self._open_account(cmd)
            case SetAccountState(account_id, state):
                acct = self._account(account_id)
                acct.state = state
                self._batch.account_states[account_id] = state.value
                self._audit("account.state", f"account:{account_id}", {"state": state.value})
                return Done(f"account:{account_id}", state.value)
            case HaltSymbol(symbol, halted):
                inst = self.catalogue.get(symbol)
                (self._halted.add if halted else self._halted.discard)(inst.symbol)
                self._batch.halts[inst.symbol] = halted
                self._batch.halt_ns, self._batch.halt_actor = self.clock(), self.actor
                self._audit("symbol.halt", inst.symbol, {"halted": halted})
                return Done(f"symbol:{inst.symbol}", "halted" if halted else "resumed")
        raise InvalidInput(f"unknown command {cmd!r}")

    # -- audit and outbox ------------------------------------------------------------------------

    def _audit(self, action: str, subject: str, payload: dict[str, Any], actor: str = "") -> None:
        seq = self._audit_seq + 1
        ts = self.clock()
        text = _AUDIT_JSON(payload)
        actor = actor or self.actor
        digest = record_hash(seq, ts, actor, action, subject, text, self._audit_hash)
        self._batch.add(
            "audit_log",
            {"seq": seq, "ts_ns": ts, "actor": actor, "action": action, "subject": subject,
             "payload": text, "prev_hash": self._audit_hash, "hash": digest},
        )  # fmt: skip
        self._audit_seq, self._audit_hash = seq, digest
        self._batch.audit_head = (seq, digest)
        self._ids["audit"] = seq

    def _emit(
        self, acct: _Account, type_: str, ts_ns: int, payload: dict[str, Any],
        order_id: int | None = None,
    ) -> None:  # fmt: skip
        acct.seq += 1
        event_id = self._next("event")
        body = {"event_id": event_id, "type": type_, "account_id": acct.account_id,
                "account_seq": acct.seq, "ts_ns": ts_ns, **payload}  # fmt: skip
        self._batch.add(
            "outbox",
            {"event_id": event_id, "account_id": acct.account_id, "account_seq": acct.seq,
             "type": type_, "order_id": order_id, "ts_ns": ts_ns,
             "payload": _EVENT_JSON(body), "published_ns": None},
        )  # fmt: skip

    def _order_event(self, order: Order, event: OrderEvent) -> None:
        acct = self._accounts[order.account_id]
        payload: dict[str, Any] = {
            "order_id": order.order_id, "client_order_id": order.client_order_id,
            "symbol": order.symbol, "side": order.side.value, "order_type": order.type.value,
            "status": order.status.value, "qty": order.qty, "filled_qty": order.filled_qty,
        }  # fmt: skip
        if order.price is not None:
            payload["price"] = order.price
        if order.trigger_price is not None:
            payload["trigger_price"] = order.trigger_price
        if event.data:
            payload.update(event.data)
        self._emit(acct, _EVENT_TYPE[event.status], event.ts_ns, payload, order.order_id)

    def _move(self, order: Order, status: OrderStatus, ts_ns: int, **data: Any) -> None:
        event = order.apply(status, ts_ns, **data)
        if "reason" in data:
            order.reason = data["reason"]
        self._batch.order_changed(order)
        self._order_event(order, event)
        if order.is_terminal:
            self._open.pop(order.order_id, None)
            self._open_by_client.pop((order.account_id, order.client_order_id), None)
        # Memory stays bounded by open orders: a closed order's history lives in the outbox.
        if order.is_terminal or len(order.history) > 64:
            order.history.clear()

    # -- ledger --------------------------------------------------------------------------------

    def _ledger_id(self, code: str, commodity: str, account_id: int | None) -> int:
        lid = self._ledger_ids.get(code)
        if lid is None:
            lid = self._next("ledger_account")
            self._ledger_ids[code] = lid
            self._ledger_commodity[lid] = commodity
            self._batch.add(
                "ledger_accounts",
                {"ledger_account_id": lid, "code": code, "commodity": commodity,
                 "account_id": account_id, "opened_ns": self.clock()},
            )  # fmt: skip
            self._batch.new_balances.add(lid)
            self._batch.balances[lid] = (0, 0)
            self._balances[lid] = 0
        return lid

    def _post(self, e: L.Entry, ts_ns: int) -> int:
        txn_id = self._next("txn")
        self._batch.add(
            "ledger_txns",
            {"txn_id": txn_id, "account_id": e.account_id, "kind": e.kind, "ref": e.ref,
             "ts_ns": ts_ns, "memo": e.memo},
        )  # fmt: skip
        owner = e.account_id if e.account_id is not None else None
        rows = self._batch.rows["postings"]
        balances = self._batch.balances
        for p in e.postings:
            client = owner if p.account.startswith("client:") else None
            lid = self._ledger_id(p.account, p.commodity, client)
            rows.append(
                {"posting_id": self._next("posting"), "txn_id": txn_id,
                 "ledger_account_id": lid, "commodity": p.commodity, "amount": p.amount,
                 "ts_ns": ts_ns},
            )  # fmt: skip
            new = self._balances[lid] + p.amount
            self._balances[lid] = new
            balances[lid] = (new, txn_id)
        return txn_id

    # -- accounts and cash -----------------------------------------------------------------------

    def _account(self, account_id: int) -> _Account:
        acct = self._accounts.get(account_id)
        if acct is None:
            raise NotFound(f"account {account_id} does not exist", account_id=account_id)
        return acct

    def _open_account(self, cmd: OpenAccount) -> Done:
        if cmd.account_id <= 0:
            raise InvalidInput(f"account id must be positive, got {cmd.account_id}")
        if cmd.account_id in self._accounts:
            acct = self._accounts[cmd.account_id]
            if (acct.currency, acct.tier) != (cmd.currency, cmd.tier):
                raise ConflictError(f"account {cmd.account_id} exists with other terms")
            return Done(f"account:{cmd.account_id}", "exists")
        exponent(cmd.currency)
        if cmd.tier not in self.config.risk.tiers:
            raise InvalidInput(f"unknown tier {cmd.tier!r}", tier=cmd.tier)
        ts = self.clock()
        acct = _Account(cmd.account_id, cmd.currency, cmd.tier, AccountState.ACTIVE)
        self._accounts[cmd.account_id] = acct
        self._batch.add(
            "accounts",
            {"account_id": acct.account_id, "currency": acct.currency, "tier": acct.tier,
             "state": acct.state.value, "created_ns": ts},
        )  # fmt: skip
        acct.cash_id = self._ledger_id(
            L.client_cash(acct.account_id, acct.currency), acct.currency, acct.account_id
        )
        acct.margin_id = self._ledger_id(
            L.client_margin(acct.account_id, acct.currency), acct.currency, acct.account_id
        )
        self._audit("account.open", f"account:{acct.account_id}",
                    {"currency": acct.currency, "tier": acct.tier})  # fmt: skip
        self._emit(acct, "account.opened", ts, {"currency": acct.currency, "tier": acct.tier})
        return Done(f"account:{acct.account_id}", "opened")

    def _deposit(self, cmd: Deposit) -> Done:
        acct = self._account(cmd.account_id)
        exponent(cmd.currency)
        # Money is never a float: a float (or a bool) here would be stored as such.
        if type(cmd.amount) is not int or cmd.amount <= 0:
            raise InvalidInput(
                f"a deposit must be a positive integer of minor units, got {cmd.amount!r}"
            )
        ts = self.clock()
        txn = self._post(
            L.entry("deposit", acct.account_id, cmd.ref,
                    L.transfer(L.psp_clearing(cmd.currency),
                               L.client_cash(acct.account_id, cmd.currency),
                               cmd.currency, cmd.amount)),
            ts,
        )  # fmt: skip
        self._audit("cash.deposit", f"account:{acct.account_id}",
                    {"amount": cmd.amount, "currency": cmd.currency, "ref": cmd.ref})  # fmt: skip
        self._emit(acct, "cash.deposited", ts,
                   {"amount": cmd.amount, "currency": cmd.currency, "txn_id": txn})  # fmt: skip
        return Done(f"txn:{txn}", "deposited")

    def _request_withdrawal(self, cmd: RequestWithdrawal) -> Done:
        acct = self._account(cmd.account_id)
        exponent(cmd.currency)
        # Money is never a float: a float (or a bool) here would be stored as such.
        if type(cmd.amount) is not int or cmd.amount <= 0:
            raise InvalidInput(
                f"a withdrawal must be a positive integer of minor units, got {cmd.amount!r}"
            )
        free = self.cash_available(acct.account_id, cmd.currency)
        if cmd.currency == acct.currency:
            # Open positions' losses are not withdrawable.
            free = min(free, free + self._unrealized_minor(acct))
        if cmd.amount > free:
            raise InsufficientFunds(
                f"withdrawal of {cmd.amount} exceeds the {max(free, 0)} free "
                f"({cmd.currency} minor units)",
                requested=cmd.amount,
                free=free,
            )
        ts = self.clock()
        wid = self._next("withdrawal")
        self._post(
            L.entry("withdrawal_hold", acct.account_id, f"withdrawal:{wid}",
                    L.transfer(L.client_cash(acct.account_id, cmd.currency),
                               L.client_withdrawal_pending(acct.account_id, cmd.currency),
                               cmd.currency, cmd.amount)),
            ts,
        )  # fmt: skip
        self._withdrawals[wid] = _Withdrawal(wid, acct.account_id, cmd.currency, cmd.amount, ts)
        self._batch.withdrawals[wid] = {
            "withdrawal_id": wid, "account_id": acct.account_id, "currency": cmd.currency,
            "amount": cmd.amount, "status": "requested", "requested_ns": ts, "decided_ns": None,
        }  # fmt: skip
        self._batch.new_withdrawals.add(wid)
        self._audit("cash.withdrawal_request", f"withdrawal:{wid}",
                    {"account_id": acct.account_id, "amount": cmd.amount,
                     "currency": cmd.currency})  # fmt: skip
        self._emit(
            acct, "cash.withdrawal_requested", ts,
            {"withdrawal_id": wid, "amount": cmd.amount, "currency": cmd.currency},
        )  # fmt: skip
        return Done(f"withdrawal:{wid}", "requested")

    def _decide_withdrawal(self, cmd: DecideWithdrawal) -> Done:
        w = self._withdrawals.get(cmd.withdrawal_id)
        if w is None:
            raise NotFound(f"no pending withdrawal {cmd.withdrawal_id}")
        acct = self._accounts[w.account_id]
        ts = self.clock()
        pending = L.client_withdrawal_pending(w.account_id, w.currency)
        if cmd.approve:
            postings = L.transfer(pending, L.psp_clearing(w.currency), w.currency, w.amount)
            status = "approved"
        else:
            postings = L.transfer(
                pending, L.client_cash(w.account_id, w.currency), w.currency, w.amount
            )
            status = "rejected"
        self._post(
            L.entry(
                f"withdrawal_{status}", w.account_id, f"withdrawal:{w.withdrawal_id}", postings
            ),
            ts,
        )
        del self._withdrawals[w.withdrawal_id]
        row = {"withdrawal_id": w.withdrawal_id, "account_id": w.account_id,
               "currency": w.currency, "amount": w.amount, "status": status,
               "requested_ns": w.requested_ns, "decided_ns": ts}  # fmt: skip
        self._batch.withdrawals[w.withdrawal_id] = row
        self._audit(f"cash.withdrawal_{status}", f"withdrawal:{w.withdrawal_id}",
                    {"reason": cmd.reason})  # fmt: skip
        self._emit(acct, f"cash.withdrawal_{status}", ts,
                   {"withdrawal_id": w.withdrawal_id, "amount": w.amount,
                    "currency": w.currency, "reason": cmd.reason})  # fmt: skip
        return Done(f"withdrawal:{w.withdrawal_id}", status)

    # -- orders ----------------------------------------------------------------------------------

    def _ack(self, o: Order, duplicate: bool = False) -> OrderAck:
        return OrderAck(o.order_id, o.account_id, o.client_order_id, o.status, o.qty,
                        o.filled_qty, o.filled_notional, o.reason, duplicate)  # fmt: skip

    def _duplicate(self, request: OrderRequest, known: dict[Any, Any]) -> OrderAck | None:
        """The original order of a retried client order id: open, in this batch or one in
        flight, or in the store; a different request under the same id is a conflict."""
        key = (request.account_id, request.client_order_id)
        oid = self._open_by_client.get(key)
        order = (
            self._open[oid]
            if oid is not None
            else self._batch.by_client.get(key) or self._inflight_orders.get(key)
        )
        row: Any = known.get(key)
        original: Any = order if order is not None else row
        if original is None:
            return None
        if original.fingerprint != request.fingerprint():
            raise ConflictError(
                f"client order id {request.client_order_id!r} was used for another order",
                order_id=original.order_id,
            )
        if order is not None:
            return self._ack(order, duplicate=True)
        return OrderAck(row.order_id, row.account_id, row.client_order_id,
                        OrderStatus(row.status), row.qty, row.filled_qty,
                        row.filled_notional, row.reason, True)  # fmt: skip

    def _submit(self, request: OrderRequest, known: dict[Any, Any]) -> OrderAck:
        acct = self._account(request.account_id)
        dup = self._duplicate(request, known)
        if dup is not None:
            return dup
        inst = self.catalogue.get(request.symbol)
        ts = self.clock()
        order = Order.from_request(self._next("order"), request, ts)
        if order.tif is TimeInForce.DAY and order.expire_ns is None:
            # A day order lives until the end of the UTC trading day it was placed in.
            order.expire_ns = (ts // _NS_PER_DAY + 1) * _NS_PER_DAY
        self._batch.new_orders[order.order_id] = order
        self._batch.by_client[(order.account_id, order.client_order_id)] = order
        self._audit("order.submit", f"order:{order.order_id}",
                    {"account_id": order.account_id, "client_order_id": order.client_order_id,
                     "request": order.fingerprint})  # fmt: skip
        denial = self._risk(acct, inst, request, ts)
        if denial is not None:
            self._move(order, S.DENIED, ts, reason=denial.reason(), code=denial.code.value,
                       details=denial.details)  # fmt: skip
            return self._ack(order)
        self._open[order.order_id] = order
        self._open_by_client[(order.account_id, order.client_order_id)] = order.order_id
        self._move(order, S.SUBMITTED, ts)
        self._apply_reports(self.venue.submit(order), actor="")
        return self._ack(order)

    def _cancel(self, cmd: CancelOrder) -> OrderAck:
        order = self._open.get(cmd.order_id)
        if order is None or order.account_id != cmd.account_id:
            raise NotFound(f"order {cmd.order_id} is not open on account {cmd.account_id}")
        if order.status is S.PENDING_CANCEL:
            return self._ack(order, duplicate=True)
        ts = self.clock()
        self._audit("order.cancel", f"order:{order.order_id}", {"account_id": cmd.account_id})
        self._move(order, S.PENDING_CANCEL, ts)
        self._apply_reports(self.venue.cancel(order), actor="")
        return self._ack(order)

    def _amend(self, cmd: AmendOrder) -> OrderAck:
        order = self._open.get(cmd.order_id)
        if order is None or order.account_id != cmd.account_id:
            raise NotFound(f"order {cmd.order_id} is not open on account {cmd.account_id}")
        # New terms are on the instrument's grid, as a submit's are (raises InvalidInput).
        grid = self.catalogue.get(order.symbol)
        for value in (cmd.qty, cmd.price, cmd.trigger_price):
            if value is not None and type(value) is not int:
                raise InvalidInput(f"amended terms are integers of price or lot units: {value!r}")
        if cmd.qty is not None:
            grid.qty_to_int(grid.qty_from_int(cmd.qty))
        for px in (cmd.price, cmd.trigger_price):
            if px is not None:
                grid.price_to_int(grid.price_from_int(px))
        qty = order.qty if cmd.qty is None else cmd.qty
        price = order.price if cmd.price is None else cmd.price
        trigger = order.trigger_price if cmd.trigger_price is None else cmd.trigger_price
        if qty <= order.filled_qty:
            raise InvalidOrder(
                f"amended quantity {qty} must exceed the {order.filled_qty} already filled"
            )
        if cmd.price is not None and order.type not in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            raise InvalidOrder(f"a {order.type.value} order has no limit price to amend")
        if cmd.trigger_price is not None and order.type not in (
            OrderType.STOP,
            OrderType.STOP_LIMIT,
        ):
            raise InvalidOrder(f"a {order.type.value} order has no trigger price to amend")
        if order.status not in (S.ACCEPTED, S.TRIGGERED, S.PARTIALLY_FILLED):
            raise InvalidStateTransition(
                f"{order.status.value} -> {S.PENDING_REPLACE.value}",
                from_status=order.status.value, to_status=S.PENDING_REPLACE.value,
            )  # fmt: skip
        inst = self.catalogue.get(order.symbol)
        limits = self._limits(self._accounts[order.account_id])
        if inst.qty_from_int(qty) > limits.max_order_lots:
            raise InvalidOrder(
                f"amended quantity {inst.qty_from_int(qty)} lots exceeds the "
                f"{limits.max_order_lots} lots allowed per order"
            )
        ts = self.clock()
        self._audit("order.amend", f"order:{order.order_id}",
                    {"qty": qty, "price": price, "trigger_price": trigger})  # fmt: skip
        order.pending_qty, order.pending_price, order.pending_trigger_price = qty, price, trigger
        self._move(order, S.PENDING_REPLACE, ts, new_qty=qty, new_price=price,
                   new_trigger_price=trigger)  # fmt: skip
        self._apply_reports(self.venue.replace(order, qty, price, trigger), actor="")
        return self._ack(order)

    # -- execution reports -------------------------------------------------------------------

    def _apply_reports(
        self, reports: Iterable[ExecutionReport], actor: str, record: bool = False
    ) -> int:
        """Apply reports in order. ``record``: keep the exec id of every report, not only of
        fills, so that a venue repeating any message changes nothing (for outside venues;
        the B-book's own acknowledgements are unique by construction)."""
        applied = 0
        for report in reports:
            if report.exec_id in self._seen_exec or report.exec_id in self._inflight_execs:
                continue
            self._seen_exec.add(report.exec_id)
            order = self._open.get(report.order_id)
            if order is None:
                self._exception(report, "unknown_or_closed_order")
                continue
            try:
                if not self._apply_report(order, report):
                    continue  # refused: recorded as an exception, not audited as applied
            except InvalidStateTransition as exc:
                self._exception(report, "invalid_transition", str(exc))
                continue
            applied += 1
            if record and report.kind is not ExecKind.FILL:
                self._batch.add(
                    "executions",
                    {"exec_id": report.exec_id, "order_id": order.order_id,
                     "account_id": order.account_id, "kind": report.kind.value, "qty": 0,
                     "price": 0, "commission": 0, "venue": report.venue or self.venue.name,
                     "ts_ns": report.ts_ns},
                )  # fmt: skip
            if actor:
                self._audit(f"exec.{report.kind.value}", f"order:{order.order_id}",
                            {"exec_id": report.exec_id, "qty": report.last_qty,
                             "price": report.last_price}, actor=actor)  # fmt: skip
        return applied

    def _exception(self, report: ExecutionReport, reason: str, detail: str = "") -> None:
        self._batch.add(
            "exec_exceptions",
            {"exception_id": self._next("exception"), "exec_id": report.exec_id,
             "order_id": report.order_id, "reason": reason,
             "detail": detail or repr(report), "ts_ns": report.ts_ns},
        )  # fmt: skip

    def _resume(self, order: Order) -> OrderStatus:
        if order.filled_qty:
            return S.PARTIALLY_FILLED
        return order.resume_status or S.ACCEPTED

    def _apply_report(self, order: Order, r: ExecutionReport) -> bool:
        """Apply one report; False if it was refused (and recorded as an exception)."""
        ts = r.ts_ns
        match r.kind:
            case ExecKind.ACCEPTED:
                self._move(order, S.ACCEPTED, ts)
            case ExecKind.REJECTED:
                self._move(order, S.REJECTED, ts, reason=r.reason or "rejected by venue")
            case ExecKind.TRIGGERED:
                self._move(order, S.TRIGGERED, ts)
            case ExecKind.FILL:
                return self._fill(order, r)
            case ExecKind.CANCELED:
                self._move(order, S.CANCELED, ts, **({"reason": r.reason} if r.reason else {}))
            case ExecKind.EXPIRED:
                self._move(order, S.EXPIRED, ts)
            case ExecKind.CANCEL_REJECTED:
                if order.status is S.PENDING_CANCEL:
                    self._move(order, self._resume(order), ts, cancel_rejected=r.reason)
            case ExecKind.REPLACED:
                # Refuse an out-of-turn replace before touching the terms, or memory would
                # keep terms the store never gets.
                check_transition(order.status, self._resume(order))
                if r.qty is not None and r.qty <= order.filled_qty:
                    self._exception(r, "replace_below_filled",
                                    f"qty {r.qty}, {order.filled_qty} already filled")  # fmt: skip
                    return False
                order.qty = r.qty if r.qty is not None else order.qty
                order.price = r.price
                order.trigger_price = r.trigger_price
                order.pending_qty = order.pending_price = order.pending_trigger_price = None
                self._move(order, self._resume(order), ts, replaced=True)
            case ExecKind.REPLACE_REJECTED:
                order.pending_qty = order.pending_price = order.pending_trigger_price = None
                self._batch.order_changed(order)
                if order.status is S.PENDING_REPLACE:
                    self._move(order, self._resume(order), ts, replace_rejected=r.reason)
        return True

    # -- fills, positions and money ------------------------------------------------------------

    def _unit_factor(self, inst: Instrument) -> Decimal:
        """Quote-currency value of one (qty int x price int)."""
        f = self._factor.get(inst.symbol)
        if f is None:
            f = inst.contract_size / (inst.qty_scale * inst.price_scale)
            self._factor[inst.symbol] = f
        return f

    def _rate(self, inst: Instrument, currency: str) -> Decimal | None:
        return self.fx.rate(inst.quote, currency)

    def _leverage(self, acct: _Account, inst: Instrument) -> int:
        if inst.account_type is AccountType.CASH:
            return 1
        cap = self.config.risk.max_leverage_by_tier.get(acct.tier, 1)
        return max(1, min(inst.max_leverage, cap))

    def _limits(self, acct: _Account) -> TierLimits:
        return self.config.risk.tiers[acct.tier]

    def _commission(self, acct: _Account, inst: Instrument, qty: int, notional: Decimal) -> int:
        """Commission in the account currency's minor units; ``notional`` already converted."""
        fees = self.config.fees
        per_lot = fees.commission_per_lot.get(inst.symbol_group)
        if per_lot is not None:
            amount = per_lot * qty / inst.qty_scale
        else:
            amount = notional * fees.commission_bps.get(inst.symbol_group, Decimal(0)) / 10_000
        return int(amount.scaleb(exponent(acct.currency)).quantize(Decimal(1), ROUND_HALF_EVEN))

    def _to_minor(self, amount: Decimal, currency: str, rounding: str = ROUND_HALF_EVEN) -> int:
        return int(amount.scaleb(exponent(currency)).quantize(Decimal(1), rounding))

    def _fill(self, order: Order, r: ExecutionReport) -> bool:
        """Book a fill; False if it was refused (and recorded as an exception)."""
        if r.last_qty <= 0 or r.last_price <= 0:
            self._exception(r, "invalid_fill", f"qty {r.last_qty} price {r.last_price}")
            return False
        if r.last_qty > order.leaves_qty:
            self._exception(
                r, "overfill", f"fill of {r.last_qty} exceeds the {order.leaves_qty} left"
            )
            return False
        acct = self._accounts[order.account_id]
        inst = self.catalogue.get(order.symbol)
        ccy = acct.currency
        rate = self._rate(inst, ccy)
        if rate is None:
            self._exception(r, "no_conversion_rate", f"{inst.quote} -> {ccy}")
            return False
        qty, price, ts = r.last_qty, r.last_price, r.ts_ns
        factor = self._unit_factor(inst)
        notional_acct = Decimal(qty * price) * factor * rate
        commission = self._commission(acct, inst, qty, notional_acct)
        pos = acct.positions.get(order.symbol)
        if pos is None:
            pos = acct.positions[order.symbol] = Position(acct.account_id, order.symbol)
        signed = qty * order.side.sign
        closes, left = pos.close_fifo(signed, price, ts)
        venue = r.venue or self.venue.name
        cash = L.client_cash(acct.account_id, ccy)
        margin = L.client_margin(acct.account_id, ccy)
        client_pos = L.client_position(acct.account_id, order.symbol)
        house_pos = L.venue_position(venue, order.symbol)
        commodity = L.commodity_of(order.symbol)
        fee_postings: tuple[L.Posting, ...] = L.transfer(
            cash, L.revenue_commission(ccy), ccy, commission
        )
        if r.markup:
            # The spread the client paid over the raw quote is revenue, not trading result.
            markup = self._to_minor(Decimal(qty * r.markup) * factor * rate, ccy)
            fee_postings += L.transfer(L.venue_pnl(venue, ccy), L.revenue_markup(ccy), ccy, markup)
        realized_total = 0
        if closes:
            closed = signed - left
            released = sum(c.margin_released for c in closes)
            closure_rows = []
            for c in closes:
                exact = Decimal(c.qty * (c.close_price - c.lot.price)) * factor
                booked = self._to_minor(exact * rate, ccy)
                realized_total += booked
                closure_rows.append(
                    {"closure_id": self._next("closure"), "lot_id": c.lot.lot_id,
                     "account_id": acct.account_id, "symbol": order.symbol,
                     "close_exec_id": r.exec_id, "qty": c.qty, "open_price": c.lot.price,
                     "close_price": c.close_price, "opened_ns": c.lot.opened_ns,
                     "closed_ns": ts, "realized_quote": str(exact.normalize()),
                     "quote_currency": inst.quote, "realized": booked}
                )  # fmt: skip
                self._batch.lot_changed(c.lot)
            # Client gains are owed by the house: booked against the venue's P&L account.
            entry = L.entry(
                "fill_close", acct.account_id, r.exec_id,
                (*L.transfer(client_pos, house_pos, commodity, closed),
                 *L.transfer(margin, cash, ccy, released),
                 *L.transfer(L.venue_pnl(venue, ccy), cash, ccy, realized_total),
                 *fee_postings),
                memo=f"{order.side.value} {qty} {order.symbol} @ {price}",
            )  # fmt: skip
            txn_id = self._post(entry, ts)
            for row in closure_rows:
                row["txn_id"] = txn_id
                self._batch.add("lot_closures", row)
            fee_postings = ()
        if left:
            margin_held = self._to_minor(
                Decimal(abs(left) * price) * factor * rate / self._leverage(acct, inst), ccy,
                ROUND_CEILING,
            )  # fmt: skip
            lot = Lot(self._next("lot"), acct.account_id, order.symbol, left, left, price,
                      margin_held, r.exec_id, ts)  # fmt: skip
            pos.add_lot(lot)
            self._batch.new_lots[lot.lot_id] = lot
            self._post(
                L.entry(
                    "fill_open", acct.account_id, r.exec_id,
                    (*L.transfer(client_pos, house_pos, commodity, left),
                     *L.transfer(cash, margin, ccy, margin_held),
                     *fee_postings),
                    memo=f"{order.side.value} {qty} {order.symbol} @ {price}",
                ),
                ts,
            )  # fmt: skip
        if not pos.lots:
            del acct.positions[order.symbol]
        self._batch.add(
            "executions",
            {"exec_id": r.exec_id, "order_id": order.order_id, "account_id": acct.account_id,
             "kind": r.kind.value, "qty": qty, "price": price, "commission": commission,
             "venue": venue, "ts_ns": ts},
        )  # fmt: skip
        order.add_fill(qty, price)
        status = S.FILLED if order.leaves_qty == 0 else S.PARTIALLY_FILLED
        self._move(order, status, ts, exec_id=r.exec_id, last_qty=qty, last_price=price,
                   commission=commission, realized=realized_total, currency=ccy,
                   position=pos.net)  # fmt: skip
        return True

    # -- pre-trade risk ----------------------------------------------------------------------

    def _unrealized_minor(self, acct: _Account) -> int:
        total = Decimal(0)
        for pos in acct.positions.values():
            if not pos.net:
                continue
            quote = self.quotes.get(pos.symbol)
            inst = self.catalogue.get(pos.symbol)
            rate = self._rate(inst, acct.currency)
            if quote is None or rate is None:
                continue
            # Longs are marked at the bid, shorts at the ask.
            mark = quote.bid if pos.net > 0 else quote.ask
            total += Decimal(pos.net * mark - pos.cost) * self._unit_factor(inst) * rate
        return self._to_minor(total, acct.currency, ROUND_HALF_EVEN)

    def _risk(self, acct: _Account, inst: Instrument, req: OrderRequest, ts: int) -> Denial | None:
        limits = self._limits(acct)
        pos = acct.positions.get(inst.symbol)
        net = pos.net if pos else 0
        signed = req.qty * req.side.sign
        reduces = net != 0 and (net > 0) != (signed > 0) and abs(signed) <= abs(net)
        denial = check_account_state(acct.state, reduces)
        if denial:
            return denial
        if not self._limiter.allow(acct.account_id, ts, limits.max_orders_per_second):
            return Denial(
                DenialCode.RATE_LIMITED,
                f"more than {limits.max_orders_per_second} orders in one second",
                {"max_orders_per_second": str(limits.max_orders_per_second)},
            )
        if inst.symbol in self.config.risk.restricted_symbols:
            return Denial(DenialCode.SYMBOL_RESTRICTED, f"{inst.symbol} is restricted")
        if inst.symbol in self._halted:
            return Denial(DenialCode.SYMBOL_HALTED, f"{inst.symbol} is halted")
        if not self.catalogue.session_for(inst.symbol).is_open_ns(ts):
            return Denial(DenialCode.SESSION_CLOSED, f"the {inst.session} session is closed")
        quote = self.quotes.get(inst.symbol)
        price: int | None
        if req.type is OrderType.MARKET:
            if quote is None:
                return Denial(DenialCode.NO_QUOTE, f"no quote for {inst.symbol}")
            price = quote.ask if signed > 0 else quote.bid
        elif req.type is OrderType.STOP:
            price = req.trigger_price
        else:
            price = req.price
        assert price is not None
        rate = self._rate(inst, acct.currency)
        if rate is None:
            return Denial(
                DenialCode.NO_CONVERSION_RATE, f"no quote converts {inst.quote} to {acct.currency}"
            )
        factor = self._unit_factor(inst)
        notional = Decimal(req.qty * price) * factor * rate
        denial = check_order_size(
            inst, inst.qty_from_int(req.qty), notional, acct.currency, limits
        ) or check_position(inst, inst.qty_from_int(net), inst.qty_from_int(signed), limits)
        if denial:
            return denial
        # Only the part that opens exposure needs margin; a reduction frees it.
        opening = abs(signed) - abs(net) if (net > 0) != (signed > 0) and net else abs(signed)
        if opening <= 0 and req.type is not OrderType.MARKET:
            return None
        required = (
            Decimal(max(opening, 0) * price) * factor * rate / self._leverage(acct, inst)
        ) + Decimal(self._commission(acct, inst, req.qty, notional)).scaleb(
            -exponent(acct.currency)
        )
        free_minor = self.cash_available(acct.account_id) + self._unrealized_minor(acct)
        free = Decimal(free_minor).scaleb(-exponent(acct.currency))
        return check_margin(required, free, acct.currency)
