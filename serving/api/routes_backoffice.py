"""``/v1/back-office``: the staff's actions on withdrawals, accounts and symbols, and their
reads of clients and accounts.

Every route needs a staff session verified with 2FA (``deps.staff``: 403 ``forbidden`` for
another role, clients included; 403 ``mfa_required`` without the second factor). Every
action takes a required ``reason`` (422 ``invalid_input`` without one) and is sent to the OMS
through the bus as the acting user, ``api:user-{id}``: the OMS writes that actor and the
reason on every audit record the command makes.

| method | path | roles | command |
|---|---|---|---|
| GET | `/clients`, `/clients/{client_id}` | support, risk, compliance, admin | (read) |
| GET | `/accounts/{account_id}` | support, risk, compliance, admin | (read) |
| GET | `/withdrawals` | compliance, admin | (read: requested and held) |
| POST | `/withdrawals/{id}/approve`, `/reject` | compliance, admin | `DecideWithdrawal` |
| POST | `/withdrawals/{id}/hold`, `/release` | compliance, admin | `Hold`/`ReleaseWithdrawal` |
| PUT | `/accounts/{account_id}/limits` | risk, admin | `SetLimits` |
| PUT | `/accounts/{account_id}/state` | risk, admin | `SetAccountState` |
| POST | `/accounts/{account_id}/close` | risk, admin | `ClosePosition` |
| POST | `/symbols/halt`, `/symbols/resume` | risk, admin | `HaltSymbol` |
| GET | `/audit?subject=` | compliance, admin | (read: the audit log) |

Closing a position is under policy: the OMS's close only reduces (never opens or flips),
the reason is mandatory and only risk and admin may do it. Support reads but never acts.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from pipelines.positions.redis_read import read_account
from serving.api import problems
from serving.api.deps import Session, StateDep, staff
from serving.api.problems import Problem, result_of
from serving.api.schemas_office import (
    AccountDetailOut,
    AccountOut,
    ActionOut,
    AuditOut,
    BalanceOut,
    ClientOut,
    ClientsOut,
    CloseIn,
    CloseOut,
    LimitsIn,
    PositionOut,
    ReasonIn,
    StateIn,
    SymbolIn,
    WithdrawalOut,
    WithdrawalsOut,
    WithdrawalState,
)
from serving.api.state import ApiState
from trading.instrument import MAX_STORED_INT
from trading.money import format_minor
from trading.store import read_balances, read_clients, read_office

router = APIRouter(
    prefix="/v1/back-office", tags=["back-office"], responses=problems.responses(403, 404, 409, 504)
)

READERS = ("support", "risk", "compliance", "admin")
PAYMENTS = ("compliance", "admin")
RISK = ("risk", "admin")

Reader = Annotated[Session, Depends(staff(*READERS))]
Payments = Annotated[Session, Depends(staff(*PAYMENTS))]
Risk = Annotated[Session, Depends(staff(*RISK))]

Id = Annotated[int, Path(ge=1, le=MAX_STORED_INT)]
After = Annotated[int, Query(ge=0, le=MAX_STORED_INT, description="the last id of the page before")]
Limit = Annotated[int, Query(ge=1, le=500)]
AUDIT_SUBJECT = r"^[A-Za-z0-9][A-Za-z0-9/._:-]{0,63}$"


def actor_of(user: Session) -> str:
    """The audit log's name for a user acting through the API."""
    return f"api:user-{user.user_id}"


def _send(
    state: ApiState, user: Session, type_name: str, body: dict[str, Any], reason: str
) -> tuple[str, dict[str, Any]]:
    command_id = f"office-{state.bus.new_id()}"
    reply = state.bus.send_raw(
        type_name, body, command_id=command_id, reason=reason, actor=actor_of(user)
    )
    return command_id, result_of(reply)


def _action(
    state: ApiState, user: Session, type_name: str, body: dict[str, Any], reason: str
) -> ActionOut:
    command_id, result = _send(state, user, type_name, body, reason)
    return ActionOut(
        command_id=command_id, actor=actor_of(user), reason=reason,
        ref=str(result.get("ref", "")), detail=str(result.get("detail", "")),
    )  # fmt: skip


# -- withdrawals ---------------------------------------------------------------------------


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


