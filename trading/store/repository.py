"""Writing a batch's rows in one transaction (the state read at start-up:
``trading.store.snapshot``, re-exported here).

A ``Batch`` gathers what a group of commands produced: immutable rows to append (postings,
fills, outbox and audit records...) and mutable entities to insert or update (orders, lots,
balances...). ``flush`` (``trading.store.writer``, re-exported here) writes them in a
handful of statements per batch, not one per row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from trading.orders import Order
from trading.positions import Lot
from trading.store.snapshot import Snapshot, load_snapshot, order_from_row
from trading.store.writer import flush

__all__ = ["Batch", "Snapshot", "flush", "load_snapshot", "order_from_row"]


def order_row(o: Order) -> dict[str, Any]:
    return {
        "order_id": o.order_id, "account_id": o.account_id,
        "client_order_id": o.client_order_id, "symbol": o.symbol, "side": o.side.value,
        "type": o.type.value, "tif": o.tif.value, "qty": o.qty, "price": o.price,
        "trigger_price": o.trigger_price, "expire_ns": o.expire_ns,
        "reference_price": o.reference_price, "max_slippage_ticks": o.max_slippage_ticks,
        "fingerprint": o.fingerprint, "status": o.status.value, "filled_qty": o.filled_qty,
        "filled_notional": o.filled_notional, "reason": o.reason,
        "resume_status": o.resume_status.value if o.resume_status else None,
        "pending_qty": o.pending_qty, "pending_price": o.pending_price,
        "pending_trigger_price": o.pending_trigger_price, "created_ns": o.created_ns,
        "updated_ns": o.updated_ns, "initiator": o.initiator.value,
        "house_reason": o.house_reason, "route": o.route, "venue": o.venue,
    }  # fmt: skip


def lot_row(lot: Lot) -> dict[str, Any]:
    return {
        "lot_id": lot.lot_id, "account_id": lot.account_id, "symbol": lot.symbol,
        "qty": lot.qty, "remaining": lot.remaining, "price": lot.price, "margin": lot.margin,
        "open_exec_id": lot.open_exec_id, "opened_ns": lot.opened_ns,
        "closed_ns": lot.closed_ns,
    }  # fmt: skip


def account_row(
    account_id: int, currency: str, tier: str, state: str, ts_ns: int,
    client_id: int | None = None, account_type: str = "margin",
) -> dict[str, Any]:  # fmt: skip
    return {"account_id": account_id, "currency": currency, "tier": tier, "state": state,
            "created_ns": ts_ns, "client_id": client_id, "account_type": account_type,
            "leverage": None}  # fmt: skip


def ledger_account_row(
    lid: int, code: str, commodity: str, account_id: int | None, ts_ns: int
) -> dict[str, Any]:
    return {"ledger_account_id": lid, "code": code, "commodity": commodity,
            "account_id": account_id, "opened_ns": ts_ns}  # fmt: skip


def txn_row(
    txn_id: int, account_id: int | None, kind: str, ref: str | None, ts_ns: int, memo: str | None
) -> dict[str, Any]:
    return {"txn_id": txn_id, "account_id": account_id, "kind": kind, "ref": ref,
            "ts_ns": ts_ns, "memo": memo}  # fmt: skip


def posting_row(
    posting_id: int, txn_id: int, lid: int, commodity: str, amount: int, ts_ns: int
) -> dict[str, Any]:
    return {"posting_id": posting_id, "txn_id": txn_id, "ledger_account_id": lid,
            "commodity": commodity, "amount": amount, "ts_ns": ts_ns}  # fmt: skip


def execution_row(
    exec_id: str, order_id: int, account_id: int, kind: str, qty: int, price: int,
    commission: int, venue: str, ts_ns: int,
) -> dict[str, Any]:  # fmt: skip
    return {"exec_id": exec_id, "order_id": order_id, "account_id": account_id, "kind": kind,
            "qty": qty, "price": price, "commission": commission, "venue": venue,
            "ts_ns": ts_ns}  # fmt: skip


def exception_row(
    exception_id: int, exec_id: str, order_id: int, reason: str, detail: str, ts_ns: int
) -> dict[str, Any]:
    return {"exception_id": exception_id, "exec_id": exec_id, "order_id": order_id,
            "reason": reason, "detail": detail, "ts_ns": ts_ns}  # fmt: skip


def closure_row(
    closure_id: int, lot: Lot, qty: int, close_price: int, close_exec_id: str, closed_ns: int,
    realized_quote: str, quote_currency: str, realized: int, txn_id: int,
) -> dict[str, Any]:  # fmt: skip
    return {"closure_id": closure_id, "lot_id": lot.lot_id, "account_id": lot.account_id,
            "symbol": lot.symbol, "close_exec_id": close_exec_id, "qty": qty,
            "open_price": lot.price, "close_price": close_price, "opened_ns": lot.opened_ns,
            "closed_ns": closed_ns, "realized_quote": realized_quote,
            "quote_currency": quote_currency, "realized": realized,
            "txn_id": txn_id}  # fmt: skip


def withdrawal_row(
    withdrawal_id: int, account_id: int, currency: str, amount: int, status: str,
    requested_ns: int, decided_ns: int | None, *, destination_id: int | None = None,
    held_ns: int | None = None, hold_reason: str | None = None,
    released_ns: int | None = None, release_reason: str | None = None,
    decision_reason: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Every column, always: a batch updates withdrawals with one statement."""
    return {"withdrawal_id": withdrawal_id, "account_id": account_id, "currency": currency,
            "amount": amount, "status": status, "requested_ns": requested_ns,
            "decided_ns": decided_ns, "destination_id": destination_id, "held_ns": held_ns,
            "hold_reason": hold_reason, "released_ns": released_ns,
            "release_reason": release_reason, "decision_reason": decision_reason}  # fmt: skip


