"""Specification of trading.funding: card numbers refused, IBANs, deposit replays and the
withdrawal transition table."""

from __future__ import annotations

import itertools

import pytest

from trading.errors import (
    CardNumberRefused,
    ConflictError,
    InvalidFunding,
    InvalidIban,
    InvalidStateTransition,
)
from trading.funding import (
    WITHDRAWAL_TRANSITIONS,
    DepositTerms,
    DestinationKind,
    WithdrawalStatus,
    check_deposit_replay,
    check_destination_instrument,
    check_fingerprint,
    check_provider,
    check_provider_ref,
    check_withdrawal_transition,
    looks_like_pan,
    mask_iban,
    normalize_iban,
)

W = WithdrawalStatus


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "tok_4111111111111111",
        "card 5555 5555 5555 4444 exp",
        "378282246310005",  # 15-digit Amex
        "6011000990139424",
        "4222222222222",  # 13 digits
    ],
)
def test_looks_like_pan_when_a_luhn_valid_card_number_is_in_the_text_then_true(text: str) -> None:
    assert looks_like_pan(text)
    with pytest.raises(CardNumberRefused) as info:
        check_fingerprint(text)
    assert info.value.code == "card_number_refused"


@pytest.mark.parametrize(
    "text",
    ["4111111111111112", "tok_abc123", "411111******1111", "12345678901", "41111111111111111111"],
)
def test_looks_like_pan_when_not_luhn_too_short_or_too_long_or_masked_then_false(text: str) -> None:
    assert not looks_like_pan(text)


def test_card_numbers_when_in_a_reference_or_destination_then_refused_too() -> None:
    with pytest.raises(CardNumberRefused):
        check_provider_ref("payment for 4111 1111 1111 1111")
    with pytest.raises(CardNumberRefused):
        check_destination_instrument(DestinationKind.CARD, "4111111111111111")
    with pytest.raises(CardNumberRefused):
        check_destination_instrument(DestinationKind.CRYPTO, "4111111111111111")


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (check_fingerprint, ""),
        (check_fingerprint, "tok with space"),
        (check_fingerprint, "t" * 65),
        (check_provider, "Adyen"),
        (check_provider, ""),
        (check_provider_ref, "ref\n"),
        (check_provider_ref, " ref"),
        (check_provider_ref, "r\u202e"),
        (check_provider_ref, "r" * 65),
    ],
)
def test_checks_when_text_is_malformed_then_invalid_funding(check: object, value: str) -> None:
    with pytest.raises(InvalidFunding):
        check(value)  # type: ignore[operator]


def test_normalize_iban_when_valid_with_spaces_and_lower_case_then_electronic_form() -> None:
    assert normalize_iban("de89 3704 0044 0532 0130 00") == "DE89370400440532013000"
    assert normalize_iban("GB82WEST12345698765432") == "GB82WEST12345698765432"
    assert normalize_iban("FR1420041010050500013M02606") == "FR1420041010050500013M02606"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("DE89370400440532013001", "check digits"),
        ("DE8937040044053201300", "22 characters"),
        ("QQ89370400440532013000", "not an IBAN"),
        ("DE89-3704-0044-0532-0130-00", "not an IBAN"),
        (12345, "not an IBAN"),
    ],
)
def test_normalize_iban_when_invalid_then_invalid_iban(value: object, message: str) -> None:
    with pytest.raises(InvalidIban, match=message) as info:
        normalize_iban(value)
    assert info.value.code == "invalid_iban"


def test_bank_destination_when_checked_then_stores_the_iban_and_shows_it_masked() -> None:
    stored, display = check_destination_instrument(
        DestinationKind.BANK, "DE89 3704 0044 0532 0130 00"
    )
    assert stored == "DE89370400440532013000"
    assert display == mask_iban(stored) == "DE89…3000"
    assert "0532" not in display


def test_deposit_replay_when_same_terms_then_nothing_and_other_terms_then_conflict() -> None:
    original = DepositTerms(1, "USD", 10_000, "card", "tok_1")
    check_deposit_replay(
        "adyen", "psp-1", original, DepositTerms(1, "USD", 10_000, "card", "tok_1")
    )
    with pytest.raises(ConflictError) as info:
        check_deposit_replay(
            "adyen", "psp-1", original, DepositTerms(1, "USD", 20_000, "card", "tok_2")
        )
    assert info.value.to_dict()["fields"] == ["amount", "instrument_fingerprint"]
    assert info.value.code == "conflict"


def test_withdrawal_transitions_when_listed_then_allowed_and_every_other_pair_refused() -> None:
    allowed = {
        (W.REQUESTED, W.HELD), (W.HELD, W.REQUESTED), (W.REQUESTED, W.APPROVED),
        (W.REQUESTED, W.REJECTED), (W.HELD, W.REJECTED),
    }  # fmt: skip
    assert allowed == WITHDRAWAL_TRANSITIONS
    for current, new in itertools.product(W, W):
        if (current, new) in allowed:
            check_withdrawal_transition(current, new)
        else:
            with pytest.raises(InvalidStateTransition):
                check_withdrawal_transition(current, new)


def test_withdrawal_when_held_then_must_be_released_before_approval() -> None:
    with pytest.raises(InvalidStateTransition, match="held -> approved"):
        check_withdrawal_transition(W.HELD, W.APPROVED)
