"""Ledger and book invariants, checked in the store with SQL aggregates.

Each check reads what the OMS wrote and states one invariant; a broken one becomes a
``Problem`` naming the rows. The checks run as aggregates in the database, so verifying a
ledger of millions of postings streams nothing through Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, text

from trading.oms.audit import verify_chain
from trading.orders import OrderStatus

_LIMIT = 20  # rows shown per broken check
_STATUSES = ", ".join(f"'{st.value}'" for st in OrderStatus)


@dataclass(frozen=True, slots=True)
class Problem:
    check: str
    detail: str


def _rows(conn: Connection, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute(text(sql + f" LIMIT {_LIMIT}"))]


CHECKS: list[tuple[str, str, str]] = [
    (
        "transactions_balance",
        "postings of a transaction sum to zero per commodity",
        """SELECT txn_id, commodity, SUM(amount) FROM postings
           GROUP BY txn_id, commodity HAVING SUM(amount) <> 0""",
    ),
    (
        "transactions_have_postings",
        "every transaction has at least two postings",
        """SELECT t.txn_id, COUNT(p.posting_id) FROM ledger_txns t
           LEFT JOIN postings p ON p.txn_id = t.txn_id
           GROUP BY t.txn_id HAVING COUNT(p.posting_id) < 2""",
    ),
    (
        "posting_commodity",
        "a posting's commodity is its account's commodity",
        """SELECT p.posting_id, p.commodity, a.commodity FROM postings p
           JOIN ledger_accounts a ON a.ledger_account_id = p.ledger_account_id
           WHERE p.commodity <> a.commodity""",
    ),
    (
        "posting_time",
        "a posting carries its transaction's time",
        """SELECT p.posting_id, p.ts_ns, t.ts_ns FROM postings p
           JOIN ledger_txns t ON t.txn_id = p.txn_id WHERE p.ts_ns <> t.ts_ns""",
    ),
    (
        "cached_balances",
        "the cached balance of every account equals the sum of its postings",
        """SELECT a.ledger_account_id, a.code, COALESCE(b.amount, 0), COALESCE(s.total, 0)
           FROM ledger_accounts a
           LEFT JOIN balances b ON b.ledger_account_id = a.ledger_account_id
           LEFT JOIN (SELECT ledger_account_id, SUM(amount) AS total FROM postings
                      GROUP BY ledger_account_id) s
             ON s.ledger_account_id = a.ledger_account_id
           WHERE COALESCE(b.amount, 0) <> COALESCE(s.total, 0)""",
    ),
    (
        "no_overfill",
        "no order is filled beyond its quantity",
        "SELECT order_id, qty, filled_qty FROM orders WHERE filled_qty > qty OR filled_qty < 0",
    ),
    (
        "fills_match_orders",
        "an order's filled quantity and notional are the sums of its fills",
        """SELECT o.order_id, o.filled_qty, COALESCE(e.q, 0), o.filled_notional, COALESCE(e.n, 0)
           FROM orders o LEFT JOIN (SELECT order_id, SUM(qty) AS q, SUM(qty * price) AS n
                                    FROM executions GROUP BY order_id) e
             ON e.order_id = o.order_id
           WHERE o.filled_qty <> COALESCE(e.q, 0) OR o.filled_notional <> COALESCE(e.n, 0)""",
    ),
    (
        "filled_status",
        "an order is filled exactly when its whole quantity is, and has a known status",
        f"""SELECT order_id, status, qty, filled_qty FROM orders
           WHERE (status = 'filled') <> (filled_qty = qty)
              OR (status = 'partially_filled' AND filled_qty = 0)
              OR (filled_qty > 0 AND status IN ('initialized', 'submitted', 'accepted',
                                               'denied', 'rejected', 'triggered'))
              OR status NOT IN ({_STATUSES})""",
    ),
    (
        "lots_match_ledger",
        "open lots per account and symbol equal the position account's balance",
        """SELECT a.code, COALESCE(b.amount, 0), COALESCE(l.total, 0)
           FROM ledger_accounts a
           LEFT JOIN balances b ON b.ledger_account_id = a.ledger_account_id
           LEFT JOIN (SELECT 'client:' || CAST(account_id AS VARCHAR(20)) || ':position:' ||
                             REPLACE(symbol, '/', '') AS code, SUM(remaining) AS total
                      FROM lots WHERE closed_ns IS NULL GROUP BY account_id, symbol) l
             ON l.code = a.code
           WHERE a.code LIKE 'client:%:position:%'
             AND COALESCE(b.amount, 0) <> COALESCE(l.total, 0)""",
    ),
    (
        "lots_match_fills",
        "open lots per account and symbol equal the signed sum of fills",
        """SELECT f.account_id, f.symbol, f.net, COALESCE(l.total, 0)
           FROM (SELECT o.account_id, o.symbol,
                        SUM(CASE WHEN o.side = 'buy' THEN e.qty ELSE -e.qty END) AS net
                 FROM executions e JOIN orders o ON o.order_id = e.order_id
                 GROUP BY o.account_id, o.symbol) f
           LEFT JOIN (SELECT account_id, symbol, SUM(remaining) AS total FROM lots
                      WHERE closed_ns IS NULL GROUP BY account_id, symbol) l
             ON l.account_id = f.account_id AND l.symbol = f.symbol
           WHERE f.net <> COALESCE(l.total, 0)""",
    ),
    (
        "lot_closures",
        "what was closed of a lot plus what remains is what it opened with",
        """SELECT l.lot_id, l.qty, l.remaining, COALESCE(c.closed, 0) FROM lots l
           LEFT JOIN (SELECT lot_id, SUM(qty) AS closed FROM lot_closures GROUP BY lot_id) c
             ON c.lot_id = l.lot_id
           WHERE l.qty <> l.remaining + COALESCE(c.closed, 0)
              OR (l.remaining = 0) <> (l.closed_ns IS NOT NULL)
              OR (l.qty > 0 AND l.remaining < 0) OR (l.qty < 0 AND l.remaining > 0)""",
    ),
    (
        "margin_held",
        "margin held per account equals the margin of its open lots",
        """SELECT ac.account_id, COALESCE(-b.amount, 0), COALESCE(l.m, 0)
           FROM accounts ac
           LEFT JOIN ledger_accounts a
             ON a.code = 'client:' || CAST(ac.account_id AS VARCHAR(20)) || ':margin:'
                       || ac.currency
           LEFT JOIN balances b ON b.ledger_account_id = a.ledger_account_id
           LEFT JOIN (SELECT account_id, SUM(margin) AS m FROM lots
                      WHERE closed_ns IS NULL GROUP BY account_id) l
             ON l.account_id = ac.account_id
           WHERE COALESCE(-b.amount, 0) <> COALESCE(l.m, 0)""",
    ),
    (
        "withdrawals_held",
        "funds held for withdrawals equal the pending requests",
        """SELECT a.code, COALESCE(-b.amount, 0), COALESCE(w.total, 0)
           FROM ledger_accounts a
           LEFT JOIN balances b ON b.ledger_account_id = a.ledger_account_id
           LEFT JOIN (SELECT 'client:' || CAST(account_id AS VARCHAR(20)) ||
                             ':withdrawal_pending:' || currency AS code, SUM(amount) AS total
                      FROM withdrawals WHERE status IN ('requested', 'held')
                      GROUP BY account_id, currency) w ON w.code = a.code
           WHERE a.code LIKE 'client:%:withdrawal_pending:%'
             AND COALESCE(-b.amount, 0) <> COALESCE(w.total, 0)""",
    ),
    (
        "accounts_have_ledger",
        "every client account has its cash and margin accounts in the ledger",
        """SELECT ac.account_id, COUNT(a.ledger_account_id) FROM accounts ac
           LEFT JOIN ledger_accounts a
             ON a.code IN ('client:' || CAST(ac.account_id AS VARCHAR(20)) || ':cash:'
                               || ac.currency,
                           'client:' || CAST(ac.account_id AS VARCHAR(20)) || ':margin:'
                               || ac.currency)
           GROUP BY ac.account_id HAVING COUNT(a.ledger_account_id) <> 2""",
    ),
    (
        "accounts_in_audit",
        "every account the audit log records as opened is in the store",
        """SELECT g.seq, g.subject FROM audit_log g
           WHERE g.action = 'account.open'
             AND NOT EXISTS (SELECT 1 FROM accounts ac
                             WHERE 'account:' || CAST(ac.account_id AS VARCHAR(20)) = g.subject)""",
    ),
    (
        "fill_commission",
        "a fill's commission is the commission posted by its ledger transactions",
        """SELECT e.exec_id, e.commission, COALESCE(-c.total, 0) FROM executions e
           LEFT JOIN (SELECT t.ref, SUM(p.amount) AS total FROM ledger_txns t
                      JOIN postings p ON p.txn_id = t.txn_id
                      JOIN ledger_accounts a ON a.ledger_account_id = p.ledger_account_id
                      WHERE t.kind IN ('fill_open', 'fill_close')
                        AND a.code LIKE 'house:revenue:commission:%'
                      GROUP BY t.ref) c ON c.ref = e.exec_id
           WHERE e.commission <> COALESCE(-c.total, 0)""",
    ),
    (
        "fill_quantity",
        "a fill's signed quantity is what its ledger transactions moved into the position",
        """SELECT e.exec_id, e.account_id, o.side, e.qty, COALESCE(q.total, 0)
           FROM executions e JOIN orders o ON o.order_id = e.order_id
           LEFT JOIN (SELECT t.ref, a.code, SUM(p.amount) AS total FROM ledger_txns t
                      JOIN postings p ON p.txn_id = t.txn_id
                      JOIN ledger_accounts a ON a.ledger_account_id = p.ledger_account_id
                      WHERE t.kind IN ('fill_open', 'fill_close')
                        AND a.code LIKE 'client:%:position:%'
                      GROUP BY t.ref, a.code) q
             ON q.ref = e.exec_id
            AND q.code = 'client:' || CAST(e.account_id AS VARCHAR(20)) || ':position:'
                         || REPLACE(o.symbol, '/', '')
           WHERE CASE WHEN o.side = 'buy' THEN e.qty ELSE -e.qty END <> COALESCE(q.total, 0)""",
    ),
    (
        "fill_txns_have_fills",
        "every fill transaction in the ledger belongs to a recorded fill",
        """SELECT t.txn_id, t.kind, t.ref FROM ledger_txns t
           WHERE t.kind IN ('fill_open', 'fill_close')
             AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.exec_id = t.ref
                             AND e.account_id = t.account_id AND e.kind = 'fill')""",
    ),
    (
        "withdrawal_postings",
        "a withdrawal's amount is what its hold moved and what its decision released",
        """SELECT w.withdrawal_id, w.status, w.amount, COALESCE(-h.total, 0), h.n,
                  d.kind, d.total, d.n
           FROM withdrawals w
           LEFT JOIN (SELECT t.ref, a.code, SUM(p.amount) AS total,
                             COUNT(DISTINCT t.txn_id) AS n
                      FROM ledger_txns t JOIN postings p ON p.txn_id = t.txn_id
                      JOIN ledger_accounts a ON a.ledger_account_id = p.ledger_account_id
                      WHERE t.kind = 'withdrawal_hold' GROUP BY t.ref, a.code) h
             ON h.ref = 'withdrawal:' || CAST(w.withdrawal_id AS VARCHAR(20))
            AND h.code = 'client:' || CAST(w.account_id AS VARCHAR(20))
                         || ':withdrawal_pending:' || w.currency
           LEFT JOIN (SELECT t.ref, a.code, MIN(t.kind) AS kind, MAX(t.kind) AS kind2,
                             SUM(p.amount) AS total, COUNT(DISTINCT t.txn_id) AS n
                      FROM ledger_txns t JOIN postings p ON p.txn_id = t.txn_id
                      JOIN ledger_accounts a ON a.ledger_account_id = p.ledger_account_id
                      WHERE t.kind IN ('withdrawal_approved', 'withdrawal_rejected')
                      GROUP BY t.ref, a.code) d
             ON d.ref = 'withdrawal:' || CAST(w.withdrawal_id AS VARCHAR(20))
            AND d.code = 'client:' || CAST(w.account_id AS VARCHAR(20))
                         || ':withdrawal_pending:' || w.currency
           WHERE COALESCE(-h.total, 0) <> w.amount OR COALESCE(h.n, 0) <> 1
              OR (w.status IN ('approved', 'rejected')
                  AND (d.n IS NULL OR d.n <> 1 OR d.kind <> 'withdrawal_' || w.status
                       OR d.kind2 <> d.kind OR d.total <> w.amount))
              OR (w.status NOT IN ('approved', 'rejected') AND d.n IS NOT NULL)""",
    ),
    (
        "withdrawal_destinations",
        "a withdrawal goes to a destination of its own account, in its currency",
        """SELECT w.withdrawal_id, w.account_id, d.account_id, w.currency, d.currency
           FROM withdrawals w
           JOIN withdrawal_destinations d ON d.destination_id = w.destination_id
           WHERE d.account_id <> w.account_id OR d.currency <> w.currency""",
    ),
    (
        "withdrawal_txns_have_withdrawals",
        "every withdrawal transaction in the ledger belongs to a recorded withdrawal",
        """SELECT t.txn_id, t.kind, t.ref FROM ledger_txns t
           WHERE t.kind IN ('withdrawal_hold', 'withdrawal_approved', 'withdrawal_rejected')
             AND NOT EXISTS (SELECT 1 FROM withdrawals w
                             WHERE 'withdrawal:' || CAST(w.withdrawal_id AS VARCHAR(20)) = t.ref
                               AND w.account_id = t.account_id)""",
    ),
    (
        "financing_postings",
        "a financing row's amount is what its transaction moved into the client's cash",
        """SELECT f.financing_id, f.account_id, f.amount, f.txn_id, t.kind, t.account_id,
                  COALESCE(c.total, 0)
           FROM financing f
           LEFT JOIN ledger_txns t ON t.txn_id = f.txn_id
           LEFT JOIN (SELECT p.txn_id, a.code, SUM(p.amount) AS total FROM postings p
                      JOIN ledger_accounts a ON a.ledger_account_id = p.ledger_account_id
                      GROUP BY p.txn_id, a.code) c
             ON c.txn_id = f.txn_id
            AND c.code = 'client:' || CAST(f.account_id AS VARCHAR(20)) || ':cash:'
                         || f.currency
           WHERE (f.txn_id IS NULL AND f.amount <> 0)
              OR (f.txn_id IS NOT NULL
                  AND (t.kind IS NULL OR t.kind <> 'financing' OR t.account_id <> f.account_id
                       OR f.amount = 0 OR -COALESCE(c.total, 0) <> f.amount))""",
    ),
    (
        "financing_txns_have_rows",
        "every financing transaction in the ledger belongs to one financing row",
        """SELECT t.txn_id, t.ref, COUNT(f.financing_id) FROM ledger_txns t
           LEFT JOIN financing f ON f.txn_id = t.txn_id
           WHERE t.kind = 'financing'
           GROUP BY t.txn_id, t.ref HAVING COUNT(f.financing_id) <> 1""",
    ),
    (
        "outbox_sequence",
        "each account's outbox sequence runs 1..n without gaps or repeats",
        """SELECT account_id, COUNT(*), MIN(account_seq), MAX(account_seq),
                  COUNT(DISTINCT account_seq) FROM outbox GROUP BY account_id
           HAVING MIN(account_seq) <> 1 OR MAX(account_seq) <> COUNT(*)
               OR COUNT(DISTINCT account_seq) <> COUNT(*)""",
    ),
    (
        "fills_have_events",
        "every fill has its order event in the outbox",
        """SELECT e.exec_id, e.order_id FROM executions e
           WHERE e.kind = 'fill'
             AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.order_id = e.order_id
                             AND x.type IN ('order.filled', 'order.partially_filled')
                             AND x.payload LIKE '%"exec_id":"' || e.exec_id || '"%')""",
    ),
    (
        "orders_have_events",
        "every order's current status is its last event in the outbox",
        """SELECT o.order_id, o.status, x.type FROM orders o
           LEFT JOIN outbox x ON x.event_id = (SELECT MAX(event_id) FROM outbox y
                                               WHERE y.order_id = o.order_id)
           WHERE x.type IS NULL OR x.type <> 'order.' || o.status""",
    ),
]


# Replaced by trading.store.checkpoints.SPAN_POSTINGS when a check runs.
_SPAN = "__SPAN_POSTINGS__"


def _checkpoint_checks(span: str) -> list[tuple[str, str, str]]:
    """The balance checkpoints and posting spans (``trading.store.checkpoints``) recomputed
    from the postings, both ways: a wrong, missing or extra row shows."""
    sums = f"""SELECT ledger_account_id AS lid, (posting_id - 1) / {span} AS span,
                      SUM(amount) AS total
               FROM postings GROUP BY ledger_account_id, (posting_id - 1) / {span}"""
    running = f"""SELECT lid, (span + 1) * {span} AS at_id,
                         SUM(total) OVER (PARTITION BY lid ORDER BY span) AS amount
                  FROM ({sums}) s
                  WHERE (span + 1) * {span} <= (SELECT MAX(posting_id) FROM postings)"""
    spans = f"""SELECT (posting_id - 1) / {span} AS span_id, MIN(ts_ns) AS lo, MAX(ts_ns) AS hi
                FROM postings GROUP BY (posting_id - 1) / {span}"""
    return [
        (
            "balance_checkpoints",
            "each balance checkpoint is the sum of its account's postings up to its posting "
            "id, one at the end of each complete span for every account the span touched",
            f"""SELECT r.lid, r.at_id, r.amount, c.amount FROM ({running}) r
                LEFT JOIN balance_checkpoints c
                  ON c.ledger_account_id = r.lid AND c.posting_id = r.at_id
                WHERE c.amount IS NULL OR c.amount <> r.amount
                UNION ALL
                SELECT c.ledger_account_id, c.posting_id, NULL, c.amount
                FROM balance_checkpoints c LEFT JOIN ({running}) r
                  ON c.ledger_account_id = r.lid AND c.posting_id = r.at_id
                WHERE r.lid IS NULL""",
        ),
        (
            "posting_spans",
            "each span of postings records its earliest and latest posting time",
            f"""SELECT s.span_id, s.lo, s.hi, p.min_ts_ns, p.max_ts_ns FROM ({spans}) s
                LEFT JOIN posting_spans p ON p.span_id = s.span_id
                WHERE p.span_id IS NULL OR p.min_ts_ns <> s.lo OR p.max_ts_ns <> s.hi
                UNION ALL
                SELECT p.span_id, NULL, NULL, p.min_ts_ns, p.max_ts_ns
                FROM posting_spans p LEFT JOIN ({spans}) s ON s.span_id = p.span_id
                WHERE s.span_id IS NULL""",
        ),
    ]


CHECKS += _checkpoint_checks(_SPAN)


def _checks() -> Iterator[tuple[str, str, Callable[[Connection], list[tuple[object, ...]]]]]:
    from trading.store import checkpoints

    span = str(int(checkpoints.SPAN_POSTINGS))
    for name, statement, template in CHECKS:
        sql = template.replace(_SPAN, span)
        yield name, statement, lambda conn, sql=sql: _rows(conn, sql)  # type: ignore[misc]


def verify_ledger(conn: Connection, progress: Callable[[str], None] | None = None) -> list[Problem]:
    """Every invariant of the ledger and the order book; an empty list means all hold."""
    problems: list[Problem] = []
    for name, statement, run in _checks():
        if progress:
            progress(name)
        for row in run(conn):
            problems.append(Problem(name, f"{statement}: broken at {row}"))
    return problems


def row_counts(conn: Connection) -> dict[str, int]:
    """Rows per table of the trading core: a store whose every count is zero verifies
    nothing. The API's users and devices are not counted: staff logins alone are no trading."""
    from sqlalchemy import func, select

    from trading.store.schema import devices, metadata, users

    return {
        name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        for name, table in metadata.tables.items()
        if table not in (users, devices)
    }


def audit_head(conn: Connection) -> tuple[int, str] | None:
    """The head of the chain kept in the store, if it matches the log's last record."""
    head = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).first()
    last = conn.execute(text("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")).first()
    if head is None or last is None or (head[0], head[1]) != (last[0], last[1]):
        return None
    return int(head[0]), str(head[1])


def verify_audit(conn: Connection, anchor: tuple[int, str] | None = None) -> list[Problem]:
    rows = conn.execute(
        text(
            "SELECT seq, ts_ns, actor, action, subject, payload, prev_hash, hash "
            "FROM audit_log ORDER BY seq"
        )
    ).yield_per(10_000)
    head_row = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).first()
    head = (head_row[0], head_row[1]) if head_row else None
    return [
        Problem("audit_chain", f"record {p.seq}: {p.problem}")
        for p in verify_chain(rows, head, anchor)
    ]
