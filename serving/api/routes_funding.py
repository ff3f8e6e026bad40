"""Funding: deposits through the (simulated) payment provider and its callback, withdrawal
destinations, withdrawal requests and their status.

Adding a destination and requesting a withdrawal need a session verified with 2FA
(``MfaUser``). A withdrawal goes only to a destination registered on the account in its
currency (the OMS refuses another: ``destination_not_registered``). A withdrawal request
may carry an ``Idempotency-Key``: a retry gets the original answer (see routes_orders).

``POST /v1/payments/callback`` is the provider's, not a session route: it is authenticated
by the HMAC signature of its body (``payments.py``) and answers 401 ``invalid_signature``
to anything else.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from serving.api.deps import CurrentUser, MfaUser, StateDep
from serving.api.payments import (
    SIGNATURE_HEADER,
    Payment,
    Payments,
    deposit_command_id,
    signature_ok,
)
from serving.api.problems import Problem, responses, result_of
from serving.api.state import ApiState
from serving.api.views import (
    DECIMAL,
    KEY,
    Money,
    idempotency_conflict,
    keyed_command_id,
    money,
    owned_account,
    send,
)
from trading.money import to_minor_exact
from trading.store import read
from trading.store.read_clients import destinations

router = APIRouter(prefix="/v1/accounts/{account_id}", tags=["funding"])
callbacks = APIRouter(prefix="/v1/payments", tags=["funding"])
_NOT_FOUND = responses(404)
CURRENCY = r"^[A-Z]{3,5}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DepositIn(_In):
    currency: str = Field(pattern=CURRENCY, examples=["USD"])
    amount: str = Field(pattern=DECIMAL, examples=["100.00"])
    method: Literal["card", "bank_transfer", "ewallet", "crypto"] = "card"


class PaymentOut(BaseModel):
    payment_id: str
    account_id: int
    amount: Money
    method: str
    provider: str
    status: str = Field(description="pending, credited or failed")
    ref: str | None = Field(default=None, description="the ledger's reference once credited")


class CallbackIn(_In):
    payment_id: str = Field(min_length=1, max_length=64)
    provider_ref: str = Field(min_length=1, max_length=64)
    status: Literal["succeeded", "failed"]
    instrument_fingerprint: str | None = Field(default=None, max_length=64)


class DepositOut(BaseModel):
    txn_id: int
    amount: Money
    method: str | None
    provider: str | None
    provider_ref: str | None
    ts_ns: int


class DestinationIn(_In):
    kind: Literal["bank", "card", "ewallet", "crypto"]
    label: str = Field(min_length=1, max_length=64)
    instrument: str = Field(
        min_length=1, max_length=128, description="an IBAN, the provider's token or an address"
    )
    currency: str = Field(pattern=CURRENCY)


class DestinationOut(BaseModel):
    destination_id: int
    kind: str
    label: str
    currency: str
    display: str = Field(description="masked: the full instrument is never shown")
    created_ns: int


class WithdrawalIn(_In):
    currency: str = Field(pattern=CURRENCY)
    amount: str = Field(pattern=DECIMAL)
    destination_id: int


class WithdrawalOut(BaseModel):
    withdrawal_id: int
    amount: Money
    destination_id: int | None
    status: str = Field(description="requested, held, approved or rejected")
    requested_ns: int
    decided_ns: int | None


def _payments(state: ApiState) -> Payments:
    return Payments(state.redis, state.settings.api_payment_ttl_s)


def _payment_out(state: ApiState, p: Payment) -> PaymentOut:
    return PaymentOut(
        payment_id=p.payment_id,
        account_id=p.account_id,
        method=p.method,
        amount=Money(amount=p.amount, currency=p.currency),
        provider=state.settings.api_payment_provider,
        status=p.status,
        ref=p.ref or None,
    )


def _amount(amount: str, currency: str) -> str:
    """The amount checked against its currency's minor unit (the core's codes)."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise Problem(422, "invalid_amount", "not a decimal amount", field="amount") from None
    if to_minor_exact(value, currency) <= 0:
        raise Problem(422, "invalid_amount", "the amount must be positive", field="amount")
    return amount


@router.post("/deposits", status_code=201, response_model=PaymentOut, responses=_NOT_FOUND)
def start_deposit(
    account_id: int, body: DepositIn, user: CurrentUser, state: StateDep
) -> PaymentOut:
    """Starts a deposit with the payment provider; the account is credited when the
    provider calls back that the payment succeeded."""
    with state.reader.connect() as conn:
        owned_account(conn, user, account_id)
    payment = _payments(state).start(
        account_id=account_id,
        currency=body.currency,
        amount=_amount(body.amount, body.currency),
        method=body.method,
        user_id=user.user_id,
        now_ns=state.clock(),
    )
    return _payment_out(state, payment)


@router.get("/deposits", response_model=list[DepositOut], responses=_NOT_FOUND)
def list_deposits(account_id: int, user: CurrentUser, state: StateDep) -> list[DepositOut]:
    """The deposits credited to the account, oldest first."""
    with state.reader.connect() as conn:
        owned_account(conn, user, account_id)
        rows = read.deposits(conn, account_id)
    return [
        DepositOut(
            txn_id=d.txn_id,
            amount=money(d.amount, d.currency),
            method=d.method,
            provider=d.provider,
            provider_ref=d.provider_ref,
            ts_ns=d.ts_ns,
        )
        for d in rows
    ]