def audit_row(
    seq: int, ts_ns: int, actor: str, action: str, subject: str, payload: str,
    prev_hash: str, digest: str,
) -> dict[str, Any]:  # fmt: skip
    return {"seq": seq, "ts_ns": ts_ns, "actor": actor, "action": action, "subject": subject,
            "payload": payload, "prev_hash": prev_hash, "hash": digest}  # fmt: skip


def outbox_row(
    event_id: int, account_id: int, account_seq: int, type_: str, order_id: int | None,
    ts_ns: int, payload: str,
) -> dict[str, Any]:  # fmt: skip
    return {"event_id": event_id, "account_id": account_id, "account_seq": account_seq,
            "type": type_, "order_id": order_id, "ts_ns": ts_ns, "payload": payload,
            "published_ns": None}  # fmt: skip


@dataclass
class Batch:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    new_orders: dict[int, Order] = field(default_factory=dict)
    dirty_orders: dict[int, Order] = field(default_factory=dict)
    new_lots: dict[int, Lot] = field(default_factory=dict)
    dirty_lots: dict[int, Lot] = field(default_factory=dict)
    balances: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> amount, txn
    new_balances: set[int] = field(default_factory=set)
    withdrawals: dict[int, dict[str, Any]] = field(default_factory=dict)
    new_withdrawals: set[int] = field(default_factory=set)
    account_states: dict[int, str] = field(default_factory=dict)
    # SetLimits: the account's leverage (None: the tier's) and its account_limits row
    # (None: no overrides, the row is deleted).
    account_leverage: dict[int, int | None] = field(default_factory=dict)
    account_limits: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    # Deposits with a provider reference booked in this batch: a retry within the batch
    # finds its original before the store does (value: the deposits row).
    by_provider_ref: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    halts: dict[str, bool] = field(default_factory=dict)  # symbol -> halted
    halt_ns: int = 0
    halt_actor: str = ""
    audit_head: tuple[int, str] | None = None
    audit_head_exists: bool = True
    # Orders created in this batch by (account, client order id): a retry within the batch
    # finds its original before the store does.
    by_client: dict[tuple[int, str], Order] = field(default_factory=dict)
    frozen: bool = False

    def freeze(self) -> None:
        """Turn the batch's orders and lots into rows now.

        They are live objects that the next batch may change while this one commits
        (``trading.oms.service`` overlaps the two): the rows must say what this batch did.
        """
        self.rows["orders"] = [order_row(o) for o in self.new_orders.values()]
        self.rows["orders:update"] = [order_row(o) for o in self.dirty_orders.values()]
        self.rows["lots"] = [lot_row(lot) for lot in self.new_lots.values()]
        self.rows["lots:update"] = [lot_row(lot) for lot in self.dirty_lots.values()]
        self.frozen = True

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows[table].append(row)

    def order_changed(self, order: Order) -> None:
        if order.order_id not in self.new_orders:
            self.dirty_orders[order.order_id] = order

    def lot_changed(self, lot: Lot) -> None:
        if lot.lot_id not in self.new_lots:
            self.dirty_lots[lot.lot_id] = lot

    def row_count(self) -> int:
        if self.frozen:
            return (
                sum(len(v) for v in self.rows.values()) + len(self.balances) + len(self.withdrawals)
            )
        return (
            sum(len(v) for v in self.rows.values()) + len(self.new_orders)
            + len(self.dirty_orders) + len(self.new_lots) + len(self.dirty_lots)
            + len(self.balances) + len(self.withdrawals)
        )  # fmt: skip
