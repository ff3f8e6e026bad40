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

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from trading.catalogue import Catalogue
from trading.commands import (
    AddDestination,
    AmendOrder,
    CancelOrder,
    Command,
    DecideWithdrawal,
    Deposit,
    Done,
    ExpireDue,
    HoldWithdrawal,
    OpenAccount,
    OrderAck,
    QuoteUpdate,
    ReleaseWithdrawal,
    RequestWithdrawal,
    Rollover,
    SubmitOrder,
)
from trading.config import OMSConfig
from trading.errors import BourseError
from trading.funding import DestinationKind, iban_of
from trading.instrument import AccountType
from trading.oms.engine import OMS
from trading.orders import OrderRequest, OrderType, Side, TimeInForce
from trading.quotes import InMemoryQuoteBook
from trading.rollover import cutoffs_between
from trading.sim.pricefeed import RandomWalkFeed
from trading.venues.bbook import BBookVenue
from trading.venues.dropcopy import DropCopy

# Monday 2026-01-05 15:00 UTC: FX, metals, indices, crypto and US equities all open.
START_NS = 1_767_625_200_000_000_000
SYMBOLS = ("EUR/USD", "GBP/USD", "USD/JPY", "XAU/USD", "US500", "BTC/USD", "AAPL")
BATCH = 50
_DAY_NS = 86_400_000_000_000


@dataclass
class SimulationReport:
    accounts: int = 0
    orders: int = 0
    fills: int = 0
    cancels: int = 0
    amends: int = 0
    deposits: int = 0
    rollovers: int = 0  # cut-offs the clock passed (one Rollover each)
    withdrawals: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    commands: int = 0
    first_ns: int = START_NS
    last_ns: int = START_NS


class _Clock:
    def __init__(self, start_ns: int) -> None:
        self.now = start_ns

    def __call__(self) -> int:
        return self.now


