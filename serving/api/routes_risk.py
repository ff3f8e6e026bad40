"""``/v1/risk``: the risk desk's reads of the live state the positions flow keeps in Redis
(``docs/risk.md``, decoded by ``pipelines.positions.redis_read``), and the alerts.

| method | path | roles |
|---|---|---|
| GET | `/house` | risk, compliance, admin |
| GET | `/exposure` (per symbol), `/exposure/currencies` | risk, compliance, admin |
| GET | `/margin-levels?limit=` | risk, compliance, admin |
| GET | `/alerts?after=&limit=` | risk, compliance, admin |

Staff only, verified with 2FA. Money is minor units of ``house_currency`` (the house hash
names it) as JSON integers, as the flow writes it; decimals are strings.

Alerts come from the streams of ``ALERT_STREAMS`` (the positions flow's today; the fraud
flow's joins it), merged in stream-id order: Redis draws ids from its clock, so one id is a
cursor across all of them. Follow with ``after`` = the previous answer's ``next_after``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from serving.api import problems
from serving.api.deps import Session, StateDep, staff
from trading.bus import risk as redis_read
from trading.bus.risk import ALERTS_STREAM
from trading.fields import text_of

router = APIRouter(prefix="/v1/risk", tags=["risk"], responses=problems.responses(403))

ROLES = ("risk", "compliance", "admin")
Desk = Annotated[Session, Depends(staff(*ROLES))]

# Where alerts come from: (source name, stream). The fraud flow adds its stream here.
ALERT_STREAMS: tuple[tuple[str, str], ...] = (("positions", ALERTS_STREAM),)
STREAM_ID = r"^[0-9]{1,19}(-[0-9]{1,19})?$"


class HouseOut(BaseModel):
    house_currency: str | None
    ts_ns: int | None
    value: int | None = Field(description="gross exposure: sum of |value| over the symbols")
    symbols_breached: list[str]
    currencies_breached: list[str]
    unvalued: list[str]


class SymbolExposureOut(BaseModel):
    symbol: str
    client_net_qty: int = Field(description="lot steps, signed: the house holds the opposite")
    long_qty: int
    short_qty: int
    accounts: int
    value: int | None
    limit: int | None
    breached: bool
    ts_ns: int


class CurrencyExposureOut(BaseModel):
    currency: str
    amount: str = Field(description="major units, signed")
    value: int | None
    limit: int | None
    breached: bool
    ts_ns: int


class MarginLevelOut(BaseModel):
    account_id: int
    margin_level: str = Field(description="percent")
    margin_state: str | None
    currency: str | None
    equity: int | None
    used_margin: int | None
    free_margin: int | None
    state: str | None


class AlertOut(BaseModel):
    id: str = Field(description="the stream id: the cursor")
    source: str
    kind: str
    ts_ns: int
    account_id: int | None
    symbol: str | None
    currency: str | None
    level: str | None
    message: str
    details: dict[str, Any]


class AlertsOut(BaseModel):
    items: list[AlertOut]
    next_after: str = Field(description="pass back as `after` to follow")


def _split(text: str | None) -> list[str]:
    return [x for x in (text or "").split(",") if x]


def _int(text: str | None) -> int | None:
    return int(text) if text else None


@router.get("/house", response_model=HouseOut)
def house(user: Desk, state: StateDep) -> HouseOut:
    """The house summary: gross exposure and what is over its limit (empty before the flow
    has written any exposure)."""
    h = redis_read.read_house(state.redis)
    return HouseOut(
        house_currency=h.get("house_currency") or None, ts_ns=_int(h.get("ts_ns")),
        value=_int(h.get("value")), symbols_breached=_split(h.get("symbols_breached")),
        currencies_breached=_split(h.get("currencies_breached")),
        unvalued=_split(h.get("unvalued")),
    )  # fmt: skip


def _known(model: type[BaseModel], row: Mapping[str, Any]) -> dict[str, Any]:
    # The flow adds fields, never renames them: what this version does not know is left out.
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()
            if k in model.model_fields}  # fmt: skip


@router.get("/exposure", response_model=list[SymbolExposureOut])
def exposure(user: Desk, state: StateDep) -> list[SymbolExposureOut]:
    """The house's exposure per symbol, largest |value| first (unvalued last)."""
    rows = [SymbolExposureOut(**_known(SymbolExposureOut, r))
            for r in redis_read.read_exposure(state.redis).values()]  # fmt: skip
    return sorted(rows, key=lambda r: (r.value is None, -abs(r.value or 0), r.symbol))


@router.get("/exposure/currencies", response_model=list[CurrencyExposureOut])
def currency_exposure(user: Desk, state: StateDep) -> list[CurrencyExposureOut]:
    """The house's net exposure per currency, largest |value| first (unvalued last)."""
    rows = [CurrencyExposureOut(**_known(CurrencyExposureOut, r))
            for r in redis_read.read_currency_exposure(state.redis).values()]  # fmt: skip
    return sorted(rows, key=lambda r: (r.value is None, -abs(r.value or 0), r.currency))


@router.get("/margin-levels", response_model=list[MarginLevelOut])
def margin_levels(
    user: Desk, state: StateDep, limit: Annotated[int, Query(ge=1, le=500)] = 20
) -> list[MarginLevelOut]:
    """The accounts nearest stop-out: lowest margin level first (only accounts that use
    margin), with their figures."""
    out = []
    for account_id, level in redis_read.accounts_by_margin_level(state.redis, limit):
        acc = redis_read.read_account(state.redis, account_id) or {}
        out.append(MarginLevelOut(
            account_id=account_id, margin_level=str(level), margin_state=acc.get("margin_state"),
            currency=acc.get("currency"), equity=acc.get("equity"),
            used_margin=acc.get("used_margin"), free_margin=acc.get("free_margin"),
            state=acc.get("state"),
        ))  # fmt: skip
    return out


def _order(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


@router.get("/alerts", response_model=AlertsOut)
def alerts(
    user: Desk,
    state: StateDep,
    after: Annotated[
        str, Query(pattern=STREAM_ID, description="a stream id; 0: from the oldest kept")
    ] = "0-0",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertsOut:
    """Alerts after ``after``, oldest first, from every source."""
    ms, _, seq = after.partition("-")
    # A stream id is two 64-bit counts; anything larger is no id Redis could have drawn.
    cursor = f"{min(int(ms), 2**64 - 1)}-{min(int(seq or 0), 2**64 - 1)}"
    reply: Any = state.redis.xread({stream: cursor for _, stream in ALERT_STREAMS}, count=limit)
    source_of = {stream: source for source, stream in ALERT_STREAMS}
    found: list[tuple[str, str, dict[bytes, bytes]]] = [
        (text_of(sid), source_of[text_of(stream)], fields)
        for stream, entries in (reply or []) for sid, fields in entries
    ]  # fmt: skip
    found.sort(key=lambda x: _order(x[0]))
    items = []
    for sid, source, fields in found[:limit]:
        a = redis_read.decode_alert(fields)
        items.append(AlertOut(
            id=sid, source=source, kind=a["kind"], ts_ns=a["ts_ns"], account_id=a["account_id"],
            symbol=a["symbol"], currency=a["currency"],
            level=str(a["level"]) if a["level"] is not None else None,
            message=a.get("message", ""), details=_details(a["details"]),
        ))  # fmt: skip
    return AlertsOut(items=items, next_after=items[-1].id if items else cursor)


def _details(details: object) -> dict[str, Any]:
    return details if isinstance(details, dict) else {"value": json.dumps(details)}
