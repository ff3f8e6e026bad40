"""A seeded, deterministic trading simulation on the real OMS and store.

Accounts are opened and funded, then a stream of client activity runs against the
simulated B-book: market, limit, stop and stop-limit orders with every time in force,
cancels, amends, closes, partial fills (quoted depth is finite), expiries, withdrawals to a
registered bank account, held and released by compliance, and their approval or rejection.
Time is simulated, so the same seed writes the same store. When the simulated clock passes a
daily cut-off, a ``Rollover`` goes in before the first command past it, as the OMS host's
timer sends one: end-of-day marks and financing.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import Engine

from trading.catalogue import Catalogue
from trading.commands import AddDestination, Deposit, ExpireDue, OpenAccount, QuoteUpdate, Rollover
from trading.config import OMSConfig
from trading.funding import DestinationKind, iban_of
from trading.oms.engine import OMS
from trading.quotes import InMemoryQuoteBook
from trading.rollover import cutoffs_between
from trading.sim.activity import BATCH, Activity, SimulationReport
from trading.sim.activity import Clock as _Clock
from trading.sim.clients import simulated_clients
from trading.sim.pricefeed import RandomWalkFeed
from trading.venues.base import Venue
from trading.venues.bbook import BBookVenue
from trading.venues.dropcopy import DropCopy

# Monday 2026-01-05 15:00 UTC: FX, metals, indices, crypto and US equities all open.
START_NS = 1_767_625_200_000_000_000
SYMBOLS = ("EUR/USD", "GBP/USD", "USD/JPY", "XAU/USD", "US500", "BTC/USD", "AAPL")
_DAY_NS = 86_400_000_000_000


def build_oms(
    engine: Engine,
    catalogue: Catalogue,
    clock: Callable[[], int],
    config: OMSConfig | None = None,
    dropcopy: DropCopy | None = None,
    route: Callable[[BBookVenue, Callable[[], int]], Venue] | None = None,
) -> OMS:
    """``route(bbook, clock)``: the venue the OMS holds, made around the B-book (a router
    to LPs, on the simulation's clock)."""
    config = config or OMSConfig()
    book = InMemoryQuoteBook()
    venue = BBookVenue(catalogue, book, config.fees, config.venue, clock, dropcopy)
    held: Venue = venue if route is None else route(venue, clock)
    return OMS(engine, catalogue, book, held, config, clock, actor="simulation")


def next_cutoff(catalogue: Catalogue, after_ns: int) -> int:
    """The first daily cut-off of any symbol after ``after_ns`` (``trading.rollover``)."""
    until = after_ns + 8 * _DAY_NS
    return min(
        (cut.at_ns for inst in catalogue
         for cut in cutoffs_between(inst, catalogue.session_for(inst.symbol), after_ns, until)[:1]),
        default=until,
    )  # fmt: skip


def run_simulation(
    engine: Engine,
    catalogue: Catalogue,
    accounts: int,
    orders: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
    *,
    start_ns: int = START_NS,
    dropcopy: DropCopy | None = None,
    route: Callable[[BBookVenue, Callable[[], int]], Venue] | None = None,
    settle: Callable[[OMS], None] | None = None,
) -> SimulationReport:
    """Run ``orders`` client orders over ``accounts`` accounts; ``progress(n)`` after each batch.
    ``dropcopy``: where the venue copies its reports (none: no copy). ``route``: the venue
    the OMS holds, made around the B-book; ``settle(oms)`` runs before the last expiry
    pass, to wait for what outside venues still owe."""
    rng = random.Random(seed)
    clock = _Clock(start_ns)
    oms = build_oms(engine, catalogue, clock, dropcopy=dropcopy, route=route)
    feed = RandomWalkFeed(catalogue, SYMBOLS, seed, start_ns, size_lots=Decimal(5))
    report = SimulationReport(accounts=accounts, first_ns=start_ns, last_ns=start_ns)
    first_id = 1 + max((a for a in oms._accounts), default=0)  # resume on a used store
    ids = list(range(first_id, first_id + accounts))
    activity = Activity(
        oms, catalogue, feed, rng, report, seed, ids,
        lambda account_id, amount, now: Deposit(account_id, "USD", amount, f"psp-{seed}-{now}"),
    )  # fmt: skip
    pending = activity.pending

    for symbol in SYMBOLS:
        pending.append(QuoteUpdate(feed.quote(symbol, clock.now)))
    # Cut-offs before the start are taken now, with no position open.
    pending.append(Rollover(clock.now))
    cutoff = next_cutoff(catalogue, clock.now)
    # Every account belongs to a client (MiFIR reports name the buyer and seller). Drawn from
    # a generator of their own, so the trading a seed makes is the same as before clients.
    owners: dict[int, int] = {}
    first_client = 1 + max(oms._clients, default=0)
    as_of = dt.datetime.fromtimestamp(start_ns // 1_000_000_000, dt.UTC).date()
    for client in simulated_clients(random.Random(f"clients-{seed}"), first_client, ids, as_of):
        pending.append(client.command)
        report.clients += 1
        owners.update(dict.fromkeys(client.account_ids, client.command.client_id))
    for account_id in ids:
        tier = rng.choice(("retail", "professional"))
        pending.append(OpenAccount(account_id, "USD", tier, owners[account_id]))
        amount = rng.choice((5_000, 10_000, 25_000, 100_000)) * 100
        pending.append(Deposit(account_id, "USD", amount, f"psp-{seed}-{account_id}"))
        pending.append(
            AddDestination(account_id, DestinationKind.BANK, "salary account",
                           iban_of("DE", f"{account_id:018d}"), "USD")
        )  # fmt: skip
    activity.flush()

    while activity.submitted < orders:
        clock.now += rng.randint(1, 400) * 1_000_000
        if clock.now >= cutoff:  # before any command past it: positions held over it
            pending.append(Rollover(cutoff))
            report.rollovers += 1
            cutoff = next_cutoff(catalogue, cutoff)
        activity.step(clock.now)
        if len(pending) >= BATCH:
            activity.flush()
            if progress:
                progress(activity.submitted)
    activity.flush()
    if settle is not None:
        settle(oms)
    pending.append(ExpireDue(clock.now + 86_400_000_000_000))
    activity.flush()
    if progress:
        progress(activity.submitted)
    report.last_ns = clock.now
    return report
