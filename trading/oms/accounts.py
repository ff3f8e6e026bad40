"""Command handlers that touch clients, accounts and symbols: create a client, open an
account for one, set its limits and its state, halt a symbol. Each is audited (with the
command's actor and reason, set by the dispatcher) and evented."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trading import ledger as L
from trading.accounts import (
    LimitOverrides,
    check_leverage_override,
    check_overrides,
    effective_limits,
)
from trading.clients import Client, check_client
from trading.commands import (
    CreateClient,
    Done,
    HaltSymbol,
    OpenAccount,
    SetAccountState,
    SetLimits,
)
from trading.config import RiskConfig
from trading.errors import ConflictError, InvalidInput, UnknownClient
from trading.instrument import AccountType
from trading.money import exponent
from trading.oms.handlers import Handler, Known, _Account
from trading.risk import AccountState
from trading.store.domain_rows import client_row, limits_from_row, limits_of, limits_row
from trading.store.repository import Snapshot, account_row

if TYPE_CHECKING:
    from trading.oms.engine import OMS


def _client_terms(c: Any) -> str:
    """What a repeated CreateClient must carry again to be the same client."""
    birth = c.birth_date.isoformat() if c.birth_date is not None else ""
    kind = getattr(c.kind, "value", c.kind)
    return "|".join((kind, c.name, c.country, c.email, birth, c.lei or "", c.national_id or ""))


def load(
    snap: Snapshot, ledger_ids: Mapping[str, int], risk: RiskConfig
) -> tuple[dict[int, str], dict[int, _Account]]:
    """The clients (id -> their terms) and the accounts, with their limits, as stored."""
    clients = {r.client_id: _client_terms(r) for r in snap.clients}
    accounts: dict[int, _Account] = {}
    for r in snap.accounts:
        acct = _Account(r.account_id, r.currency, r.tier, AccountState(r.state))
        acct.cash_id = ledger_ids.get(L.client_cash(r.account_id, r.currency), 0)
        acct.margin_id = ledger_ids.get(L.client_margin(r.account_id, r.currency), 0)
        acct.client_id = r.client_id
        acct.account_type = AccountType(r.account_type)
        acct.leverage = r.leverage
        accounts[r.account_id] = acct
    for r in snap.account_limits:
        acct = accounts[r.account_id]
        _set_overrides(acct, limits_from_row(r), risk)
    return clients, accounts


def _set_overrides(acct: _Account, overrides: LimitOverrides, risk: RiskConfig) -> None:
    acct.overrides = None if overrides.empty else overrides
    acct.limits = None if overrides.empty else effective_limits(risk.tiers[acct.tier], overrides)


def create_client(oms: OMS, cmd: CreateClient, known: Known) -> Done:
    ts = oms.clock()
    as_of = dt.datetime.fromtimestamp(ts // 1_000_000_000, dt.UTC).date()
    client = check_client(
        Client(cmd.client_id, cmd.kind, cmd.name, cmd.country, cmd.email, cmd.birth_date,
               cmd.lei, cmd.national_id),
        as_of,
    )  # fmt: skip
    terms = _client_terms(client)
    existing = oms._clients.get(client.client_id)
    if existing is not None:
        if existing != terms:
            raise ConflictError(f"client {client.client_id} exists with other terms")
        return Done(f"client:{client.client_id}", "exists")
    oms._clients[client.client_id] = terms
    oms._batch.add("clients", client_row(cmd, ts))
    # Personal data stays in the clients table: the audit chain is kept forever.
    oms.journal.audit("client.create", f"client:{client.client_id}",
                      {"kind": client.kind.value, "country": client.country})  # fmt: skip
    return Done(f"client:{client.client_id}", "created")


def open_account(oms: OMS, cmd: OpenAccount, known: Known) -> Done:
    if type(cmd.account_id) is not int or cmd.account_id <= 0:
        raise InvalidInput(f"account id must be positive, got {cmd.account_id}")
    account_type = AccountType(cmd.account_type)
    existing = oms._accounts.get(cmd.account_id)
    if existing is not None:
        if (existing.currency, existing.tier, existing.client_id, existing.account_type) != (
            cmd.currency, cmd.tier, cmd.client_id, account_type
        ):  # fmt: skip
            raise ConflictError(f"account {cmd.account_id} exists with other terms")
        return Done(f"account:{cmd.account_id}", "exists")
    exponent(cmd.currency)
    if cmd.tier not in oms.config.risk.tiers:
        raise InvalidInput(f"unknown tier {cmd.tier!r}", tier=cmd.tier)
    if cmd.client_id is not None and cmd.client_id not in oms._clients:
        raise UnknownClient(f"client {cmd.client_id} does not exist", client_id=cmd.client_id)
    ts = oms.clock()
    acct = _Account(cmd.account_id, cmd.currency, cmd.tier, AccountState.ACTIVE)
    acct.client_id, acct.account_type = cmd.client_id, account_type
    oms._accounts[cmd.account_id] = acct
    oms._batch.add(
        "accounts",
        account_row(acct.account_id, acct.currency, acct.tier, acct.state.value, ts,
                    acct.client_id, account_type.value),
    )  # fmt: skip
    acct.cash_id = oms._ledger_id(
        L.client_cash(acct.account_id, acct.currency), acct.currency, acct.account_id
    )
    acct.margin_id = oms._ledger_id(
        L.client_margin(acct.account_id, acct.currency), acct.currency, acct.account_id
    )
    terms: dict[str, Any] = {"currency": acct.currency, "tier": acct.tier,
                             "account_type": account_type.value}  # fmt: skip
    if acct.client_id is not None:
        terms["client_id"] = acct.client_id
    oms.journal.audit("account.open", f"account:{acct.account_id}", terms)
    oms.journal.emit(acct.account_id, "account.opened", ts, terms)
    return Done(f"account:{acct.account_id}", "opened")


def set_limits(oms: OMS, cmd: SetLimits, known: Known) -> Done:
    acct = oms._account(cmd.account_id)
    cap = oms.config.risk.max_leverage_by_tier.get(acct.tier, 1)
    leverage = check_leverage_override(cmd.leverage, cap)
    overrides = check_overrides(limits_of(cmd))
    ts = oms.clock()
    acct.leverage = leverage
    _set_overrides(acct, overrides, oms.config.risk)
    oms._batch.account_leverage[acct.account_id] = leverage
    oms._batch.account_limits[acct.account_id] = None if overrides.empty else limits_row(cmd, ts)

    def text(value: object) -> str | None:
        return None if value is None else str(value)

    payload: dict[str, Any] = {
        "leverage": leverage,
        "max_position_lots": text(overrides.max_position_lots),
        "max_order_lots": text(overrides.max_order_lots),
        "max_order_notional": text(overrides.max_order_notional),
        "max_orders_per_second": overrides.max_orders_per_second,
    }
    oms.journal.audit("account.limits", f"account:{acct.account_id}", payload)
    oms.journal.emit(acct.account_id, "account.limits_set", ts, {**payload, "reason": cmd.reason})
    return Done(f"account:{acct.account_id}", "limits set")


def set_state(oms: OMS, cmd: SetAccountState, known: Known) -> Done:
    acct = oms._account(cmd.account_id)
    state = AccountState(cmd.state)
    if state is acct.state:
        return Done(f"account:{cmd.account_id}", "unchanged")
    previous, acct.state = acct.state, state
    oms._batch.account_states[cmd.account_id] = state.value
    oms.journal.audit("account.state", f"account:{cmd.account_id}",
                      {"state": state.value, "previous": previous.value})  # fmt: skip
    oms.journal.emit(cmd.account_id, "account.state_changed", oms.clock(),
                     {"state": state.value, "previous": previous.value,
                      "reason": cmd.reason})  # fmt: skip
    return Done(f"account:{cmd.account_id}", state.value)


def halt(oms: OMS, cmd: HaltSymbol, known: Known) -> Done:
    inst = oms.catalogue.get(cmd.symbol)
    detail = "halted" if cmd.halted else "resumed"
    if (inst.symbol in oms._halted) is cmd.halted:
        return Done(f"symbol:{inst.symbol}", "unchanged")
    (oms._halted.add if cmd.halted else oms._halted.discard)(inst.symbol)
    ts = oms.clock()
    oms._batch.halts[inst.symbol] = cmd.halted
    oms._batch.halt_ns, oms._batch.halt_actor = ts, cmd.actor or oms.actor
    oms.journal.audit("symbol.halt", inst.symbol, {"halted": cmd.halted})
    oms.journal.emit_house(
        f"symbol.{detail}",
        ts,
        {"symbol": inst.symbol, "reason": cmd.reason, "actor": cmd.actor or oms.actor},
    )
    return Done(f"symbol:{inst.symbol}", detail)


HANDLERS: dict[type, Handler] = {
    CreateClient: create_client, OpenAccount: open_account, SetLimits: set_limits,
    SetAccountState: set_state, HaltSymbol: halt,
}  # fmt: skip
