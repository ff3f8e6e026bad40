"""The order management system: the single writer of the transactional store.

``OMS.execute(commands)`` runs a group of commands against the in-memory state and writes
everything they produced (orders, fills, ledger postings, lots, outbox events, audit
records) in one database transaction: group commit. A result is returned only after that
commit, so nothing is acknowledged before it is durable. If the commit fails, the state is
reloaded from the store and the group is split in halves, each run and committed again, down
to the command(s) the store cannot hold: only those answer ``StoreError``, so no client's
command can fail another's.

Memory holds what the hot path needs and is bounded by what is open: accounts and their
balances, working orders, open lots, pending withdrawals. A client order id of a closed
order is looked up in the store, once per batch for all the batch's submits.

What each command does lives beside this module, grouped by what it touches
(``orders``, ``cash``, ``accounts``, ``house``); the dispatcher tells the journal each
command's actor and reason, which every audit record it writes carries. A fill's booking
is in ``trading.fills``; the pre-trade check and the margin arithmetic in ``trading.risk``;
the audit chain and the outbox in ``journal``; the rows in ``trading.store.repository``,
written by ``trading.store.writer``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select

from trading import ledger as L
from trading.catalogue import Catalogue
from trading.commands import ApplyReports, Command, Deposit, Done, OrderAck, Result, SubmitOrder
from trading.config import OMSConfig, TierLimits
from trading.errors import BourseError, InvalidInput, NotFound, StoreError
from trading.fx import FxRates
from trading.instrument import Instrument
from trading.oms import accounts, cash, house, orders, rollover
from trading.oms.handlers import Handler, Known, _Account
from trading.oms.journal import Journal
from trading.oms.reports import apply_reports
from trading.orders import TERMINAL, Order, OrderStatus
from trading.positions import Position
from trading.quotes import QuoteBook
from trading.risk import RateLimiter, leverage, unrealized
from trading.store import schema as s
from trading.store.checkpoint import Checkpointer
from trading.store.engine import writer
from trading.store.repository import (
    Batch,
    Snapshot,
    flush,
    ledger_account_row,
    load_snapshot,
    posting_row,
    txn_row,
)
from trading.venues.base import ExecutionReport, Venue

S = OrderStatus

# Adding a command is adding a handler module and naming it here.
HANDLERS: dict[type, Handler] = {
    **orders.HANDLERS, **cash.HANDLERS, **accounts.HANDLERS, **house.HANDLERS,
    **rollover.HANDLERS,
}  # fmt: skip


# Command class -> whether it has an ``actor``, a ``reason`` (commands are dataclasses: every
# instance of a class has the same fields).
_WHO: dict[type, tuple[bool, bool]] = {}


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch run against memory, waiting to be committed."""

    batch: Batch
    results: list[Result]
    exec_ids: frozenset[str]
    # Reports the venue delivered on its own that this batch applied: if it is not stored,
    # they go back in the queue (``requeue``), not lost.
    late: tuple[ExecutionReport, ...] = ()


_ORDER_KEYS_PG = (
    "SELECT order_id, account_id, client_order_id, fingerprint, status, qty, filled_qty,"
    " filled_notional, reason FROM orders"
    " WHERE account_id = ANY(%s) AND client_order_id = ANY(%s)"
)


def _prefetch_orders_pg(conn: Any, keys: set[tuple[int, str]]) -> dict[tuple[int, str], Any]:
    """The stored orders of these (account, client order id) keys, on the driver's cursor.

    With one order per commit the SQLAlchemy select (built, cache-keyed and compiled with
    its expanding IN lists at every call) cost more CPU than the query; two arrays walk the
    same unique index. The cross product is a superset, cut back to the exact pairs here.
    """
    from psycopg.rows import namedtuple_row

    cur = conn.connection.cursor(row_factory=namedtuple_row)
    cur.execute(_ORDER_KEYS_PG, (sorted({a for a, _ in keys}), sorted({c for _, c in keys})))
    return {
        (r.account_id, r.client_order_id): r
        for r in cur.fetchall()
        if (r.account_id, r.client_order_id) in keys
    }


# before_commit(prepared, lo, hi): rows for commands[lo:hi] added to a part before it commits.
Hook = Callable[["Prepared", int, int], None]