@router.post("/withdrawals/{withdrawal_id}/approve", response_model=ActionOut)
def approve_withdrawal(
    withdrawal_id: Id, body: ReasonIn, user: Payments, state: StateDep
) -> ActionOut:
    """Pays out a requested withdrawal (a held one must be released first)."""
    return _action(state, user, "DecideWithdrawal",
                   {"withdrawal_id": withdrawal_id, "approve": True}, body.reason)  # fmt: skip


@router.post("/withdrawals/{withdrawal_id}/reject", response_model=ActionOut)
def reject_withdrawal(
    withdrawal_id: Id, body: ReasonIn, user: Payments, state: StateDep
) -> ActionOut:
    """Refuses a requested or held withdrawal: the reserved cash returns to the client."""
    return _action(state, user, "DecideWithdrawal",
                   {"withdrawal_id": withdrawal_id, "approve": False}, body.reason)  # fmt: skip


@router.post("/withdrawals/{withdrawal_id}/hold", response_model=ActionOut)
def hold_withdrawal(
    withdrawal_id: Id, body: ReasonIn, user: Payments, state: StateDep
) -> ActionOut:
    """Holds a requested withdrawal for review (no money moves)."""
    return _action(state, user, "HoldWithdrawal", {"withdrawal_id": withdrawal_id}, body.reason)


@router.post("/withdrawals/{withdrawal_id}/release", response_model=ActionOut)
def release_withdrawal(
    withdrawal_id: Id, body: ReasonIn, user: Payments, state: StateDep
) -> ActionOut:
    """Puts a held withdrawal back in the queue for a decision."""
    return _action(state, user, "ReleaseWithdrawal", {"withdrawal_id": withdrawal_id},
                   body.reason)  # fmt: skip


# -- accounts and symbols ------------------------------------------------------------------


@router.put("/accounts/{account_id}/limits", response_model=ActionOut)
def set_limits(account_id: Id, body: LimitsIn, user: Risk, state: StateDep) -> ActionOut:
    """Replaces the account's own leverage and limits (an absent one: the tier's)."""
    fields = body.model_dump(exclude={"reason"}, exclude_none=True)
    return _action(state, user, "SetLimits", {"account_id": account_id, **fields}, body.reason)


@router.put("/accounts/{account_id}/state", response_model=ActionOut)
def set_state(account_id: Id, body: StateIn, user: Risk, state: StateDep) -> ActionOut:
    """``active``, ``reducing_only`` (closing trades only) or ``halted`` (no trading, no
    withdrawal)."""
    return _action(state, user, "SetAccountState",
                   {"account_id": account_id, "state": body.state}, body.reason)  # fmt: skip


@router.post("/accounts/{account_id}/close", response_model=CloseOut)
def close_position(account_id: Id, body: CloseIn, user: Risk, state: StateDep) -> CloseOut:
    """A house market close of the account's position in ``symbol`` (all of it, or ``qty``
    lots): it only reduces, and goes through on a halted or reducing-only account."""
    order: dict[str, Any] = {"account_id": account_id, "symbol": body.symbol}
    if body.qty is not None:
        order["qty"] = body.qty
    command_id, r = _send(state, user, "ClosePosition", order, body.reason)
    return CloseOut(
        command_id=command_id, actor=actor_of(user), reason=body.reason,
        order_id=r["order_id"], account_id=r["account_id"], symbol=r["symbol"],
        status=r["status"], refusal=r.get("reason"), qty=r["qty"], filled_qty=r["filled_qty"],
        avg_price=r.get("avg_price"),
    )  # fmt: skip


@router.post("/symbols/halt", response_model=ActionOut)
def halt_symbol(body: SymbolIn, user: Risk, state: StateDep) -> ActionOut:
    """Stops trading in a symbol for every account (resting orders stay, none triggers)."""
    return _action(state, user, "HaltSymbol", {"symbol": body.symbol, "halted": True},
                   body.reason)  # fmt: skip


@router.post("/symbols/resume", response_model=ActionOut)
def resume_symbol(body: SymbolIn, user: Risk, state: StateDep) -> ActionOut:
    """Lifts a symbol's halt."""
    return _action(state, user, "HaltSymbol", {"symbol": body.symbol, "halted": False},
                   body.reason)  # fmt: skip


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
