"""Command handlers that touch accounts and symbols: open an account, set its state, halt."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trading import ledger as L
from trading.commands import Done, HaltSymbol, OpenAccount, SetAccountState
from trading.errors import ConflictError, InvalidInput
from trading.money import exponent
from trading.oms.handlers import Handler, Known, _Account
from trading.risk import AccountState
from trading.store.repository import account_row

if TYPE_CHECKING:
    from trading.oms.engine import OMS


def open_account(oms: OMS, cmd: OpenAccount, known: Known) -> Done:
    if cmd.account_id <= 0:
        raise InvalidInput(f"account id must be positive, got {cmd.account_id}")
    existing = oms._accounts.get(cmd.account_id)
    if existing is not None:
        if (existing.currency, existing.tier) != (cmd.currency, cmd.tier):
            raise ConflictError(f"account {cmd.account_id} exists with other terms")
        return Done(f"account:{cmd.account_id}", "exists")
    exponent(cmd.currency)
    if cmd.tier not in oms.config.risk.tiers:
        raise InvalidInput(f"unknown tier {cmd.tier!r}", tier=cmd.tier)
    ts = oms.clock()
    acct = _Account(cmd.account_id, cmd.currency, cmd.tier, AccountState.ACTIVE)
    oms._accounts[cmd.account_id] = acct
    oms._batch.add(
        "accounts", account_row(acct.account_id, acct.currency, acct.tier, acct.state.value, ts)
    )
    acct.cash_id = oms._ledger_id(
        L.client_cash(acct.account_id, acct.currency), acct.currency, acct.account_id
    )
    acct.margin_id = oms._ledger_id(
        L.client_margin(acct.account_id, acct.currency), acct.currency, acct.account_id
    )
    oms.journal.audit("account.open", f"account:{acct.account_id}",
                      {"currency": acct.currency, "tier": acct.tier})  # fmt: skip
    oms.journal.emit(acct.account_id, "account.opened", ts,
                     {"currency": acct.currency, "tier": acct.tier})  # fmt: skip
    return Done(f"account:{acct.account_id}", "opened")


def set_state(oms: OMS, cmd: SetAccountState, known: Known) -> Done:
    acct = oms._account(cmd.account_id)
    acct.state = cmd.state
    oms._batch.account_states[cmd.account_id] = cmd.state.value
    oms.journal.audit("account.state", f"account:{cmd.account_id}", {"state": cmd.state.value})
    return Done(f"account:{cmd.account_id}", cmd.state.value)


def halt(oms: OMS, cmd: HaltSymbol, known: Known) -> Done:
    inst = oms.catalogue.get(cmd.symbol)
    (oms._halted.add if cmd.halted else oms._halted.discard)(inst.symbol)
    oms._batch.halts[inst.symbol] = cmd.halted
    oms._batch.halt_ns, oms._batch.halt_actor = oms.clock(), oms.actor
    oms.journal.audit("symbol.halt", inst.symbol, {"halted": cmd.halted})
    oms.journal.emit_house(
        "symbol.halted" if cmd.halted else "symbol.resumed",
        oms._batch.halt_ns,
        {"symbol": inst.symbol, "reason": cmd.reason, "actor": cmd.actor or oms.actor},
    )
    return Done(f"symbol:{inst.symbol}", "halted" if cmd.halted else "resumed")


HANDLERS: dict[type, Handler] = {
    OpenAccount: open_account, SetAccountState: set_state, HaltSymbol: halt,
}  # fmt: skip
