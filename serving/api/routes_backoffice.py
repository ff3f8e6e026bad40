"""``/v1/back-office``: the staff's actions on withdrawals, accounts and symbols, and their
reads (``routes_backoffice_reads.py``: clients, accounts, the withdrawals queue, audit).

Every route needs a staff session verified with 2FA (``deps.staff``: 403 ``forbidden`` for
another role, clients included; 403 ``mfa_required`` without the second factor). Every
action takes a required ``reason`` (422 ``invalid_input`` without one) and is sent to the OMS
through the bus as the acting user, ``api:user-{id}``: the OMS writes that actor and the
reason on every audit record the command makes. An optional ``Idempotency-Key`` header makes
an action safe to send again (after a timeout): the same key answers the first result, with
another body 409 ``duplicate_command_id``.

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

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path

from serving.api import problems
from serving.api.deps import Session, StateDep, staff
from serving.api.problems import result_of
from serving.api.schemas_office import (
    ActionOut,
    CloseIn,
    CloseOut,
    LimitsIn,
    ReasonIn,
    StateIn,
    SymbolIn,
)
from serving.api.state import ApiState
from trading.instrument import MAX_STORED_INT

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
Key = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,31}$",
        description="sent again (after a timeout), the same key answers the first result",
    ),
]  # fmt: skip


def actor_of(user: Session) -> str:
    """The audit log's name for a user acting through the API."""
    return f"api:user-{user.user_id}"


def _send(
    state: ApiState,
    user: Session,
    type_name: str,
    body: dict[str, Any],
    reason: str,
    key: str | None,
) -> tuple[str, dict[str, Any]]:
    # A key is the user's own: the same key again answers the first action's result (sent
    # again after a timeout, it never acts twice); with another body, 409. At most
    # 7 + 19 + 1 + 32 characters: a command id holds 64.
    command_id = f"office-{user.user_id}-{key}" if key else f"office-{state.bus.new_id()}"
    reply = state.bus.send_raw(
        type_name, body, state.settings.api_command_timeout_s, command_id=command_id,
        reason=reason, actor=actor_of(user),
    )  # fmt: skip
    return command_id, result_of(reply)


def _action(
    state: ApiState,
    user: Session,
    type_name: str,
    body: dict[str, Any],
    reason: str,
    key: str | None,
) -> ActionOut:
    command_id, result = _send(state, user, type_name, body, reason, key)
    return ActionOut(
        command_id=command_id, actor=actor_of(user), reason=reason,
        ref=str(result.get("ref", "")), detail=str(result.get("detail", "")),
    )  # fmt: skip


# -- withdrawals ---------------------------------------------------------------------------


@router.post("/withdrawals/{withdrawal_id}/approve", response_model=ActionOut)
def approve_withdrawal(
    withdrawal_id: Id, body: ReasonIn, user: Payments, state: StateDep, key: Key = None
) -> ActionOut:
    """Pays out a requested withdrawal (a held one must be released first)."""
    decision = {"withdrawal_id": withdrawal_id, "approve": True}
    return _action(state, user, "DecideWithdrawal", decision, body.reason, key)


@router.post("/withdrawals/{withdrawal_id}/reject", response_model=ActionOut)
def reject_withdrawal(
    withdrawal_id: Id, body: ReasonIn, user: Payments, state: StateDep, key: Key = None
) -> ActionOut:
    """Refuses a requested or held withdrawal: the reserved cash returns to the client."""
    decision = {"withdrawal_id": withdrawal_id, "approve": False}
    return _action(state, user, "DecideWithdrawal", decision, body.reason, key)


@router.post("/withdrawals/{withdrawal_id}/hold", response_model=ActionOut)
def hold_withdrawal(
    withdrawal_id: Id, body: ReasonIn, user: Payments, state: StateDep, key: Key = None
) -> ActionOut:
    """Holds a requested withdrawal for review (no money moves)."""
    return _action(
        state, user, "HoldWithdrawal", {"withdrawal_id": withdrawal_id}, body.reason, key
    )


@router.post("/withdrawals/{withdrawal_id}/release", response_model=ActionOut)
def release_withdrawal(
    withdrawal_id: Id, body: ReasonIn, user: Payments, state: StateDep, key: Key = None
) -> ActionOut:
    """Puts a held withdrawal back in the queue for a decision."""
    return _action(state, user, "ReleaseWithdrawal", {"withdrawal_id": withdrawal_id},
                   body.reason, key)  # fmt: skip


# -- accounts and symbols ------------------------------------------------------------------


@router.put("/accounts/{account_id}/limits", response_model=ActionOut)
def set_limits(
    account_id: Id, body: LimitsIn, user: Risk, state: StateDep, key: Key = None
) -> ActionOut:
    """Replaces the account's own leverage and limits (an absent one: the tier's)."""
    fields = body.model_dump(exclude={"reason"}, exclude_none=True)
    return _action(state, user, "SetLimits", {"account_id": account_id, **fields}, body.reason, key)


@router.put("/accounts/{account_id}/state", response_model=ActionOut)
def set_state(
    account_id: Id, body: StateIn, user: Risk, state: StateDep, key: Key = None
) -> ActionOut:
    """``active``, ``reducing_only`` (closing trades only) or ``halted`` (no trading, no
    withdrawal)."""
    return _action(state, user, "SetAccountState",
                   {"account_id": account_id, "state": body.state}, body.reason, key)  # fmt: skip


@router.post("/accounts/{account_id}/close", response_model=CloseOut)
def close_position(
    account_id: Id, body: CloseIn, user: Risk, state: StateDep, key: Key = None
) -> CloseOut:
    """A house market close of the account's position in ``symbol`` (all of it, or ``qty``
    lots): it only reduces, and goes through on a halted or reducing-only account."""
    order: dict[str, Any] = {"account_id": account_id, "symbol": body.symbol}
    if body.qty is not None:
        order["qty"] = body.qty
    command_id, r = _send(state, user, "ClosePosition", order, body.reason, key)
    return CloseOut(
        command_id=command_id, actor=actor_of(user), reason=body.reason,
        order_id=r["order_id"], account_id=r["account_id"], symbol=r["symbol"],
        status=r["status"], refusal=r.get("reason"), qty=r["qty"], filled_qty=r["filled_qty"],
        avg_price=r.get("avg_price"),
    )  # fmt: skip


@router.post("/symbols/halt", response_model=ActionOut)
def halt_symbol(body: SymbolIn, user: Risk, state: StateDep, key: Key = None) -> ActionOut:
    """Halts a symbol for every account: the OMS's pre-trade check refuses its orders."""
    return _action(state, user, "HaltSymbol", {"symbol": body.symbol, "halted": True},
                   body.reason, key)  # fmt: skip


@router.post("/symbols/resume", response_model=ActionOut)
def resume_symbol(body: SymbolIn, user: Risk, state: StateDep, key: Key = None) -> ActionOut:
    """Lifts a symbol's halt."""
    return _action(state, user, "HaltSymbol", {"symbol": body.symbol, "halted": False},
                   body.reason, key)  # fmt: skip
