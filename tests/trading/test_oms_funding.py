"""Funding through the OMS on SQLite and PostgreSQL: deposits idempotent on the provider's
reference (within a batch, across batches in flight, across restarts), destinations shown
masked, withdrawals only to them and not from a halted account, holds and releases."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.trading.builders import Rig, make_oms, make_rig, store_snapshot
from trading import ledger as L
from trading.commands import (
    AddDestination,
    DecideWithdrawal,
    Deposit,
    Done,
    HoldWithdrawal,
    ReleaseWithdrawal,
    RequestWithdrawal,
    SetAccountState,
)
from trading.errors import (
    AccountHalted,
    CardNumberRefused,
    ConflictError,
    InvalidIban,
    InvalidStateTransition,
)
from trading.funding import DepositMethod, DestinationKind
from trading.risk import AccountState
from trading.store import schema as s
from trading.store.read import deposits, withdrawals
from trading.store.read_clients import destinations

IBAN = "DE89 3704 0044 0532 0130 00"


def card(amount: int = 50_000, ref: str = "pi_1", fingerprint: str = "tok_visa_4242") -> Deposit:
    return Deposit(1, "USD", amount, ref, DepositMethod.CARD, fingerprint, "stripe", ref,
                   actor="psp-gateway")  # fmt: skip


@pytest.fixture
def rig(store_dsn: str) -> Rig:
    rig = make_rig(store_dsn)
    rig.open_accounts(1, 2)
    return rig


def _ok(rig: Rig, *cmds: Any) -> list[Any]:
    results = rig.oms.execute(list(cmds))
    assert not any(isinstance(r, Exception) for r in results), results
    return results


def _refused(rig: Rig, cmd: Any, error: type[Exception], code: str) -> None:
    before = store_snapshot(rig.engine)
    [result] = rig.oms.execute([cmd])
    assert isinstance(result, error), result
    assert result.code == code  # type: ignore[attr-defined]
    assert store_snapshot(rig.engine) == before


def _id(done: Any) -> int:
    assert isinstance(done, Done), done
    return int(done.ref.split(":")[1])


def _rows(rig: Rig, table: Any) -> list[Any]:
    with rig.engine.connect() as conn:
        return conn.execute(select(table)).all()


# -- deposits ----------------------------------------------------------------------------------


def test_deposit_when_provider_ref_repeats_then_the_original_within_a_batch_and_after_restart(
    rig: Rig,
) -> None:
    cash = rig.oms.cash_available(1)
    first, again = _ok(rig, card(), card())
    assert first.detail == "deposited" and again == Done(first.ref, "duplicate")
    assert rig.oms.cash_available(1) == cash + 50_000
    [row] = [r for r in _rows(rig, s.deposits) if r.provider is not None]
    assert (row.method, row.instrument_fingerprint, row.provider, row.provider_ref) == (
        "card", "tok_visa_4242", "stripe", "pi_1"
    )  # fmt: skip
    assert f"txn:{row.txn_id}" == first.ref

    restarted = make_oms(rig.engine, rig.clock)
    assert restarted.oms.execute_one(card()) == Done(first.ref, "duplicate")
    assert restarted.oms.cash_available(1) == cash + 50_000
    # Other terms under the same reference: a conflict, and nothing booked.
    before = store_snapshot(rig.engine)
    for other in (card(amount=60_000), card(fingerprint="tok_other")):
        [result] = restarted.oms.execute([other])
        assert isinstance(result, ConflictError), result
    assert store_snapshot(rig.engine) == before


def test_deposit_when_repeated_while_its_batch_is_in_flight_then_duplicate(rig: Rig) -> None:
    oms = rig.oms
    first = oms.prepare([card(ref="pi_9")])
    second = oms.prepare([card(ref="pi_9")])  # before the first batch is stored
    oms.commit(first)
    oms.commit(second)
    oms.retire_committed()
    assert second.results == [Done(first.results[0].ref, "duplicate")]  # type: ignore[union-attr]
    assert [r.provider_ref for r in _rows(rig, s.deposits)].count("pi_9") == 1


def test_deposit_when_fingerprint_is_a_card_number_then_refused(rig: Rig) -> None:
    _refused(rig, card(fingerprint="4111111111111111"), CardNumberRefused, "card_number_refused")


def test_deposit_when_audited_then_by_its_actor_with_method_and_reference(rig: Rig) -> None:
    _ok(rig, card())
    with rig.engine.connect() as conn:
        rec = conn.execute(
            select(s.audit_log).where(s.audit_log.c.action == "cash.deposit")
            .order_by(s.audit_log.c.seq.desc())
        ).first()  # fmt: skip
    assert rec is not None and rec.actor == "psp-gateway"
    assert json.loads(rec.payload)["provider_ref"] == "pi_1"


# -- destinations and withdrawals ----------------------------------------------------------------


def add_bank(account_id: int = 1, currency: str = "USD") -> AddDestination:
    return AddDestination(account_id, DestinationKind.BANK, "main", IBAN, currency,
                          actor="client:1")  # fmt: skip


def test_add_destination_when_added_then_evented_masked_and_idempotent(rig: Rig) -> None:
    did = _id(_ok(rig, add_bank())[0])
    assert _ok(rig, add_bank())[0] == Done(f"destination:{did}", "exists")

    with rig.engine.connect() as conn:
        [event] = [
            json.loads(r.payload)
            for r in conn.execute(
                select(s.outbox).where(s.outbox.c.type == "cash.destination_added")
            )
        ]
        audit = [r.payload for r in conn.execute(select(s.audit_log.c.payload))]
        [view] = destinations(conn, 1)
    assert event["display"] == "DE89…3000" and event["destination_id"] == did
    # The full IBAN is in its row only: not in events, the audit log or the listing.
    assert all("DE89370400440532013000" not in p for p in [json.dumps(event), *audit])
    assert (view.destination_id, view.display, view.currency) == (did, "DE89…3000", "USD")
    [row] = _rows(rig, s.withdrawal_destinations)
    assert row.instrument == "DE89370400440532013000"


def test_add_destination_when_iban_is_wrong_then_refused(rig: Rig) -> None:
    bad = AddDestination(1, DestinationKind.BANK, "main", "DE89370400440532013001", "USD")
    _refused(rig, bad, InvalidIban, "invalid_iban")


def test_withdrawal_when_account_halted_then_refused_and_nothing_changes(rig: Rig) -> None:
    did = _id(_ok(rig, add_bank())[0])
    _ok(rig, SetAccountState(1, AccountState.HALTED, reason="fraud"))
    _refused(rig, RequestWithdrawal(1, "USD", 100, did), AccountHalted, "account_halted")
    # Reducing-only still may withdraw what is free.
    _ok(rig, SetAccountState(1, AccountState.REDUCING_ONLY))
    _ok(rig, RequestWithdrawal(1, "USD", 100, did))


def test_withdrawal_when_held_then_released_then_approved_and_no_money_moves_meanwhile(
    rig: Rig,
) -> None:
    did = _id(_ok(rig, add_bank())[0])
    wid = _id(_ok(rig, RequestWithdrawal(1, "USD", 10_000, did))[0])
    pending = rig.oms.balance(L.client_withdrawal_pending(1, "USD"))
    cash = rig.oms.cash_available(1)

    assert _ok(rig, HoldWithdrawal(wid, "velocity", actor="pipelines.fraud"))[0].detail == "held"
    _refused(rig, DecideWithdrawal(wid, True), InvalidStateTransition, "invalid_transition")
    _refused(rig, HoldWithdrawal(wid, "again"), InvalidStateTransition, "invalid_transition")
    assert (rig.oms.balance(L.client_withdrawal_pending(1, "USD")), rig.oms.cash_available(1)) == (
        pending, cash
    )  # fmt: skip

    # A restart keeps it held.
    rig = make_oms(rig.engine, rig.clock)
    rig.seed_quotes()
    with rig.engine.connect() as conn:
        [view] = withdrawals(conn, 1)
    assert (view.status, view.destination_id, view.hold_reason) == ("held", did, "velocity")
    _ok(rig, ReleaseWithdrawal(wid, "documents seen", actor="compliance"))
    _ok(rig, DecideWithdrawal(wid, True, actor="back-office"))

    with rig.engine.connect() as conn:
        [row] = conn.execute(select(s.withdrawals)).all()
        types = [
            (r.type, json.loads(r.payload).get("reason"))
            for r in conn.execute(
                select(s.outbox).where(s.outbox.c.account_id == 1).order_by(s.outbox.c.event_id)
            )
            if r.type.startswith("cash.withdrawal")
        ]
        actors = [
            (r.action, r.actor)
            for r in conn.execute(select(s.audit_log).order_by(s.audit_log.c.seq))
            if r.action.startswith("cash.withdrawal")
        ]
    assert (row.status, row.hold_reason, row.release_reason) == (
        "approved", "velocity", "documents seen"
    )  # fmt: skip
    assert types == [
        ("cash.withdrawal_requested", None), ("cash.withdrawal_held", "velocity"),
        ("cash.withdrawal_released", "documents seen"), ("cash.withdrawal_approved", ""),
    ]  # fmt: skip
    assert actors == [
        ("cash.withdrawal_request", "oms"), ("cash.withdrawal_held", "pipelines.fraud"),
        ("cash.withdrawal_released", "compliance"), ("cash.withdrawal_approved", "back-office"),
    ]  # fmt: skip


def test_withdrawal_when_held_then_it_may_be_rejected_and_the_money_returns(rig: Rig) -> None:
    did = _id(_ok(rig, add_bank())[0])
    cash = rig.oms.cash_available(1)
    wid = _id(_ok(rig, RequestWithdrawal(1, "USD", 10_000, did))[0])
    _ok(rig, HoldWithdrawal(wid, "fraud"), DecideWithdrawal(wid, False, "fraud confirmed"))
    assert rig.oms.cash_available(1) == cash
    [row] = _rows(rig, s.withdrawals)
    assert (row.status, row.decision_reason) == ("rejected", "fraud confirmed")


def test_deposits_read_side_when_listed_then_method_and_provider_reference_shown(rig: Rig) -> None:
    _ok(rig, card())
    with rig.engine.connect() as conn:
        listed = deposits(conn, 1)
    # The seed deposit has no method; the card deposit carries its terms.
    assert [(d.amount, d.method, d.provider, d.provider_ref) for d in listed] == [
        (10_000_000, None, None, None), (50_000, "card", "stripe", "pi_1")
    ]  # fmt: skip
