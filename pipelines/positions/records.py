"""What the positions flow hands its outputs: marked positions, account figures, house
exposure, alerts and the house closes of a stop-out.

Every record is plain data (integers in the units of ``docs/events.md``, ``Decimal`` where a
figure is not a whole number of anything, never a float), so that the Redis sink, the lake
writer and the tests read the same thing. The sinks turn them into the layouts of
``docs/risk.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class LotRow:
    lot_id: int
    remaining: int  # lot steps, signed: + long, - short
    price: int  # open price, price units
    margin: int  # margin still held, minor units of the account currency


@dataclass(frozen=True, slots=True)
class PositionRow:
    """One account's open position in one symbol, marked at the right side."""

    account_id: int
    symbol: str
    net_qty: int  # lot steps, signed
    cost: int  # signed sum of remaining × open price (lot steps × price units)
    avg_price: Decimal  # human units: cost / net_qty, scaled by the instrument
    lots: tuple[LotRow, ...]  # oldest first
    currency: str  # the account currency: margin and unrealized are in it
    margin: int  # minor units: the lots' margin
    mark: int | None  # price units: the bid for a long, the ask for a short; None: no quote
    unrealized: int | None  # minor units; None: no quote or no conversion rate
    ts_ns: int  # when these figures were computed (the event or quote that moved them)


class MarginState(StrEnum):
    OK = "ok"
    MARGIN_CALL = "margin_call"  # at or under the call level
    STOP_OUT = "stop_out"  # at or under the stop-out level: closes in progress


@dataclass(frozen=True, slots=True)
class AccountRow:
    """An account's money in its own currency (``currency``), marked now.

    ``cash`` is free cash; ``balance`` = cash + used margin (the client's money before
    open PnL); ``equity`` = balance + unrealized; ``free_margin`` = equity - used margin;
    ``margin_level`` = equity / used margin × 100 (None when no margin is used).
    ``other_cash`` holds the cash of other currencies the account holds (minor units of
    each), which are not converted into equity.
    """

    account_id: int
    currency: str
    account_type: str  # ``margin`` or ``cash``
    tier: str
    state: str  # ``active``, ``reducing_only``, ``halted``
    cash: int
    balance: int
    used_margin: int
    withdrawal_pending: int
    unrealized: int  # of the positions that could be marked
    equity: int
    free_margin: int
    margin_level: Decimal | None  # percent
    margin_state: MarginState
    unmarked: tuple[str, ...]  # symbols with no quote or no conversion to ``currency``
    positions: int  # open positions
    last_seq: int  # the account_seq of the last event applied
    ts_ns: int
    other_cash: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ExposureRow:
    """The house's exposure in one symbol: the opposite of the clients' net position."""

    symbol: str
    client_net_qty: int  # lot steps, signed: the clients' net; the house holds the opposite
    long_qty: int  # lot steps: the clients' longs summed
    short_qty: int  # lot steps, >= 0: the clients' shorts summed
    accounts: int  # accounts holding a position
    value: int | None  # the house's position valued in the house currency, minor units
    limit: int | None  # |value| limit, minor units of the house currency; None: none
    breached: bool
    ts_ns: int


@dataclass(frozen=True, slots=True)
class CurrencyExposureRow:
    """The house's net exposure in one currency: base legs + quote legs of every symbol."""

    currency: str
    amount: Decimal  # the house's net amount of the currency, major units (signed)
    value: int | None  # in the house currency, minor units; None: no rate
    limit: int | None
    breached: bool
    ts_ns: int


class AlertKind(StrEnum):
    MARGIN_CALL = "margin_call"
    MARGIN_CALL_CLEARED = "margin_call_cleared"
    STOP_OUT_STARTED = "stop_out_started"
    STOP_OUT_CLOSE_SENT = "stop_out_close_sent"
    STOP_OUT_CLOSE_FAILED = "stop_out_close_failed"  # denied, rejected or canceled unfilled
    STOP_OUT_ENDED = "stop_out_ended"  # the level is back above stop-out
    STOP_OUT_STUCK = "stop_out_stuck"  # still under, nothing left that can be closed
    EXPOSURE_LIMIT = "exposure_limit"  # a symbol or currency crossed its limit
    EXPOSURE_CLEARED = "exposure_cleared"  # back under
    REBUILD = "rebuild"  # an account (or a partition) was rebuilt from the store
    DEAD_LETTER = "dead_letter"  # an event that could not be applied


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    ts_ns: int
    message: str  # for people: what, and the numbers that caused it
    account_id: int | None = None
    symbol: str | None = None
    currency: str | None = None
    level: Decimal | None = None  # margin level, percent, where it applies
    details: dict[str, str] = field(default_factory=dict)  # decimal strings, ids


@dataclass(frozen=True, slots=True)
class CloseOrder:
    """A ``ClosePosition`` the flow sends through the command bus for a stop-out.

    ``command_id`` is fixed by the stop-out's own numbering (account, episode, step), so a
    flow that resumes from an older snapshot and decides the same close again sends the
    same id, which the OMS answers from its command log instead of closing twice.
    """

    command_id: str
    account_id: int
    symbol: str
    reason: str  # the level and the prices that caused it


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A stream entry or event the flow could not apply, kept with why."""

    stream: str
    stream_id: str
    reason: str
    ts_ns: int  # when it was set aside
    event_id: int | None = None
    account_id: int | None = None
    raw: str = ""  # the entry as read (its payload, or its fields as JSON), capped
