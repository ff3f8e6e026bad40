"""A fill and its ledger entries, booked against a position: no store, no ids of its own.

``book_fill`` closes lots first in, first out, opens a lot with what is left (a flip opens
on the other side), and says in a ``Fill`` what happened: each slice closed with its
realized PnL in the quote and the account currency, the lot opened, margin held and
released, commission and markup, and the balanced entries to post. The caller posts the
entries (which gives them transaction ids) and stores the rows; the lot id comes from the
``next_lot_id`` it passes. The position passed in is updated in place, as the account's own
state; nothing else is touched.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NamedTuple

from trading import ledger as L
from trading.config import FeeSchedule
from trading.instrument import Instrument
from trading.money import notional_in, to_minor
from trading.positions import Lot, Position
from trading.risk import commission, margin_held


# Named tuples, not frozen dataclasses: as immutable, and cheaper to make (one or more per fill).
class ClosedSlice(NamedTuple):
    """A slice of one lot closed by the fill. ``qty`` is signed like the lot."""

    lot: Lot
    qty: int
    open_price: int
    close_price: int
    realized_quote: Decimal  # exact, in the instrument's quote currency
    realized: int  # booked, account currency minor units
    margin_released: int


class Fill(NamedTuple):
    closed: tuple[ClosedSlice, ...]
    opened: Lot | None
    margin_held: int
    margin_released: int
    realized: int
    commission: int
    markup: int
    # Posted in this order: the close (with the fees), then the open (with the fees when
    # nothing closed). ``None`` where that side did not happen.
    close_entry: L.Entry | None
    open_entry: L.Entry | None
    position_net: int


def book_fill(
    pos: Position,
    inst: Instrument,
    *,
    currency: str,
    side_sign: int,
    side_name: str,
    qty: int,
    price: int,
    markup: int,
    ts_ns: int,
    exec_id: str,
    venue: str,
    rate: Decimal,
    lev: int,
    fees: FeeSchedule,
    next_lot_id: Callable[[], int],
) -> Fill:
    """Book a fill of ``qty`` (> 0) at ``price`` on ``pos``; ``rate``: quote -> account ccy."""
    account_id, symbol = pos.account_id, pos.symbol
    unit = inst.unit_value
    fee = commission(inst, qty, notional_in(inst, qty, price, rate), currency, fees)
    signed = qty * side_sign
    closes, left = pos.close_fifo(signed, price, ts_ns)
    cash = L.client_cash(account_id, currency)
    margin = L.client_margin(account_id, currency)
    client_pos = L.client_position(account_id, symbol)
    house_pos = L.venue_position(venue, symbol)
    commodity = L.commodity_of(symbol)
    memo = f"{side_name} {qty} {symbol} @ {price}"
    fee_postings: tuple[L.Posting, ...] = L.transfer(
        cash, L.revenue_commission(currency), currency, fee
    )
    markup_minor = 0
    if markup:
        # The spread the client paid over the raw quote is revenue, not trading result.
        markup_minor = to_minor(Decimal(qty * markup) * unit * rate, currency, ROUND_HALF_EVEN)
        fee_postings += L.transfer(
            L.venue_pnl(venue, currency), L.revenue_markup(currency), currency, markup_minor
        )
    slices: list[ClosedSlice] = []
    realized_total = released = 0
    close_entry = open_entry = None
    if closes:
        for c in closes:
            exact = Decimal(c.qty * (c.close_price - c.lot.price)) * unit
            booked = to_minor(exact * rate, currency, ROUND_HALF_EVEN)
            realized_total += booked
            released += c.margin_released
            slices.append(
                ClosedSlice(c.lot, c.qty, c.lot.price, c.close_price, exact, booked,
                            c.margin_released)
            )  # fmt: skip
        # Client gains are owed by the house: booked against the venue's P&L account.
        close_entry = L.entry(
            "fill_close", account_id, exec_id,
            (*L.transfer(client_pos, house_pos, commodity, signed - left),
             *L.transfer(margin, cash, currency, released),
             *L.transfer(L.venue_pnl(venue, currency), cash, currency, realized_total),
             *fee_postings),
            memo=memo,
        )  # fmt: skip
        fee_postings = ()
    lot = None
    held = 0
    if left:
        held = margin_held(inst, left, price, rate, lev, currency)
        lot = Lot(next_lot_id(), account_id, symbol, left, left, price, held, exec_id, ts_ns)
        pos.add_lot(lot)
        open_entry = L.entry(
            "fill_open", account_id, exec_id,
            (*L.transfer(client_pos, house_pos, commodity, left),
             *L.transfer(cash, margin, currency, held),
             *fee_postings),
            memo=memo,
        )  # fmt: skip
    return Fill(tuple(slices), lot, held, released, realized_total, fee, markup_minor,
                close_entry, open_entry, pos.net)  # fmt: skip
