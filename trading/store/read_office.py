"""The back office's read side: the withdrawals queue across accounts and the audit records
about one subject.

Read-only queries returning frozen dataclasses, as ``trading.store.read``: money in minor
units beside its currency, times in UTC nanoseconds. Listings are keyset pages in id order
(pass the last id back as ``after``), so rows written between two pages never shift one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection, select

from trading.errors import InvalidInput
from trading.funding import WithdrawalStatus
from trading.store import schema as s
from trading.store.read import AuditRecord
from trading.store.read_clients import AccountSummary

MAX_ROWS = 1_000
# What the desk works through: withdrawals not yet decided.
OPEN_STATUSES = ("requested", "held")


@dataclass(frozen=True, slots=True)
class QueuedWithdrawal:
    withdrawal_id: int
    account_id: int
    client_id: int | None  # None: an account without a client
    currency: str
    amount: int  # minor units
    status: str  # requested | held | approved | rejected
    requested_ns: int
    decided_ns: int | None
    destination_id: int | None
    destination: str | None  # the destination's display text (a masked IBAN), never in full
    hold_reason: str | None


def _limit(limit: int) -> int:
    if type(limit) is not int or not 1 <= limit <= MAX_ROWS:
        raise InvalidInput(f"a page holds 1..{MAX_ROWS} rows, got {limit!r}", field="limit")
    return limit


def _statuses(statuses: Collection[str]) -> list[str]:
    known = {st.value for st in WithdrawalStatus}
    bad = sorted(set(statuses) - known)
    if bad or not statuses:
        raise InvalidInput(f"unknown withdrawal status: {bad or 'none given'}", field="status")
    return sorted(set(statuses))


def withdrawals_queue(
    conn: Connection,
    statuses: Collection[str] = OPEN_STATUSES,
    *,
    after_id: int = 0,
    limit: int = 100,
) -> list[QueuedWithdrawal]:
    """Withdrawals of every account in ``statuses``, oldest first (the order they are worked
    in), from after ``after_id``."""
    w, a, d = s.withdrawals, s.accounts, s.withdrawal_destinations
    stmt = (
        select(w.c.withdrawal_id, w.c.account_id, a.c.client_id, w.c.currency, w.c.amount,
               w.c.status, w.c.requested_ns, w.c.decided_ns, w.c.destination_id, d.c.display,
               w.c.hold_reason)
        .select_from(
            w.outerjoin(a, a.c.account_id == w.c.account_id)
            .outerjoin(d, d.c.destination_id == w.c.destination_id)
        )
        .where(w.c.status.in_(_statuses(statuses)), w.c.withdrawal_id > after_id)
        .order_by(w.c.withdrawal_id)
        .limit(_limit(limit))
    )  # fmt: skip
    return [QueuedWithdrawal(*r) for r in conn.execute(stmt)]


def audit_of(
    conn: Connection, subject: str, *, after_seq: int = 0, limit: int = 100
) -> list[AuditRecord]:
    """The audit records whose subject is ``subject`` (``withdrawal:12``, ``account:7``,
    ``symbol:EUR/USD``, ``order:40``), in chain order from after ``after_seq``."""
    g = s.audit_log
    stmt = (
        select(g.c.seq, g.c.ts_ns, g.c.actor, g.c.action, g.c.subject, g.c.payload, g.c.hash)
        .where(g.c.subject == subject, g.c.seq > after_seq)
        .order_by(g.c.seq)
        .limit(_limit(limit))
    )
    return [AuditRecord(*r) for r in conn.execute(stmt)]


def account(conn: Connection, account_id: int) -> AccountSummary | None:
    """One account (with or without a client), or None."""
    a = s.accounts
    row = conn.execute(
        select(a.c.account_id, a.c.currency, a.c.tier, a.c.account_type, a.c.state,
               a.c.leverage, a.c.created_ns).where(a.c.account_id == account_id)
    ).first()  # fmt: skip
    return AccountSummary(*row) if row is not None else None
