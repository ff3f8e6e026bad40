"""A shard of the positions flow without Bytewax: which quotes re-mark which accounts,
duplicates, gaps without a store, and the totals it hands the house."""

from __future__ import annotations

import json
from decimal import Decimal

from pipelines.positions.config import PositionsConfig
from pipelines.positions.marks import Marker, QuoteMap
from pipelines.positions.records import AccountRow, Alert, AlertKind, DeadLetter, PositionRow
from pipelines.positions.shard import Context, Shard, ShardTotals
from trading.catalogue import default_catalogue
from trading.events import OutboxEvent
from trading.quotes import Quote

CAT = default_catalogue()


def _q(symbol: str, bid: str, ask: str) -> Quote:
    inst = CAT.get(symbol)
    return Quote(symbol, inst.price_to_int(Decimal(bid)), inst.price_to_int(Decimal(ask)), 1)


def _shard(quotes: QuoteMap) -> Shard:
    ctx = Context(CAT, Marker(CAT, quotes), PositionsConfig(), None, send_closes=False)
    shard = Shard(None, ctx)
    shard.state.name = "s01"
    return shard


def _events(account_id: int, currency: str, symbol: str, qty: int, price: int) -> list:
    bodies = [
        ("account.opened", {"currency": currency, "tier": "retail", "account_type": "margin"}),
        ("cash.deposited", {"amount": 1_000_000, "currency": currency, "txn_id": 1,
                            "deposit_id": 1}),
        ("order.filled", {"exec_id": f"e{account_id}", "symbol": symbol, "currency": currency,
                          "margin_held": 10_000, "margin_released": 0, "realized": 0,
                          "commission": 0, "position": qty, "closed_lots": [],
                          "opened_lot": {"lot_id": account_id, "qty": qty, "price": price,
                                         "margin": 10_000}}),
    ]  # fmt: skip
    return [("bourse:events:1", f"{account_id}-{n}",
             OutboxEvent(account_id * 10 + n, account_id, n, kind, None, n, json.dumps(body)))
            for n, (kind, body) in enumerate(bodies, 1)]  # fmt: skip


def _accounts(out: list) -> set[int]:
    return {r.account_id for r in out if isinstance(r, AccountRow)}


def test_on_quotes_when_a_conversion_pair_moves_then_only_accounts_converting_through_it() -> None:
    quotes = QuoteMap({"USD/JPY": _q("USD/JPY", "150.000", "150.020"),
                       "EUR/USD": _q("EUR/USD", "1.10000", "1.10010"),
                       "XAU/USD": _q("XAU/USD", "2000.00", "2000.50")})  # fmt: skip
    shard = _shard(quotes)
    out = shard.on_events(_events(17, "EUR", "USD/JPY", 100, 150_000), 5)
    out += shard.on_events(_events(33, "USD", "XAU/USD", 100, 200_000), 5)
    assert _accounts(out) == {17, 33}
    assert [t for t in out if isinstance(t, ShardTotals)][-1].totals["XAU/USD"] == (100, 0, 1)
    shard.on_quotes(6)  # the first look at the quotes marks both
    # EUR/USD converts JPY -> EUR (through USD) for the EUR account only.
    quotes.quotes["EUR/USD"] = _q("EUR/USD", "1.20000", "1.20010")
    assert _accounts(shard.on_quotes(7)) == {17}
    quotes.quotes["XAU/USD"] = _q("XAU/USD", "2100.00", "2100.50")
    out = shard.on_quotes(8)
    assert _accounts(out) == {33}
    pos = next(r for r in out if isinstance(r, PositionRow))
    # 1.00 lot of 100 oz long from 2000.00, marked at the bid 2100.00: +10,000.00 USD.
    assert (pos.mark, pos.unrealized) == (210_000, 1_000_000)
    assert shard.on_quotes(9) == []


def test_on_events_when_repeated_then_duplicates_change_nothing() -> None:
    shard = _shard(QuoteMap())
    events = _events(5, "USD", "EUR/USD", 100, 110_000)
    shard.on_events(events, 1)
    before = shard.state.books[5].cash.copy()
    assert shard.on_events(events, 2) == []
    assert shard.duplicates == 3 and shard.state.books[5].cash == before


def test_on_events_when_a_gap_and_no_store_then_an_alert_and_the_events_applied() -> None:
    shard = _shard(QuoteMap())
    events = _events(5, "USD", "EUR/USD", 100, 110_000)
    out = shard.on_events([events[0], events[2]], 1)
    alerts = [a for a in out if isinstance(a, Alert)]
    # Without the deposit the margin is all the account has: it is also stopped out.
    assert alerts[0].kind is AlertKind.REBUILD and alerts[0].details == {"rebuilt": "false"}
    assert AlertKind.STOP_OUT_STARTED in [a.kind for a in alerts]
    assert shard.state.books[5].holdings["EUR/USD"].net == 100


def test_on_events_when_a_fill_names_an_unknown_symbol_then_dead_lettered() -> None:
    shard = _shard(QuoteMap())
    events = _events(5, "USD", "EUR/USD", 100, 110_000)
    stream, sid, fill = events[2]
    body = json.loads(fill.payload) | {"symbol": "NOPE/XYZ"}
    bad = OutboxEvent(fill.event_id, 5, 3, fill.type, None, 3, json.dumps(body))
    out = shard.on_events([*events[:2], (stream, sid, bad)], 1)
    dead = [d for d in out if isinstance(d, DeadLetter)]
    assert len(dead) == 1 and "catalogue does not know" in dead[0].reason
    assert shard.state.books[5].holdings == {} and shard.state.books[5].last_seq == 3
