"""The read side of clients, their accounts and the accounts' withdrawal destinations.

Read-only queries returning frozen dataclasses, as ``trading.store.read``. A destination is
listed with its display text (a masked IBAN), never the full instrument: paying out reads
the row itself, not this listing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, select

from trading.errors import InvalidInput
from trading.store import schema as s

MAX_CLIENTS = 1_000


@dataclass(frozen=True, slots=True)
class DestinationView:
    destination_id: int
    account_id: int
    kind: str  # bank | card | ewallet | crypto
    label: str
    currency: str
    display: str
    created_ns: int


@dataclass(frozen=True, slots=True)
class AccountSummary:
    account_id: int
    currency: str
    tier: str
    account_type: str  # margin | cash
    state: str
    leverage: int | None  # the account's own cap (SetLimits); None: the tier's
    created_ns: int


@dataclass(frozen=True, slots=True)
class ClientView:
    client_id: int
    kind: str  # person | entity
    name: str
    country: str
    email: str
    birth_date: dt.date | None
    lei: str | None
    national_id: str | None
    created_ns: int
    accounts: tuple[AccountSummary, ...]


def destinations(conn: Connection, account_id: int) -> list[DestinationView]:
    """The account's registered withdrawal destinations, oldest first."""
    d = s.withdrawal_destinations
    stmt = (
        select(d.c.destination_id, d.c.account_id, d.c.kind, d.c.label, d.c.currency,
               d.c.display, d.c.created_ns)
        .where(d.c.account_id == account_id)
        .order_by(d.c.destination_id)
    )  # fmt: skip
    return [DestinationView(*r) for r in conn.execute(stmt)]


def _accounts_of(conn: Connection, client_ids: list[int]) -> dict[int, list[AccountSummary]]:
    a = s.accounts
    stmt = (
        select(a.c.client_id, a.c.account_id, a.c.currency, a.c.tier, a.c.account_type,
               a.c.state, a.c.leverage, a.c.created_ns)
        .where(a.c.client_id.in_(client_ids))
        .order_by(a.c.account_id)
    )  # fmt: skip
    out: dict[int, list[AccountSummary]] = {}
    for r in conn.execute(stmt):
        out.setdefault(r.client_id, []).append(AccountSummary(*r[1:]))
    return out


def clients(conn: Connection, *, after_id: int = 0, limit: int = 100) -> list[ClientView]:
    """Clients in id order from after ``after_id`` (pass the last id back for the next
    page), each with its accounts."""
    if type(limit) is not int or not 1 <= limit <= MAX_CLIENTS:
        raise InvalidInput(f"a page holds 1..{MAX_CLIENTS} clients, got {limit!r}", field="limit")
    c = s.clients
    rows = conn.execute(
        select(c).where(c.c.client_id > after_id).order_by(c.c.client_id).limit(limit)
    ).all()
    accounts = _accounts_of(conn, [r.client_id for r in rows]) if rows else {}
    return [
        ClientView(r.client_id, r.kind, r.name, r.country, r.email, r.birth_date, r.lei,
                   r.national_id, r.created_ns, tuple(accounts.get(r.client_id, ())))
        for r in rows
    ]  # fmt: skip


def client(conn: Connection, client_id: int) -> ClientView | None:
    """One client with its accounts, or None."""
    found = clients(conn, after_id=client_id - 1, limit=1)
    return found[0] if found and found[0].client_id == client_id else None


def client_of_account(conn: Connection, account_id: int) -> ClientView | None:
    """The client who owns an account (None: no such account, or one without a client)."""
    owner = conn.execute(
        select(s.accounts.c.client_id).where(s.accounts.c.account_id == account_id)
    ).scalar()
    return None if owner is None else client(conn, owner)
