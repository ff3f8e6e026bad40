"""Command handlers that move client money: deposits, withdrawal destinations, withdrawals
(requested, held and released, approved or rejected along ``WITHDRAWAL_TRANSITIONS``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from trading import ledger as L
from trading.commands import (
    AddDestination,
    DecideWithdrawal,
    Deposit,
    Done,
    HoldWithdrawal,
    ReleaseWithdrawal,
    RequestWithdrawal,
)
from trading.errors import (
    AccountHalted,
    ConflictError,
    DestinationNotRegistered,
    InsufficientFunds,
    InvalidFunding,
    InvalidInput,
    NotFound,
)
from trading.funding import (
    DepositTerms,
    DestinationKind,
    WithdrawalStatus,
    check_deposit_replay,
    check_fingerprint,
    check_label,
    check_provider,
    check_provider_ref,
    check_withdrawal_transition,
)
from trading.money import exponent
from trading.oms.handlers import Handler, Known, _Destination, _Withdrawal
from trading.risk import AccountState
from trading.store import schema as s
from trading.store.domain_rows import deposit_row, destination_row
from trading.store.repository import Snapshot, withdrawal_row

if TYPE_CHECKING:
    from trading.oms.engine import OMS

W = WithdrawalStatus
_DestinationKey = tuple[int, str, str, str]  # account, kind, instrument, currency


def load(
    snap: Snapshot,
) -> tuple[dict[int, _Withdrawal], dict[int, _Destination], dict[_DestinationKey, int]]:
    """Pending withdrawals and every registered destination, as stored."""
    withdrawals = {
        r.withdrawal_id: _Withdrawal(
            r.withdrawal_id, r.account_id, r.currency, r.amount, r.requested_ns,
            W(r.status), r.destination_id, r.held_ns, r.hold_reason, r.released_ns,
            r.release_reason,
        )
        for r in snap.pending_withdrawals
    }  # fmt: skip
    destinations = {
        r.destination_id: _Destination(r.destination_id, r.account_id, r.kind, r.label,
                                       r.currency, r.instrument, r.display)
        for r in snap.destinations
    }  # fmt: skip
    keys = {(d.account_id, d.kind, d.instrument, d.currency): i for i, d in destinations.items()}
    return withdrawals, destinations, keys


def prefetch_deposits(conn: Connection, refs: Collection[tuple[str, str]]) -> dict[Any, Any]:
    """The stored deposits under a batch's (provider, provider reference) keys."""
    d = s.deposits
    rows = conn.execute(
        select(d).where(
            d.c.provider.in_({p for p, _ in refs}), d.c.provider_ref.in_({r for _, r in refs})
        )
    )
    return {(r.provider, r.provider_ref): r for r in rows if (r.provider, r.provider_ref) in refs}


def _amount(what: str, amount: object) -> int:
    # Money is never a float: a float (or a bool) here would be stored as such.
    if type(amount) is not int or amount <= 0:
        raise InvalidInput(f"a {what} must be a positive integer of minor units, got {amount!r}")
    return amount


def _terms(row: Any) -> DepositTerms:
    """The terms of a deposits row: a dict of this batch's, or a stored row."""
    m = row if isinstance(row, dict) else row._mapping
    return DepositTerms(m["account_id"], m["currency"], m["amount"], m["method"],
                        m["instrument_fingerprint"])  # fmt: skip


