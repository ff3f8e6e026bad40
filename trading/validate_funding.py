"""Edge builders for deposits, destinations and withdrawals: input in, a command out.

Amounts are Decimal or decimal strings, exact to the currency's minor unit and at most
``MAX_AMOUNT_MINOR`` (10**15 minor units: ten trillion dollars, far inside 64 bits, so that
balances summed over many of them still fit); identifiers are positive 64-bit integers;
texts fit their columns and hold no control character; card numbers are refused.
"""

from __future__ import annotations

from trading.bounds import check_actor, check_id, check_int, check_reason
from trading.commands import (
    AddDestination,
    DecideWithdrawal,
    Deposit,
    HoldWithdrawal,
    ReleaseWithdrawal,
    RequestWithdrawal,
    Rollover,
)
from trading.errors import InvalidFunding, InvalidIdentifier, InvalidInput, InvalidRollover
from trading.funding import (
    DepositMethod,
    DestinationKind,
    check_destination_instrument,
    check_fingerprint,
    check_label,
    check_provider,
    check_provider_ref,
)
from trading.money import is_currency, parse_decimal, to_minor_exact
from trading.validate import MAX_AMOUNT_MINOR


def amount_minor(value: object, currency: str) -> int:
    """A positive amount in minor units, exact and at most ``MAX_AMOUNT_MINOR``."""
    if not isinstance(currency, str) or not is_currency(currency):
        raise InvalidFunding(f"unknown currency {currency!r}", field="currency")
    amount = parse_decimal(value, "amount")
    if amount <= 0:
        raise InvalidInput(f"amount must be positive, got {amount}", field="amount")
    if amount.adjusted() > 18:  # before scaling: 10**25 must not build a huge integer
        raise InvalidInput(f"amount {amount} is too large", field="amount")
    return check_int(to_minor_exact(amount, currency), "amount", low=1, high=MAX_AMOUNT_MINOR)


def deposit(
    *,
    account_id: int,
    currency: str,
    amount: object,
    method: str,
    provider: str,
    provider_ref: str,
    instrument_fingerprint: str | None = None,
    actor: str = "",
) -> Deposit:
    """A ``Deposit`` idempotent on (provider, provider_ref). Card and e-wallet deposits need
    the instrument's fingerprint; ``ref`` (the ledger transaction's) is the provider's."""
    account_id = check_id(account_id, "account_id", InvalidIdentifier)
    minor = amount_minor(amount, currency)
    try:
        method_ = DepositMethod(str(method).lower())
    except ValueError:
        raise InvalidFunding(
            f"deposit method {method!r} is not one of {', '.join(DepositMethod)}", field="method"
        ) from None
    fingerprint = (
        None if instrument_fingerprint is None else check_fingerprint(instrument_fingerprint)
    )
    if fingerprint is None and method_ in (DepositMethod.CARD, DepositMethod.EWALLET):
        raise InvalidFunding(
            f"a {method_.value} deposit needs the instrument's fingerprint",
            field="instrument_fingerprint",
        )
    provider_ = check_provider(provider)
    ref = check_provider_ref(provider_ref)
    return Deposit(
        account_id, currency, minor, ref, method_, fingerprint, provider_, ref,
        actor=check_actor(actor),
    )  # fmt: skip


def add_destination(
    *,
    account_id: int,
    kind: str,
    label: str,
    instrument: str,
    currency: str,
    actor: str = "",
) -> AddDestination:
    """An ``AddDestination``: an IBAN (normalized) for a bank account, a provider token for a
    card or e-wallet, an address for a crypto wallet."""
    account_id = check_id(account_id, "account_id", InvalidIdentifier)
    try:
        kind_ = DestinationKind(str(kind).lower())
    except ValueError:
        raise InvalidFunding(
            f"destination kind {kind!r} is not one of {', '.join(DestinationKind)}", field="kind"
        ) from None
    if not isinstance(currency, str) or not is_currency(currency):
        raise InvalidFunding(f"unknown currency {currency!r}", field="currency")
    stored, _ = check_destination_instrument(kind_, instrument)
    return AddDestination(
        account_id, kind_, check_label(label), stored, currency, actor=check_actor(actor)
    )


def request_withdrawal(
    *, account_id: int, currency: str, amount: object, destination_id: int, actor: str = ""
) -> RequestWithdrawal:
    """A ``RequestWithdrawal`` to a registered destination (the handler checks it is this
    account's, in this currency)."""
    return RequestWithdrawal(
        check_id(account_id, "account_id", InvalidIdentifier),
        currency,
        amount_minor(amount, currency),
        check_id(destination_id, "destination_id", InvalidIdentifier),
        actor=check_actor(actor),
    )


def hold_withdrawal(*, withdrawal_id: int, reason: str, actor: str) -> HoldWithdrawal:
    return HoldWithdrawal(
        check_id(withdrawal_id, "withdrawal_id", InvalidIdentifier),
        check_reason(reason, required=True),
        actor=check_actor(actor),
    )


def release_withdrawal(*, withdrawal_id: int, reason: str, actor: str) -> ReleaseWithdrawal:
    return ReleaseWithdrawal(
        check_id(withdrawal_id, "withdrawal_id", InvalidIdentifier),
        check_reason(reason, required=True),
        actor=check_actor(actor),
    )


def decide_withdrawal(
    *, withdrawal_id: int, approve: bool, reason: str = "", actor: str = ""
) -> DecideWithdrawal:
    if type(approve) is not bool:
        raise InvalidInput(f"approve must be true or false, got {approve!r}", field="approve")
    return DecideWithdrawal(
        check_id(withdrawal_id, "withdrawal_id", InvalidIdentifier),
        approve,
        check_reason(reason, required=not approve),
        actor=check_actor(actor),
    )


def rollover(*, now_ns: int, actor: str = "") -> Rollover:
    return Rollover(
        check_int(now_ns, "now_ns", low=0, error=InvalidRollover), actor=check_actor(actor)
    )
