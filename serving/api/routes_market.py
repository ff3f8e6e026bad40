"""``/v1/instruments`` and ``/v1/quotes``: what can be traded, on what terms, at what price.

Specs come from the instrument catalogue the OMS trades; quotes from the snapshot the tick
pipeline keeps in Redis (``bourse:quote:{symbol}``), each with its time so that a caller
sees a quote that went stale. Prices, sizes and rates are decimal strings.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from serving.api.deps import CurrentUser, StateDep
from serving.api.problems import Problem, responses
from serving.api.views import catalogue, instrument, price_text, quotes
from trading.instrument import Instrument

router = APIRouter(prefix="/v1", tags=["market"])

MAX_QUOTES = 200


class InstrumentOut(BaseModel):
    symbol: str
    asset_class: str
    base: str
    quote: str
    tick_size: str
    lot_size: str
    contract_size: str
    min_qty: str
    max_qty: str
    price_precision: int
    max_leverage: int
    account_type: str
    session: str
    aliases: list[str]
    swap_long: str
    swap_short: str


class QuoteOut(BaseModel):
    symbol: str
    bid: str | None
    ask: str | None
    ts_ns: int | None
    available: bool


def _spec(inst: Instrument) -> InstrumentOut:
    return InstrumentOut(
        symbol=inst.symbol,
        asset_class=str(inst.asset_class),
        base=inst.base,
        quote=inst.quote,
        tick_size=str(inst.tick_size),
        lot_size=str(inst.lot_size),
        contract_size=str(inst.contract_size),
        min_qty=str(inst.min_qty),
        max_qty=str(inst.max_qty),
        price_precision=inst.price_precision,
        max_leverage=inst.max_leverage,
        account_type=str(inst.account_type),
        session=inst.session,
        aliases=list(inst.aliases),
        swap_long=str(inst.swap_long),
        swap_short=str(inst.swap_short),
    )


@router.get("/instruments", response_model=list[InstrumentOut])
def list_instruments(user: CurrentUser) -> list[InstrumentOut]:
    """Every instrument of the catalogue, by symbol."""
    return [_spec(inst) for inst in sorted(catalogue(), key=lambda i: i.symbol)]


@router.get(
    "/instruments/{symbol:path}",
    response_model=InstrumentOut,
    responses=responses(404),
)
def get_instrument(symbol: str, user: CurrentUser) -> InstrumentOut:
    """One instrument's specs, by its symbol (``EUR/USD``) or an alias (``EURUSD``)."""
    return _spec(instrument(symbol))


@router.get("/quotes", response_model=list[QuoteOut])
def get_quotes(
    user: CurrentUser,
    state: StateDep,
    symbols: Annotated[
        str, Query(max_length=4000, description="comma-separated symbols; empty: every instrument")
    ] = "",
) -> list[QuoteOut]:
    """The latest quote of each symbol asked (``available`` false when there is none)."""
    names = [x.strip() for x in symbols.split(",") if x.strip()]
    if len(names) > MAX_QUOTES:
        raise Problem.of(
            "invalid_input", f"at most {MAX_QUOTES} symbols", field="symbols", location="query"
        )
    # An unknown name is 422 ``unknown_symbol`` (the core's), not a missing resource.
    insts = (
        [catalogue().resolve(n) for n in names]
        if names
        else sorted(catalogue(), key=lambda i: i.symbol)
    )
    got = quotes(state, [i.symbol for i in insts])
    out = []
    for inst in insts:
        q = got.get(inst.symbol)
        out.append(
            QuoteOut(
                symbol=inst.symbol,
                bid=price_text(inst, q.bid if q else None),
                ask=price_text(inst, q.ask if q else None),
                ts_ns=q.ts_ns if q else None,
                available=q is not None,
            )
        )
    return out
