"""``/v1/accounts/{account_id}/positions`` and ``.../trades``: open positions with their
lots, marked; the trade history a page at a time, or whole as CSV.

Positions are the positions flow's live ones (``bourse:risk:positions:{id}``) when it has
written the account, else the store's open lots marked at the quote snapshot (a long at
the bid, a short at the ask, as the OMS marks them).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from serving.api.deps import CurrentUser, StateDep
from serving.api.problems import responses
from serving.api.state import ApiState
from serving.api.views import (
    Money,
    avg_price_text,
    catalogue,
    decode_cursor,
    encode_cursor,
    instrument,
    money,
    owned_account,
    price_text,
    qty_text,
    quotes,
    time_ns,
)
from trading.bus.risk import read_account, read_positions
from trading.money import format_minor
from trading.store.read import TradeView, trades_page
from trading.store.read_balances import open_positions, unrealized

router = APIRouter(prefix="/v1/accounts/{account_id}", tags=["positions"])
_NOT_FOUND = responses(404)
_CSV_PAGE = 500
CSV_COLUMNS = (
    "time",
    "ts_ns",
    "exec_id",
    "order_id",
    "symbol",
    "side",
    "qty",
    "price",
    "commission",
    "realized",
    "currency",
    "venue",
)


class LotOut(BaseModel):
    lot_id: int
    qty: str = Field(description="lots still open, signed: + long, - short")
    price: str
    margin: Money | None


class PositionOut(BaseModel):
    symbol: str
    side: Literal["long", "short"]
    qty: str = Field(description="the net quantity in lots, signed")
    avg_price: str
    lots: list[LotOut]
    margin: Money
    mark: str | None = Field(description="the price marked at; null: no quote")
    unrealized: Money | None = Field(description="null: no quote or no conversion rate")
    source: Literal["live", "store"]


class TradeOut(BaseModel):
    exec_id: str
    order_id: int
    symbol: str
    side: str
    qty: str
    price: str
    commission: Money
    realized: Money
    closed_qty: str
    venue: str
    ts_ns: int


class TradePage(BaseModel):
    items: list[TradeOut]
    next_cursor: str | None = Field(description="opaque: pass as `cursor` for the next page")


def positions_out(state: ApiState, account_id: int, currency: str) -> list[PositionOut]:
    """The account's open positions, live from the flow when it has the account."""
    if read_account(state.redis, account_id) is not None:
        out = []
        for symbol, p in sorted(read_positions(state.redis, account_id).items()):
            inst = instrument(symbol)
            ccy = p.get("currency") or currency
            out.append(
                PositionOut(
                    symbol=symbol,
                    side="long" if p["net_qty"] > 0 else "short",
                    qty=qty_text(inst, p["net_qty"]),
                    avg_price=str(p["avg_price"]),
                    lots=[
                        LotOut(
                            lot_id=x["lot_id"],
                            qty=qty_text(inst, x["remaining"]),
                            price=str(price_text(inst, x["price"])),
                            margin=money(x["margin"], ccy),
                        )
                        for x in p["lots"]
                    ],
                    margin=money(p["margin"], ccy),
                    mark=price_text(inst, p.get("mark")),
                    unrealized=None if p.get("unrealized") is None else money(p["unrealized"], ccy),
                    source="live",
                )
            )
        return out
    with state.reader.connect() as conn:
        held = open_positions(conn, account_id)
    marks = quotes(state, [p.symbol for p in held])
    out = []
    for pos in held:
        inst = instrument(pos.symbol)
        q = marks.get(pos.symbol)
        pnl, unmarked = unrealized(catalogue(), [pos], currency, lambda s: quotes(state, [s])[s])
        out.append(
            PositionOut(
                symbol=pos.symbol,
                side="long" if pos.net > 0 else "short",
                qty=qty_text(inst, pos.net),
                avg_price=str(avg_price_text(inst, pos.cost, pos.net)),
                lots=[
                    LotOut(
                        lot_id=x.lot_id,
                        qty=qty_text(inst, x.remaining),
                        price=str(price_text(inst, x.price)),
                        margin=None if x.margin is None else money(x.margin, currency),
                    )
                    for x in pos.lots
                ],
                margin=money(sum(x.margin or 0 for x in pos.lots), currency),
                mark=price_text(inst, None if q is None else (q.bid if pos.net > 0 else q.ask)),
                unrealized=None if unmarked else money(pnl, currency),
                source="store",
            )
        )
    return out