def deposit(oms: OMS, cmd: Deposit, known: Known) -> Done:
    acct = oms._account(cmd.account_id)
    exponent(cmd.currency)
    amount = _amount("deposit", cmd.amount)
    key: tuple[str, str] | None = None
    if (cmd.provider is None) != (cmd.provider_ref is None):
        raise InvalidFunding("a provider and its reference go together", field="provider_ref")
    if cmd.provider is not None and cmd.provider_ref is not None:
        key = (check_provider(cmd.provider), check_provider_ref(cmd.provider_ref))
        original = (
            oms._batch.by_provider_ref.get(key)
            or oms._inflight_deposits.get(key)
            or known.deposits.get(key)
        )
        if original is not None:
            repeat = DepositTerms(acct.account_id, cmd.currency, amount,
                                  None if cmd.method is None else cmd.method.value,
                                  cmd.instrument_fingerprint)  # fmt: skip
            check_deposit_replay(key[0], key[1], _terms(original), repeat)
            txn = (original if isinstance(original, dict) else original._mapping)["txn_id"]
            return Done(f"txn:{txn}", "duplicate")
    if cmd.instrument_fingerprint is not None:
        check_fingerprint(cmd.instrument_fingerprint)
    ts = oms.clock()
    txn = oms._post(
        L.entry("deposit", acct.account_id, cmd.ref,
                L.transfer(L.psp_clearing(cmd.currency),
                           L.client_cash(acct.account_id, cmd.currency), cmd.currency, amount)),
        ts,
    )  # fmt: skip
    row = deposit_row(cmd, oms._next("deposit"), txn, ts)
    oms._batch.add("deposits", row)
    if key is not None:
        oms._batch.by_provider_ref[key] = row
    method = {} if cmd.method is None else {"method": cmd.method.value}
    # The fraud flow counts the cards and wallets an account funds from.
    shown = {} if cmd.instrument_fingerprint is None else {
        "instrument_fingerprint": cmd.instrument_fingerprint}  # fmt: skip
    oms.journal.audit("cash.deposit", f"account:{acct.account_id}",
                      {"amount": amount, "currency": cmd.currency, "ref": cmd.ref, **method,
                       "provider": cmd.provider, "provider_ref": cmd.provider_ref})  # fmt: skip
    oms.journal.emit(acct.account_id, "cash.deposited", ts,
                     {"amount": amount, "currency": cmd.currency, "txn_id": txn, **method,
                      **shown, "deposit_id": row["deposit_id"]})  # fmt: skip
    return Done(f"txn:{txn}", "deposited")


def add_destination(oms: OMS, cmd: AddDestination, known: Known) -> Done:
    acct = oms._account(cmd.account_id)
    exponent(cmd.currency)
    kind = DestinationKind(cmd.kind)
    label = check_label(cmd.label)
    ts = oms.clock()
    row = destination_row(cmd, oms._ids["destination"] + 1, ts)  # checks the instrument
    key = (acct.account_id, kind.value, row["instrument"], cmd.currency)
    existing = oms._destination_keys.get(key)
    if existing is not None:
        if oms._destinations[existing].label != label:
            raise ConflictError(
                f"destination {existing} is registered under another label",
                destination_id=existing,
            )
        return Done(f"destination:{existing}", "exists")
    did = oms._next("destination")
    oms._destinations[did] = _Destination(
        did, acct.account_id, kind.value, label, cmd.currency, row["instrument"], row["display"]
    )
    oms._destination_keys[key] = did
    oms._batch.add("withdrawal_destinations", row)
    # The display (a masked IBAN) only: the full instrument stays in its row.
    shown = {"destination_id": did, "kind": kind.value, "label": label,
             "currency": cmd.currency, "display": row["display"]}  # fmt: skip
    oms.journal.audit("cash.destination_add", f"account:{acct.account_id}", shown)
    oms.journal.emit(acct.account_id, "cash.destination_added", ts, shown)
    return Done(f"destination:{did}", "added")


def _row(w: _Withdrawal, decided_ns: int | None = None, reason: str | None = None) -> Any:
    return withdrawal_row(
        w.withdrawal_id, w.account_id, w.currency, w.amount, w.status.value, w.requested_ns,
        decided_ns, destination_id=w.destination_id, held_ns=w.held_ns,
        hold_reason=w.hold_reason, released_ns=w.released_ns, release_reason=w.release_reason,
        decision_reason=reason,
    )  # fmt: skip


def request_withdrawal(oms: OMS, cmd: RequestWithdrawal, known: Known) -> Done:
    acct = oms._account(cmd.account_id)
    if acct.state is AccountState.HALTED:
        raise AccountHalted(
            f"account {acct.account_id} is halted: no withdrawal", account_id=acct.account_id
        )
    exponent(cmd.currency)
    dest = oms._destinations.get(cmd.destination_id) if cmd.destination_id is not None else None
    if dest is None or dest.account_id != acct.account_id or dest.currency != cmd.currency:
        raise DestinationNotRegistered(
            f"withdrawals go to a destination registered on account {acct.account_id} in "
            f"{cmd.currency}; {cmd.destination_id!r} is not one",
            destination_id=cmd.destination_id,
        )
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
    w = oms._withdrawals[wid] = _Withdrawal(wid, acct.account_id, cmd.currency, amount, ts)
    w.destination_id = dest.destination_id
    oms._batch.withdrawals[wid] = _row(w)
    oms._batch.new_withdrawals.add(wid)
    oms.journal.audit(
        "cash.withdrawal_request", f"withdrawal:{wid}",
        {"account_id": acct.account_id, "amount": amount, "currency": cmd.currency,
         "destination_id": dest.destination_id},
    )  # fmt: skip
    oms.journal.emit(
        acct.account_id, "cash.withdrawal_requested", ts,
        {"withdrawal_id": wid, "amount": amount, "currency": cmd.currency,
         "destination_id": dest.destination_id, "kind": dest.kind},
    )  # fmt: skip
    return Done(f"withdrawal:{wid}", "requested")


