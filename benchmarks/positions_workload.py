"""The positions benchmarks' workload: OMS events as the relay publishes them, and quotes.

``A`` accounts in USD, each with ``account.opened`` and ``cash.deposited``, then one opening
fill in each of ``SYMBOLS`` (nine instruments quoted in USD, so one account holds nine
account x symbol keys: 48 k accounts are the issue's 432 k keys), then ``CLOSES`` fills that
close half of an open lot (``closed_lots`` with the slice, no ``opened_lot``). Every
payload has the fields of docs/events.md for its type; the fills' ``position`` is the net
after, so the flow's books check out (``book.apply`` raises on any mismatch).

Events go out in rounds (the r-th event of every account, then the (r+1)-th), cut per
partition (``account_id % partitions``) into batches of ``BATCH`` entries, as the
``EventStreams`` source hands them out: a batch touches ~``BATCH`` different accounts, so a
fill costs one account's re-marking (the worst case, and a busy broker's usual one).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pipelines.positions.config import PositionsConfig
from pipelines.positions.flow import Rows, route
from pipelines.positions.marks import Marker, QuoteMap
from pipelines.positions.records import DeadLetter
from pipelines.positions.shard import Context, Shard, ShardTotals
from pipelines.positions.sources import EventBatch
from trading.bus.events import stream_name
from trading.catalogue import Catalogue
from trading.events import OutboxEvent
from trading.quotes import Quote

# symbol -> (open price in price units, quantity in lot steps); all quoted in USD.
SYMBOLS: dict[str, tuple[int, int]] = {
    "EUR/USD": (108_500, 100), "GBP/USD": (127_000, 100), "AUD/USD": (66_000, 100),
    "NZD/USD": (61_000, 100), "XAU/USD": (265_000, 10), "XAG/USD": (31_000, 10),
    "US500": (60_000, 10), "US100": (210_000, 10), "BTC/USD": (9_000_000, 100),
}  # fmt: skip
CLOSES = 3  # closing fills per account (half of the first CLOSES symbols' lots)
BATCH = 1_000  # entries per batch, as EventStreams reads them (count=1000)
PARTITIONS = 4
MARGIN = 100_000  # minor units held per lot (1,000.00 USD)
DEPOSIT = 10_000_000  # minor units (100,000.00 USD): margin level ~1,100 %
T0_NS = 1_767_607_200_000_000_000  # Monday 2026-01-05 10:00 UTC


@dataclass(frozen=True, slots=True)
class Workload:
    accounts: int
    batches: list[EventBatch]
    events: int
    fills: int

    @property
    def keys(self) -> int:
        return self.accounts * len(SYMBOLS)


def _event(eid: int, aid: int, seq: int, kind: str, body: dict[str, Any], oid: int | None
           ) -> OutboxEvent:  # fmt: skip
    ts = T0_NS + eid * 1_000
    payload = {"event_id": eid, "type": kind, "account_id": aid, "account_seq": seq, "ts_ns": ts,
               **body}  # fmt: skip
    return OutboxEvent(eid, aid, seq, kind, oid, ts, json.dumps(payload, separators=(",", ":")))


def fill_body(
    aid: int, oid: int, symbol: str, side: str, qty: int, price: int, position: int,
    *, opened: dict[str, int] | None, closed: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """An ``order.filled`` payload's own fields (docs/events.md), commission 1.00 USD."""
    body: dict[str, Any] = {
        "order_id": oid, "client_order_id": f"c{oid}", "symbol": symbol, "side": side,
        "order_type": "market", "status": "filled", "qty": qty, "filled_qty": qty,
        "initiator": "client", "exec_id": f"X{aid}-{oid}", "last_qty": qty,
        "last_price": price, "commission": 100, "realized": sum(c["realized"] for c in closed),
        "currency": "USD", "position": position, "closed_lots": closed,
        "margin_held": opened["margin"] if opened else 0,
        "margin_released": sum(c["margin_released"] for c in closed),
        "conversion_rate": "1", "venue": "bbook", "markup": 0, "markup_amount": 0,
    }  # fmt: skip
    if opened is not None:
        body["opened_lot"] = opened
    return body


