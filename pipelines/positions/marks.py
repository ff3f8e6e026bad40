"""Marking a book: each position's open PnL at the right side of the current quote, and the
account's equity, free margin and margin level, by the definitions the OMS's pre-trade
check uses (``trading.risk``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from pipelines.positions.book import AccountBook, Holding
from pipelines.positions.records import AccountRow, LotRow, MarginState, PositionRow
from trading.catalogue import Catalogue
from trading.fx import FxRates
from trading.money import to_minor
from trading.quotes import Quote
from trading.risk import equity, free_margin, margin_level, position_pnl


class QuoteMap:
    """The latest quote per symbol, as the ``QuoteSource`` that ``FxRates`` reads."""

    def __init__(self, quotes: Mapping[str, Quote] | None = None) -> None:
        self.quotes: dict[str, Quote] = dict(quotes or {})

    def get(self, symbol: str) -> Quote | None:
        return self.quotes.get(symbol)


class Marker:
    """Marks books against one set of quotes (``QuoteMap``, updated in place)."""

    def __init__(self, catalogue: Catalogue, quotes: QuoteMap) -> None:
        self.catalogue = catalogue
        self.quotes = quotes
        self.fx = FxRates(catalogue, quotes)

    def position(
        self, book: AccountBook, symbol: str, holding: Holding, ts_ns: int
    ) -> tuple[PositionRow, Decimal | None]:
        """The marked row, and the exact open PnL (None: no quote or no rate)."""
        inst = self.catalogue.get(symbol)
        quote = self.quotes.get(symbol)
        rate = self.fx.rate(inst.quote, book.currency) if book.currency else None
        pnl = None
        mark = None
        if quote is not None and holding.net:
            mark = quote.bid if holding.net > 0 else quote.ask
            if rate is not None:
                pnl = position_pnl(inst, holding.net, holding.cost, quote, rate)
        avg = Decimal(0)
        if holding.net:
            avg = Decimal(holding.cost) / (Decimal(holding.net) * inst.price_scale)
            avg = avg.quantize(Decimal(1).scaleb(-(inst.price_precision + 2)), ROUND_HALF_EVEN)
        lots = tuple(LotRow(lot_id, rem, price, margin)
                     for lot_id, (rem, price, margin) in holding.lots.items())  # fmt: skip
        row = PositionRow(
            book.account_id, symbol, holding.net, holding.cost, avg, lots, book.currency,
            sum(lot.margin for lot in lots), mark,
            None if pnl is None else to_minor(pnl, book.currency, ROUND_HALF_EVEN), ts_ns,
        )  # fmt: skip
        return row, pnl

    def account(
        self,
        book: AccountBook,
        ts_ns: int,
        state: MarginState = MarginState.OK,
        positions: Iterable[tuple[PositionRow, Decimal | None]] | None = None,
    ) -> AccountRow:
        """The account's figures; ``positions`` as ``position`` marked them (marked here
        when not given)."""
        if positions is None:
            positions = [self.position(book, sym, h, ts_ns) for sym, h in book.holdings.items()]
        total = Decimal(0)
        unmarked = []
        count = 0
        for row, pnl in positions:
            count += 1
            if pnl is None:
                unmarked.append(row.symbol)
            else:
                total += pnl
        ccy = book.currency
        pnl_minor = to_minor(total, ccy, ROUND_HALF_EVEN) if ccy else 0
        cash = book.cash.get(ccy, 0)
        used = book.used_margin
        eq = equity(cash, used, pnl_minor)
        others = tuple(sorted((c, v) for c, v in book.cash.items() if c != ccy))
        return AccountRow(
            book.account_id, ccy, book.account_type, book.tier, book.state, cash, cash + used,
            used, book.pending.get(ccy, 0), pnl_minor, eq, free_margin(cash, pnl_minor),
            margin_level(eq, used), state, tuple(sorted(unmarked)), count, book.last_seq, ts_ns,
            others,
        )  # fmt: skip
