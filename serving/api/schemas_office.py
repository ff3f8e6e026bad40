"""Bodies of the back-office and risk routes (requests refuse unknown fields).

Money is a decimal string in its currency (``"100.00"`` USD), quantities are decimal strings
in lots, margin levels percent as decimal strings, times UTC nanoseconds: never a float.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trading.bounds import check_text
from trading.errors import InvalidInput

REASON_MAX = 256  # the bus entry's bound on a reason (docs/commands.md)
DECIMAL = r"^[0-9]{1,18}(\.[0-9]{1,18})?$"
# Symbols as the catalogue spells them (EUR/USD, US500, BTC/USD).
SYMBOL = r"^[A-Za-z0-9][A-Za-z0-9/._-]{0,31}$"
WithdrawalState = Literal["requested", "held", "approved", "rejected"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReasonIn(_In):
    """Every back-office action says why: the reason goes to the audit log with the actor."""

    reason: str = Field(
        min_length=1,
        max_length=REASON_MAX,
        description="why, for the audit log: no control characters, no surrounding space",
    )

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        try:
            return check_text(value, "reason", REASON_MAX)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None


class LimitsIn(ReasonIn):
    """The account's own leverage and limits; replaces the whole set (absent: the tier's)."""

    leverage: int | None = Field(default=None, ge=1, le=1000, description="1..the tier's cap")
    max_position_lots: str | None = Field(default=None, pattern=DECIMAL, description="lots")
    max_order_lots: str | None = Field(default=None, pattern=DECIMAL, description="lots")
    max_order_notional: str | None = Field(
        default=None, pattern=DECIMAL, description="in the account's currency"
    )
    max_orders_per_second: int | None = Field(default=None, ge=1, le=1_000_000)


class StateIn(ReasonIn):
    state: Literal["active", "reducing_only", "halted"]


class SymbolIn(ReasonIn):
    symbol: str = Field(pattern=SYMBOL, description="as the catalogue spells it: EUR/USD")


class CloseIn(SymbolIn):
    qty: str | None = Field(
        default=None, pattern=DECIMAL, description="lots, on the lot grid; absent: all of it"
    )


class ActionOut(BaseModel):
    """What a back-office action did, and under whose name."""

    command_id: str
    actor: str = Field(description="the audit log's actor: api:user-{id}")
    reason: str
    ref: str = Field(description="what it touched: withdrawal:12, account:7, symbol:EUR/USD")
    detail: str = Field(description="how: approved, held, halted...")


class CloseOut(BaseModel):
    """The house's closing order, as the OMS answered it."""

    command_id: str
    actor: str
    reason: str
    order_id: int
    account_id: int
    symbol: str
    status: str
    refusal: str | None = Field(description="a denial or rejection reason code")
    qty: str
    filled_qty: str
    avg_price: str | None


class WithdrawalOut(BaseModel):
    withdrawal_id: int
    account_id: int
    client_id: int | None
    currency: str
    amount: str
    status: str
    requested_ns: int
    decided_ns: int | None
    destination_id: int | None
    destination: str | None = Field(description="masked, as the client sees it")
    hold_reason: str | None


class WithdrawalsOut(BaseModel):
    items: list[WithdrawalOut]
    next_after: int | None = Field(description="pass as `after` for the next page; null: last")


class AccountOut(BaseModel):
    account_id: int
    currency: str
    tier: str
    account_type: str
    state: str
    leverage: int | None = Field(description="the account's own cap; null: the tier's")
    created_ns: int


class ClientOut(BaseModel):
    client_id: int
    kind: str
    name: str
    country: str
    email: str
    birth_date: str | None
    lei: str | None
    national_id: str | None
    created_ns: int
    accounts: list[AccountOut]


class ClientsOut(BaseModel):
    items: list[ClientOut]
    next_after: int | None


class BalanceOut(BaseModel):
    currency: str
    cash: str
    margin_held: str
    withdrawal_pending: str


class PositionOut(BaseModel):
    symbol: str
    net_qty: str = Field(description="lots, signed: + long, - short")
    lots: int = Field(description="open lots")


class AccountDetailOut(BaseModel):
    account: AccountOut
    client: ClientOut | None
    balances: list[BalanceOut]
    positions: list[PositionOut]
    risk: dict[str, Any] | None = Field(
        description="the positions flow's live figures (docs/risk.md), text; null: none yet"
    )


class AuditOut(BaseModel):
    seq: int
    ts_ns: int
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]