def account_events(aid: int, first_eid: int) -> list[OutboxEvent]:
    """One account's events, ``account_seq`` 1, 2, ... (event ids from ``first_eid``)."""
    out: list[OutboxEvent] = []

    def add(kind: str, body: dict[str, Any], oid: int | None = None) -> None:
        out.append(_event(first_eid + len(out), aid, len(out) + 1, kind, body, oid))

    add("account.opened", {"currency": "USD", "tier": "retail", "account_type": "margin",
                           "client_id": aid})  # fmt: skip
    add("cash.deposited", {"amount": DEPOSIT, "currency": "USD", "txn_id": aid,
                           "deposit_id": aid, "method": "bank_transfer"})  # fmt: skip
    sign = 1 if aid % 2 else -1  # odd accounts long, even ones short
    side, back = ("buy", "sell") if sign > 0 else ("sell", "buy")
    for k, (symbol, (price, qty)) in enumerate(SYMBOLS.items()):
        oid = aid * 100 + k
        lot = {"lot_id": aid * 100 + k, "qty": sign * qty, "price": price, "margin": MARGIN}
        add("order.filled", fill_body(aid, oid, symbol, side, qty, price, sign * qty,
                                      opened=lot, closed=[]), oid)  # fmt: skip
    for k, (symbol, (price, qty)) in enumerate(list(SYMBOLS.items())[:CLOSES]):
        oid = aid * 100 + 50 + k
        half = qty // 2
        exit_price = price + sign * 10
        closed = [{"lot_id": aid * 100 + k, "qty": sign * half, "open_price": price,
                   "realized": 10 * half, "realized_quote": f"{10 * half}",
                   "margin_released": MARGIN // 2}]  # fmt: skip
        body = fill_body(aid, oid, symbol, back, half, exit_price, sign * (qty - half),
                         opened=None, closed=closed)  # fmt: skip
        add("order.filled", body, oid)
    return out


def build(accounts: int, partitions: int = PARTITIONS, batch: int = BATCH) -> Workload:
    per_account = [account_events(aid, aid * 1_000) for aid in range(1, accounts + 1)]
    streams: dict[int, list[tuple[str, OutboxEvent]]] = {p: [] for p in range(partitions)}
    for r in range(len(per_account[0])):
        for events in per_account:
            e = events[r]
            entries = streams[e.account_id % partitions]
            entries.append((f"{len(entries) + 1}-0", e))
    cut: dict[int, list[EventBatch]] = {p: [] for p in streams}
    for p, entries in streams.items():
        for lo in range(0, len(entries), batch):
            cut[p].append(EventBatch(str(p), stream_name(p), entries[lo : lo + batch], [], False))
    longest = max(len(v) for v in cut.values())
    batches = [cut[p][i] for i in range(longest) for p in cut if i < len(cut[p])]
    n = sum(len(v) for v in per_account)
    fills = accounts * (len(SYMBOLS) + CLOSES)
    return Workload(accounts, batches, n, fills)


def quotes(catalogue: Catalogue, ts_ns: int = T0_NS) -> dict[str, Quote]:
    """One quote per symbol, 2 ticks either side of the open price."""
    out = {}
    for symbol, (price, _qty) in SYMBOLS.items():
        tick = catalogue.get(symbol).tick_int
        out[symbol] = Quote(symbol, price - 2 * tick, price + 2 * tick, ts_ns)
    return out


def shard_context(catalogue: Catalogue, quote_map: dict[str, Quote]) -> Context:
    return Context(catalogue, Marker(catalogue, QuoteMap(quote_map)), PositionsConfig(), None)


@dataclass
class Tally:
    """What came out of the books: items by type, dead letters, the final totals."""

    items: Counter[str]
    totals: dict[str, list[int]]

    @classmethod
    def empty(cls) -> Tally:
        return cls(Counter(), {})

    def add(self, item: Any) -> None:
        if isinstance(item, Rows):  # the flow hands its Redis rows on as one item
            for row in item.items:
                self.add(row)
            return
        self.items[type(item).__name__] += 1
        if isinstance(item, DeadLetter):
            self.items["dead:" + item.reason[:60]] += 1
        if isinstance(item, ShardTotals):
            for sym, (long_, short, n) in item.totals.items():
                self.totals[f"{item.shard}:{sym}"] = [long_, short, n]

    def summary(self) -> dict[str, Any]:
        long_ = sum(v[0] for v in self.totals.values())
        short = sum(v[1] for v in self.totals.values())
        return {"long_qty": long_, "short_qty": short, "dead_letters": self.items["DeadLetter"]}


def plain_loop(work: Workload, ctx: Context) -> tuple[dict[str, Shard], Tally]:
    """The same work as the flow's books step, without Bytewax: ``route`` then
    ``Shard.on_events`` per shard, then each shard's totals as at the end of a run."""
    shards: dict[str, Shard] = {}
    tally = Tally.empty()
    for batch in work.batches:
        now = time.time_ns()
        for key, item in route(batch, PARTITIONS):
            shard = shards.get(key)
            if shard is None:
                shard = shards[key] = Shard(None, ctx)
                shard.state.name = key
            for out in shard.on_events(item.payload, now):
                tally.add(out)
    for shard in shards.values():
        tally.add(shard.all_totals())
    return shards, tally