def build_oms(
    engine: Engine,
    catalogue: Catalogue,
    clock: Callable[[], int],
    config: OMSConfig | None = None,
    dropcopy: DropCopy | None = None,
) -> OMS:
    config = config or OMSConfig()
    book = InMemoryQuoteBook()
    venue = BBookVenue(catalogue, book, config.fees, config.venue, clock, dropcopy)
    return OMS(engine, catalogue, book, venue, config, clock, actor="simulation")


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
) -> SimulationReport:
    """Run ``orders`` client orders over ``accounts`` accounts; ``progress(n)`` after each batch.
    ``dropcopy``: where the venue copies its reports (none: no copy)."""
    rng = random.Random(seed)
    clock = _Clock(start_ns)
    oms = build_oms(engine, catalogue, clock, dropcopy=dropcopy)
    feed = RandomWalkFeed(catalogue, SYMBOLS, seed, start_ns, size_lots=Decimal(5))
    report = SimulationReport(accounts=accounts, first_ns=start_ns, last_ns=start_ns)
    first_id = 1 + max((a for a in oms._accounts), default=0)  # resume on a used store
    ids = list(range(first_id, first_id + accounts))
    pending: list[Command] = []
    open_orders: dict[int, int] = {}  # order id -> account
    withdrawals: list[int] = []  # requested, waiting for a decision
    held: list[int] = []
    destinations: dict[int, int] = {}  # account -> its bank account
    cid = 0

    def flush() -> None:
        results = oms.execute(pending)
        report.commands += len(pending)
        for cmd, res in zip(pending, results, strict=True):
            _tally(report, cmd, res, open_orders, withdrawals)
            if isinstance(cmd, AddDestination) and isinstance(res, Done):
                destinations[cmd.account_id] = int(res.ref.split(":")[1])
        pending.clear()

    def tick(ms_max: int) -> None:
        clock.now += rng.randint(1, ms_max) * 1_000_000

    for symbol in SYMBOLS:
        pending.append(QuoteUpdate(feed.quote(symbol, clock.now)))
    # Cut-offs before the start are taken now, with no position open.
    pending.append(Rollover(clock.now))
    cutoff = next_cutoff(catalogue, clock.now)
    for account_id in ids:
        pending.append(OpenAccount(account_id, "USD", rng.choice(("retail", "professional"))))
        amount = rng.choice((5_000, 10_000, 25_000, 100_000)) * 100
        pending.append(Deposit(account_id, "USD", amount, f"psp-{seed}-{account_id}"))
        pending.append(
            AddDestination(account_id, DestinationKind.BANK, "salary account",
                           iban_of("DE", f"{account_id:018d}"), "USD")
        )  # fmt: skip
    flush()

    submitted = 0
    while submitted < orders:
        tick(400)
        if clock.now >= cutoff:  # before any command past it: positions held over it
            pending.append(Rollover(cutoff))
            report.rollovers += 1
            cutoff = next_cutoff(catalogue, cutoff)
        pending.append(QuoteUpdate(feed.step(clock.now)))
        roll = rng.random()
        account_id = rng.choice(ids)
        if roll < 0.11 and open_orders:
            oid = rng.choice(sorted(open_orders))
            order = oms.open_order(oid)
            if order is None:  # filled or expired by the market meanwhile
                del open_orders[oid]
            elif roll < 0.06:
                pending.append(CancelOrder(order.account_id, oid))
            else:
                pending.append(_amend(rng, catalogue, order))
        elif roll < 0.125:
            amount = rng.choice((50, 100, 500, 2_000)) * 100
            pending.append(
                RequestWithdrawal(account_id, "USD", amount, destinations.get(account_id))
            )
        elif roll < 0.14 and withdrawals:
            wid = withdrawals.pop(rng.randrange(len(withdrawals)))
            if rng.random() < 0.15:  # compliance looks closer first
                held.append(wid)
                pending.append(HoldWithdrawal(wid, "source of funds", actor="compliance"))
            else:
                pending.append(DecideWithdrawal(wid, rng.random() < 0.8, "checked"))
        elif roll < 0.142 and held:
            wid = held.pop(rng.randrange(len(held)))
            if rng.random() < 0.7:
                withdrawals.append(wid)
                pending.append(ReleaseWithdrawal(wid, "documents received", actor="compliance"))
            else:  # a hold confirmed: the money goes back to the client
                pending.append(DecideWithdrawal(wid, False, "fraud confirmed", actor="compliance"))
        elif roll < 0.15:
            amount = rng.choice((1_000, 5_000)) * 100
            pending.append(Deposit(account_id, "USD", amount, f"psp-{seed}-{clock.now}"))
        else:
            cid += 1
            symbol = rng.choice(SYMBOLS)
            if rng.random() < 0.9:  # most clients trade on a fresh price
                pending.append(QuoteUpdate(feed.quote(symbol, clock.now)))
            request = _order(rng, catalogue, oms, symbol, account_id, f"s{seed}-{cid}", clock.now)
            pending.append(SubmitOrder(request))
            submitted += 1
            # A client retrying after a timeout: the same request again changes nothing.
            if rng.random() < 0.01:
                pending.append(SubmitOrder(request))
        if rng.random() < 0.02:
            pending.append(ExpireDue(clock.now))
        if len(pending) >= BATCH:
            flush()
            if progress:
                progress(submitted)
    pending.append(ExpireDue(clock.now + 86_400_000_000_000))
    flush()
    if progress:
        progress(submitted)
    report.last_ns = clock.now
    return report


def _tally(
    report: SimulationReport,
    cmd: Command,
    res: Any,
    open_orders: dict[int, int],
    withdrawals: list[int],
) -> None:
    if isinstance(res, BourseError):
        report.errors[res.code] += 1
        return
    if isinstance(cmd, SubmitOrder) and isinstance(res, OrderAck):
        if res.duplicate:
            return
        report.orders += 1
        if res.status.value in ("accepted", "triggered", "partially_filled"):
            open_orders[res.order_id] = res.account_id
    elif isinstance(cmd, CancelOrder):
        report.cancels += 1
    elif isinstance(cmd, AmendOrder):
        report.amends += 1
    elif isinstance(cmd, Deposit):
        report.deposits += 1
    elif isinstance(cmd, RequestWithdrawal) and isinstance(res, Done):
        withdrawals.append(int(res.ref.split(":")[1]))
        report.withdrawals["requested"] += 1
    elif isinstance(cmd, (DecideWithdrawal, HoldWithdrawal, ReleaseWithdrawal)) and isinstance(
        res, Done
    ):
        report.withdrawals[res.detail] += 1
    # Orders close later, by quotes, cancels or expiry: keep the list to what is open.
    if isinstance(res, OrderAck) and res.status.value in (
        "filled", "canceled", "expired", "rejected", "denied"
    ):  # fmt: skip
        open_orders.pop(res.order_id, None)


