"""Funding: deposit methods and references, withdrawal destinations and states.

Deposits. A deposit names its method (card, bank transfer, e-wallet, crypto), the funding
instrument's fingerprint (the payment provider's token for a card or wallet: never a card
number) and the provider's own reference for the payment. A deposit is idempotent on
(provider, provider reference): the same reference with the same terms is the same deposit
(the original is returned, nothing is booked twice); with other terms it is a
``ConflictError``. A deposit without a provider reference (a back-office deposit, the
simulation's) has no such key.

Card numbers. The core never holds a full card number (PCI DSS): any text of 12 to 19
digits, possibly grouped by spaces or dashes, that passes the Luhn check is refused with
``card_number_refused``, in a fingerprint, a provider reference or a destination alike.

Destinations. A withdrawal goes only to a destination registered on the account
(``AddDestination``): a bank account (its IBAN), a card or an e-wallet (the provider's
fingerprint) or a crypto wallet (its address), in one currency. The full IBAN is stored in the
destination row, because paying out needs it and it is not card data; events, audit records
and listings show ``mask_iban`` only.

Withdrawals move along ``WITHDRAWAL_TRANSITIONS``: requested → held (a compliance or fraud
hold) → requested again (released), or requested → approved | rejected; a held withdrawal
may be rejected but must be released before it is approved, so approving one is deliberate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Final

from trading.bounds import check_text
from trading.checksums import luhn_ok, mod97
from trading.countries import is_country
from trading.errors import (
    CardNumberRefused,
    ConflictError,
    InvalidFunding,
    InvalidIban,
    InvalidStateTransition,
)

FINGERPRINT_MAX: Final = 64
PROVIDER_MAX: Final = 32
PROVIDER_REF_MAX: Final = 64
LABEL_MAX: Final = 64
WALLET_MAX: Final = 128
IBAN_MAX: Final = 34

_PROVIDER_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
# Provider tokens: letters, digits and the punctuation tokens use (masked digits as '*').
_FINGERPRINT_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:*/+=-]{0,63}$")
_WALLET_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,127}$")
# A run of digits, possibly grouped by single spaces or dashes.
_DIGIT_RUN_RE: Final = re.compile(r"\d(?:[ -]?\d)*")
_IBAN_RE: Final = re.compile(r"^([A-Z]{2})(\d{2})([A-Z0-9]{11,30})$")

# IBAN lengths of the countries a European broker pays out to most (the SWIFT registry);
# another country's IBAN is checked for its shape and check digits only.
IBAN_LENGTHS: Final[dict[str, int]] = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24,
    "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23,
    "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "LI": 21,
    "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26,
}  # fmt: skip


class DepositMethod(StrEnum):
    CARD = "card"
    BANK_TRANSFER = "bank_transfer"
    EWALLET = "ewallet"
    CRYPTO = "crypto"


class DestinationKind(StrEnum):
    BANK = "bank"
    CARD = "card"
    EWALLET = "ewallet"
    CRYPTO = "crypto"


class WithdrawalStatus(StrEnum):
    REQUESTED = "requested"
    HELD = "held"
    APPROVED = "approved"
    REJECTED = "rejected"


W = WithdrawalStatus
WITHDRAWAL_TRANSITIONS: Final[frozenset[tuple[WithdrawalStatus, WithdrawalStatus]]] = frozenset(
    {
        (W.REQUESTED, W.HELD),
        (W.HELD, W.REQUESTED),  # released: back in the queue for a decision
        (W.REQUESTED, W.APPROVED),
        (W.REQUESTED, W.REJECTED),
        (W.HELD, W.REJECTED),  # a hold confirmed (fraud): the money goes back to the client
    }
)
WITHDRAWAL_TERMINAL: Final = frozenset({W.APPROVED, W.REJECTED})
WITHDRAWAL_PENDING: Final = frozenset({W.REQUESTED, W.HELD})


def check_withdrawal_transition(current: WithdrawalStatus, new: WithdrawalStatus) -> None:
    if (current, new) not in WITHDRAWAL_TRANSITIONS:
        raise InvalidStateTransition(
            f"withdrawal {current.value} -> {new.value}",
            from_status=current.value,
            to_status=new.value,
        )


# --- card numbers, fingerprints, references -------------------------------------------------


def looks_like_pan(text: str) -> bool:
    """Whether ``text`` holds 12 to 19 digits (alone, or grouped by spaces or dashes) that
    pass the Luhn check: a full card number, wherever it sits in the text."""
    for match in _DIGIT_RUN_RE.finditer(text):
        digits = re.sub(r"[ -]", "", match[0])
        if 12 <= len(digits) <= 19 and luhn_ok(digits):
            return True
    return False


def refuse_pan(text: str, field: str) -> None:
    if looks_like_pan(text):
        raise CardNumberRefused(
            f"{field} looks like a full card number; send the provider's token instead",
            field=field,
        )


def check_fingerprint(value: object, field: str = "instrument_fingerprint") -> str:
    """A provider's token for a card or wallet: 1-64 letters, digits and ``._:*/+=-``,
    never a card number."""
    if isinstance(value, str):
        refuse_pan(value, field)
    if not isinstance(value, str) or not _FINGERPRINT_RE.match(value):
        raise InvalidFunding(
            f"{field} {value!r} must be 1-64 letters, digits and ._:*/+=- (a provider token)",
            field=field,
        )
    return value


def check_provider(value: object) -> str:
    """A payment provider's name: 1-32 lower-case letters, digits and ``_.-``."""
    if not isinstance(value, str) or not _PROVIDER_RE.match(value):
        raise InvalidFunding(
            f"provider {value!r} must be 1-32 lower-case letters, digits and _.-",
            field="provider",
        )
    return value


