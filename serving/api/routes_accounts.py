"""``/v1/accounts``: the caller's accounts, their balances, equity and margin.

Balances per currency are the ledger's (the store's read side). Equity, used and free
margin, the margin level and state are the positions flow's live figures
(``bourse:risk:account:{id}``, docs/risk.md) when it has written the account; otherwise
they are computed from the store with the quote snapshot as marks, and the margin state
from the default levels of the account's type (``source`` says which).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from serving.api.deps import CurrentUser, StateDep
from serving.api.problems import responses
from serving.api.state import ApiState
from serving.api.views import (
    Money,
    accounts_of,
    catalogue,
    money,
    owned_account,
    percent_text,
    quotes,
)
from trading.bus.risk import read_account
from trading.quotes import Quote
from trading.risk import DEFAULT_CALL_LEVEL, DEFAULT_STOP_OUT_LEVEL, margin_level
from trading.store.read_balances import account_snapshot, balances
from trading.store.read_clients import AccountSummary

router = APIRouter(prefix="/v1", tags=["accounts"])
_NOT_FOUND = responses(404)


class AccountSummaryOut(BaseModel):
    account_id: int
    currency: str
    account_type: str
    tier: str
    state: str
    leverage: int | None
    created_ns: int


class BalanceOut(BaseModel):
    currency: str
    cash: Money
    margin_held: Money
    withdrawal_pending: Money


class AccountOut(AccountSummaryOut):
    balances: list[BalanceOut]
    balance: Money  # cash + used margin in the account currency: before open PnL
    unrealized: Money
    equity: Money
    used_margin: Money
    free_margin: Money
    margin_level: str | None  # percent; null when no margin is used
    margin_state: Literal["ok", "margin_call", "stop_out"]
    unmarked: list[str]  # symbols whose PnL is not in the figures: no quote or no rate
    source: Literal["live", "store"]
    as_of_ns: int | None  # when the live figures were computed; null: now, from the store


def _summary(a: AccountSummary) -> dict[str, Any]:
    return {
        "account_id": a.account_id,
        "currency": a.currency,
        "account_type": a.account_type,
        "tier": a.tier,
        "state": a.state,
        "leverage": a.leverage,
        "created_ns": a.created_ns,
    }


@router.get("/accounts", response_model=list[AccountSummaryOut])
def list_accounts(user: CurrentUser, state: StateDep) -> list[AccountSummaryOut]:
    """The caller's accounts, oldest first."""
    with state.reader.connect() as conn:
        return [AccountSummaryOut(**_summary(a)) for a in accounts_of(conn, user)]


def _state_of(account_type: str, level: Decimal | None) -> Literal["ok", "margin_call", "stop_out"]:
    # The default levels: a deployment's own ones are the positions flow's, and its figures
    # (read from Redis first) carry the state it decided.
    if level is not None and level <= DEFAULT_STOP_OUT_LEVEL:
        return "stop_out"
    if level is not None and level <= DEFAULT_CALL_LEVEL:
        return "margin_call"
    return "ok"


def account_out(state: ApiState, account: AccountSummary) -> AccountOut:
    """An account's figures: live from the flow when it has them, else from the store."""
    ccy = account.currency
    live = read_account(state.redis, account.account_id)
    with state.reader.connect() as conn:
        cash = balances(conn, account.account_id)
        if live is None:
            seen: dict[str, Quote | None] = {}

            def marks(symbol: str) -> Quote | None:
                if symbol not in seen:
                    seen.update(quotes(state, [symbol]))
                return seen[symbol]

            snap = account_snapshot(conn, catalogue(), account.account_id, marks)
    rows = [
        BalanceOut(
            currency=b.currency,
            cash=money(b.cash, b.currency),
            margin_held=money(b.margin_held, b.currency),
            withdrawal_pending=money(b.withdrawal_pending, b.currency),
        )
        for b in cash
    ]
    if live is not None:
        level = live.get("margin_level")
        figures = {
            "balance": live["balance"],
            "unrealized": live["unrealized"],
            "equity": live["equity"],
            "used_margin": live["used_margin"],
            "free_margin": live["free_margin"],
        }
        margin_state = live.get("margin_state") or _state_of(account.account_type, level)
        unmarked, source, as_of = list(live.get("unmarked") or []), "live", live.get("ts_ns")
    else:
        level = margin_level(snap.equity, snap.margin_held)
        figures = {
            "balance": snap.equity - snap.unrealized,
            "unrealized": snap.unrealized,
            "equity": snap.equity,
            "used_margin": snap.margin_held,
            "free_margin": snap.free_margin,
        }
        margin_state = _state_of(account.account_type, level)
        unmarked, source, as_of = list(snap.unmarked), "store", None
    return AccountOut(
        **_summary(account),
        balances=rows,
        **{k: money(v, ccy) for k, v in figures.items()},
        margin_level=percent_text(level),
        margin_state=margin_state,
        unmarked=unmarked,
        source=source,
        as_of_ns=as_of,
    )


@router.get("/accounts/{account_id}", response_model=AccountOut, responses=_NOT_FOUND)
def get_account(account_id: int, user: CurrentUser, state: StateDep) -> AccountOut:
    """One of the caller's accounts with its balances, equity and margin; another client's
    is 404."""
    with state.reader.connect() as conn:
        account = owned_account(conn, user, account_id)
    return account_out(state, account)
