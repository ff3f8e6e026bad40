"""Property tests of the OMS: random sequences of commands keep every invariant, in the store.

A hypothesis state machine drives one OMS (B-book venue, fake clock) with submits of every
order type, quote moves that trigger resting orders, cancels, amends, external execution
reports (fresh, duplicated, overfilling, out of turn), deposits, withdrawals and their
decisions, account states, expiry and restarts. After every step the store is read back
with SQL and checked: `trading.store.verify` (postings balance, cached balances, fills, lots,
outbox sequences, audit chain) plus what only a test can know (every order's event history
is a legal path through the transition table; a duplicate changed nothing; an overfill was
recorded as an exception; the OMS's memory is what a restart would load).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, func, select, text

from tests.trading.builders import QUOTES, FakeClock, Rig, make_engine, make_oms, store_snapshot
from trading.commands import (
    AmendOrder,
    ApplyReports,
    CancelOrder,
    DecideWithdrawal,
    Deposit,
    Done,
    ExpireDue,
    HaltSymbol,
    HoldWithdrawal,
    OrderAck,
    QuoteUpdate,
    ReleaseWithdrawal,
    RequestWithdrawal,
    Rollover,
    SetAccountState,
    SetLimits,
    SubmitOrder,
)
from trading.errors import (
    AccountHalted,
    ConflictError,
    InsufficientFunds,
    InvalidOrder,
    InvalidStateTransition,
    NotFound,
)
from trading.oms.rollover import last_cutoffs
from trading.orders import TERMINAL, TRANSITIONS, OrderStatus
from trading.quotes import Quote
from trading.risk import AccountState
from trading.store import schema as s
from trading.store.domain_rows import limits_from_row
from trading.store.engine import open_engine
from trading.store.repository import load_snapshot, lot_row, order_row
from trading.store.verify import verify_audit, verify_ledger
from trading.venues.base import ExecKind, ExecutionReport

ACCOUNTS = (1, 2, 3)
SYMBOLS = tuple(QUOTES)
# Largest order per symbol, in lot steps: a few lots of FX and gold, half a bitcoin.
MAX_STEPS = {"EUR/USD": 300, "USD/JPY": 300, "XAU/USD": 200, "BTC/USD": 5000}
TERMINAL_VALUES = [st_.value for st_ in TERMINAL]
MS = 1_000_000
HOUR_MS = 3_600_000
# Time moves on by rollovers only while FX trades: T0 is Monday 08:00 UTC, this Friday 20:00.
FRIDAY_NS = 1_767_600_000_000_000_000 + (4 * 24 + 12) * HOUR_MS * MS


# -- stores: one fresh, empty, migrated store per example --------------------------------------


class SqliteStores:
    """Copies of one migrated template database (migrating costs more than copying)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        template = root / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        engine.dispose()  # the last connection closes the WAL into the main file
        self.template = template
        self.n = 0

    def fresh(self) -> Engine:
        self.n += 1
        path = self.root / f"ex{self.n}" / "bourse.db"
        path.parent.mkdir()
        shutil.copyfile(self.template, path)
        return open_engine(f"sqlite:///{path}")

    def release(self, engine: Engine) -> None:
        engine.dispose()
        assert engine.url.database is not None
        shutil.rmtree(Path(engine.url.database).parent, ignore_errors=True)


class PostgresStores:
    """One migrated database, emptied before each example."""

    def __init__(self, dsn: str) -> None:
        self.engine = make_engine(dsn)

    def fresh(self) -> Engine:
        names = ", ".join(s.metadata.tables)
        with self.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} CASCADE"))
        return self.engine

    def release(self, engine: Engine) -> None:
        pass


# -- reading the store -------------------------------------------------------------------------


def open_orders(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(s.orders)
                .where(s.orders.c.status.not_in(TERMINAL_VALUES))
                .order_by(s.orders.c.order_id)
            )
        )


def order_by_id(engine: Engine, order_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(s.orders).where(s.orders.c.order_id == order_id)).first()


def exec_ids(engine: Engine) -> list[str]:
    """Exec ids of the fills in the store."""
    with engine.connect() as conn:
        q = select(s.executions.c.exec_id).where(s.executions.c.kind == "fill").order_by("exec_id")
        return [r[0] for r in conn.execute(q)]


