"""The batch writer on both stores: every statement shape a batch can take (inserts and
updates of balances, orders, lots and withdrawals, several rows each, in one transaction),
and on PostgreSQL the statements over arrays (``unnest``) and their array literals."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.trading.builders import Rig, make_rig
from trading.commands import CancelOrder, DecideWithdrawal, OrderAck, RequestWithdrawal
from trading.store import schema as s
from trading.store import writer
from trading.store.engine import open_engine
from trading.store.repository import load_snapshot, lot_row, order_row
from trading.store.verify import verify_audit, verify_ledger
from trading.store.writer import _unnest_sql, _Writer, array_literal


def _acks(results: list[Any]) -> list[OrderAck]:
    assert all(isinstance(r, OrderAck) for r in results), results
    return results


def _withdrawal_id(done: Any) -> int:
    return int(done.ref.split(":")[1])


# 2: every multi-row insert goes by COPY on PostgreSQL (the pipeline synced around each);
# 1000: none does, every statement rides one pipeline.
@pytest.mark.parametrize("copy_min_rows", [2, 1000])
def test_batch_when_rows_of_every_kind_are_new_and_updated_then_store_holds_what_memory_holds(
    store_dsn: str, copy_min_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "COPY_MIN_ROWS", copy_min_rows)
    rig: Rig = make_rig(store_dsn)
    rig.open_accounts(1, 2, 3)
    dests = {a: rig.destination(a) for a in (1, 2, 3)}
    # (kind, table) -> the largest number of rows one statement wrote.
    widest: dict[tuple[str, str], int] = {}

    def spy(kind: str) -> Any:
        real = getattr(_Writer, kind)

        def wrapped(self: _Writer, table: str, rows: list[dict[str, Any]]) -> None:
            widest[kind, table] = max(widest.get((kind, table), 0), len(rows))
            real(self, table, rows)

        return wrapped

    monkeypatch.setattr(_Writer, "insert", spy("insert"))
    monkeypatch.setattr(_Writer, "update", spy("update"))
    w1, w2 = (
        _withdrawal_id(rig.oms.execute_one(RequestWithdrawal(a, "USD", 1_000_00, dests[a])))
        for a in (1, 2)
    )
    # One batch: new orders, new lots, new and updated balances, withdrawals decided
    # (updated) and requested (new), resting orders (new).
    first = rig.oms.execute(
        [
            rig.submit(1, "m1", qty="2"),
            rig.submit(2, "m2", qty="3"),
            rig.submit(3, "m3", symbol="XAU/USD", qty="1"),
            rig.submit(1, "l1", type="limit", price="1.05000", qty="1"),
            rig.submit(2, "l2", type="limit", price="1.05000", qty="1"),
            DecideWithdrawal(w1, approve=True),
            DecideWithdrawal(w2, approve=False),
            RequestWithdrawal(3, "USD", 500_00, dests[3]),
            RequestWithdrawal(1, "USD", 200_00, dests[1]),
        ]
    )
    acks = _acks(first[:5])
    w3, w4 = _withdrawal_id(first[7]), _withdrawal_id(first[8])
    # The next batch updates what the first inserted: lots closed in part, resting orders
    # canceled, withdrawals decided, balances moved.
    second = rig.oms.execute(
        [
            rig.submit(1, "s1", side="sell", qty="1"),
            rig.submit(2, "s2", side="sell", qty="2"),
            CancelOrder(1, acks[3].order_id),
            CancelOrder(2, acks[4].order_id),
            DecideWithdrawal(w3, approve=True),
            DecideWithdrawal(w4, approve=False),
        ]
    )
    assert not [r for r in second if isinstance(r, Exception)], second
    # Several rows per statement, new and updated, for each kind of entity.
    for table in ("balances", "orders", "lots", "withdrawals"):
        assert widest["insert", table] >= 2, table
        assert widest["update", table] >= 2, table

    with rig.engine.connect() as conn:
        assert verify_ledger(conn) == []
        assert verify_audit(conn) == []
        snap = load_snapshot(conn)
        statuses = {
            r[0]: r[1]
            for r in conn.execute(select(s.withdrawals.c.withdrawal_id, s.withdrawals.c.status))
        }
        orders = {
            r.order_id: (r.status, r.filled_qty)
            for r in conn.execute(
                select(s.orders.c.order_id, s.orders.c.status, s.orders.c.filled_qty)
            )
        }
    assert statuses == {w1: "approved", w2: "rejected", w3: "approved", w4: "rejected"}
    assert orders[acks[3].order_id][0] == "canceled"
    assert orders[acks[4].order_id][0] == "canceled"
    # Each long lot lost what the sell closed (qty in the instrument's units).
    units = rig.catalogue.get("EUR/USD").qty_scale
    remaining = {lot.account_id: lot.remaining for lot in snap.open_lots if lot.symbol == "EUR/USD"}
    assert remaining == {1: 1 * units, 2: 1 * units}
    # The store holds what memory holds: balances, open orders and open lots, column by column.
    assert snap.balances == rig.oms._balances
    memory_lots = sorted(
        (
            lot_row(lot)
            for acct in rig.oms._accounts.values()
            for p in acct.positions.values()
            for lot in p.lots
        ),
        key=lambda r: r["lot_id"],
    )
    assert [lot_row(lot) for lot in snap.open_lots] == memory_lots
    assert [order_row(o) for o in snap.open_orders] == [
        order_row(o) for o in sorted(rig.oms._open.values(), key=lambda o: o.order_id)
    ]


AWKWARD = [
    'a"b', "c\\d", "e,f", "{g}", "", "NULL", "null", " lead and trail ", "üñí €", "x\ny", None,
]  # fmt: skip


def test_array_literal_when_awkward_text_then_postgresql_reads_it_back_unchanged(
    store_dsn: str,
) -> None:
    if not store_dsn.startswith("postgresql"):
        # The literal is PostgreSQL's syntax; SQLite never sees it. Its own check, not a skip:
        assert array_literal([1, None, True, "a"]) == '{1,NULL,t,"a"}'
        return
    engine = open_engine(store_dsn)
    with engine.connect() as conn:
        cur = conn.connection.cursor()
        cur.execute("SELECT unnest(CAST(%s AS text[]))", (array_literal(AWKWARD),))
        assert [r[0] for r in cur.fetchall()] == AWKWARD
        ints = [0, -1, 2**63 - 1, -(2**63), None]
        cur.execute("SELECT unnest(CAST(%s AS bigint[]))", (array_literal(ints),))
        assert [r[0] for r in cur.fetchall()] == ints
        cur.execute("SELECT unnest(CAST(%s AS boolean[]))", (array_literal([True, False]),))
        assert [r[0] for r in cur.fetchall()] == [True, False]
    engine.dispose()


def test_unnest_when_text_longer_than_its_column_then_error_not_truncated(pg_dsn: str) -> None:
    make_rig(pg_dsn)  # migrated
    engine = open_engine(pg_dsn)
    rows = [
        {"symbol": "EUR/USD", "halted_ns": 1, "actor": "desk"},
        {"symbol": "X" * 17, "halted_ns": 2, "actor": "desk"},  # symbol is VARCHAR(16)
    ]
    assert "unnest(" in _unnest_sql("insert", "symbol_halts", tuple(rows[0]))
    with pytest.raises(Exception, match="too long"), engine.begin() as conn:
        w = _Writer(conn)
        try:
            w.insert("symbol_halts", rows)
            w.sync()
        finally:
            w.close()
    with engine.connect() as conn:
        assert list(conn.execute(select(s.symbol_halts))) == []
    engine.dispose()