class OMS:
    def __init__(
        self,
        engine: Engine,
        catalogue: Catalogue,
        quotes: QuoteBook,
        venue: Venue,
        config: OMSConfig | None = None,
        clock: Callable[[], int] = time.time_ns,
        actor: str = "oms",
    ) -> None:
        self.engine = engine
        self._writer = writer(engine)
        # Started by ``start_checkpoints`` (OMSService does): SQLite's WAL checkpoints then
        # run on a thread of their own, not inside this OMS's commits.
        self.checkpointer: Checkpointer | None = None
        self.catalogue = catalogue
        self.quotes = quotes
        self.venue = venue
        self.config = config or OMSConfig()
        self.clock = clock
        self.actor = actor
        self.fx = FxRates(catalogue, quotes)
        # Reports a venue delivers from its own thread: deque appends and poplefts are
        # atomic, so a report appended while the writer drains is taken next time, not lost.
        self._late: deque[ExecutionReport] = deque()
        venue.bind(self._late.extend)
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
        self._clients, self._accounts = accounts.load(snap, self._ledger_ids, self.config.risk)
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
        self._withdrawals, self._destinations, self._destination_keys = cash.load(snap)
        self._inflight_deposits: dict[tuple[str, str], dict[str, Any]] = {}
        self.journal = Journal(
            self.actor, self.clock, snap.audit_head, snap.max_ids["event"], snap.account_seqs
        )
        self._batch = Batch()
        self._seen_exec: set[str] = set()
        self._drained: list[ExecutionReport] = []
        self._inflight_orders: dict[tuple[int, str], Order] = {}
        self._inflight_execs: set[str] = set()
        self._committed: deque[Prepared] = deque()
        self._halted: set[str] = set(snap.halted_symbols)
        self._limiter = RateLimiter()
        # Each symbol's last cut-off done (trading.oms.rollover), read at the first Rollover.
        self._last_cutoff: dict[str, int] | None = None
        self.venue.reset()
        # A submitted order too: at an outside venue it waits for the venue's answer, which
        # the venue must still recognise (the router its venue and markup).
        for o in snap.open_orders:
            if o.status is not S.INITIALIZED:
                self.venue.restore(o)

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

    def execute(
        self, commands: Sequence[Command], before_commit: Hook | None = None
    ) -> list[Result]:
        """Run commands in order and commit all they produced in one transaction.

        If that fails, only the command(s) the store cannot hold answer ``StoreError``: the
        state is reloaded and each half of the group runs again, in order, in its own
        transaction, down to single commands. ``before_commit(prepared, lo, hi)`` may add
        rows for ``commands[lo:hi]`` to each part before it commits (the command log).
        """
        return self._execute(commands, 0, before_commit)

    def _execute(self, commands: Sequence[Command], lo: int, hook: Hook | None) -> list[Result]:
        try:
            prepared = self.prepare(commands)
            if hook is not None:
                hook(prepared, lo, lo + len(commands))
            self.commit(prepared)
        except Exception as exc:
            # The memory may hold half a batch: the store is the truth.
            late = self._drained
            self.recover()
            if late:
                # Reports the venue sent meanwhile go first, alone: one the store refuses
                # then fails no command, and the commands run again without it.
                self.requeue(late)
                self._store_late()
                return self._execute(commands, lo, hook)
            if len(commands) == 1:
                return [StoreError(f"command not stored: {exc!r}")]
            mid = len(commands) // 2
            return self._execute(commands[:mid], lo, hook) + self._execute(
                commands[mid:], lo + mid, hook
            )
        self.retire_committed()
        return prepared.results

    def requeue(self, reports: Sequence[ExecutionReport]) -> None:
        """Put back, first in line, venue reports a batch applied but did not store."""
        self._late.extendleft(reversed(reports))

    def _store_late(self) -> None:
        try:
            self.commit(self.prepare(()))
            self.retire_committed()
        except Exception:
            # Unstorable reports are dropped; the venue's own record still has them.
            self.recover()

    def prepare(self, commands: Sequence[Command]) -> Prepared:
        """Run commands against memory and gather what they wrote; nothing is stored yet.

        ``commit`` stores it. A writer may prepare the next batch while the previous one
        commits (``trading.oms.service``): batches not yet committed are "in flight", and a
        retry of their client order ids or exec ids is found in memory, not in the store.
        If a commit fails, everything prepared after it is void: the caller must wait for
        the commits in flight, ``recover()``, and run those commands again.
        """
        self.retire_committed()
        # What the venue is asked from here on waits for this batch's commit to leave.
        self.venue.begin_batch()
        batch = self._batch = Batch()
        self.journal.begin(batch)
        self._seen_exec = set()
        self._drained = []
        results: list[Result] = []
        known = self._prefetch(commands)
        handlers = HANDLERS
        late = self._late
        journal = self.journal
        while late:  # reports that came in while the writer was idle
            apply_reports(self, self._take_late(), actor="venue")
        for cmd in commands:
            cls = type(cmd)
            handler = handlers.get(cls)
            # Who asked and why, for every audit record the command writes. Whether a command
            # class has the fields is found once: a getattr that misses raises inside.
            who = _WHO.get(cls)
            if who is None:
                who = _WHO[cls] = (hasattr(cmd, "actor"), hasattr(cmd, "reason"))
            journal.command(
                cmd.actor if who[0] else "",
                cmd.reason if who[1] else "",  # type: ignore[union-attr]
            )
            try:
                if handler is None:
                    raise InvalidInput(f"unknown command {cmd!r}")
                results.append(handler(self, cmd, known))
            except BourseError as exc:
                results.append(exc)
            journal.command()
            # Reports a venue delivered while we worked (resting orders it filled).
            while late:
                apply_reports(self, self._take_late(), actor="venue")
        self.journal.end()
        batch.freeze()
        self._inflight_orders.update(batch.by_client)
        self._inflight_deposits.update(batch.by_provider_ref)
        self._inflight_execs |= self._seen_exec
        return Prepared(batch, results, frozenset(self._seen_exec), tuple(self._drained))

    def start_checkpoints(self, **options: Any) -> Checkpointer | None:
        """Checkpoint SQLite's WAL on a thread of its own from now on (nothing on another
        store); ``stop_checkpoints`` ends it. Call it before commits run concurrently.
        ``options``: the ``Checkpointer``'s thresholds."""
        if self.checkpointer is None:
            cp = Checkpointer.for_engine(self.engine, **options)
            if cp is not None:
                cp.start()
                self._writer = writer(self.engine, checkpointed=True)
                self.checkpointer = cp
        return self.checkpointer

    def stop_checkpoints(self) -> None:
        cp, self.checkpointer = self.checkpointer, None
        if cp is not None:
            self._writer = writer(self.engine)
            cp.stop()

    def commit(self, prepared: Prepared) -> None:
        """Write a prepared batch in one transaction. Safe to call from another thread."""
        with self._writer.begin() as conn:
            flush(conn, prepared.batch)
        cp = self.checkpointer
        if cp is not None:
            cp.committed()
        self._committed.append(prepared)
        # Only now: the venue's drop copy must hold what the store holds, not a batch undone.
        self.venue.committed(prepared.exec_ids)

    def retire_committed(self) -> None:
        """Forget the in-flight entries of batches now in the store (the writer's thread)."""
        while self._committed:
            done = self._committed.popleft()
            for key, order in done.batch.by_client.items():
                if self._inflight_orders.get(key) is order:
                    del self._inflight_orders[key]
            self._inflight_execs -= done.exec_ids
            for ref, row in done.batch.by_provider_ref.items():
                if self._inflight_deposits.get(ref) is row:
                    del self._inflight_deposits[ref]

    def _prefetch(self, commands: Sequence[Command]) -> Known:
        """Look up in one query per kind what a batch needs from the store's history."""
        keys = {
            (c.request.account_id, c.request.client_order_id)
            for c in commands
            if isinstance(c, SubmitOrder)
            and (c.request.account_id, c.request.client_order_id) not in self._open_by_client
        }
        exec_ids = {r.exec_id for c in commands if isinstance(c, ApplyReports) for r in c.reports}
        refs = {
            (c.provider, c.provider_ref)
            for c in commands
            if isinstance(c, Deposit) and c.provider is not None and c.provider_ref is not None
        }
        known = Known()
        if not keys and not exec_ids and not refs:
            return known
        engine = self.engine
        pg = engine.dialect.name == "postgresql"
        if pg:
            # Reads of committed history need no transaction: no BEGIN and no ROLLBACK, two
            # round trips fewer per batch (one commit per order pays them per order).
            engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            if refs:
                known.deposits = cash.prefetch_deposits(conn, refs)
            if keys and pg:
                known.orders = _prefetch_orders_pg(conn, keys)
            elif keys:
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
                known.orders = {
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
                known.execs = {r[0] for r in rows}
        return known

    # -- shared by the handlers ----------------------------------------------------------------

    def _account(self, account_id: int) -> _Account:
        acct = self._accounts.get(account_id)
        if acct is None:
            raise NotFound(f"account {account_id} does not exist", account_id=account_id)
        return acct

    def _limits(self, acct: _Account) -> TierLimits:
        """The account's limits: its own overrides (SetLimits) over its tier's."""
        return acct.limits or self.config.risk.tiers[acct.tier]

    def _leverage(self, acct: _Account, inst: Instrument) -> int:
        cap = self.config.risk.max_leverage_by_tier.get(acct.tier, 1)
        return leverage(inst, cap, acct.account_type, acct.leverage)

    def _rate(self, inst: Instrument, currency: str) -> Decimal | None:
        return self.fx.rate(inst.quote, currency)

    def _unrealized(self, acct: _Account) -> int:
        return unrealized(
            acct.positions.values(), acct.currency, self.catalogue.get, self.quotes.get,
            self.fx.rate,
        )  # fmt: skip

    def _free_margin(self, acct: _Account) -> int:
        """Free cash plus unrealized PnL (minor units): what the margin check may spend."""
        lid = acct.cash_id or self._ledger_ids.get(L.client_cash(acct.account_id, acct.currency))
        return (-self._balances.get(lid, 0) if lid else 0) + self._unrealized(acct)

    def _move(self, order: Order, status: OrderStatus, ts_ns: int, **data: Any) -> None:
        self._move_data(order, status, ts_ns, data)

    def _move_data(
        self, order: Order, status: OrderStatus, ts_ns: int, data: dict[str, Any]
    ) -> None:
        """``_move`` with the move's data as a dict, which the event keeps (not copied)."""
        event = order.apply_data(status, ts_ns, data)
        if "reason" in data:
            order.reason = data["reason"]
        self._batch.order_changed(order)
        self.journal.order_event(order, event)
        history = order.history
        if status in TERMINAL:
            self._open.pop(order.order_id, None)
            self._open_by_client.pop((order.account_id, order.client_order_id), None)
            # Memory stays bounded by open orders: a closed order's history lives in the
            # outbox.
            history.clear()
        elif len(history) > 64:
            history.clear()

    def _ledger_id(self, code: str, commodity: str, account_id: int | None) -> int:
        lid = self._ledger_ids.get(code)
        if lid is None:
            lid = self._next("ledger_account")
            self._ledger_ids[code] = lid
            self._ledger_commodity[lid] = commodity
            row = ledger_account_row(lid, code, commodity, account_id, self.clock())
            self._batch.add("ledger_accounts", row)
            self._batch.new_balances.add(lid)
            self._batch.balances[lid] = (0, 0)
            self._balances[lid] = 0
        return lid

    def _post(self, e: L.Entry, ts_ns: int) -> int:
        ids = self._ids
        txn_id = ids["txn"] = ids["txn"] + 1
        owner = e.account_id
        batch = self._batch
        batch.add("ledger_txns", txn_row(txn_id, owner, e.kind, e.ref, ts_ns, e.memo))
        rows = batch.rows["postings"]
        balances = batch.balances
        cached = self._balances
        known = self._ledger_ids
        posting_id = ids["posting"]
        for code, commodity, amount in e.postings:
            lid = known.get(code)
            if lid is None:
                client = owner if code.startswith("client:") else None
                lid = self._ledger_id(code, commodity, client)
            posting_id += 1
            rows.append(posting_row(posting_id, txn_id, lid, commodity, amount, ts_ns))
            new = cached[lid] + amount
            cached[lid] = new
            balances[lid] = (new, txn_id)
        ids["posting"] = posting_id
        return txn_id

    def _take_late(self) -> list[ExecutionReport]:
        """Take every report queued now, oldest first (popleft: safe against a concurrent
        append, which a copy-then-clear is not)."""
        out: list[ExecutionReport] = []
        pop = self._late.popleft
        try:
            while True:
                out.append(pop())
        except IndexError:
            pass
        self._drained += out
        return out
