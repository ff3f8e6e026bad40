"""Clients, accounts of a type, per-account limits, account states and symbol halts through
the OMS, on SQLite and PostgreSQL: each audited with the command's actor and reason,
evented, and loaded back by a restart."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from tests.trading.builders import Rig, make_oms, make_rig, store_snapshot
from trading.clients import ClientKind
from trading.commands import (
    CreateClient,
    Deposit,
    Done,
    HaltSymbol,
    OpenAccount,
    OrderAck,
    SetAccountState,
    SetLimits,
)
from trading.errors import ConflictError, InvalidClient, InvalidLimits, NotFound, UnknownClient
from trading.instrument import AccountType
from trading.orders import OrderStatus
from trading.risk import AccountState
from trading.store import schema as s
from trading.store.read_clients import client, client_of_account, clients

PERSON = CreateClient(
    7, ClientKind.PERSON, "Jean Dupont", "FR", "jean@example.fr", dt.date(1980, 1, 1),
    national_id="FR19800101JEAN#DUPON", actor="onboarding",
)  # fmt: skip
ENTITY = CreateClient(8, ClientKind.ENTITY, "Acme GmbH", "DE", "ops@acme.de",
                      lei="529900T8BM49AURSDO55")  # fmt: skip


@pytest.fixture
def rig(store_dsn: str) -> Rig:
    return make_rig(store_dsn)


def _ok(rig: Rig, *cmds: Any) -> list[Any]:
    results = rig.oms.execute(list(cmds))
    assert not any(isinstance(r, Exception) for r in results), results
    return results


def _events(rig: Rig, type_: str) -> list[dict[str, Any]]:
    with rig.engine.connect() as conn:
        rows = conn.execute(select(s.outbox).where(s.outbox.c.type == type_))
        return [json.loads(r.payload) for r in rows]


def _audit(rig: Rig, action: str) -> list[Any]:
    with rig.engine.connect() as conn:
        return list(conn.execute(select(s.audit_log).where(s.audit_log.c.action == action)))


def _refused(rig: Rig, cmd: Any, error: type[Exception], code: str) -> None:
    before = store_snapshot(rig.engine)
    [result] = rig.oms.execute([cmd])
    assert isinstance(result, error), result
    assert result.code == code  # type: ignore[attr-defined]
    assert store_snapshot(rig.engine) == before


# -- clients -----------------------------------------------------------------------------------


def test_create_client_when_new_then_stored_audited_by_its_actor_and_idempotent(rig: Rig) -> None:
    assert _ok(rig, PERSON, ENTITY) == [Done("client:7", "created"), Done("client:8", "created")]
    # The same client again is the same client; other terms under its id are a conflict.
    assert _ok(rig, PERSON)[0] == Done("client:7", "exists")
    _refused(rig, CreateClient(7, ClientKind.PERSON, "Jean Dupont", "FR", "other@example.fr",
                               dt.date(1980, 1, 1), national_id="FR19800101JEAN#DUPON"),
             ConflictError, "conflict")  # fmt: skip

    [rec, entity_rec] = _audit(rig, "client.create")
    assert (rec.actor, rec.subject) == ("onboarding", "client:7")
    assert entity_rec.actor == "oms"  # no actor: the OMS's own
    assert "Dupont" not in rec.payload  # personal data stays in the clients table
    # A restart knows its clients: a retry is still "exists".
    restarted = make_oms(rig.engine, rig.clock)
    assert restarted.oms.execute_one(PERSON) == Done("client:7", "exists")


def test_create_client_when_a_field_is_bad_then_invalid_client_and_nothing_stored(
    rig: Rig,
) -> None:
    minor = CreateClient(9, ClientKind.PERSON, "Kid", "FR", "kid@example.fr",
                         dt.date(2020, 1, 1), national_id="FR123456")  # fmt: skip
    _refused(rig, minor, InvalidClient, "invalid_client")


def test_open_account_when_client_unknown_then_refused_and_when_known_then_linked(
    rig: Rig,
) -> None:
    _refused(rig, OpenAccount(1, "EUR", client_id=7), UnknownClient, "unknown_client")

    _ok(rig, PERSON, OpenAccount(1, "EUR", client_id=7, account_type=AccountType.CASH),
        OpenAccount(2, "USD", "professional", client_id=7))  # fmt: skip

    [opened, _] = _events(rig, "account.opened")
    assert opened["client_id"] == 7 and opened["account_type"] == "cash"
    assert _ok(rig, OpenAccount(1, "EUR", client_id=7, account_type=AccountType.CASH)) == [
        Done("account:1", "exists")
    ]
    _refused(rig, OpenAccount(1, "EUR", client_id=7), ConflictError, "conflict")
    with rig.engine.connect() as conn:
        view = client(conn, 7)
        assert view is not None and view.name == "Jean Dupont"
        assert [(a.account_id, a.account_type, a.tier) for a in view.accounts] == [
            (1, "cash", "retail"), (2, "margin", "professional")
        ]  # fmt: skip
        owner = client_of_account(conn, 2)
        assert owner is not None and owner.client_id == 7
        assert client(conn, 8) is None
        assert [c.client_id for c in clients(conn)] == [7]


def test_cash_account_when_selling_short_then_denied_and_positions_fully_funded(rig: Rig) -> None:
    _ok(rig, OpenAccount(1, account_type=AccountType.CASH), Deposit(1, "USD", 10_000_000, "d"))

    short = rig.oms.execute_one(rig.submit(1, "short", side="sell", qty="0.1"))
    assert isinstance(short, OrderAck) and short.status is OrderStatus.DENIED
    assert short.reason is not None and short.reason.startswith("short_sale_not_allowed")
    rig.oms.execute_one(rig.submit(1, "long", qty="0.1"))
    pos = rig.oms.position(1, "EUR/USD")
    assert pos is not None
    # 0.1 lot = 10,000 EUR at 1.10013 (ask plus markup): leverage 1 holds the full notional.
    assert pos.lots[0].margin == 11_001_30


# -- limits ------------------------------------------------------------------------------------


def test_set_limits_when_set_then_checks_use_them_and_restart_loads_them(rig: Rig) -> None:
    rig.open_accounts(1)
    limits = SetLimits(1, leverage=10, max_order_lots=Decimal("0.5"), max_orders_per_second=2,
                       actor="risk-desk", reason="new client")  # fmt: skip
    _ok(rig, limits)

    big = rig.oms.execute_one(rig.submit(1, "big", qty="1"))
    assert isinstance(big, OrderAck) and big.status is OrderStatus.DENIED
    assert big.reason is not None and big.reason.startswith("max_order_qty")
    rig.oms.execute_one(rig.submit(1, "small", qty="0.5"))
    pos = rig.oms.position(1, "EUR/USD")
    assert pos is not None
    # 50,000 EUR at 1.10013 at 1:10 (the tier would give 1:30).
    assert pos.lots[0].margin == 5_500_65
    third = rig.oms.execute_one(rig.submit(1, "third", qty="0.1"))
    assert isinstance(third, OrderAck) and third.reason is not None
    assert third.reason.startswith("rate_limited")  # two a second, not the tier's fifty

    [event] = _events(rig, "account.limits_set")
    assert event["leverage"] == 10 and event["max_order_lots"] == "0.5"
    assert event["max_position_lots"] is None and event["reason"] == "new client"
    [rec] = _audit(rig, "account.limits")
    assert rec.actor == "risk-desk" and json.loads(rec.payload)["reason"] == "new client"

    restarted = make_oms(rig.engine, rig.clock)
    acct = restarted.oms._accounts[1]
    assert (acct.leverage, restarted.oms._limits(acct).max_order_lots) == (10, Decimal("0.5"))
    assert restarted.oms._limits(acct).max_position_lots == Decimal(50)  # the tier's

    # An empty SetLimits gives the tier's back, and the row goes.
    restarted.oms.execute_one(SetLimits(1))
    assert restarted.oms._limits(acct).max_order_lots == Decimal(20)
    with rig.engine.connect() as conn:
        assert conn.execute(select(s.account_limits)).all() == []
        assert conn.execute(select(s.accounts.c.leverage)).scalar() is None


def test_set_limits_when_beyond_the_tier_or_no_account_then_refused_and_nothing_changes(
    rig: Rig,
) -> None:
    rig.open_accounts(1)
    _refused(rig, SetLimits(1, leverage=31), InvalidLimits, "invalid_limits")  # retail cap 30
    _refused(rig, SetLimits(1, max_order_lots=Decimal(-1)), InvalidLimits, "invalid_limits")
    _refused(rig, SetLimits(99, leverage=5), NotFound, "not_found")


# -- states and halts ----------------------------------------------------------------------------


def test_set_account_state_when_changed_then_evented_with_previous_and_reason(rig: Rig) -> None:
    rig.open_accounts(1)
    _ok(rig, SetAccountState(1, AccountState.REDUCING_ONLY, actor="risk-desk", reason="margin"))
    assert _ok(rig, SetAccountState(1, AccountState.REDUCING_ONLY)) == [
        Done("account:1", "unchanged")
    ]
    _ok(rig, SetAccountState(1, AccountState.ACTIVE))

    events = _events(rig, "account.state_changed")
    assert [(e["previous"], e["state"], e["reason"]) for e in events] == [
        ("active", "reducing_only", "margin"), ("reducing_only", "active", "")
    ]  # fmt: skip
    assert [r.actor for r in _audit(rig, "account.state")] == ["risk-desk", "oms"]


def test_halt_symbol_when_halted_and_resumed_then_house_events_on_account_zero(rig: Rig) -> None:
    rig.open_accounts(1)
    _ok(rig, HaltSymbol("EUR/USD", True, actor="risk-desk", reason="news"))
    with rig.engine.connect() as conn:
        assert conn.execute(select(s.symbol_halts.c.actor)).scalar() == "risk-desk"
    _ok(rig, HaltSymbol("EUR/USD", False, actor="risk-desk", reason="over"))

    with rig.engine.connect() as conn:
        rows = conn.execute(
            select(s.outbox).where(s.outbox.c.account_id == 0).order_by(s.outbox.c.event_id)
        ).all()
    assert [(r.type, r.account_seq) for r in rows] == [("symbol.halted", 1), ("symbol.resumed", 2)]
    assert json.loads(rows[0].payload)["reason"] == "news"
    restarted = make_oms(rig.engine, rig.clock)
    restarted.oms.execute_one(HaltSymbol("XAU/USD", True))
    assert restarted.oms.journal.seqs[0] == 3  # the house stream stays gap-free
