"""Positions per (account, symbol) as open lots, closed first in, first out.

A netting account holds one net position per symbol. Each opening fill starts a lot with
its time, quantity and cost; a reducing fill closes the oldest lots first, so realized PnL
per lot is exact, as tax statements need.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(slots=True)
class Lot:
    lot_id: int
    account_id: int
    symbol: str
    qty: int  # signed at opening: + long, - short
    remaining: int  # signed, same sign as qty, 0 once closed
    price: int
    margin: int  # margin still held for ``remaining``, account currency minor units
    open_exec_id: str
    opened_ns: int
    closed_ns: int | None = None


# A named tuple, not a frozen dataclass: as immutable, and cheaper to make.
class LotClose(NamedTuple):
    """A slice of one lot closed by a fill. ``qty`` is signed like the lot."""

    lot: Lot
    qty: int
    close_price: int
    margin_released: int


@dataclass(slots=True)
class Position:
    account_id: int
    symbol: str
    lots: deque[Lot] = field(default_factory=deque)
    net: int = 0  # signed sum of remaining
    cost: int = 0  # sum of remaining * price, signed like net

    def add_lot(self, lot: Lot) -> None:
        assert self.net == 0 or (self.net > 0) == (lot.remaining > 0), "lots share one side"
        self.lots.append(lot)
        self.net += lot.remaining
        self.cost += lot.remaining * lot.price

    def close_fifo(self, signed_qty: int, price: int, ts_ns: int) -> tuple[list[LotClose], int]:
        """Close lots oldest first against a fill of ``signed_qty``.

        Returns the slices closed and the signed quantity left over, which opens a new lot
        on the other side (a flip). A fill on the same side as the position closes nothing.
        """
        closes: list[LotClose] = []
        left = signed_qty
        while left and self.lots and (left > 0) != (self.lots[0].remaining > 0):
            lot = self.lots[0]
            take = min(abs(left), abs(lot.remaining))
            slice_qty = take if lot.remaining > 0 else -take
            # Release margin in proportion; the last slice takes what is left, so the lot's
            # margin is released to the minor unit, never more, never less.
            if take == abs(lot.remaining):
                released = lot.margin
            else:
                released = lot.margin * take // abs(lot.remaining)
            lot.remaining -= slice_qty
            lot.margin -= released
            self.net -= slice_qty
            self.cost -= slice_qty * lot.price
            closes.append(LotClose(lot, slice_qty, price, released))
            left += slice_qty
            if lot.remaining == 0:
                lot.closed_ns = ts_ns
                self.lots.popleft()
        return closes, left