def seen_exec_ids(engine: Engine) -> set[str]:
    """Every exec id the OMS has kept: fills, outside acknowledgements, refused reports."""
    with engine.connect() as conn:
        kept = {r[0] for r in conn.execute(select(s.executions.c.exec_id))}
        return kept | {r[0] for r in conn.execute(select(s.exec_exceptions.c.exec_id))}


def exceptions_of(engine: Engine, exec_id: str) -> list[str]:
    with engine.connect() as conn:
        q = select(s.exec_exceptions.c.reason).where(s.exec_exceptions.c.exec_id == exec_id)
        return [r[0] for r in conn.execute(q)]


def audited_fills(engine: Engine) -> int:
    with engine.connect() as conn:
        q = select(func.count()).select_from(s.audit_log).where(s.audit_log.c.action == "exec.fill")
        return int(conn.execute(q).scalar_one())


def status_path_problems(engine: Engine) -> list[str]:
    """Each order's `order.*` events, in account sequence, walk the transition table from
    `initialized` and end at the order's stored status."""
    problems: list[str] = []
    with engine.connect() as conn:
        events: dict[int, list[str]] = defaultdict(list)
        q = (
            select(s.outbox.c.order_id, s.outbox.c.type)
            .where(s.outbox.c.order_id.is_not(None))
            .order_by(s.outbox.c.account_id, s.outbox.c.account_seq)
        )
        for order_id, type_ in conn.execute(q):
            assert type_.startswith("order."), type_
            events[order_id].append(type_.removeprefix("order."))
        stored = {r[0]: r[1] for r in conn.execute(select(s.orders.c.order_id, s.orders.c.status))}
    for order_id, status in stored.items():
        prev = OrderStatus.INITIALIZED
        for name in events.get(order_id, []):
            nxt = OrderStatus(name)
            if (prev, nxt) not in TRANSITIONS:
                problems.append(
                    f"order {order_id}: {prev.value} -> {nxt.value} in {events[order_id]}"
                )
            prev = nxt
        if prev.value != status:
            problems.append(f"order {order_id}: events end at {prev.value}, row says {status}")
    return problems


def memory_state(rig: Rig) -> dict[str, Any]:
    """What the OMS holds in memory, in the same shape as `stored_state`."""
    oms: Any = rig.oms
    lots = [
        lot_row(lot)
        for acct in oms._accounts.values()
        for pos in acct.positions.values()
        for lot in pos.lots
    ]
    return {
        "open_orders": {o.order_id: order_row(o) for o in oms._open.values()},
        "balances": {k: v for k, v in oms._balances.items()},
        "lots": sorted(lots, key=lambda r: r["lot_id"]),
        "nets": {
            (a.account_id, sym): p.net
            for a in oms._accounts.values()
            for sym, p in a.positions.items()
        },
        "seqs": {k: v for k, v in oms.journal.seqs.items() if v},
        "states": {a.account_id: a.state.value for a in oms._accounts.values()},
        "withdrawals": {
            w.withdrawal_id: (w.account_id, w.currency, w.amount, w.status.value, w.destination_id)
            for w in oms._withdrawals.values()
        },
        "limits": {a.account_id: (a.leverage, a.overrides) for a in oms._accounts.values()},
        "audit_head": (
            (oms.journal.audit_seq, oms.journal.audit_hash) if oms.journal.audit_seq else None
        ),
        "halted": set(oms._halted),
    }


def stored_state(engine: Engine) -> dict[str, Any]:
    """What a restart would load from the store."""
    with engine.connect() as conn:
        snap = load_snapshot(conn)
    overrides = {r.account_id: limits_from_row(r) for r in snap.account_limits}
    nets: dict[tuple[int, str], int] = defaultdict(int)
    for lot in snap.open_lots:
        nets[(lot.account_id, lot.symbol)] += lot.remaining
    return {
        "open_orders": {o.order_id: order_row(o) for o in snap.open_orders},
        "balances": dict(snap.balances),
        "lots": [lot_row(lot) for lot in snap.open_lots],
        "nets": dict(nets),
        "seqs": {k: v for k, v in snap.account_seqs.items() if v},
        "states": {r.account_id: r.state for r in snap.accounts},
        "withdrawals": {
            r.withdrawal_id: (r.account_id, r.currency, r.amount, r.status, r.destination_id)
            for r in snap.pending_withdrawals
        },
        "limits": {r.account_id: (r.leverage, overrides.get(r.account_id)) for r in snap.accounts},
        "audit_head": snap.audit_head,
        "halted": set(snap.halted_symbols),
    }


