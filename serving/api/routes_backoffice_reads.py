"""``/v1/back-office``: the staff's reads of clients, accounts, the withdrawals queue and
the audit log (the table of roles is in ``routes_backoffice``). Staff only, with 2FA."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query

from serving.api import problems
from serving.api.deps import StateDep
from serving.api.problems import Problem
from serving.api.routes_backoffice import Id, Payments, Reader
from serving.api.schemas_office import (
    AccountDetailOut,
    AccountOut,
    AuditOut,
    BalanceOut,
    ClientOut,
    ClientsOut,
    PositionOut,
    WithdrawalOut,
    WithdrawalsOut,
    WithdrawalState,
)
from trading.bus.risk import read_account
from trading.instrument import MAX_STORED_INT
from trading.money import format_minor
from trading.store import read_balances, read_clients, read_office

router = APIRouter(
    prefix="/v1/back-office", tags=["back-office"], responses=problems.responses(403, 404)
)

After = Annotated[int, Query(ge=0, le=MAX_STORED_INT, description="the last id of the page before")]
Limit = Annotated[int, Query(ge=1, le=500)]
AUDIT_SUBJECT = r"^[A-Za-z0-9][A-Za-z0-9/._:-]{0,63}$"


@router.get("/withdrawals", response_model=WithdrawalsOut)
def list_withdrawals(
    user: Payments,
    state: StateDep,
    status: Annotated[
        list[WithdrawalState] | None,
        Query(description="repeat for several; absent: requested and held"),
    ] = None,
    after: After = 0,
    limit: Limit = 100,
) -> WithdrawalsOut:
    """Withdrawals awaiting a decision (or of the statuses asked), oldest first."""
    statuses = [str(x) for x in status] if status else list(read_office.OPEN_STATUSES)
    with state.reader.connect() as conn:
        rows = read_office.withdrawals_queue(conn, statuses, after_id=after, limit=limit + 1)
    items = [
        WithdrawalOut(
            withdrawal_id=w.withdrawal_id, account_id=w.account_id, client_id=w.client_id,
            currency=w.currency, amount=format_minor(w.amount, w.currency), status=w.status,
            requested_ns=w.requested_ns, decided_ns=w.decided_ns,
            destination_id=w.destination_id, destination=w.destination,
            hold_reason=w.hold_reason,
        )
        for w in rows[:limit]
    ]  # fmt: skip
    more = len(rows) > limit
    return WithdrawalsOut(items=items, next_after=items[-1].withdrawal_id if more else None)


# -- reads ---------------------------------------------------------------------------------


def _account_out(a: read_clients.AccountSummary) -> AccountOut:
    return AccountOut(
        account_id=a.account_id, currency=a.currency, tier=a.tier,
        account_type=a.account_type, state=a.state, leverage=a.leverage,
        created_ns=a.created_ns,
    )  # fmt: skip


def _client_out(c: read_clients.ClientView) -> ClientOut:
    return ClientOut(
        client_id=c.client_id, kind=c.kind, name=c.name, country=c.country, email=c.email,
        birth_date=c.birth_date.isoformat() if c.birth_date else None, lei=c.lei,
        national_id=c.national_id, created_ns=c.created_ns,
        accounts=[_account_out(a) for a in c.accounts],
    )  # fmt: skip


@router.get("/clients", response_model=ClientsOut)
def list_clients(user: Reader, state: StateDep, after: After = 0, limit: Limit = 100) -> ClientsOut:
    """Clients in id order, each with its accounts."""
    with state.reader.connect() as conn:
        rows = read_clients.clients(conn, after_id=after, limit=limit + 1)
    items = [_client_out(c) for c in rows[:limit]]
    return ClientsOut(items=items, next_after=items[-1].client_id if len(rows) > limit else None)


@router.get("/clients/{client_id}", response_model=ClientOut)
def get_client(client_id: Id, user: Reader, state: StateDep) -> ClientOut:
    with state.reader.connect() as conn:
        found = read_clients.client(conn, client_id)
    if found is None:
        raise Problem.of("not_found", f"no client {client_id}")
    return _client_out(found)


def _text(value: object) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value


@router.get("/accounts/{account_id}", response_model=AccountDetailOut)
def get_account(account_id: Id, user: Reader, state: StateDep) -> AccountDetailOut:
    """An account with its client, its cash per currency and open positions from the store,
    and the positions flow's live risk figures."""
    catalogue = state.bus.ctx.catalogue
    with state.reader.connect() as conn:
        account = read_office.account(conn, account_id)
        if account is None:
            raise Problem.of("not_found", f"no account {account_id}")
        owner = read_clients.client_of_account(conn, account_id)
        cash = read_balances.balances(conn, account_id)
        positions = read_balances.open_positions(conn, account_id)
    live = read_account(state.redis, account_id)
    return AccountDetailOut(
        account=_account_out(account),
        client=_client_out(owner) if owner else None,
        balances=[
            BalanceOut(
                currency=b.currency,
                cash=format_minor(b.cash, b.currency),
                margin_held=format_minor(b.margin_held, b.currency),
                withdrawal_pending=format_minor(b.withdrawal_pending, b.currency),
            )
            for b in cash
        ],
        positions=[
            PositionOut(
                symbol=p.symbol,
                net_qty=str(catalogue.get(p.symbol).qty_from_int(p.net)),
                lots=len(p.lots),
            )
            for p in positions
        ],
        risk={k: _text(v) for k, v in live.items()} if live else None,
    )


@router.get("/audit", response_model=list[AuditOut])
def audit(
    user: Payments,
    state: StateDep,
    subject: Annotated[
        str,
        Query(
            pattern=AUDIT_SUBJECT,
            description="withdrawal:12, account:7, order:40; a symbol (EUR/USD) for its halts",
        ),
    ],
    after: After = 0,
    limit: Limit = 100,
) -> list[AuditOut]:
    """The audit records about one subject, in chain order: who did what, and why."""
    with state.reader.connect() as conn:
        rows = read_office.audit_of(conn, subject, after_seq=after, limit=limit)
    return [AuditOut(seq=r.seq, ts_ns=r.ts_ns, actor=r.actor, action=r.action,
                     subject=r.subject, payload=json.loads(r.payload)) for r in rows]  # fmt: skip
