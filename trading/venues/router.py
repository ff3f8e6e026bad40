"""The router: one venue to the OMS, in front of the B-book and the liquidity providers.

For each new order the OMS asks ``choose`` (before the order's ``submitted`` event, which
carries the choice): the routing rules (``trading.routing``) give a route and a book; for
the A-book, the first LP of the route, in priority order, that is logged on (``is_up``) and
takes the order's type and time in force. None live: the route's ``if_no_lp`` sends the
order to the B-book, or rejects it (reason ``no_liquidity_provider``).

The router remembers each order's venue: cancels and replaces go where the order is; after
a restart ``restore`` reads it from the order (the store keeps it). Every report passes
through the router on its way to the OMS, from a ``submit`` or from a venue's own thread:
it is stamped with its venue, and an A-book fill gets the route's markup (the client buys
higher and sells lower than the LP's price; ``ExecutionReport.markup`` says by how much, so
``trading.fills`` books it as revenue). So that a marked-up fill still honours the client's
limit, the LP gets the limit price less the markup (a buy; more for a sell).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from trading.catalogue import Catalogue
from trading.errors import ConfigError
from trading.orders import Order, Side
from trading.quotes import Quote
from trading.routing import BBOOK, Book, IfNoLp, Routing
from trading.venues.base import ExecKind, ExecutionReport, ReportHandler, Venue

NO_LP = "no_liquidity_provider"
_DONE = frozenset({ExecKind.REJECTED, ExecKind.CANCELED, ExecKind.EXPIRED})


class LpVenue(Venue, Protocol):
    """A venue at a liquidity provider (``trading.venues.fix.venue.FixVenue``)."""

    def is_up(self) -> bool: ...

    def takes(self, order: Order) -> bool: ...


@dataclass(frozen=True, slots=True)
class Choice:
    route: str
    venue: str | None  # None: no LP live and the route rejects
    markup: int  # price units added to an A-book fill for the client (0 on the B-book)


@dataclass(slots=True)
class _Routed:
    venue: str
    side: Side
    markup: int
    qty: int
    filled: int


class RouterVenue:
    name = "router"

    def __init__(
        self,
        bbook: Venue,
        lps: Mapping[str, LpVenue],
        routing: Routing,
        catalogue: Catalogue,
        priority: Mapping[str, int] | None = None,
    ) -> None:
        # Symbols in the catalogue's spelling, LPs known, markups on the price grid (raises
        # RoutingError, naming the rule and the key).
        routing = routing.resolved(catalogue, lps)
        self._bbook = bbook
        self._lps = dict(lps)
        self._venues: dict[str, Venue] = {BBOOK: bbook, **self._lps}
        self._routing = routing
        self._catalogue = catalogue
        rank = priority or {}
        # A route's LPs in the order failover tries them: by the LPs' priority, then as the
        # route lists them.
        self._order = {
            r.name: tuple(sorted(r.lps, key=lambda lp: (rank.get(lp, 0), r.lps.index(lp))))
            for r in routing.routes
        }
        self._markup: dict[tuple[str, str], int] = {}
        # Written by the writer's thread (submit) and the venues' threads (late reports).
        self._lock = threading.Lock()
        self._orders: dict[int, _Routed] = {}
        # Called after a venue delivered reports from its own thread (the OMS host wakes its
        # writer to apply them now, not at its next command).
        self.on_late: Callable[[], None] | None = None

    @property
    def venues(self) -> Mapping[str, Venue]:
        return self._venues

    # -- the choice ---------------------------------------------------------------------------

    def choose(self, order: Order, tier: str) -> Choice:
        inst = self._catalogue.get(order.symbol)
        d = self._routing.decide(
            order_id=order.order_id, account_id=order.account_id, tier=tier,
            symbol=inst.symbol, symbol_group=inst.symbol_group, order_type=order.type,
            lots=inst.qty_from_int(order.qty),
        )  # fmt: skip
        if d.book is Book.B:
            return Choice(d.route, BBOOK, 0)
        for lp in self._order.get(d.route, d.lps):
            venue = self._lps[lp]
            if venue.is_up() and venue.takes(order):
                return Choice(d.route, lp, self._markup_int(d.route, inst.symbol))
        if d.if_no_lp is IfNoLp.BBOOK:
            return Choice(d.route, BBOOK, 0)
        return Choice(d.route, None, 0)

    def _markup_int(self, route: str, symbol: str) -> int:
        key = (route, symbol)
        mk = self._markup.get(key)
        if mk is None:
            r = self._routing.route(route)
            inst = self._catalogue.get(symbol)
            # On the tick grid: Routing.resolved checked it in __init__.
            mk = int(r.markup * inst.price_scale) if r is not None else 0
            self._markup[key] = mk
        return mk

    def assign(self, order: Order, tier: str) -> None:
        """Decide a new order's route and venue and record them on the order."""
        choice = self.choose(order, tier)
        order.route, order.venue = choice.route, choice.venue

    # -- the venue interface ------------------------------------------------------------------

    def bind(self, handler: ReportHandler) -> None:
        for name, venue in self._venues.items():
            venue.bind(self._passing(name, handler))

    def _passing(self, name: str, handler: ReportHandler) -> ReportHandler:
        def deliver(reports: Sequence[ExecutionReport]) -> None:
            handler(self._through(name, reports))
            if self.on_late is not None:
                self.on_late()

        return deliver

    def submit(self, order: Order) -> list[ExecutionReport]:
        if order.route is None:
            raise ValueError(f"order {order.order_id} was not routed (RouterVenue.assign)")
        name = order.venue
        if name is None:
            return [
                ExecutionReport(f"N{order.order_id}", order.order_id, ExecKind.REJECTED,
                                order.updated_ns, reason=NO_LP, venue=self.name)
            ]  # fmt: skip
        markup = self._markup_int(order.route, order.symbol) if name != BBOOK else 0
        self._remember(order, name, markup)
        return self._through(name, self._venues[name].submit(_at_lp(order, markup)))

    def cancel(self, order: Order) -> list[ExecutionReport]:
        name, markup = self._venue_of(order)
        return self._through(name, self._venues[name].cancel(_at_lp(order, markup)))

    def replace(
        self, order: Order, qty: int, price: int | None, trigger_price: int | None
    ) -> list[ExecutionReport]:
        name, markup = self._venue_of(order)
        if price is not None and markup:
            price -= markup * order.side.sign
        reports = self._venues[name].replace(_at_lp(order, markup), qty, price, trigger_price)
        return self._through(name, reports)

    def begin_batch(self) -> None:
        for venue in self._venues.values():
            venue.begin_batch()

    def reset(self) -> None:
        with self._lock:
            self._orders.clear()
        for venue in self._venues.values():
            venue.reset()

    def restore(self, order: Order) -> None:
        # An order from before routing existed (no venue recorded) was the B-book's.
        name = order.venue or BBOOK
        if name not in self._venues:
            raise ConfigError(
                f"order {order.order_id} works at {name!r}, which the venues file no longer "
                "names: add its [[lp]] back, or close the order there first"
            )
        markup = 0
        if name != BBOOK and order.route is not None:
            markup = self._markup_int(order.route, order.symbol)
        self._remember(order, name, markup)
        self._venues[name].restore(_at_lp(order, markup))

    def on_quote(self, quote: Quote) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        for name, venue in self._venues.items():
            out += self._through(name, venue.on_quote(quote))
        return out

    def on_time(self, now_ns: int) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        for name, venue in self._venues.items():
            out += self._through(name, venue.on_time(now_ns))
        return out

    def committed(self, exec_ids: frozenset[str]) -> None:
        for venue in self._venues.values():
            venue.committed(exec_ids)

    # -- internals ---------------------------------------------------------------------------

    def _venue_of(self, order: Order) -> tuple[str, int]:
        """The order's venue and the markup of its fills."""
        with self._lock:
            routed = self._orders.get(order.order_id)
        if routed is not None:
            return routed.venue, routed.markup
        return order.venue or BBOOK, 0

    def _remember(self, order: Order, name: str, markup: int) -> None:
        with self._lock:
            self._orders[order.order_id] = _Routed(
                name, order.side, markup, order.qty, order.filled_qty
            )

    def _through(self, name: str, reports: Iterable[ExecutionReport]) -> list[ExecutionReport]:
        """Stamp reports with their venue and mark up A-book fills; forget finished orders
        (memory stays bounded by what is open)."""
        out: list[ExecutionReport] = []
        with self._lock:
            for report in reports:
                r = report
                routed = self._orders.get(r.order_id)
                if routed is not None:
                    if r.kind is ExecKind.FILL:
                        routed.filled += r.last_qty
                        if routed.markup:
                            r = replace(
                                r,
                                last_price=r.last_price + routed.markup * routed.side.sign,
                                markup=routed.markup + r.markup,
                            )
                    elif r.kind is ExecKind.REPLACED:
                        routed.qty = r.qty if r.qty is not None else routed.qty
                        if r.price is not None and routed.markup:
                            # The client's terms: the LP holds the limit less the markup.
                            r = replace(r, price=r.price + routed.markup * routed.side.sign)
                    if r.kind in _DONE or routed.filled >= routed.qty:
                        del self._orders[r.order_id]
                if not r.venue:
                    r = replace(r, venue=name)
                out.append(r)
        return out


def _at_lp(order: Order, markup: int) -> Order:
    """The order as the LP is to work it: the limit less the markup (buy; more for a sell),
    so that the client's marked-up fill is never worse than the limit. The OMS's own order
    object is not touched."""
    if not markup or order.price is None:
        return order
    return replace(order, price=order.price - markup * order.side.sign, history=[])