def assert_same_state(memory: dict[str, Any], stored: dict[str, Any]) -> None:
    """Name the first difference, down to the field, instead of two large dicts."""
    for part, mem in memory.items():
        sto = stored[part]
        if mem == sto:
            continue
        if isinstance(mem, dict) and isinstance(sto, dict):
            for key in sorted(set(mem) | set(sto), key=repr):
                a, b = mem.get(key), sto.get(key)
                if a != b:
                    if isinstance(a, dict) and isinstance(b, dict):
                        a = {k: v for k, v in a.items() if b.get(k) != v}
                        b = {k: v for k, v in b.items() if k in a}
                    raise AssertionError(f"{part}[{key!r}]: memory {a!r} != store {b!r}")
        raise AssertionError(f"{part}: memory {mem!r} != store {sto!r}")


# -- the machine -------------------------------------------------------------------------------


class OMSMachine(RuleBasedStateMachine):
    """Set `stores` (SqliteStores or PostgresStores) before running."""

    stores: SqliteStores | PostgresStores

    def __init__(self) -> None:
        super().__init__()
        self.engine = self.stores.fresh()
        self.rig = make_oms(self.engine, FakeClock())
        self.n = 0  # client order ids and exec ids
        self.exec_n = 0
        self.mid: dict[str, int] = {}
        self.spread: dict[str, int] = {}
        self.requests: dict[tuple[int, str], Any] = {}

    def teardown(self) -> None:
        self.stores.release(self.engine)

    # -- helpers ------------------------------------------------------------------------------

    def tick(self, ms: int = 1) -> int:
        return self.rig.clock.advance(ms * MS)

    def run(self, *cmds: Any) -> list[Any]:
        self.tick()
        return self.rig.oms.execute(list(cmds))

    def inst(self, symbol: str) -> Any:
        return self.rig.catalogue.get(symbol)

    def quote_cmd(self, symbol: str, sizes: int | None = None) -> QuoteUpdate:
        mid2, spread = self.mid[symbol], self.spread[symbol]
        bid = (mid2 - spread) // 2
        return QuoteUpdate(Quote(symbol, bid, bid + spread, self.rig.clock(), sizes, sizes))

    def price_near(self, symbol: str, halves: int) -> str:
        """A price `halves` half-spreads from the mid, on the tick grid."""
        inst = self.inst(symbol)
        px = (self.mid[symbol] + halves * self.spread[symbol]) // 2
        px -= px % inst.tick_int
        return str(inst.price_from_int(max(px, inst.tick_int)))

    def expect_unchanged(self, before: dict[str, Any], what: str) -> None:
        after = store_snapshot(self.engine)
        assert after == before, f"{what} changed the store"

    # -- setup ---------------------------------------------------------------------------------

    @initialize()
    def setup(self) -> None:
        for sym, (bid, ask) in QUOTES.items():
            inst = self.inst(sym)
            b, a = inst.price_to_int(Decimal(bid)), inst.price_to_int(Decimal(ask))
            self.mid[sym], self.spread[sym] = a + b, a - b
        self.rig.seed_quotes()
        self.rig.open_accounts(*ACCOUNTS, cash_minor=10_000_000)
        self.destinations = {a: self.rig.destination(a) for a in ACCOUNTS}

    # -- orders --------------------------------------------------------------------------------

    @rule(
        account=st.sampled_from(ACCOUNTS),
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(["buy", "sell"]),
        type_=st.sampled_from(["market", "limit", "stop", "stop_limit"]),
        data=st.data(),
    )
    def submit(self, account: int, symbol: str, side: str, type_: str, data: st.DataObject) -> None:
        kwargs = self.order_kwargs(symbol, type_, data)
        self.n += 1
        cid = f"c-{self.n}"
        request = self.rig.request(account, cid, symbol=symbol, side=side, type=type_, **kwargs)
        [result] = self.run(SubmitOrder(request))
        assert isinstance(result, OrderAck), result
        assert not result.duplicate
        self.requests[(account, cid)] = request

    def order_kwargs(self, symbol: str, type_: str, data: st.DataObject) -> dict[str, Any]:
        inst = self.inst(symbol)
        steps = data.draw(st.integers(1, MAX_STEPS[symbol]), label="qty steps")
        kwargs: dict[str, Any] = {"qty": str(inst.qty_from_int(steps * inst.lot_int))}
        if type_ in ("limit", "stop_limit"):
            kwargs["price"] = self.price_near(symbol, data.draw(st.integers(-6, 6), label="px"))
        if type_ in ("stop", "stop_limit"):
            kwargs["trigger_price"] = self.price_near(
                symbol, data.draw(st.integers(-6, 6), label="trigger")
            )
        tifs = ["gtc", "ioc", "fok"] if type_ == "market" else ["gtc", "day", "ioc", "fok", "gtd"]
        kwargs["tif"] = data.draw(st.sampled_from(tifs), label="tif")
        if kwargs["tif"] == "gtd":
            kwargs["expire_ns"] = self.rig.clock() + data.draw(st.integers(1, 3_000)) * MS
        return kwargs

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data(), same=st.booleans())
    def resubmit(self, data: st.DataObject, same: bool) -> None:
        """A client order id seen before: the same request is answered with the original
        order, another request is a conflict; neither changes anything."""
        key = data.draw(st.sampled_from(sorted(self.requests)), label="client order id")
        request = self.requests[key]
        if not same:
            inst = self.inst(request.symbol)
            request = type(request)(**{**_fields(request), "qty": request.qty + inst.lot_int})
        before = store_snapshot(self.engine)
        [result] = self.run(SubmitOrder(request))
        if same:
            assert isinstance(result, OrderAck) and result.duplicate, result
            stored = order_by_id(self.engine, result.order_id)
            assert (stored.account_id, stored.client_order_id) == key
        else:
            assert isinstance(result, ConflictError), result
            assert result.code == "conflict"
        self.expect_unchanged(before, "a resubmitted client order id")

    @rule(account=st.sampled_from(ACCOUNTS), symbol=st.sampled_from(SYMBOLS), data=st.data())
    def submit_batch(self, account: int, symbol: str, data: st.DataObject) -> None:
        """Several submits in one group commit, one of them repeating an id of the batch."""
        cmds = []
        for _ in range(data.draw(st.integers(2, 4), label="batch size")):
            self.n += 1
            kwargs = self.order_kwargs(symbol, "limit", data)
            side = data.draw(st.sampled_from(["buy", "sell"]))
            cmds.append(
                SubmitOrder(
                    self.rig.request(
                        account, f"c-{self.n}", symbol=symbol, side=side, type="limit", **kwargs
                    )
                )
            )
        cmds.append(cmds[0])
        results = self.run(*cmds)
        assert all(isinstance(r, OrderAck) for r in results), results
        assert results[-1].duplicate and results[-1].order_id == results[0].order_id
        assert len({r.order_id for r in results}) == len(cmds) - 1
        for c in cmds:
            self.requests[(account, c.request.client_order_id)] = c.request

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        halves=st.integers(-4, 4),
        sizes=st.sampled_from([None, None, 1, 5, 50]),
        wait_ms=st.integers(1, 500),
    )
    def move_quote(self, symbol: str, halves: int, sizes: int | None, wait_ms: int) -> None:
        """A new quote: resting orders it crosses trigger or fill, in steps when sizes are
        small."""
        self.tick(wait_ms)
        mid2 = self.mid[symbol] + halves * self.spread[symbol]
        self.mid[symbol] = max(mid2, 2 * self.spread[symbol] + 2 * self.inst(symbol).tick_int)
        size = None if sizes is None else sizes * self.inst(symbol).lot_int
        [result] = self.run(self.quote_cmd(symbol, size))
        assert not isinstance(result, Exception), result

    @rule(wait_ms=st.integers(1, 4_000))
    def expire(self, wait_ms: int) -> None:
        """Time passes (all quotes refreshed) and due good-till-date orders expire."""
        now = self.tick(wait_ms)
        results = self.run(*[self.quote_cmd(sym) for sym in SYMBOLS], ExpireDue(now))
        assert not any(isinstance(r, Exception) for r in results), results
        with self.engine.connect() as conn:
            overdue = conn.execute(
                select(s.orders.c.order_id).where(
                    s.orders.c.expire_ns <= now, s.orders.c.status.not_in(TERMINAL_VALUES)
                )
            ).all()
        # An order resting at the venue with an expiry in the past is gone after ExpireDue,
        # unless the venue no longer rests it (an external report moved it).
        resting = set(self.rig.venue._resting)
        assert not [o for (o,) in overdue if o in resting], overdue

    @precondition(lambda self: bool(open_orders(self.engine)))
    @rule(data=st.data(), wrong_account=st.booleans())
    def cancel(self, data: st.DataObject, wrong_account: bool) -> None:
        order = data.draw(st.sampled_from(open_orders(self.engine)), label="order")
        if wrong_account:
            before = store_snapshot(self.engine)
            other = next(a for a in ACCOUNTS if a != order.account_id)
            [result] = self.run(CancelOrder(other, order.order_id))
            assert isinstance(result, NotFound), result
            self.expect_unchanged(before, "a cancel from another account")
            return
        [result] = self.run(CancelOrder(order.account_id, order.order_id))
        assert isinstance(result, OrderAck), result
        after = order_by_id(self.engine, order.order_id)
        # The B-book answers at once: canceled, or refused back to a working state.
        assert after.status != OrderStatus.PENDING_CANCEL.value or order.status == after.status

    @precondition(lambda self: bool(open_orders(self.engine)))
    @rule(data=st.data())
    def amend(self, data: st.DataObject) -> None:
        order = data.draw(st.sampled_from(open_orders(self.engine)), label="order")
        inst = self.inst(order.symbol)
        qty = price = trigger = None
        if data.draw(st.booleans(), label="new qty"):
            qty = data.draw(st.integers(1, MAX_STEPS[order.symbol]), label="qty") * inst.lot_int
        if order.type in ("limit", "stop_limit") and data.draw(st.booleans(), label="new px"):
            price = inst.price_to_int(
                Decimal(self.price_near(order.symbol, data.draw(st.integers(-6, 6))))
            )
        if order.type in ("stop", "stop_limit") and data.draw(st.booleans(), label="new trig"):
            trigger = inst.price_to_int(
                Decimal(self.price_near(order.symbol, data.draw(st.integers(-6, 6))))
            )
        before = store_snapshot(self.engine)
        [result] = self.run(AmendOrder(order.account_id, order.order_id, qty, price, trigger))
        if isinstance(result, InvalidOrder | InvalidStateTransition):
            self.expect_unchanged(before, f"a refused amend ({result.code})")
            if isinstance(result, InvalidOrder) and qty is not None:
                oms = self.rig.oms
                allowed = oms._limits(oms._accounts[order.account_id]).max_order_lots
                assert qty <= order.filled_qty or inst.qty_from_int(qty) > allowed, result
            return
        assert isinstance(result, OrderAck), result

    @precondition(lambda self: bool(open_orders(self.engine)))
    @rule(data=st.data(), amend=st.booleans())
    def twice_in_one_batch(self, data: st.DataObject, amend: bool) -> None:
        """The same cancel (or amend) twice in one group commit, at one clock time."""
        order = data.draw(st.sampled_from(open_orders(self.engine)), label="order")
        if amend:
            qty = order.qty + self.inst(order.symbol).lot_int
            cmd: Any = AmendOrder(order.account_id, order.order_id, qty=qty)
        else:
            cmd = CancelOrder(order.account_id, order.order_id)
        results = self.run(cmd, cmd)
        first = results[0]
        if amend and isinstance(first, InvalidOrder) and "allowed per order" in str(first):
            # The account's own per-order limit (SetLimits) refuses the larger size, the
            # same way both times.
            assert isinstance(results[1], InvalidOrder) and str(results[1]) == str(first)
            return
        assert not any(isinstance(r, InvalidOrder) for r in results), results

    # -- execution reports from an outside venue ------------------------------------------------

    def next_exec_id(self) -> str:
        self.exec_n += 1
        return f"X-{self.exec_n}"

    @rule(data=st.data())
    def external_fills(self, data: st.DataObject) -> None:
        """Fills from an outside venue, applied idempotently by exec id: fresh ones for open
        (or closed) orders, some more than the order has left, some repeating an exec id
        already stored or sent earlier in the same message."""
        with self.engine.connect() as conn:
            orders = {r.order_id: r for r in conn.execute(select(s.orders))}
        stored_execs = exec_ids(self.engine)
        if not orders:
            return
        reports: list[ExecutionReport] = []
        for _ in range(data.draw(st.integers(1, 4), label="reports")):
            kind = data.draw(st.sampled_from(["fresh", "fresh", "dup_stored", "dup_batch"]))
            if kind == "dup_stored" and stored_execs:
                exec_id = data.draw(st.sampled_from(stored_execs), label="dup exec id")
            elif kind == "dup_batch" and reports:
                exec_id = data.draw(st.sampled_from([r.exec_id for r in reports]))
            else:
                exec_id = self.next_exec_id()
            order = orders[data.draw(st.sampled_from(sorted(orders)), label="order")]
            inst = self.inst(order.symbol)
            leaves_steps = max((order.qty - order.filled_qty) // inst.lot_int, 1)
            qty = data.draw(st.integers(1, leaves_steps + 2), label="steps") * inst.lot_int
            price = inst.price_to_int(
                Decimal(self.price_near(order.symbol, data.draw(st.integers(-2, 2))))
            )
            reports.append(
                ExecutionReport(
                    exec_id,
                    order.order_id,
                    ExecKind.FILL,
                    self.rig.clock(),
                    last_qty=qty,
                    last_price=price,
                    venue="fixlp",
                )
            )
        # What must happen, report by report.
        seen = seen_exec_ids(self.engine)
        leaves = {
            o: r.qty - r.filled_qty for o, r in orders.items() if r.status not in TERMINAL_VALUES
        }
        applied: list[ExecutionReport] = []
        refused: dict[str, str] = {}
        for r in reports:
            if r.exec_id in seen:
                continue
            seen.add(r.exec_id)
            if r.order_id not in leaves:
                refused[r.exec_id] = "unknown_or_closed_order"
            elif r.last_qty > leaves[r.order_id]:
                refused[r.exec_id] = "overfill"
            else:
                leaves[r.order_id] -= r.last_qty
                applied.append(r)
                if leaves[r.order_id] == 0:
                    del leaves[r.order_id]
        before = store_snapshot(self.engine)
        audited_before = audited_fills(self.engine)
        [result] = self.run(ApplyReports(reports))
        assert not isinstance(result, Exception), result
        after = store_snapshot(self.engine)
        assert after["executions"] == before["executions"] + len(applied), (reports, result)
        assert after["exec_exceptions"] == before["exec_exceptions"] + len(refused)
        for exec_id, reason in refused.items():
            assert reason in exceptions_of(self.engine, exec_id), (exec_id, reason)
        for r in applied:
            assert order_by_id(self.engine, r.order_id).filled_qty > 0
        # Only applied fills are audited as such; a refused one is an exception only.
        assert audited_fills(self.engine) == audited_before + len(applied)
        assert result.detail.startswith(f"{len(applied)} applied"), result
        if not applied and not refused:
            assert after == before, "a message of duplicate exec ids changed the store"

    @precondition(lambda self: bool(open_orders(self.engine)))
    @rule(
        data=st.data(),
        kind=st.sampled_from(
            [
                ExecKind.ACCEPTED,
                ExecKind.TRIGGERED,
                ExecKind.CANCELED,
                ExecKind.EXPIRED,
                ExecKind.REJECTED,
                ExecKind.REPLACED,
                ExecKind.CANCEL_REJECTED,
                ExecKind.REPLACE_REJECTED,
            ]
        ),
    )
    def external_status(self, data: st.DataObject, kind: ExecKind) -> None:
        """A status report from an outside venue, in turn or out of turn: a move the table
        forbids is recorded as an exception and changes nothing else."""
        order = data.draw(st.sampled_from(open_orders(self.engine)), label="order")
        extra: dict[str, Any] = {}
        if kind is ExecKind.REPLACED:
            inst = self.inst(order.symbol)
            extra = {
                "qty": order.qty + inst.lot_int,
                "price": order.price,
                "trigger_price": order.trigger_price,
            }
        report = ExecutionReport(
            self.next_exec_id(),
            order.order_id,
            kind,
            self.rig.clock(),
            reason="ext",
            venue="fixlp",
            **extra,
        )
        before = store_snapshot(self.engine)
        [result] = self.run(ApplyReports([report]))
        assert not isinstance(result, Exception), result
        after = order_by_id(self.engine, order.order_id)
        if exceptions_of(self.engine, report.exec_id):
            assert exceptions_of(self.engine, report.exec_id) == ["invalid_transition"]
            assert tuple(after) == tuple(order), "a refused report changed the order"
            assert store_snapshot(self.engine)["outbox"] == before["outbox"]

    # -- cash and accounts ----------------------------------------------------------------------

    @rule(account=st.sampled_from(ACCOUNTS), cents=st.integers(1, 5_000_000))
    def deposit(self, account: int, cents: int) -> None:
        self.n += 1
        [result] = self.run(Deposit(account, "USD", cents, f"dep-{self.n}"))
        assert not isinstance(result, Exception), result

    @rule(account=st.sampled_from(ACCOUNTS), cents=st.integers(1, 20_000_000))
    def withdraw(self, account: int, cents: int) -> None:
        before = store_snapshot(self.engine)
        free = self.rig.oms.cash_available(account)
        halted = self.rig.oms._accounts[account].state is AccountState.HALTED
        [result] = self.run(RequestWithdrawal(account, "USD", cents, self.destinations[account]))
        if halted:
            assert isinstance(result, AccountHalted), result
            self.expect_unchanged(before, "a withdrawal from a halted account")
        elif isinstance(result, InsufficientFunds):
            assert result.code == "insufficient_funds"
            self.expect_unchanged(before, "a refused withdrawal")
        else:
            assert not isinstance(result, Exception), result
            assert cents <= free

    @rule(data=st.data(), approve=st.booleans())
    def decide_withdrawal(self, data: st.DataObject, approve: bool) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.withdrawals.c.withdrawal_id, s.withdrawals.c.status).where(
                    s.withdrawals.c.status.in_(("requested", "held"))
                )
            ).all()
        held = {wid for wid, status in rows if status == "held"}
        pending = [wid for wid, _ in rows]
        if not pending:
            before = store_snapshot(self.engine)
            [result] = self.run(DecideWithdrawal(10_000, approve))
            assert isinstance(result, NotFound), result
            self.expect_unchanged(before, "a decision on no withdrawal")
            return
        wid = data.draw(st.sampled_from(pending), label="withdrawal")
        if approve and wid in held:
            before = store_snapshot(self.engine)
            [result] = self.run(DecideWithdrawal(wid, approve, "checked"))
            assert isinstance(result, InvalidStateTransition), result
            self.expect_unchanged(before, "approving a held withdrawal")
            return
        [result] = self.run(DecideWithdrawal(wid, approve, "checked"))
        assert not isinstance(result, Exception), result
        with self.engine.connect() as conn:
            status = conn.execute(
                select(s.withdrawals.c.status).where(s.withdrawals.c.withdrawal_id == wid)
            ).scalar_one()
        assert status == ("approved" if approve else "rejected")

    @rule(data=st.data(), hold=st.booleans())
    def hold_or_release(self, data: st.DataObject, hold: bool) -> None:
        pending = sorted(self.rig.oms._withdrawals.values(), key=lambda w: w.withdrawal_id)
        if not pending:
            return
        w = data.draw(st.sampled_from(pending), label="withdrawal")
        cmd = HoldWithdrawal if hold else ReleaseWithdrawal
        legal = (w.status.value == "requested") is hold
        before = store_snapshot(self.engine)
        cash = self.rig.oms.cash_available(w.account_id)
        [result] = self.run(cmd(w.withdrawal_id, "review", actor="compliance"))
        if legal:
            assert not isinstance(result, Exception), result
            assert w.status.value == ("held" if hold else "requested")
        else:
            assert isinstance(result, InvalidStateTransition), result
            self.expect_unchanged(before, "an illegal hold or release")
        assert self.rig.oms.cash_available(w.account_id) == cash  # no money moves

    @rule(
        account=st.sampled_from(ACCOUNTS),
        leverage=st.none() | st.integers(1, 30),
        max_order_lots=st.none() | st.sampled_from([Decimal("0.5"), Decimal(2), Decimal(40)]),
        rate=st.none() | st.integers(1, 100),
    )
    def set_limits(
        self, account: int, leverage: int | None, max_order_lots: Decimal | None, rate: int | None
    ) -> None:
        cmd = SetLimits(account, leverage, max_order_lots=max_order_lots,
                        max_orders_per_second=rate, actor="risk-desk", reason="review")  # fmt: skip
        [result] = self.run(cmd)
        assert not isinstance(result, Exception), result
        limits = self.rig.oms._limits(self.rig.oms._accounts[account])
        assert limits.max_order_lots == (max_order_lots or Decimal(20))

    @rule(account=st.sampled_from(ACCOUNTS), state=st.sampled_from(list(AccountState)))
    def account_state(self, account: int, state: AccountState) -> None:
        [result] = self.run(SetAccountState(account, state))
        assert not isinstance(result, Exception), result

    @rule(symbol=st.sampled_from(SYMBOLS), halted=st.booleans())
    def halt_symbol(self, symbol: str, halted: bool) -> None:
        [result] = self.run(HaltSymbol(symbol, halted))
        assert not isinstance(result, Exception), result

    @rule(hours=st.integers(0, 30))
    def rollover(self, hours: int) -> None:
        """Hours pass (until Friday evening) and the host rolls the cut-offs crossed: marks
        and financing; the same Rollover again does nothing."""
        if self.rig.clock() + hours * HOUR_MS * MS < FRIDAY_NS:
            self.tick(hours * HOUR_MS)
        upto = self.rig.clock()
        [result] = self.run(Rollover(upto))
        assert isinstance(result, Done), result
        before = store_snapshot(self.engine)
        [again] = self.run(Rollover(upto))
        assert again == Done(f"rollover:{upto}", "nothing due"), again
        self.expect_unchanged(before, "a repeated rollover")

    @rule()
    def recover(self) -> None:
        """The OMS reloads its memory from the store: nothing it held differs."""
        before = memory_state(self.rig)
        self.rig.oms.recover()
        assert_same_state(before, memory_state(self.rig))

    @rule()
    def restart(self) -> None:
        """A new OMS on the same store (a new venue, the quotes fed again) takes over."""
        before = memory_state(self.rig)
        clock = self.rig.clock
        self.rig = make_oms(self.engine, clock)
        assert_same_state(before, memory_state(self.rig))
        results = self.run(*[self.quote_cmd(sym) for sym in SYMBOLS])
        assert not any(isinstance(r, Exception) for r in results), results

    # -- invariants, read from the store --------------------------------------------------------

    @invariant()
    def store_verifies(self) -> None:
        with self.engine.connect() as conn:
            problems = verify_ledger(conn) + verify_audit(conn)
        assert problems == [], problems

    @invariant()
    def nothing_left_pending(self) -> None:
        """The B-book answers a cancel or a replace at once: no order waits on it."""
        with self.engine.connect() as conn:
            pending = conn.execute(
                select(s.orders.c.order_id, s.orders.c.status).where(
                    s.orders.c.status.in_(["pending_cancel", "pending_replace", "submitted"])
                )
            ).all()
        assert pending == [], pending

    @invariant()
    def order_histories_are_legal(self) -> None:
        problems = status_path_problems(self.engine)
        assert problems == [], problems

    @invariant()
    def fills_carry_their_events(self) -> None:
        """Every fill has exactly one event naming its exec id, and every such event a fill.
        (A replace or a refused cancel of a part-filled order also emits
        `order.partially_filled`, without an exec id.)"""
        with self.engine.connect() as conn:
            events = [
                json.loads(p).get("exec_id")
                for (p,) in conn.execute(
                    select(s.outbox.c.payload).where(
                        s.outbox.c.type.in_(["order.filled", "order.partially_filled"])
                    )
                )
            ]
        assert sorted(e for e in events if e is not None) == exec_ids(self.engine)

    @invariant()
    def memory_matches_store(self) -> None:
        assert_same_state(memory_state(self.rig), stored_state(self.engine))

    @invariant()
    def cutoffs_match_store(self) -> None:
        """The last cut-off per symbol in memory is what a restart would read back."""
        memory = self.rig.oms._last_cutoff
        if memory is not None:
            with self.engine.connect() as conn:
                assert memory == last_cutoffs(conn)


def _fields(request: Any) -> dict[str, Any]:
    return {name: getattr(request, name) for name in request.__slots__}


# -- the tests ---------------------------------------------------------------------------------


def _run(stores: SqliteStores | PostgresStores, examples: int, steps: int) -> None:
    OMSMachine.stores = stores
    run_state_machine_as_test(
        OMSMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )


@pytest.fixture
def sqlite_stores() -> Iterator[SqliteStores]:
    root = Path(tempfile.mkdtemp(prefix="bourse-props-"))
    yield SqliteStores(root)
    shutil.rmtree(root, ignore_errors=True)


def test_oms_when_random_commands_on_sqlite_then_every_invariant_holds(
    sqlite_stores: SqliteStores,
) -> None:
    _run(sqlite_stores, examples=50, steps=40)


def test_oms_when_random_commands_on_postgresql_then_every_invariant_holds(pg_dsn: str) -> None:
    stores = PostgresStores(pg_dsn)
    try:
        _run(stores, examples=12, steps=30)
    finally:
        stores.engine.dispose()
