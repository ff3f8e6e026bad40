"""Writing a batch's rows in the caller's transaction: one statement per table and kind.

``flush`` writes what a ``Batch`` gathered (rows to append, entities to insert or update)
with one executemany or COPY per table and statement, so a batch of 200 orders costs a
handful of round trips, not thousands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

if TYPE_CHECKING:
    from trading.store.repository import Batch

# Parents before children, for the foreign keys.
_APPEND_ORDER = (
    "clients", "accounts", "ledger_accounts", "ledger_txns", "postings", "executions",
    "exec_exceptions", "lot_closures", "deposits", "withdrawal_destinations", "eod_marks",
    "financing", "outbox", "audit_log", "command_log",
)  # fmt: skip
# The tables written before the balances (the postings they cache and their parents).
_BEFORE_BALANCES = 5


_SQL: dict[tuple[bool, str, str, tuple[str, ...]], str] = {}


def _sql(named: bool, kind: str, table: str, cols: tuple[str, ...]) -> str:
    """INSERT or UPDATE text for a table and column set, built once per process."""
    key = (named, kind, table, cols)
    sql = _SQL.get(key)
    if sql is None:

        def ph(c: str) -> str:
            return f":{c}" if named else f"%({c})s"

        if kind == "insert":
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(map(ph, cols))})"
        else:  # update by the first column, the primary key
            pk, rest = cols[0], cols[1:]
            sets = ", ".join(f"{c} = {ph(c)}" for c in rest)
            sql = f"UPDATE {table} SET {sets} WHERE {pk} = {ph(pk)}"
        _SQL[key] = sql
    return sql


COPY_MIN_ROWS = 16


class _Writer:
    """Executes many rows per statement on the driver's cursor.

    SQLAlchemy's per-row parameter processing costs more than SQLite's own insert of the
    row; the tables are simple (integers and text), so the batch goes straight to the DBAPI
    ``executemany`` (psycopg 3 runs it in pipeline mode: one round trip for many rows).
    The statements still run inside the SQLAlchemy transaction of ``conn``.
    """

    def __init__(self, conn: Connection) -> None:
        self.named = conn.dialect.name == "sqlite"
        self.cursor = conn.connection.cursor()

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        cols = tuple(rows[0])
        if not self.named and len(rows) >= COPY_MIN_ROWS:
            # PostgreSQL: COPY streams the rows in one statement; executemany pays psycopg's
            # per-row parameter handling, which measured as the bound of a batch here.
            with self.cursor.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(row.values()))
            return
        self.cursor.executemany(_sql(self.named, "insert", table, cols), rows)

    def delete_halt(self, symbol: str) -> tuple[str, dict[str, Any]]:
        return self.delete_where("symbol_halts", "symbol", symbol)

    def delete_where(self, table: str, column: str, value: object) -> tuple[str, dict[str, Any]]:
        ph = f":{column}" if self.named else f"%({column})s"
        return f"DELETE FROM {table} WHERE {column} = {ph}", {column: value}

    def update(self, table: str, rows: list[dict[str, Any]]) -> None:
        """``rows`` are dicts whose first key is the primary key."""
        if rows:
            self.cursor.executemany(_sql(self.named, "update", table, tuple(rows[0])), rows)


def flush(conn: Connection, batch: Batch) -> None:
    w = _Writer(conn)
    for name in _APPEND_ORDER[:_BEFORE_BALANCES]:
        w.insert(name, batch.rows.get(name, []))
    if batch.balances:
        new: list[dict[str, Any]] = []
        old: list[dict[str, Any]] = []
        for k, (amount, txn) in batch.balances.items():
            row = {"ledger_account_id": k, "amount": amount, "last_txn_id": txn}
            (new if k in batch.new_balances else old).append(row)
        w.insert("balances", new)
        w.update("balances", old)
    if not batch.frozen:
        batch.freeze()
    w.insert("orders", batch.rows["orders"])
    w.update("orders", batch.rows["orders:update"])
    w.insert("lots", batch.rows["lots"])
    w.update("lots", batch.rows["lots:update"])
    for name in _APPEND_ORDER[_BEFORE_BALANCES:]:
        w.insert(name, batch.rows.get(name, []))
    if batch.withdrawals:
        w.insert(
            "withdrawals", [v for k, v in batch.withdrawals.items() if k in batch.new_withdrawals]
        )
        w.update(
            "withdrawals",
            [v for k, v in batch.withdrawals.items() if k not in batch.new_withdrawals],
        )
    w.update("accounts", [{"account_id": k, "state": v} for k, v in batch.account_states.items()])
    w.update(
        "accounts", [{"account_id": k, "leverage": v} for k, v in batch.account_leverage.items()]
    )
    for account_id, limits in batch.account_limits.items():
        w.cursor.execute(*w.delete_where("account_limits", "account_id", account_id))
        if limits is not None:
            w.insert("account_limits", [limits])
    for symbol, halted in batch.halts.items():
        w.cursor.execute(*w.delete_halt(symbol))
        if halted:
            w.insert(
                "symbol_halts",
                [{"symbol": symbol, "halted_ns": batch.halt_ns, "actor": batch.halt_actor}],
            )
    if batch.audit_head is not None:
        seq, digest = batch.audit_head
        head: dict[str, Any] = {"id": 1, "seq": seq, "hash": digest}
        (w.update if batch.audit_head_exists else w.insert)("audit_head", [head])
