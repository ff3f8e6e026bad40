"""The simulation spread over trading days, with the daily rollovers between them.

A trading day ends at the 17:00 New York cut-off on its date and begins at the previous
calendar day's (Monday's on Sunday at 17:00, when the FX week opens). The days simulated
are weekdays on which FX trades into that cut-off (not a holiday of the FX session), from
``start`` (default ``DEFAULT_START``, a Monday, so that a run is the same whenever it runs;
on a store that already holds activity, the first trading day after it).

Each day:

- clients trade from 08:00 to 16:00 New York time, in bursts of one batch of steps (the
  default simulation's pace: quotes stay fresh for the venue), the bursts spread over the
  day, every open symbol quoted afresh before each; an order goes only to a symbol whose
  session is open at that instant (``trading.sessions``), the others are not quoted;
- deposits (through the simulated payment provider, with its reference) and withdrawals to
  the registered bank account come in at the open and among the orders;
- after the close, every cut-off up to the next day's open is rolled in turn: each symbol
  open a second before it is quoted afresh, then a ``Rollover`` at that instant, as the OMS
  host's timer sends one: end-of-day marks, financing of the positions held over it
  (``trading.oms.rollover``). Weekend cut-offs (crypto) are rolled the same way.

Orders still working after the last day's cut-off stay open (a day order expires at the
next UTC midnight, after it).

The first day begins by creating the clients (``trading.sim.clients``) and opening and
funding their accounts. ``on_day`` receives each day's ``DaySummary``, read back from the
store.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Column, ColumnElement, Connection, Engine, func, select

from trading.catalogue import Catalogue
from trading.commands import (
    AddDestination,
    Deposit,
    OpenAccount,
    QuoteUpdate,
    RequestWithdrawal,
    Rollover,
)
from trading.errors import InvalidInput
from trading.funding import DepositMethod, DestinationKind, iban_of
from trading.money import exponent
from trading.rollover import FX_CUTOFF_MINUTE, FX_CUTOFF_ZONE
from trading.sim.activity import BATCH, Activity, Clock, DepositMaker, SimulationReport
from trading.sim.clients import simulated_clients
from trading.sim.pricefeed import RandomWalkFeed
from trading.sim.simulation import SYMBOLS, build_oms, next_cutoff
from trading.store import schema as s
from trading.venues.dropcopy import DropCopy

__all__ = [
    "DEFAULT_START",
    "MAX_DAYS",
    "DaySummary",
    "day_window_ns",
    "run_days",
    "trading_days",
]

DEFAULT_START: Final = dt.date(2026, 1, 5)  # a Monday
MAX_DAYS: Final = 366
OPEN_MINUTE: Final = 8 * 60  # New York time: clients trade from here...
CLOSE_MINUTE: Final = 16 * 60  # ...to here, before the 17:00 cut-off
ANCHOR_SYMBOL: Final = "EUR/USD"  # whose session decides what a trading day is
PROVIDER: Final = "simpay"
_NS: Final = 1_000_000_000
_STEP_MS_MAX: Final = 400  # within a burst, as the default simulation


@dataclass(frozen=True, slots=True)
class DaySummary:
    """What one trading day holds in the store: ``start_ns < t <= end_ns``."""

    day: dt.date
    start_ns: int
    end_ns: int
    orders: int
    fills: int
    deposits: int
    withdrawals: int  # requested that day
    eod_marks: int
    financing: dict[str, Decimal] = field(default_factory=dict)  # per currency, major units


def _ny_ns(day: dt.date, minute: int) -> int:
    local = dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60,
                        tzinfo=FX_CUTOFF_ZONE)  # fmt: skip
    return int(local.timestamp()) * _NS


def day_window_ns(day: dt.date) -> tuple[int, int]:
    """The trading day ``day`` as ``(start_ns, end_ns]``: the cut-offs that begin and end it."""
    return _ny_ns(day - dt.timedelta(days=1), FX_CUTOFF_MINUTE), _ny_ns(day, FX_CUTOFF_MINUTE)


def trading_days(catalogue: Catalogue, start: dt.date, days: int) -> list[dt.date]:
    """The first ``days`` trading days on or after ``start``."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be 1 to {MAX_DAYS}, got {days}", field="days")
    holidays = catalogue.session_for(ANCHOR_SYMBOL).holidays
    found: list[dt.date] = []
    day = start
    while len(found) < days:
        if day.weekday() < 5 and day not in holidays:
            found.append(day)
        day += dt.timedelta(days=1)
    return found


