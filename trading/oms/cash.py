"""Command handlers that move client money: deposits and withdrawals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trading import ledger as L
from trading.commands import DecideWithdrawal, Deposit, Done, RequestWithdrawal
from trading.errors import InsufficientFunds, InvalidInput, NotFound
from trading.money import exponent
from trading.oms.handlers import Handler, Known, _Withdrawal
from trading.store.repository import withdrawal_row

if TYPE_CHECKING:
    from trading.oms.engine import OMS


def _amount(what: str, amount: object) -> int:
    # Money is never a float: a float (or a bool) here would be stored as such.
    if type(amount) is not int or amount <= 0:
        raise InvalidInput(f"a {what} must be a positive integer of minor units, got {amount!r}")
    return amount


def deposit(oms: OMS, cmd: Deposit, known: Known) -> Done:
    acct = oms._account(cmd.account_id)
    exponent(cmd.currency)
    amount = _amount("deposit", cmd.amount)
    ts = oms.clock()
    txn = oms._post(
        L.entry("deposit", acct.account_id, cmd.ref,
                L.transfer(L.psp_clearing(cmd.currency),
                           L.client_cash(acct.account_id, cmd.currency), cmd.currency, amount)),
        ts,
    )  # fmt: skip
    oms.journal.audit("cash.deposit", f"account:{acct.account_id}",
                      {"amount": amount, "currency": cmd.currency, "ref": cmd.ref})  # fmt: skip
    oms.journal.emit(acct.account_id, "cash.deposited", ts,
                     {"amount": amount, "currency": cmd.currency, "txn_id": txn})  # fmt: skip
    return Done(f"txn:{txn}", "deposited")


def request_withdrawal(oms: OMS, cmd: RequestWithdrawal, known: Known) -> Done:
    acct = oms._account(cmd.account_id)
    exponent(cmd.currency)
    amount = _amount("withdrawal", cmd.amount)
    free = oms.cash_available(acct.account_id, cmd.currency)
    if cmd.currency == acct.currency:
        # Open positions' losses are not withdrawable.
        free = min(free, free + oms._unrealized(acct))
    if amount > free:
        raise InsufficientFunds(
            f"withdrawal of {amount} exceeds the {max(free, 0)} free ({cmd.currency} minor units)",
            requested=amount,
            free=free,
        )
    ts = oms.clock()
    wid = oms._next("withdrawal")
    oms._post(
        L.entry("withdrawal_hold", acct.account_id, f"withdrawal:{wid}",
                L.transfer(L.client_cash(acct.account_id, cmd.currency),
                           L.client_withdrawal_pending(acct.account_id, cmd.currency),
                           cmd.currency, amount)),
        ts,
    )  # fmt: skip
    oms._withdrawals[wid] = _Withdrawal(wid, acct.account_id, cmd.currency, amount, ts)
    oms._batch.withdrawals[wid] = withdrawal_row(
        wid, acct.account_id, cmd.currency, amount, "requested", ts, None
    )
    oms._batch.new_withdrawals.add(wid)
    oms.journal.audit("cash.withdrawal_request", f"withdrawal:{wid}",
                      {"account_id": acct.account_id, "amount": amount,
                       "currency": cmd.currency})  # fmt: skip
    oms.journal.emit(
        acct.account_id, "cash.withdrawal_requested", ts,
        {"withdrawal_id": wid, "amount": amount, "currency": cmd.currency},
    )  # fmt: skip
    return Done(f"withdrawal:{wid}", "requested")


def decide_withdrawal(oms: OMS, cmd: DecideWithdrawal, known: Known) -> Done:
    w = oms._withdrawals.get(cmd.withdrawal_id)
    if w is None:
        raise NotFound(f"no pending withdrawal {cmd.withdrawal_id}")
    ts = oms.clock()
    pending = L.client_withdrawal_pending(w.account_id, w.currency)
    if cmd.approve:
        postings = L.transfer(pending, L.psp_clearing(w.currency), w.currency, w.amount)
        status = "approved"
    else:
        cash = L.client_cash(w.account_id, w.currency)
        postings = L.transfer(pending, cash, w.currency, w.amount)
        status = "rejected"
    oms._post(
        L.entry(f"withdrawal_{status}", w.account_id, f"withdrawal:{w.withdrawal_id}", postings),
        ts,
    )
    del oms._withdrawals[w.withdrawal_id]
    oms._batch.withdrawals[w.withdrawal_id] = withdrawal_row(
        w.withdrawal_id, w.account_id, w.currency, w.amount, status, w.requested_ns, ts
    )
    oms.journal.audit(f"cash.withdrawal_{status}", f"withdrawal:{w.withdrawal_id}",
                      {"reason": cmd.reason})  # fmt: skip
    oms.journal.emit(w.account_id, f"cash.withdrawal_{status}", ts,
                     {"withdrawal_id": w.withdrawal_id, "amount": w.amount,
                      "currency": w.currency, "reason": cmd.reason})  # fmt: skip
    return Done(f"withdrawal:{w.withdrawal_id}", status)


HANDLERS: dict[type, Handler] = {
    Deposit: deposit, RequestWithdrawal: request_withdrawal, DecideWithdrawal: decide_withdrawal,
}  # fmt: skip
