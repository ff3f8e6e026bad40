"""Specification of the edge builders (trading.validate_accounts, trading.validate_funding):
what comes out can always be stored, and bad input gets a specific code."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal as D

import pytest

from trading import commands as C
from trading.catalogue import default_catalogue
from trading.clients import ClientKind
from trading.errors import BourseError
from trading.funding import DepositMethod, DestinationKind
from trading.instrument import AccountType
from trading.validate_accounts import close_position, create_client, open_account, set_limits
from trading.validate_funding import (
    MAX_AMOUNT_MINOR,
    add_destination,
    decide_withdrawal,
    deposit,
    hold_withdrawal,
    release_withdrawal,
    request_withdrawal,
    rollover,
)

CATALOGUE = default_catalogue()
TODAY = dt.date(2026, 11, 26)
TIERS = ("retail", "professional")


def test_create_client_when_valid_then_normalizes_codes_and_the_email_domain() -> None:
    cmd = create_client(
        client_id=5, kind="Person", name="Jean Dupont", country=" fr ", email="J@Example.FR",
        as_of=TODAY, birth_date="1980-01-01", national_id="fr19800101jean#dupon", actor="api",
    )  # fmt: skip
    expected = C.CreateClient(5, ClientKind.PERSON, "Jean Dupont", "FR", "J@example.fr",
                              dt.date(1980, 1, 1), None, "FR19800101JEAN#DUPON",
                              actor="api")  # fmt: skip
    assert cmd == expected


def test_open_account_when_valid_then_carries_client_and_type() -> None:
    cmd = open_account(account_id=9, client_id=5, currency="EUR", tiers=TIERS,
                       account_type="CASH")  # fmt: skip
    assert (cmd.client_id, cmd.account_type, cmd.tier) == (5, AccountType.CASH, "retail")


def test_set_limits_when_decimal_strings_then_decimals_and_the_reason() -> None:
    cmd = set_limits(account_id=9, leverage=10, max_order_lots="2.5", reason="KYC review",
                     actor="risk-desk")  # fmt: skip
    assert (cmd.leverage, cmd.max_order_lots, cmd.max_position_lots) == (10, D("2.5"), None)
    assert (cmd.actor, cmd.reason) == ("risk-desk", "KYC review")


def test_close_position_when_quantity_given_then_lot_steps_on_the_grid_below_minimum_too() -> None:
    cmd = close_position(CATALOGUE, account_id=1, symbol="eurusd", qty="0.01", reason="stop-out",
                         actor="pipelines.positions")  # fmt: skip
    assert (cmd.symbol, cmd.qty) == ("EUR/USD", 1)
    assert close_position(CATALOGUE, account_id=1, symbol="AAPL", qty=None, reason="halted",
                          actor="desk").qty is None  # fmt: skip


def test_deposit_when_valid_then_keyed_by_provider_reference() -> None:
    cmd = deposit(account_id=1, currency="USD", amount="100.50", method="CARD",
                  instrument_fingerprint="tok_abc", provider="adyen",
                  provider_ref="psp-77")  # fmt: skip
    assert cmd == C.Deposit(1, "USD", 10_050, "psp-77", DepositMethod.CARD, "tok_abc", "adyen",
                            "psp-77")  # fmt: skip


def test_destination_and_withdrawal_when_valid_then_commands() -> None:
    dest = add_destination(account_id=1, kind="bank", label="Main account",
                           instrument="DE89 3704 0044 0532 0130 00", currency="EUR")  # fmt: skip
    assert (dest.kind, dest.instrument) == (DestinationKind.BANK, "DE89370400440532013000")
    wd = request_withdrawal(account_id=1, currency="EUR", amount="10", destination_id=3)
    assert (wd.amount, wd.destination_id) == (1_000, 3)
    assert hold_withdrawal(withdrawal_id=4, reason="fraud score 0.97", actor="fraud").reason
    assert release_withdrawal(withdrawal_id=4, reason="cleared", actor="compliance").actor
    assert decide_withdrawal(withdrawal_id=4, approve=True).approve
    assert rollover(now_ns=10**18).now_ns == 10**18


OK_DEPOSIT = {"account_id": 1, "currency": "USD", "amount": "10", "method": "card",
              "instrument_fingerprint": "tok_1", "provider": "adyen",
              "provider_ref": "r-1"}  # fmt: skip


@pytest.mark.parametrize(
    ("build", "code", "field"),
    [
        (lambda: deposit(**{**OK_DEPOSIT, "amount": "1e25"}), "invalid_input", "amount"),
        (
            lambda: deposit(**{**OK_DEPOSIT, "amount": str(MAX_AMOUNT_MINOR // 100 + 1)}),
            "invalid_input",
            "amount",
        ),
        (lambda: deposit(**{**OK_DEPOSIT, "amount": "0.001"}), "invalid_input", None),
        (lambda: deposit(**{**OK_DEPOSIT, "amount": "-5"}), "invalid_input", "amount"),
        (lambda: deposit(**{**OK_DEPOSIT, "currency": "XYZ"}), "invalid_funding", "currency"),
        (lambda: deposit(**{**OK_DEPOSIT, "method": "cheque"}), "invalid_funding", "method"),
        (
            lambda: deposit(**{**OK_DEPOSIT, "instrument_fingerprint": None}),
            "invalid_funding",
            "instrument_fingerprint",
        ),
        (
            lambda: deposit(**{**OK_DEPOSIT, "instrument_fingerprint": "4111 1111 1111 1111"}),
            "card_number_refused",
            "instrument_fingerprint",
        ),
        (
            lambda: deposit(**{**OK_DEPOSIT, "provider_ref": "r-1\n"}),
            "invalid_funding",
            "provider_ref",
        ),
        (
            lambda: deposit(**{**OK_DEPOSIT, "provider_ref": "r" * 65}),
            "invalid_funding",
            "provider_ref",
        ),
        (
            lambda: deposit(**{**OK_DEPOSIT, "account_id": 2**63}),
            "invalid_identifier",
            "account_id",
        ),
        (lambda: deposit(**{**OK_DEPOSIT, "account_id": True}), "invalid_identifier", "account_id"),
        (lambda: deposit(**{**OK_DEPOSIT, "actor": "a" * 65}), "invalid_text", "actor"),
        (
            lambda: add_destination(
                account_id=1, kind="bank", label="x", instrument="DE00", currency="EUR"
            ),
            "invalid_iban",
            "iban",
        ),
        (
            lambda: add_destination(
                account_id=1, kind="cheque", label="x", instrument="t", currency="EUR"
            ),
            "invalid_funding",
            "kind",
        ),
        (
            lambda: add_destination(
                account_id=1, kind="card", label="", instrument="tok", currency="EUR"
            ),
            "invalid_funding",
            "label",
        ),
        (
            lambda: request_withdrawal(account_id=1, currency="USD", amount="1", destination_id=0),
            "invalid_identifier",
            "destination_id",
        ),
        (
            lambda: hold_withdrawal(withdrawal_id=1, reason="", actor="fraud"),
            "invalid_text",
            "reason",
        ),
        (lambda: decide_withdrawal(withdrawal_id=1, approve=False), "invalid_text", "reason"),
        (lambda: decide_withdrawal(withdrawal_id=1, approve=1), "invalid_input", "approve"),  # type: ignore[arg-type]
        (lambda: rollover(now_ns=2**63), "invalid_rollover", "now_ns"),
        (
            lambda: create_client(
                client_id=5, kind="robot", name="R", country="FR", email="r@x.fr", as_of=TODAY
            ),
            "invalid_client",
            "kind",
        ),
        (
            lambda: create_client(
                client_id=5,
                kind="person",
                name="R",
                country="FR",
                email="r@x.fr",
                as_of=TODAY,
                birth_date="1980-13-01",
                national_id="FR1",
            ),
            "invalid_client",
            "birth_date",
        ),
        (
            lambda: open_account(
                account_id=1, client_id=5, currency="USD", tiers=TIERS, tier="vip"
            ),
            "invalid_account",
            "tier",
        ),
        (
            lambda: open_account(
                account_id=1, client_id=5, currency="USD", tiers=TIERS, account_type="isa"
            ),
            "invalid_account",
            "account_type",
        ),
        (
            lambda: open_account(account_id=1, client_id=5, currency="ZZZ", tiers=TIERS),
            "invalid_account",
            "currency",
        ),
        (lambda: set_limits(account_id=1, leverage=0), "invalid_limits", "leverage"),
        (
            lambda: set_limits(account_id=1, max_order_lots="lots"),
            "invalid_limits",
            "max_order_lots",
        ),
        (
            lambda: set_limits(account_id=1, max_order_notional="1e20"),
            "invalid_limits",
            "max_order_notional",
        ),
        (
            lambda: close_position(
                CATALOGUE, account_id=1, symbol="EUR/USD", qty="0.015", reason="r", actor="desk"
            ),
            "invalid_quantity",
            None,
        ),
        (
            lambda: close_position(
                CATALOGUE, account_id=1, symbol="EUR/USD", qty="1e30", reason="r", actor="desk"
            ),
            "invalid_quantity",
            None,
        ),
        (
            lambda: close_position(
                CATALOGUE, account_id=1, symbol="EUR/USD", qty=None, reason="r", actor=""
            ),
            "invalid_identifier",
            "actor",
        ),
        (
            lambda: close_position(
                CATALOGUE, account_id=1, symbol="XX", qty=None, reason="r", actor="desk"
            ),
            "unknown_symbol",
            None,
        ),
    ],
)
def test_builders_when_input_is_bad_then_a_specific_code_and_field(
    build: object, code: str, field: str | None
) -> None:
    with pytest.raises(BourseError) as info:
        build()  # type: ignore[operator]
    assert info.value.code == code
    if field is not None:
        assert info.value.to_dict().get("field") == field


def test_commands_when_built_positionally_as_before_then_still_work_with_empty_actor() -> None:
    assert C.OpenAccount(1, "USD", "professional").account_type is AccountType.MARGIN
    legacy = C.Deposit(1, "USD", 100, "dep-1")
    assert (legacy.method, legacy.provider, legacy.provider_ref, legacy.actor) == (None,) * 3 + (
        "",
    )
    assert C.RequestWithdrawal(1, "USD", 5).destination_id is None
    assert C.DecideWithdrawal(3, False, "kyc").reason == "kyc"


def test_commands_when_any_then_actor_is_a_keyword_only_field() -> None:
    for kind in C.Command.__args__:  # type: ignore[attr-defined]
        fields = {f.name: f for f in dataclasses.fields(kind)}
        assert "actor" in fields and fields["actor"].kw_only, kind.__name__
        assert "actor" not in kind.__match_args__, kind.__name__
    for kind in (C.SetLimits, C.CancelOrder, C.SetAccountState, C.HaltSymbol):
        assert {f.name: f for f in dataclasses.fields(kind)}["reason"].kw_only
    for kind in (C.HoldWithdrawal, C.ReleaseWithdrawal, C.ClosePosition, C.DecideWithdrawal):
        assert "reason" in {f.name for f in dataclasses.fields(kind)}
