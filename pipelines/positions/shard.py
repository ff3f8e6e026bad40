"""One shard of the positions flow: the books of the accounts routed to it, kept from their
events, marked against the process's quotes, and watched for margin calls and stop-outs.

The flow keys its state by shard (``shard_of(account_id)``): an account's events and its
book always meet in one process, and a quote change re-marks only the accounts of the
shard that hold the symbol (or whose conversion it moves). What a snapshot holds is the
books and the stop-out states (``ShardState``); the indexes are rebuilt from the books.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from pipelines.positions.book import AccountBook, BadEvent, OutOfStep, apply
from pipelines.positions.config import PositionsConfig
from pipelines.positions.lake import Snapshot
from pipelines.positions.marks import Marker
from pipelines.positions.records import (
    AccountRow,
    Alert,
    AlertKind,
    CloseOrder,
    DeadLetter,
    MarginState,
    PositionRow,
)
from pipelines.positions.stopout import StopOut, evaluate, margin_state, on_house_order
from trading.catalogue import Catalogue
from trading.events import HOUSE_ACCOUNT, OutboxEvent

SHARDS = 16  # fixed: a recovery store's keys depend on it
Rebuilder = Callable[[Iterable[int] | None, tuple[int, int] | None], dict[int, AccountBook]]


def shard_of(account_id: int) -> str:
    return f"s{account_id % SHARDS:02d}"


@dataclass(frozen=True, slots=True)
class ShardTotals:
    """The clients' positions of one shard per symbol: (long, short, accounts), replacing
    what the shard said before for those symbols."""

    shard: str
    totals: dict[str, tuple[int, int, int]]


Out = AccountRow | PositionRow | Alert | DeadLetter | CloseOrder | ShardTotals | Snapshot


@dataclass(slots=True)
class ShardState:
    name: str = ""  # the shard's key, told by the first item routed to it
    books: dict[int, AccountBook] = field(default_factory=dict)
    stopouts: dict[int, StopOut] = field(default_factory=dict)


@dataclass(slots=True)
class Context:
    """What every shard of a process shares."""

    catalogue: Catalogue
    marker: Marker
    config: PositionsConfig
    rebuild: Rebuilder | None  # None: no store to read (then a gap is applied over)
    send_closes: bool = True


class Shard:
    def __init__(self, state: ShardState | None, ctx: Context) -> None:
        self.state = state or ShardState()
        self.ctx = ctx
        self.holders: dict[str, set[int]] = {}
        self.totals: dict[str, list[int]] = {}  # symbol -> [long, short, accounts]
        self.seen: dict[str, object] = {}  # the quote each symbol was last marked at
        # (quote currency, account currency) -> the accounts that convert between them
        self.converting: dict[tuple[str, str], set[int]] = {}
        self._deps: dict[tuple[str, str], frozenset[str]] = {}
        self._quotes_ccy: dict[str, str] = {}
        self.watch = {a for a, st in self.state.stopouts.items() if st.active}
        self.changed: set[int] = set()  # accounts whose book moved since the last snapshot
        # (account, symbol) -> (what it was marked from, the marking): see ``_marked``
        self.marks: dict[tuple[int, str], tuple[Any, tuple[PositionRow, Decimal | None]]] = {}
        self.duplicates = 0
        self.rebuilds = 0
        for book in self.state.books.values():
            self._index(book, add=True)

    # -- indexes ---------------------------------------------------------------------------

    def _index(self, book: AccountBook, *, add: bool, only: str | None = None) -> set[str]:
        """Add a book to the indexes, or take it out: the totals per symbol, the holders of
        each symbol, and the conversions it needs. ``only``: just that symbol's part (a
        fill moves one symbol)."""
        sign = 1 if add else -1
        aid = book.account_id
        for symbol, holding in book.holdings.items():
            if not holding.net or (only is not None and symbol != only):
                continue
            t = self.totals.setdefault(symbol, [0, 0, 0])
            t[0 if holding.net > 0 else 1] += sign * abs(holding.net)
            t[2] += sign
            if add:
                self.holders.setdefault(symbol, set()).add(aid)
            else:
                self.holders.get(symbol, set()).discard(aid)
        ccy = book.currency
        if only is not None:
            # One symbol moved: only its conversion can have come or gone.
            quote = self._quote_of(only) if add and ccy else ccy
            if quote != ccy:
                holders = self.converting.setdefault((quote, ccy), set())
                if any(self._quote_of(s) == quote for s in book.holdings):
                    holders.add(aid)
                else:
                    holders.discard(aid)
            return set(book.holdings)
        needs = {(q, ccy) for q in map(self._quote_of, book.holdings) if ccy and q != ccy}
        if add:
            for pair in needs:
                self.converting.setdefault(pair, set()).add(aid)
        else:
            for pair in needs:
                self.converting.get(pair, set()).discard(aid)
        return set(book.holdings)

    def _quote_of(self, symbol: str) -> str:
        quote = self._quotes_ccy.get(symbol)
        if quote is None:
            quote = self._quotes_ccy[symbol] = self.ctx.catalogue.get(symbol).quote
        return quote

    def _rate_symbols(self, pair: tuple[str, str]) -> frozenset[str]:
        """The symbols whose quotes a conversion rate is made of (as ``FxRates`` finds it:
        direct, inverted, or through USD)."""
        deps = self._deps.get(pair)
        if deps is None:
            a, b = pair
            names = (f"{a}/{b}", f"{b}/{a}", f"{a}/USD", f"USD/{a}", f"{b}/USD", f"USD/{b}")
            deps = self._deps[pair] = frozenset(n for n in names if n in self.ctx.catalogue)
        return deps

    def _totals(self, symbols: Iterable[str]) -> ShardTotals:
        out = {}
        for sym in symbols:
            long_, short, n = self.totals.get(sym, (0, 0, 0))
            out[sym] = (long_, short, n)
        return ShardTotals(self.state.name, out)

    # -- events -----------------------------------------------------------------------------

    def on_events(self, entries: list[tuple[str, str, OutboxEvent]], now_ns: int) -> list[Out]:
        out: list[Out] = []
        dirty: dict[int, set[str]] = {}
        moved: set[str] = set()
        for stream, stream_id, event in entries:
            if event.account_id == HOUSE_ACCOUNT:
                continue
            self._one(stream, stream_id, event, now_ns, dirty, moved, out)
        for account_id, symbols in dirty.items():
            out += self._mark(account_id, symbols, now_ns)
        if moved:
            out.append(self._totals(moved))
        return out

    def _one(
        self,
        stream: str,
        stream_id: str,
        event: OutboxEvent,
        now_ns: int,
        dirty: dict[int, set[str]],
        moved: set[str],
        out: list[Out],
    ) -> None:
        aid, seq = event.account_id, event.account_seq
        book = self.state.books.get(aid)
        last = book.last_seq if book is not None else 0
        if seq <= last:
            self.duplicates += 1
            return
        self.changed.add(aid)
        if seq != last + 1:
            why = f"account {aid}: event {seq} follows {last}; events were lost to this flow"
            if self._rebuild([aid], why, now_ns, dirty, moved, out):
                book = self.state.books.get(aid)
                last = book.last_seq if book is not None else 0
                if seq <= last:
                    return
        if book is None:
            book = self.state.books[aid] = AccountBook(aid)
        try:
            body = json.loads(event.payload)
            if not isinstance(body, dict):
                raise BadEvent("the payload is not a JSON object")
            symbol = body.get("symbol") if "exec_id" in body else None
            if symbol is not None and (
                not isinstance(symbol, str) or symbol not in self.ctx.catalogue
            ):
                raise BadEvent(f"a fill in {str(symbol)[:40]!r}, which the catalogue does not know")
            if symbol:
                self._index(book, add=False, only=symbol)
            try:
                applied = apply(book, event, body)
            finally:
                if symbol:
                    self._index(book, add=True, only=symbol)
        except (BadEvent, ValueError) as exc:
            book.last_seq = seq
            reason = f"{type(exc).__name__}: {exc}"[:300]
            out.append(DeadLetter(stream, stream_id, reason, now_ns, event.event_id, aid,
                                  event.payload[:4096]))  # fmt: skip
            out.append(Alert(AlertKind.DEAD_LETTER, now_ns, f"event {event.event_id} of "
                             f"account {aid} set aside: {reason}", account_id=aid))  # fmt: skip
            # Its effect is lost to the book: read the account again from the store.
            self._rebuild([aid], f"account {aid}: an event was set aside", now_ns, dirty,
                          moved, out)  # fmt: skip
            return
        except OutOfStep as exc:
            self._rebuild([aid], f"account {aid}: {exc}", now_ns, dirty, moved, out)
            return
        book.last_seq = seq
        symbols = dirty.setdefault(aid, set())
        symbols.update(applied.symbols)
        moved.update(applied.symbols)
        if applied.house_order:
            st = self.state.stopouts.get(aid) or StopOut()
            out += on_house_order(st, aid, event.type, body, event.ts_ns)
            self._keep(aid, st)

    def _keep(self, aid: int, st: StopOut) -> None:
        """Hold an account's stop-out state while it says anything, and watch it while a
        stop-out is active."""
        if st == _CLEAN:
            self.state.stopouts.pop(aid, None)
        else:
            self.state.stopouts[aid] = st
        if st.active:
            self.watch.add(aid)
        else:
            self.watch.discard(aid)

    def _rebuild(
        self,
        ids: list[int] | None,
        why: str,
        now_ns: int,
        dirty: dict[int, set[str]],
        moved: set[str],
        out: list[Out],
        partition: tuple[int, int] | None = None,
    ) -> bool:
        # A desk filters alerts by account: one account's rebuild names it.
        one = ids[0] if ids is not None and len(ids) == 1 and partition is None else None
        if self.ctx.rebuild is None:
            out.append(Alert(AlertKind.REBUILD, now_ns, f"{why}; no store to rebuild from: "
                             "going on from the events", account_id=one,
                             details={"rebuilt": "false"}))  # fmt: skip
            return False
        books = self.ctx.rebuild(ids, partition)
        if partition is not None:
            books = {a: b for a, b in books.items() if shard_of(a) == self.state.name}
            ids = sorted(set(books) | {a for a in self.state.books if a % partition[1] ==
                                       partition[0]})  # fmt: skip
        for aid in ids or ():
            self.changed.add(aid)
            old = self.state.books.pop(aid, None)
            if old is not None:
                moved.update(self._index(old, add=False))
            new = books.get(aid)
            if new is not None:
                self.state.books[aid] = new
                moved.update(self._index(new, add=True))
                dirty.setdefault(aid, set()).update(new.holdings)
            if old is not None:
                dirty.setdefault(aid, set()).update(old.holdings)
        self.rebuilds += 1
        if partition is not None and not ids:
            return True  # a trimmed partition holds none of this shard's accounts: say nothing
        out.append(Alert(AlertKind.REBUILD, now_ns, f"{why}: rebuilt {len(ids or ())} "
                         "account(s) from the store", account_id=one,
                         details={"rebuilt": "true",
                                  "accounts": ",".join(map(str, ids or ()))}))  # fmt: skip
        return True

    def on_dead(self, dead: DeadLetter, now_ns: int) -> list[Out]:
        """An entry the source could not read as an event: set aside with its alert, like
        one the book refuses, and its account (when the entry named one) read again."""
        out: list[Out] = [dead]
        aid = dead.account_id
        out.append(Alert(AlertKind.DEAD_LETTER, now_ns, f"entry {dead.stream_id} of "
                         f"{dead.stream} set aside: {dead.reason}", account_id=aid))  # fmt: skip
        if not aid:
            return out
        dirty: dict[int, set[str]] = {}
        moved: set[str] = set()
        self._rebuild([aid], f"account {aid}: an entry was set aside", now_ns, dirty, moved, out)
        for account_id, symbols in dirty.items():
            out += self._mark(account_id, symbols, now_ns)
        if moved:
            out.append(self._totals(moved))
        return out

    def on_trimmed(self, partition: int, partitions: int, stream: str, now_ns: int) -> list[Out]:
        out: list[Out] = []
        dirty: dict[int, set[str]] = {}
        moved: set[str] = set()
        why = f"{stream} was trimmed past where this flow had read"
        self._rebuild(None, why, now_ns, dirty, moved, out, (partition, partitions))
        for aid, symbols in dirty.items():
            out += self._mark(aid, symbols, now_ns)
        if moved:
            out.append(self._totals(moved))
        return out

    # -- marking ----------------------------------------------------------------------------

    def _mark(self, aid: int, symbols: set[str], now_ns: int) -> list[Out]:
        book = self.state.books.get(aid)
        if book is None:
            return [PositionRow(aid, s, 0, 0, Decimal(0), (), "", 0, None, None, now_ns)
                    for s in sorted(symbols)]  # fmt: skip
        marker = self.ctx.marker
        marked = self._marked(book, symbols, now_ns)
        out: list[Out] = [row for row, _ in marked if row.symbol in symbols]
        for s in sorted(symbols - set(book.holdings)):
            self.marks.pop((aid, s), None)
            out.append(PositionRow(aid, s, 0, 0, Decimal(0), (), book.currency, 0, None, None,
                                   now_ns))  # fmt: skip
        if not book.currency:
            return out
        st = self.state.stopouts.get(aid)
        levels = self.ctx.config.levels_for(book.account_type)
        row = marker.account(book, now_ns, positions=marked)
        if row.margin_level is not None or st is not None:
            if st is None:
                # Kept only once it holds something: most accounts never near a call.
                st = StopOut()
            timeout_ns = self.ctx.config.close_timeout_ns
            alerts, closes = evaluate(row, [r for r, _ in marked], levels, st, now_ns,
                                      timeout_ns, self.ctx.catalogue)  # fmt: skip
            out += alerts
            for close in closes:
                if self.ctx.send_closes:
                    out.append(close)
                else:
                    st.pending = None  # decided, not sent: the same step is decided again
                    out.append(Alert(AlertKind.STOP_OUT_CLOSE_FAILED, now_ns,
                                     f"{close.reason} (not sent: this run sends no closes)",
                                     account_id=aid, symbol=close.symbol))  # fmt: skip
            self._keep(aid, st)
        state = margin_state(row.margin_level, levels, st or StopOut())
        if state is not row.margin_state:
            row = _with_state(row, state)
        out.append(row)
        return out

    def _marked(
        self, book: AccountBook, fresh: set[str], now_ns: int
    ) -> list[tuple[PositionRow, Decimal | None]]:
        """Every position of the book marked; a position whose holding, quote and
        conversion quotes are what they were at its last marking (and not in ``fresh``)
        keeps that marking: an event moves one symbol, not the nine others."""
        quotes = self.ctx.marker.quotes.quotes
        ccy = book.currency
        out = []
        for sym, h in book.holdings.items():
            quote_ccy = self._quote_of(sym)
            rate_quotes = () if quote_ccy == ccy else tuple(
                quotes.get(x) for x in self._rate_symbols((quote_ccy, ccy))
            )  # fmt: skip
            key = (h.net, h.cost, len(h.lots), quotes.get(sym), rate_quotes)
            cached = self.marks.get((book.account_id, sym))
            if cached is not None and sym not in fresh and cached[0] == key:
                out.append(cached[1])
                continue
            marked = self.ctx.marker.position(book, sym, h, now_ns)
            self.marks[(book.account_id, sym)] = (key, marked)
            out.append(marked)
        return out

    def on_quotes(self, now_ns: int) -> list[Out]:
        """Re-mark the accounts whose marks or conversion rates the new quotes moved."""
        # A copy: the process's quote follower adds to the map from its own thread.
        quotes = dict(self.ctx.marker.quotes.quotes)
        changed = {s for s, q in quotes.items() if self.seen.get(s) is not q}
        if not changed:
            return self._pending_stopouts(now_ns)
        for s in changed:
            self.seen[s] = quotes[s]
        affected: dict[int, set[str]] = {}
        for sym in changed:
            for aid in self.holders.get(sym, ()):
                affected.setdefault(aid, set()).add(sym)
        for pair, accounts in self.converting.items():
            if accounts and self._rate_symbols(pair) & changed:
                for aid in accounts:
                    held = self.state.books[aid].holdings
                    affected.setdefault(aid, set()).update(
                        s for s in held if self._quote_of(s) == pair[0]
                    )
        out: list[Out] = []
        for aid, symbols in affected.items():
            out += self._mark(aid, symbols, now_ns)
        return out + self._pending_stopouts(now_ns, skip=affected)

    def _pending_stopouts(self, now_ns: int, skip: Iterable[int] = ()) -> list[Out]:
        """Stop-outs waiting on a close are looked at again even when no quote moved, so a
        close that never answers times out."""
        out: list[Out] = []
        done = set(skip)
        for aid in sorted(self.watch - done):
            if aid in self.state.books:
                out += self._mark(aid, set(), now_ns)
        return out

    def snapshot(self, snapshot_ns: int, now_ns: int) -> Snapshot:
        positions: list[PositionRow] = []
        accounts: list[AccountRow] = []
        marker = self.ctx.marker
        for aid in sorted(self.state.books):
            book = self.state.books[aid]
            marked = [marker.position(book, s, h, now_ns) for s, h in sorted(book.holdings.items())]
            positions += [row for row, _ in marked]
            if book.currency:
                st = self.state.stopouts.get(aid) or StopOut()
                row = marker.account(book, now_ns, positions=marked)
                levels = self.ctx.config.levels_for(book.account_type)
                accounts.append(_with_state(row, margin_state(row.margin_level, levels, st)))
        return Snapshot(snapshot_ns, self.state.name, tuple(positions), tuple(accounts))

    def all_totals(self) -> ShardTotals:
        return self._totals(sorted(self.totals))


_CLEAN = StopOut()


def _with_state(row: AccountRow, state: MarginState) -> AccountRow:
    return replace(row, margin_state=state)