@callbacks.post(
    "/callback",
    response_model=PaymentOut,
    responses=responses(401, 404),
)
async def payment_callback(
    request: Request,
    state: StateDep,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> PaymentOut:
    """The payment provider's callback (signed, not a session route). Idempotent: a
    replayed callback is answered again and credits once."""
    raw = await request.body()
    if not signature_ok(state.settings.api_payment_secret, raw, signature):
        raise Problem(401, "invalid_signature", "the callback's signature does not match")
    try:
        body = CallbackIn.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        raise Problem.of("invalid_input", f"{field}: {first['msg']}", field=field) from None
    payments = _payments(state)
    payment = payments.get(body.payment_id)
    if payment is None:
        raise Problem.of("not_found", f"no payment {body.payment_id}")
    if body.status == "failed":
        if payment.status == "pending":
            payments.settle(payment.payment_id, "failed", body.provider_ref)
        return _payment_out(state, payments.get(payment.payment_id) or payment)
    provider = state.settings.api_payment_provider
    wire: dict[str, Any] = {
        "account_id": payment.account_id,
        "currency": payment.currency,
        "amount": payment.amount,
        "method": payment.method,
        "provider": provider,
        "provider_ref": body.provider_ref,
        "instrument_fingerprint": body.instrument_fingerprint
        if payment.method in ("card", "ewallet")
        else None,
    }
    # The OMS keys a provider's deposit by (provider, provider_ref): the same reference
    # again is the same deposit. The command id is keyed the same way, so a replay gets
    # the original reply from the command log.
    reply = state.bus.send_raw(
        "Deposit",
        {k: v for k, v in wire.items() if v is not None},
        state.settings.api_command_timeout_s,
        command_id=deposit_command_id(provider, body.provider_ref),
        actor=f"api:payments-{provider}",
    )
    result = result_of(reply)
    payments.settle(payment.payment_id, "credited", body.provider_ref, str(result.get("ref", "")))
    return _payment_out(state, payments.get(payment.payment_id) or payment)


@router.get("/destinations", response_model=list[DestinationOut], responses=_NOT_FOUND)
def list_destinations(account_id: int, user: CurrentUser, state: StateDep) -> list[DestinationOut]:
    """The account's registered withdrawal destinations, oldest first, masked."""
    with state.reader.connect() as conn:
        owned_account(conn, user, account_id)
        rows = destinations(conn, account_id)
    return [
        DestinationOut(
            destination_id=d.destination_id,
            kind=d.kind,
            label=d.label,
            currency=d.currency,
            display=d.display,
            created_ns=d.created_ns,
        )
        for d in rows
    ]


@router.post("/destinations", status_code=201, response_model=DestinationOut, responses=_NOT_FOUND)
def add_destination(
    account_id: int, body: DestinationIn, user: MfaUser, state: StateDep
) -> DestinationOut:
    """Registers where withdrawals may go (needs 2FA)."""
    with state.reader.connect() as conn:
        owned_account(conn, user, account_id)
    result = send(state, user, "AddDestination", {"account_id": account_id, **body.model_dump()})
    dest_id = int(str(result["ref"]).rsplit(":", 1)[1])
    with state.reader.connect() as conn:
        made = next(d for d in destinations(conn, account_id) if d.destination_id == dest_id)
    return DestinationOut(
        destination_id=made.destination_id,
        kind=made.kind,
        label=made.label,
        currency=made.currency,
        display=made.display,
        created_ns=made.created_ns,
    )


def _withdrawal_out(w: read.WithdrawalView) -> WithdrawalOut:
    return WithdrawalOut(
        withdrawal_id=w.withdrawal_id,
        amount=money(w.amount, w.currency),
        destination_id=w.destination_id,
        status=w.status,
        requested_ns=w.requested_ns,
        decided_ns=w.decided_ns,
    )


@router.post("/withdrawals", status_code=201, response_model=WithdrawalOut, responses=_NOT_FOUND)
def request_withdrawal(
    account_id: int,
    body: WithdrawalIn,
    user: MfaUser,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header(pattern=KEY)] = None,
) -> WithdrawalOut:
    """Requests a withdrawal to a registered destination (needs 2FA); it then waits for
    the back office's decision."""
    with state.reader.connect() as conn:
        owned_account(conn, user, account_id)
    wire = {
        "account_id": account_id,
        "currency": body.currency,
        "amount": _amount(body.amount, body.currency),
        "destination_id": body.destination_id,
    }
    cid = keyed_command_id(user, "withdrawal", idempotency_key) if idempotency_key else None
    reply = state.bus.send_raw(
        "RequestWithdrawal",
        wire,
        state.settings.api_command_timeout_s,
        command_id=cid,
        actor=f"api:user-{user.user_id}",
    )
    if reply.code == "duplicate_command_id":
        raise idempotency_conflict()
    wid = int(str(result_of(reply)["ref"]).rsplit(":", 1)[1])
    with state.reader.connect() as conn:
        made = next(w for w in read.withdrawals(conn, account_id) if w.withdrawal_id == wid)
    return _withdrawal_out(made)


@router.get("/withdrawals", response_model=list[WithdrawalOut], responses=_NOT_FOUND)
def list_withdrawals(account_id: int, user: CurrentUser, state: StateDep) -> list[WithdrawalOut]:
    """The account's withdrawals and their status, oldest first."""
    with state.reader.connect() as conn:
        owned_account(conn, user, account_id)
        rows = read.withdrawals(conn, account_id)
    return [_withdrawal_out(w) for w in rows]