def _last_activity_ns(conn: Connection) -> int:
    """The latest instant the store records (0 when empty)."""
    latest = 0
    for col in (s.ledger_txns.c.ts_ns, s.orders.c.updated_ns, s.eod_marks.c.cutoff_ns,
                s.accounts.c.created_ns):  # fmt: skip
        latest = max(latest, conn.execute(select(func.max(col))).scalar() or 0)
    return latest


def _first_day_after(ts_ns: int) -> dt.date:
    """The calendar day after the trading day ``ts_ns`` belongs to."""
    local = dt.datetime.fromtimestamp(ts_ns // _NS, FX_CUTOFF_ZONE).date()
    day = local if ts_ns <= _ny_ns(local, FX_CUTOFF_MINUTE) else local + dt.timedelta(days=1)
    return day + dt.timedelta(days=1)


def summarize(conn: Connection, day: dt.date) -> DaySummary:
    """Count what the store holds for trading day ``day``."""
    start, end = day_window_ns(day)

    def count(col: Column[Any], *where: ColumnElement[bool]) -> int:
        stmt = select(func.count()).select_from(col.table).where(col > start, col <= end, *where)
        return int(conn.execute(stmt).scalar_one())

    fin = s.financing
    financing: dict[str, Decimal] = {}
    rows = conn.execute(
        select(fin.c.currency, func.sum(fin.c.amount))
        .where(fin.c.cutoff_ns > start, fin.c.cutoff_ns <= end)
        .group_by(fin.c.currency)
        .order_by(fin.c.currency)
    )
    for currency, total in rows:
        financing[currency] = Decimal(int(total)).scaleb(-exponent(currency))
    return DaySummary(
        day, start, end,
        orders=count(s.orders.c.created_ns),
        fills=count(s.executions.c.ts_ns, s.executions.c.qty > 0),
        deposits=count(s.deposits.c.ts_ns),
        withdrawals=count(s.withdrawals.c.requested_ns),
        eod_marks=count(s.eod_marks.c.cutoff_ns),
        financing=financing,
    )  # fmt: skip


def _orders_per_day(orders: int, days: int) -> list[int]:
    base, extra = divmod(orders, days)
    return [base + (1 if i < extra else 0) for i in range(days)]


def run_days(
    engine: Engine,
    catalogue: Catalogue,
    accounts: int,
    orders: int,
    seed: int,
    days: int,
    *,
    start: dt.date | None = None,
    provider: str = PROVIDER,
    progress: Callable[[int], None] | None = None,
    on_day: Callable[[DaySummary], None] | None = None,
    dropcopy: DropCopy | None = None,
) -> SimulationReport:
    """Run ``orders`` client orders over ``accounts`` new accounts (and their new clients)
    spread over ``days`` trading days from ``start``; ``progress(n)`` after each batch with
    the orders submitted so far, ``on_day`` after each day's cut-off.

    Raises ``InvalidInput`` when ``start`` is not after what the store already holds."""
    with engine.connect() as conn:
        last_ns = _last_activity_ns(conn)
    if start is None:
        start = DEFAULT_START if last_ns == 0 else max(DEFAULT_START, _first_day_after(last_ns))
    dates = trading_days(catalogue, start, days)
    open_ns = _ny_ns(dates[0], OPEN_MINUTE)
    if open_ns <= last_ns:
        raise InvalidInput(
            f"the store holds activity up to "
            f"{dt.datetime.fromtimestamp(last_ns // _NS, dt.UTC):%Y-%m-%d %H:%M} UTC; start "
            f"after {_first_day_after(last_ns) - dt.timedelta(days=1)}",
            field="start",
        )
    rng = random.Random(seed)
    clock = Clock(open_ns)
    oms = build_oms(engine, catalogue, clock, dropcopy=dropcopy)
    feed = RandomWalkFeed(catalogue, SYMBOLS, seed, open_ns, size_lots=Decimal(5))
    report = SimulationReport(accounts=accounts, first_ns=open_ns, last_ns=open_ns)
    first_id = 1 + max(oms._accounts, default=0)  # resume on a used store
    ids = list(range(first_id, first_id + accounts))
    deposits = 0

    def deposit(account_id: int, amount: int, now_ns: int) -> Deposit:
        nonlocal deposits
        deposits += 1
        # The provider's reference: unique per run (its first day) and deposit; dots keep
        # the digits apart, lest a run of them read as a card number (refused).
        ref = f"sim{seed}.{dates[0]:%Y%m%d}.d{deposits}"
        return Deposit(account_id, "USD", amount, ref, DepositMethod.BANK_TRANSFER,
                       provider=provider, provider_ref=ref)  # fmt: skip

    activity = Activity(oms, catalogue, feed, rng, report, seed, ids, deposit)
    pending = activity.pending
    sessions = {sym: catalogue.session_for(sym) for sym in SYMBOLS}

    def open_symbols(ts_ns: int) -> list[str]:
        return [sym for sym in SYMBOLS if sessions[sym].is_open_ns(ts_ns)]

    def quote_open(ts_ns: int) -> None:
        """Quote every open symbol as the host's quote follower does: into the book at once
        (clients price off it), and as a command (resting orders trigger)."""
        for sym in open_symbols(ts_ns):
            quote = feed.quote(sym, ts_ns)
            oms.quotes.update(quote)
            pending.append(QuoteUpdate(quote))

    cutoff = next_cutoff(catalogue, clock.now)

    def roll_until(limit_ns: int) -> None:
        """Every cut-off up to ``limit_ns``, each on fresh quotes, then its ``Rollover``."""
        nonlocal cutoff
        while cutoff <= limit_ns:
            activity.flush()
            clock.now = max(clock.now, cutoff - _NS)
            quote_open(clock.now)
            activity.flush()
            clock.now = cutoff
            pending.append(Rollover(cutoff))
            report.rollovers += 1
            activity.flush()
            cutoff = next_cutoff(catalogue, cutoff)

    # The first day's open: the clients, their accounts and first deposits.
    quote_open(clock.now)
    pending.append(Rollover(clock.now))  # cut-offs before the start, no position open yet
    first_client = 1 + max(oms._clients, default=0)
    for client in simulated_clients(rng, first_client, ids, dates[0]):
        pending.append(client.command)
        report.clients += 1
        for account_id in client.account_ids:
            pending.append(OpenAccount(account_id, "USD", client.tier, client.command.client_id))
            amount = rng.choice((5_000, 10_000, 25_000, 100_000)) * 100
            pending.append(deposit(account_id, amount, clock.now))
            pending.append(
                AddDestination(account_id, DestinationKind.BANK, "salary account",
                               iban_of("DE", f"{account_id:018d}"), "USD")
            )  # fmt: skip
    activity.flush()

    for i, (day, quota) in enumerate(zip(dates, _orders_per_day(orders, days), strict=True)):
        day_open, day_close = _ny_ns(day, OPEN_MINUTE), _ny_ns(day, CLOSE_MINUTE)
        if i:
            roll_until(day_open)
            clock.now = day_open
            quote_open(day_open)
            _morning(activity, deposit, clock.now)
        _trade_day(activity, clock, quota, day_close, open_symbols, quote_open, progress)
        roll_until(day_window_ns(day)[1])
        if on_day is not None:
            with engine.connect() as conn:
                on_day(summarize(conn, day))
    report.last_ns = clock.now
    return report


def _morning(activity: Activity, deposit: DepositMaker, now_ns: int) -> None:
    """A tenth of the accounts fund them as the day opens, a twentieth ask for money back
    (to the registered bank account): every day's statements have both."""
    rng, ids = activity.rng, activity.ids
    pending = activity.pending
    for account_id in sorted(rng.sample(ids, max(1, len(ids) // 10))):
        pending.append(deposit(account_id, rng.choice((500, 1_000, 2_500)) * 100, now_ns))
    for account_id in sorted(rng.sample(ids, max(1, len(ids) // 20))):
        amount = rng.choice((100, 250, 500)) * 100
        destination = activity.destinations.get(account_id)
        pending.append(RequestWithdrawal(account_id, "USD", amount, destination))


def _trade_day(
    activity: Activity,
    clock: Clock,
    quota: int,
    close_ns: int,
    open_symbols: Callable[[int], list[str]],
    quote_open: Callable[[int], None],
    progress: Callable[[int], None] | None,
) -> None:
    """``quota`` orders in bursts, the bursts spread over what is left of the day: after
    each, the clock jumps a random share of the gap the remaining bursts leave."""
    rng, pending = activity.rng, activity.pending
    target = activity.submitted + quota
    first = activity.submitted
    bursts = 0
    while activity.submitted < target:
        clock.now = min(clock.now + rng.randint(1, _STEP_MS_MAX) * 1_000_000, close_ns)
        symbols = open_symbols(clock.now)
        if not symbols:  # every session shut (a holiday of them all): the day ends here
            break
        activity.step(clock.now, symbols)
        if len(pending) >= BATCH:
            activity.flush()
            bursts += 1
            if progress:
                progress(activity.submitted)
            per_burst = max(1, (activity.submitted - first) // bursts)
            left = -(-(target - activity.submitted) // per_burst)  # bursts still to come
            gap = (close_ns - clock.now) // (left + 1)
            clock.now = min(clock.now + gap * rng.randint(50, 150) // 100, close_ns)
            # The market kept quoting through the gap: the book is fresh when clients return.
            quote_open(clock.now)
    activity.flush()
    if progress:
        progress(activity.submitted)