def _pending(oms: OMS, withdrawal_id: int) -> _Withdrawal:
    w = oms._withdrawals.get(withdrawal_id)
    if w is None:
        raise NotFound(f"no pending withdrawal {withdrawal_id}")
    return w


def _hold_or_release(oms: OMS, w: _Withdrawal, to: WithdrawalStatus, reason: str) -> Done:
    """Hold (requested -> held) or release (held -> requested): no money moves, the funds
    stay in withdrawals pending; the latest hold and release are on the row."""
    check_withdrawal_transition(w.status, to)
    ts = oms.clock()
    w.status = to
    if to is W.HELD:
        w.held_ns, w.hold_reason, what = ts, reason, "held"
    else:
        w.released_ns, w.release_reason, what = ts, reason, "released"
    oms._batch.withdrawals[w.withdrawal_id] = _row(w)
    oms.journal.audit(f"cash.withdrawal_{what}", f"withdrawal:{w.withdrawal_id}",
                      {"account_id": w.account_id, "reason": reason})  # fmt: skip
    oms.journal.emit(w.account_id, f"cash.withdrawal_{what}", ts,
                     {"withdrawal_id": w.withdrawal_id, "amount": w.amount,
                      "currency": w.currency, "reason": reason})  # fmt: skip
    return Done(f"withdrawal:{w.withdrawal_id}", what)


def hold_withdrawal(oms: OMS, cmd: HoldWithdrawal, known: Known) -> Done:
    return _hold_or_release(oms, _pending(oms, cmd.withdrawal_id), W.HELD, cmd.reason)


def release_withdrawal(oms: OMS, cmd: ReleaseWithdrawal, known: Known) -> Done:
    return _hold_or_release(oms, _pending(oms, cmd.withdrawal_id), W.REQUESTED, cmd.reason)


def decide_withdrawal(oms: OMS, cmd: DecideWithdrawal, known: Known) -> Done:
    w = _pending(oms, cmd.withdrawal_id)
    status = W.APPROVED if cmd.approve else W.REJECTED
    # A held withdrawal may be rejected, but must be released before it is approved.
    check_withdrawal_transition(w.status, status)
    ts = oms.clock()
    pending = L.client_withdrawal_pending(w.account_id, w.currency)
    if cmd.approve:
        postings = L.transfer(pending, L.psp_clearing(w.currency), w.currency, w.amount)
    else:
        cash = L.client_cash(w.account_id, w.currency)
        postings = L.transfer(pending, cash, w.currency, w.amount)
    oms._post(
        L.entry(f"withdrawal_{status.value}", w.account_id, f"withdrawal:{w.withdrawal_id}",
                postings),
        ts,
    )  # fmt: skip
    del oms._withdrawals[w.withdrawal_id]
    w.status = status
    oms._batch.withdrawals[w.withdrawal_id] = _row(w, ts, cmd.reason or None)
    oms.journal.audit(f"cash.withdrawal_{status.value}", f"withdrawal:{w.withdrawal_id}",
                      {"reason": cmd.reason})  # fmt: skip
    oms.journal.emit(w.account_id, f"cash.withdrawal_{status.value}", ts,
                     {"withdrawal_id": w.withdrawal_id, "amount": w.amount,
                      "currency": w.currency, "reason": cmd.reason})  # fmt: skip
    return Done(f"withdrawal:{w.withdrawal_id}", status.value)


HANDLERS: dict[type, Handler] = {
    Deposit: deposit, AddDestination: add_destination, RequestWithdrawal: request_withdrawal,
    HoldWithdrawal: hold_withdrawal, ReleaseWithdrawal: release_withdrawal,
    DecideWithdrawal: decide_withdrawal,
}  # fmt: skip
