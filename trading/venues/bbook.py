"""A simulated B-book venue: the house takes the other side at the quote in force.

Market orders fill at the quote (buy at the ask, sell at the bid) widened by the symbol
group's markup; a quote older than ``max_quote_age_ms`` means reject; a fill beyond the
order's slippage bound means reject; an order larger than the quoted size fills in steps on
the following quotes. Limit and stop orders rest here and trigger on quote updates.

Exec ids are derived from the order id and its cumulative filled quantity, so they are
unique without a counter and the same after a restart.

With a ``DropCopy`` every report emitted is also held for the venue's drop copy, written
once the OMS has stored the batch that applied it (``committed``; see
``trading.venues.dropcopy``); without one (unit tests) nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trading.catalogue import Catalogue
from trading.config import FeeSchedule, VenueConfig
from trading.orders import Order, OrderType, Side, TimeInForce
from trading.quotes import Quote, QuoteSource
from trading.venues.base import ExecKind, ExecutionReport, ReportHandler
from trading.venues.dropcopy import DropCopy


@dataclass(slots=True)
class _Resting:
    order_id: int
    symbol: str
    side: Side
    type: OrderType
    leaves: int
    filled: int
    price: int | None
    trigger_price: int | None
    triggered: bool
    tif: TimeInForce
    expire_ns: int | None
    replaces: int = 0
    account_id: int = 0


class BBookVenue:
    name = "bbook"

    def __init__(
        self,
        catalogue: Catalogue,
        quotes: QuoteSource,
        fees: FeeSchedule,
        config: VenueConfig,
        clock: Callable[[], int],
        dropcopy: DropCopy | None = None,
    ) -> None:
        self._catalogue = catalogue
        self.dropcopy = dropcopy
        self._quotes = quotes
        self._fees = fees
        self._config = config
        self._clock = clock
        self._resting: dict[int, _Resting] = {}
        self._by_symbol: dict[str, dict[int, _Resting]] = {}
        self._markup: dict[str, int] = {}
        self._handler: ReportHandler | None = None
        # Numbers refusals: two refused cancels of one order in one batch (same clock) must
        # not share an exec id, or the OMS skips the second as a duplicate and the order
        # stays pending.
        self._refusals = 0

    def bind(self, handler: ReportHandler) -> None:
        self._handler = handler

    @property
    def resting_count(self) -> int:
        return len(self._resting)

    def markup_int(self, symbol: str) -> int:
        mk = self._markup.get(symbol)
        if mk is None:
            inst = self._catalogue.get(symbol)
            mk = self._fees.markup_ticks.get(inst.symbol_group, 0) * inst.tick_int
            self._markup[symbol] = mk
        return mk

    def client_price(self, quote: Quote, side: Side) -> int:
        """The price a client deals at: the quote widened by the markup."""
        mk = self.markup_int(quote.symbol)
        return quote.ask + mk if side is Side.BUY else quote.bid - mk

    # -- the venue interface -------------------------------------------------------------

    def submit(self, order: Order) -> list[ExecutionReport]:
        return self._copied(order, self._submit(order))

    def cancel(self, order: Order) -> list[ExecutionReport]:
        return self._copied(order, self._cancel(order))

    def replace(
        self, order: Order, qty: int, price: int | None, trigger_price: int | None
    ) -> list[ExecutionReport]:
        return self._copied(order, self._replace(order, qty, price, trigger_price))

    def begin_batch(self) -> None:
        pass  # the B-book is in the house: nothing leaves it

    def committed(self, exec_ids: frozenset[str]) -> None:
        """The OMS stored a batch that applied these reports: they go to the drop copy."""
        if self.dropcopy is not None:
            self.dropcopy.committed(exec_ids)

    def _copied(self, order: Order, reports: list[ExecutionReport]) -> list[ExecutionReport]:
        if self.dropcopy is not None:
            self.dropcopy.record(order.account_id, order.symbol, order.side.value, reports)
        return reports

    def _submit(self, order: Order) -> list[ExecutionReport]:
        now = self._clock()
        oid = order.order_id
        quote = self._quotes.get(order.symbol)
        if order.type is OrderType.MARKET:
            if quote is None:
                return [self._report(oid, ExecKind.REJECTED, "R", now, reason="no_quote")]
            age_ms = (now - quote.ts_ns) // 1_000_000
            if age_ms > self._config.max_quote_age_ms:
                return [
                    self._report(
                        oid, ExecKind.REJECTED, "R", now,
                        reason=f"stale_quote: {age_ms} ms old, limit "
                        f"{self._config.max_quote_age_ms} ms",
                    )
                ]  # fmt: skip
            slip = self._slippage_breach(order, quote)
            if slip is not None:
                return [self._report(oid, ExecKind.REJECTED, "R", now, reason=slip)]
        r = _Resting(
            oid, order.symbol, order.side, order.type, order.leaves_qty, order.filled_qty,
            order.price, order.trigger_price, False, order.tif, order.expire_ns,
            account_id=order.account_id,
        )  # fmt: skip
        reports = [self._report(oid, ExecKind.ACCEPTED, "A", now)]
        if (
            order.tif is TimeInForce.FOK
            and quote is not None
            and not self._fillable_in_full(r, quote)
        ):
            reports.append(self._report(oid, ExecKind.CANCELED, "C", now, reason="fok"))
            return reports
        if quote is not None:
            reports.extend(self._work(r, quote, now))
        if r.leaves > 0:
            if order.tif in (TimeInForce.IOC, TimeInForce.FOK):
                reports.append(self._report(oid, ExecKind.CANCELED, "C", now, reason="ioc"))
            else:
                self._rest(r)
        return reports

    def _cancel(self, order: Order) -> list[ExecutionReport]:
        now = self._clock()
        r = self._unrest(order.order_id)
        if r is None:
            self._refusals += 1
            return [
                self._report(
                    order.order_id, ExecKind.CANCEL_REJECTED, f"X{now}.{self._refusals}-", now,
                    reason="not_working",
                )
            ]  # fmt: skip
        return [self._report(order.order_id, ExecKind.CANCELED, "C", now)]

    def _replace(
        self, order: Order, qty: int, price: int | None, trigger_price: int | None
    ) -> list[ExecutionReport]:
        now = self._clock()
        r = self._resting.get(order.order_id)
        if r is None or qty <= r.filled:
            self._refusals += 1
            return [
                self._report(
                    order.order_id, ExecKind.REPLACE_REJECTED, f"Y{now}.{self._refusals}-", now,
                    reason="not_working" if r is None else "qty_below_filled",
                )
            ]  # fmt: skip
        r.replaces += 1
        r.leaves = qty - r.filled
        r.price = price
        r.trigger_price = trigger_price
        reports = [
            ExecutionReport(
                f"P{order.order_id}-{r.replaces}", order.order_id, ExecKind.REPLACED, now,
                qty=qty, price=price, trigger_price=trigger_price, venue=self.name,
            )
        ]  # fmt: skip
        quote = self._quotes.get(r.symbol)
        if quote is not None:
            reports.extend(self._work(r, quote, now))
            if r.leaves == 0:
                self._unrest(r.order_id)
        return reports

    def reset(self) -> None:
        """Forget every resting order (the OMS restores the open ones from its store)."""
        self._resting.clear()
        self._by_symbol.clear()
        if self.dropcopy is not None:
            self.dropcopy.discard()

    def restore(self, order: Order) -> None:
        """Rest a working order again after a restart (the OMS's open orders are the truth)."""
        if order.status.value == "submitted":
            return  # never acknowledged here: the B-book answers a submit at once
        r = _Resting(
            order.order_id, order.symbol, order.side, order.type, order.leaves_qty,
            order.filled_qty, order.price, order.trigger_price,
            order.type not in (OrderType.STOP, OrderType.STOP_LIMIT)
            or order.status.value == "triggered"
            or order.filled_qty > 0,
            order.tif, order.expire_ns, account_id=order.account_id,
        )  # fmt: skip
        self._rest(r)

    # -- driven by the market and the clock -----------------------------------------------

    def on_quote(self, quote: Quote) -> list[ExecutionReport]:
        book = self._by_symbol.get(quote.symbol)
        if not book:
            return []
        reports: list[ExecutionReport] = []
        for r in list(book.values()):
            worked = self._work(r, quote, quote.ts_ns)
            if worked:
                self._copy_resting(r, worked)
                reports.extend(worked)
            if r.leaves == 0:
                self._unrest(r.order_id)
        return reports

    def on_time(self, now_ns: int) -> list[ExecutionReport]:
        due = [
            r for r in self._resting.values() if r.expire_ns is not None and r.expire_ns <= now_ns
        ]
        reports = []
        for r in due:
            self._unrest(r.order_id)
            expired = [self._report(r.order_id, ExecKind.EXPIRED, "E", now_ns)]
            self._copy_resting(r, expired)
            reports += expired
        return reports

    # -- internals --------------------------------------------------------------------------

    def _copy_resting(self, r: _Resting, reports: list[ExecutionReport]) -> None:
        if self.dropcopy is not None:
            self.dropcopy.record(r.account_id, r.symbol, r.side.value, reports)

    def _rest(self, r: _Resting) -> None:
        self._resting[r.order_id] = r
        self._by_symbol.setdefault(r.symbol, {})[r.order_id] = r

    def _unrest(self, order_id: int) -> _Resting | None:
        r = self._resting.pop(order_id, None)
        if r is not None:
            self._by_symbol[r.symbol].pop(order_id, None)
        return r

    def _slippage_breach(self, order: Order, quote: Quote) -> str | None:
        bound = order.max_slippage_ticks
        if bound is None:
            bound = self._config.default_max_slippage_ticks
        if bound is None or order.reference_price is None:
            return None
        inst = self._catalogue.get(order.symbol)
        px = self.client_price(quote, order.side)
        adverse = (px - order.reference_price) * order.side.sign
        if adverse > bound * inst.tick_int:
            return (
                f"slippage: fill at {inst.price_from_int(px)} is {adverse // inst.tick_int} ticks "
                f"from {inst.price_from_int(order.reference_price)}, bound {bound}"
            )
        return None

    def _triggered(self, r: _Resting, quote: Quote) -> bool:
        if r.triggered or r.type not in (OrderType.STOP, OrderType.STOP_LIMIT):
            return True
        assert r.trigger_price is not None
        hit = quote.ask >= r.trigger_price if r.side is Side.BUY else quote.bid <= r.trigger_price
        return hit

    def _fillable_in_full(self, r: _Resting, quote: Quote) -> bool:
        if not self._triggered(r, quote):
            return False
        px = self.client_price(quote, r.side)
        limited = r.type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and r.price is not None
        if limited and (px - r.price) * r.side.sign > 0:  # type: ignore[operator]
            return False
        size = quote.ask_size if r.side is Side.BUY else quote.bid_size
        return size is None or size >= r.leaves

    def _work(self, r: _Resting, quote: Quote, now: int) -> list[ExecutionReport]:
        reports: list[ExecutionReport] = []
        if not r.triggered:
            if not self._triggered(r, quote):
                return reports
            r.triggered = True
            if r.type in (OrderType.STOP, OrderType.STOP_LIMIT):
                reports.append(self._report(r.order_id, ExecKind.TRIGGERED, "T", now))
        px = self.client_price(quote, r.side)
        if r.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            assert r.price is not None
            if (px - r.price) * r.side.sign > 0:
                return reports
        if px <= 0:
            return reports
        size = quote.ask_size if r.side is Side.BUY else quote.bid_size
        qty = r.leaves if size is None else min(r.leaves, size)
        if qty <= 0:
            return reports
        r.leaves -= qty
        r.filled += qty
        reports.append(
            ExecutionReport(
                f"F{r.order_id}-{r.filled}", r.order_id, ExecKind.FILL, now,
                last_qty=qty, last_price=px, venue=self.name, markup=self.markup_int(r.symbol),
            )
        )  # fmt: skip
        return reports

    def _report(
        self, order_id: int, kind: ExecKind, tag: str, now: int, reason: str | None = None
    ) -> ExecutionReport:
        return ExecutionReport(
            f"{tag}{order_id}", order_id, kind, now, reason=reason, venue=self.name
        )