def check_provider_ref(value: object) -> str:
    """The provider's reference of a payment: 1-64 characters, no control character, no
    surrounding space, never a card number."""
    ref = check_text(value, "provider_ref", PROVIDER_REF_MAX, error=InvalidFunding)
    refuse_pan(ref, "provider_ref")
    return ref


def check_label(value: object) -> str:
    label = check_text(value, "label", LABEL_MAX, error=InvalidFunding)
    refuse_pan(label, "label")
    return label


# --- deposit idempotency ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepositTerms:
    """What a repeated (provider, provider reference) must carry again to be the same deposit."""

    account_id: int
    currency: str
    amount: int
    method: str | None
    instrument_fingerprint: str | None


def deposit_differences(original: DepositTerms, repeat: DepositTerms) -> list[str]:
    """The names of the terms that differ, in field order."""
    names = [f.name for f in fields(DepositTerms)]
    return [n for n in names if getattr(original, n) != getattr(repeat, n)]


def check_deposit_replay(
    provider: str, provider_ref: str, original: DepositTerms, repeat: DepositTerms
) -> None:
    """Nothing if ``repeat`` is the deposit already booked under (provider, provider_ref):
    the caller returns the original. ConflictError naming the differing terms otherwise."""
    differ = deposit_differences(original, repeat)
    if differ:
        raise ConflictError(
            f"provider reference {provider}:{provider_ref} was used for another deposit "
            f"({', '.join(differ)} differ)",
            provider=provider,
            provider_ref=provider_ref,
            fields=differ,
        )


# --- destinations -----------------------------------------------------------------------------


def normalize_iban(value: object) -> str:
    """An IBAN in its electronic form (upper-case, no spaces), if its country is known, its
    length right (for the countries in ``IBAN_LENGTHS``) and its MOD 97-10 check is 1."""
    if not isinstance(value, str) or len(value) > 2 * IBAN_MAX:
        raise InvalidIban(f"{value!r} is not an IBAN", field="iban")
    iban = re.sub(r"[ ]", "", value).upper()
    match = _IBAN_RE.match(iban)
    if match is None or not is_country(match[1]):
        raise InvalidIban(
            f"{value!r} is not an IBAN (country code, 2 check digits, 11-30 letters or digits)",
            field="iban",
        )
    expected = IBAN_LENGTHS.get(match[1])
    if expected is not None and len(iban) != expected:
        raise InvalidIban(
            f"a {match[1]} IBAN has {expected} characters, {value!r} has {len(iban)}",
            field="iban",
        )
    if mod97(iban[4:] + iban[:4]) != 1:
        raise InvalidIban(f"{value!r} fails its check digits", field="iban")
    return iban


def iban_of(country: str, bban: str) -> str:
    """The IBAN of a domestic account number (``bban``: upper-case letters and digits), its
    check digits computed (ISO 13616): what a test or the simulation registers."""
    return f"{country}{98 - mod97(bban + country + '00'):02d}{bban}"


def mask_iban(iban: str) -> str:
    """What events, audit records and listings show of an IBAN: country, check digits and the
    last four characters (``DE89…3000``)."""
    return f"{iban[:4]}…{iban[-4:]}"


def check_wallet_address(value: object) -> str:
    if isinstance(value, str):
        refuse_pan(value, "instrument")
    if not isinstance(value, str) or not _WALLET_RE.match(value):
        raise InvalidFunding(
            f"wallet address {value!r} must be 1-128 letters, digits and :._-",
            field="instrument",
        )
    return value


def check_destination_instrument(kind: DestinationKind, value: object) -> tuple[str, str]:
    """(stored instrument, display text) of a destination: the normalized IBAN and its mask
    for a bank account, the fingerprint for a card or e-wallet, the address for crypto."""
    if kind is DestinationKind.BANK:
        iban = normalize_iban(value)
        return iban, mask_iban(iban)
    if kind is DestinationKind.CRYPTO:
        address = check_wallet_address(value)
        return address, address if len(address) <= 16 else f"{address[:6]}…{address[-6:]}"
    fingerprint = check_fingerprint(value, "instrument")
    return fingerprint, fingerprint