def _order(
    rng: random.Random,
    catalogue: Catalogue,
    oms: OMS,
    symbol: str,
    account_id: int,
    client_order_id: str,
    now_ns: int,
) -> OrderRequest:
    inst = catalogue.get(symbol)
    quote = oms.quotes.get(symbol)
    assert quote is not None
    pos = oms.position(account_id, symbol)
    net = pos.net if pos else 0
    # Half the time a client trades against what it holds: closes, partial closes, flips.
    if net and rng.random() < 0.5:
        side = Side.SELL if net > 0 else Side.BUY
        qty = min(abs(net), max(inst.lot_int, abs(net) // rng.choice((1, 1, 2, 3))))
        qty = max(inst.lot_int, qty // inst.lot_int * inst.lot_int)
    else:
        side = rng.choice((Side.BUY, Side.SELL))
        if inst.account_type is AccountType.CASH and side is Side.SELL:
            side = Side.SELL if net > 0 else Side.BUY
        steps = rng.choice((1, 2, 5, 10, 20, 50, 100))
        if inst.lot_size >= 1:  # shares: an order of a few dozen, not thousands
            steps = min(steps, 20)
        qty = max(inst.qty_to_int(inst.min_qty), steps * inst.lot_int)
        if inst.account_type is AccountType.CASH and side is Side.SELL:
            qty = min(qty, net)
    kind = rng.random()
    tick = inst.tick_int
    mid = (quote.bid + quote.ask) // 2 // tick * tick
    offset = rng.randint(1, 40) * tick * max(1, (quote.ask - quote.bid) // tick)
    tif = rng.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.DAY, TimeInForce.GTD))
    expire = now_ns + rng.randint(5, 600) * 1_000_000_000 if tif is TimeInForce.GTD else None
    if kind < 0.55:
        mtif = rng.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK))
        ref = quote.ask if side is Side.BUY else quote.bid
        slip = rng.choice((None, None, 50, 10))
        return OrderRequest(account_id, client_order_id, symbol, side, OrderType.MARKET, qty,
                            tif=mtif, reference_price=ref if slip else None,
                            max_slippage_ticks=slip)  # fmt: skip
    if kind < 0.80:
        # Limits on both sides of the market: some fill at once, most rest.
        price = mid - side.sign * offset + side.sign * rng.choice((0, 0, 2)) * offset
        ltif = rng.choice((tif, tif, TimeInForce.IOC, TimeInForce.FOK))
        return OrderRequest(account_id, client_order_id, symbol, side, OrderType.LIMIT, qty,
                            price=max(tick, price), tif=ltif,
                            expire_ns=expire if ltif is TimeInForce.GTD else None)  # fmt: skip
    trigger = max(tick, mid + side.sign * offset)
    if kind < 0.92:
        return OrderRequest(account_id, client_order_id, symbol, side, OrderType.STOP, qty,
                            trigger_price=trigger, tif=tif, expire_ns=expire)  # fmt: skip
    limit = max(tick, trigger + side.sign * rng.randint(0, 10) * tick)
    return OrderRequest(account_id, client_order_id, symbol, side, OrderType.STOP_LIMIT, qty,
                        price=limit, trigger_price=trigger, tif=tif,
                        expire_ns=expire)  # fmt: skip


def _amend(rng: random.Random, catalogue: Catalogue, order: Any) -> AmendOrder:
    inst = catalogue.get(order.symbol)
    tick = inst.tick_int
    qty = None
    if rng.random() < 0.5:
        qty = order.filled_qty + max(inst.lot_int, (order.qty - order.filled_qty) // 2)
        qty = qty // inst.lot_int * inst.lot_int
        if qty <= order.filled_qty:
            qty = None
    price = trigger = None
    if order.price is not None and rng.random() < 0.7:
        price = max(tick, order.price + rng.randint(-5, 5) * tick)
    if order.trigger_price is not None and rng.random() < 0.7:
        trigger = max(tick, order.trigger_price + rng.randint(-5, 5) * tick)
    return AmendOrder(order.account_id, order.order_id, qty, price, trigger)