@router.get("/positions", response_model=list[PositionOut], responses=_NOT_FOUND)
def list_positions(account_id: int, user: CurrentUser, state: StateDep) -> list[PositionOut]:
    """The account's open positions, by symbol, with their open lots (oldest first)."""
    with state.reader.connect() as conn:
        account = owned_account(conn, user, account_id)
    return positions_out(state, account_id, account.currency)


def trade_out(t: TradeView) -> TradeOut:
    inst = instrument(t.symbol)
    return TradeOut(
        exec_id=t.exec_id,
        order_id=t.order_id,
        symbol=t.symbol,
        side=t.side.value,
        qty=qty_text(inst, t.qty),
        price=str(price_text(inst, t.price)),
        commission=money(t.commission, t.currency),
        realized=money(t.realized, t.currency),
        closed_qty=qty_text(inst, t.closed_qty),
        venue=t.venue,
        ts_ns=t.ts_ns,
    )


Since = Annotated[dt.datetime | None, Query(alias="from", description="at or after")]
Until = Annotated[dt.datetime | None, Query(description="before")]
Symbol = Annotated[str | None, Query(max_length=32)]


@router.get("/trades", response_model=TradePage, responses=_NOT_FOUND)
def list_trades(
    account_id: int,
    user: CurrentUser,
    state: StateDep,
    symbol: Symbol = None,
    from_: Since = None,
    to: Until = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> TradePage:
    """The account's fills, newest first, each with the PnL it realized."""
    sym = instrument(symbol).symbol if symbol else None
    with state.reader.connect() as conn:
        owned_account(conn, user, account_id)
        page = trades_page(
            conn,
            account_id,
            symbol=sym,
            since_ns=time_ns(from_),
            until_ns=time_ns(to),
            cursor=decode_cursor(cursor),
            limit=limit,
        )
    return TradePage(
        items=[trade_out(t) for t in page.items], next_cursor=encode_cursor(page.next_cursor)
    )


def _csv_rows(
    state: ApiState, account_id: int, symbol: str | None, since: int | None, until: int | None
) -> Iterator[str]:
    """The CSV a page of the store at a time: memory stays bounded however long the history."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    cursor: str | None = None
    while True:
        with state.reader.connect() as conn:
            page = trades_page(
                conn,
                account_id,
                symbol=symbol,
                since_ns=since,
                until_ns=until,
                cursor=cursor,
                limit=_CSV_PAGE,
            )
        for t in page.items:
            inst = instrument(t.symbol)
            when = dt.datetime.fromtimestamp(t.ts_ns / 1e9, dt.UTC).isoformat()
            writer.writerow(
                (
                    when,
                    t.ts_ns,
                    t.exec_id,
                    t.order_id,
                    t.symbol,
                    t.side.value,
                    qty_text(inst, t.qty),
                    price_text(inst, t.price),
                    format_minor(t.commission, t.currency),
                    format_minor(t.realized, t.currency),
                    t.currency,
                    t.venue,
                )
            )
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


@router.get(
    "/trades.csv",
    response_class=StreamingResponse,
    responses={**_NOT_FOUND, 200: {"content": {"text/csv": {}}, "description": "CSV"}},
)
def export_trades(
    account_id: int,
    user: CurrentUser,
    state: StateDep,
    symbol: Symbol = None,
    from_: Since = None,
    to: Until = None,
) -> StreamingResponse:
    """The account's whole trade history (or the window asked) as CSV, streamed."""
    sym = instrument(symbol).symbol if symbol else None
    with state.reader.connect() as conn:
        owned_account(conn, user, account_id)
    rows = _csv_rows(state, account_id, sym, time_ns(from_), time_ns(to))
    name = f"trades-{account_id}.csv"
    return StreamingResponse(
        rows,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
