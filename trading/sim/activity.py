"""The mix of client activity the simulation draws, one step at a time, on the real OMS.

A step is one instant of a client's life: a fresh quote, then an order (market, limit, stop,
stop-limit, every time in force), a cancel, an amend, a withdrawal to a registered bank
account, compliance holding, releasing or deciding one, or a deposit. Commands queue in
``pending`` and run ``BATCH`` at a time, as the host batches them. Every draw comes from the
one seeded ``random.Random``, so the same seed draws the same steps.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    OrderAck,
    QuoteUpdate,
    ReleaseWithdrawal,
    RequestWithdrawal,
    SubmitOrder,
)
from trading.errors import BourseError
from trading.instrument import AccountType
from trading.oms.engine import OMS
from trading.orders import OrderRequest, OrderType, Side, TimeInForce
from trading.quotes import Quote
from trading.sim.pricefeed import RandomWalkFeed

BATCH = 50
# A client's top-up: (account, amount in minor units, the simulated instant) -> the command.
DepositMaker = Callable[[int, int, int], Deposit]


class Clock:
    """The simulated clock: the OMS, the venue and the driver read the same instant."""

    def __init__(self, start_ns: int) -> None:
        self.now = start_ns

    def __call__(self) -> int:
        return self.now


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
    first_ns: int = 0  # the simulated clock's first and last instants
    last_ns: int = 0
    clients: int = 0  # clients created (``--days`` only)


class Activity:
    """Client activity over ``symbols`` on ``oms``, tallied into ``report``."""

    def __init__(
        self,
        oms: OMS,
        catalogue: Catalogue,
        feed: RandomWalkFeed,
        rng: random.Random,
        report: SimulationReport,
        seed: int,
        account_ids: Sequence[int],
        deposit: DepositMaker,
    ) -> None:
        self.oms, self.catalogue, self.feed, self.rng = oms, catalogue, feed, rng
        self.report, self.seed = report, seed
        self.symbols = tuple(feed.symbols)
        self.ids = list(account_ids)
        self.deposit = deposit
        self.pending: list[Command] = []
        self.open_orders: dict[int, int] = {}  # order id -> account
        self.withdrawals: list[int] = []  # requested, waiting for a decision
        self.held: list[int] = []
        self.destinations: dict[int, int] = {}  # account -> its bank account
        self.cid = 0
        self.submitted = 0

    def flush(self) -> None:
        """Run what is pending as one batch, as the host does."""
        results = self.oms.execute(self.pending)
        self.report.commands += len(self.pending)
        for cmd, res in zip(self.pending, results, strict=True):
            _tally(self.report, cmd, res, self.open_orders, self.withdrawals)
            if isinstance(cmd, AddDestination) and isinstance(res, Done):
                self.destinations[cmd.account_id] = int(res.ref.split(":")[1])
        self.pending.clear()

    def step(self, now_ns: int, symbols: Sequence[str] | None = None) -> None:
        """Queue one step at ``now_ns``. ``symbols``: the symbols a client may trade now (their
        sessions open); None: every symbol of the feed, quoted whether open or not."""
        rng, pending = self.rng, self.pending
        if symbols is None:
            pending.append(QuoteUpdate(self.feed.step(now_ns)))
        else:
            pending.append(QuoteUpdate(self.feed.quote(rng.choice(symbols), now_ns)))
        roll = rng.random()
        account_id = rng.choice(self.ids)
        if roll < 0.11 and self.open_orders:
            oid = rng.choice(sorted(self.open_orders))
            order = self.oms.open_order(oid)
            if order is None:  # filled or expired by the market meanwhile
                del self.open_orders[oid]
            elif roll < 0.06:
                pending.append(CancelOrder(order.account_id, oid))
            else:
                pending.append(_amend(rng, self.catalogue, order))
        elif roll < 0.125:
            amount = rng.choice((50, 100, 500, 2_000)) * 100
            pending.append(
                RequestWithdrawal(account_id, "USD", amount, self.destinations.get(account_id))
            )
        elif roll < 0.14 and self.withdrawals:
            wid = self.withdrawals.pop(rng.randrange(len(self.withdrawals)))
            if rng.random() < 0.15:  # compliance looks closer first
                self.held.append(wid)
                pending.append(HoldWithdrawal(wid, "source of funds", actor="compliance"))
            else:
                pending.append(DecideWithdrawal(wid, rng.random() < 0.8, "checked"))
        elif roll < 0.142 and self.held:
            wid = self.held.pop(rng.randrange(len(self.held)))
            if rng.random() < 0.7:
                self.withdrawals.append(wid)
                pending.append(ReleaseWithdrawal(wid, "documents received", actor="compliance"))
            else:  # a hold confirmed: the money goes back to the client
                pending.append(DecideWithdrawal(wid, False, "fraud confirmed", actor="compliance"))
        elif roll < 0.15:
            amount = rng.choice((1_000, 5_000)) * 100
            pending.append(self.deposit(account_id, amount, now_ns))
        else:
            self.cid += 1
            symbol = rng.choice(self.symbols if symbols is None else symbols)
            # Most clients trade on a fresh price; a symbol whose session has just opened has
            # none in the book yet: the client prices off the fresh one.
            known = self.oms.quotes.get(symbol)
            fresh = None
            if rng.random() < 0.9 or known is None:
                fresh = self.feed.quote(symbol, now_ns)
                pending.append(QuoteUpdate(fresh))
            quote = known or fresh
            assert quote is not None
            request = _order(rng, self.catalogue, self.oms, quote, account_id,
                             f"s{self.seed}-{self.cid}", now_ns)  # fmt: skip
            pending.append(SubmitOrder(request))
            self.submitted += 1
            # A client retrying after a timeout: the same request again changes nothing.
            if rng.random() < 0.01:
                pending.append(SubmitOrder(request))
        if rng.random() < 0.02:
            pending.append(ExpireDue(now_ns))


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
    quote: Quote,
    account_id: int,
    client_order_id: str,
    now_ns: int,
) -> OrderRequest:
    symbol = quote.symbol
    inst = catalogue.get(symbol)
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
