"""The WebSocket's channels: what each stream entry becomes for a subscriber, and the
snapshot a subscription starts from (docs/websocket.md).

    quotes     bourse:quotes            the symbols asked for, coalesced per interval
    portfolio  bourse:risk:changes      the caller's accounts and positions
    orders     bourse:events:{p}        the caller's accounts' order events
    risk       bourse:risk:changes,     house exposure, margin levels, alerts (staff)
               bourse:risk:alerts
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import redis.asyncio as aredis

from serving.api.ws_hub import Hub, Outbox, Reader, Sub, parse_id
from trading.bus import risk as ro
from trading.bus.risk import decode_account, decode_alert
from trading.catalogue import Catalogue
from trading.events import event_from_fields
from trading.fields import text_of
from trading.quotes import QUOTES_STREAM, Quote, quote_from_fields, quote_key

ALERTS_SHOWN = 50  # the newest alerts a risk snapshot lists


def plain(value: Any) -> Any:
    """JSON-ready: a Decimal as its exact string, containers walked."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def account_json(raw: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = plain(decode_account(raw))
    return out


# -- decoders: each entry decoded once per process, whatever the number of subscribers -------


def decode_quote(_stream: str, fields: Mapping[bytes, bytes]) -> Quote:
    return quote_from_fields(text_of(fields[b"symbol"]), fields)


def decode_change(_stream: str, fields: Mapping[bytes, bytes]) -> dict[str, Any]:
    f = {text_of(k): text_of(v) for k, v in fields.items()}
    data = json.loads(f["data"])
    if f["kind"] == ro.KIND_ACCOUNT:
        data = account_json(data)
    return {"kind": f["kind"], "key": f["key"], "ts_ns": int(f["ts_ns"]), "data": data}


def decode_alert_entry(_stream: str, fields: Mapping[bytes, bytes]) -> dict[str, Any]:
    out: dict[str, Any] = plain(decode_alert(fields))
    return out


def decode_order_event(_stream: str, fields: Mapping[bytes, bytes]) -> dict[str, Any] | None:
    event = event_from_fields(fields)
    if not event.type.startswith("order."):
        return None
    return {"account_id": event.account_id, "event": json.loads(event.payload)}


def quote_json(q: Quote, catalogue: Catalogue) -> dict[str, Any]:
    inst = catalogue.get(q.symbol)

    def size(v: int | None) -> str | None:
        return None if v is None else str(inst.qty_from_int(v))

    return {"symbol": q.symbol, "bid": str(inst.price_from_int(q.bid)),
            "ask": str(inst.price_from_int(q.ask)), "bid_size": size(q.bid_size),
            "ask_size": size(q.ask_size), "ts_ns": q.ts_ns}  # fmt: skip


# -- readers ---------------------------------------------------------------------------------


def quotes_reader(hub: Hub) -> Reader:
    return hub.reader("quotes", (QUOTES_STREAM,), decode_quote)


def changes_reader(hub: Hub) -> Reader:
    async def house(batch: list[Any]) -> None:
        # One read of the house hash per batch that moved the exposure, for every desk.
        if not any(i and i["kind"] in (ro.KIND_EXPOSURE, ro.KIND_CURRENCY) for i in batch):
            return
        reader = hub.readers["changes"]
        risk = [s for s in reader.subs if isinstance(s, RiskSub)]
        if risk:
            raw = await reader.client.hgetall(ro.HOUSE)
            row = {text_of(k): text_of(v) for k, v in raw.items()}
            for sub in risk:
                sub.house(row)

    return hub.reader("changes", (ro.CHANGES_STREAM,), decode_change, after_batch=house)


def alerts_reader(hub: Hub) -> Reader:
    return hub.reader("alerts", (ro.ALERTS_STREAM,), decode_alert_entry)


def events_reader(hub: Hub, partitions: int) -> Reader:
    streams = tuple(f"bourse:events:{p}" for p in range(partitions))
    return hub.reader("events", streams, decode_order_event)


# -- subscriptions ---------------------------------------------------------------------------


class QuotesSub(Sub):
    """The latest quote of each symbol since the last send, sent once per interval; one
    batch in flight at a time, so a slow reader gets fewer, newer quotes, never a backlog.
    A quote older than the one sent for its symbol is dropped (no step back in time)."""

    channel = "quotes"

    def __init__(self, outbox: Outbox, symbols: list[str], catalogue: Catalogue,
                 pending_max: int) -> None:  # fmt: skip
        super().__init__(outbox, (QUOTES_STREAM,), pending_max)
        self.symbols = frozenset(symbols)
        self.catalogue = catalogue
        self.sent: dict[str, Quote] = {}
        self.latest: dict[str, Quote] = {}
        self.inflight = False

    def apply(self, stream: str, sid: str, item: Any) -> None:
        q: Quote = item
        if q.symbol not in self.symbols:
            return
        sent = self.sent.get(q.symbol)
        if sent is not None and (q.ts_ns < sent.ts_ns or q == sent):
            return
        held = self.latest.get(q.symbol)
        if held is None or q.ts_ns >= held.ts_ns:
            self.latest[q.symbol] = q

    def tick(self) -> None:
        if self.held or self.inflight or not self.latest:
            return
        quotes = [self.latest[s] for s in sorted(self.latest)]
        self.latest = {}
        self.sent.update((q.symbol, q) for q in quotes)
        self.inflight = True
        out = [quote_json(q, self.catalogue) for q in quotes]
        self.emit({"type": "update", "channel": self.channel, "quotes": out}, self._sent)

    def _sent(self) -> None:
        self.inflight = False

    async def snapshot(self, client: aredis.Redis) -> dict[str, Any]:
        pipe = client.pipeline(transaction=False)
        wanted = sorted(self.symbols)
        for symbol in wanted:
            pipe.hgetall(quote_key(symbol))
        quotes, missing = [], []
        for symbol, raw in zip(wanted, await pipe.execute(), strict=True):
            try:
                q = quote_from_fields(symbol, raw) if raw else None
            except ValueError:
                q = None
            if q is None:
                missing.append(symbol)
                continue
            self.sent[symbol] = q
            quotes.append(quote_json(q, self.catalogue))
        return {"quotes": quotes, "missing": missing}


class _Keyed(Sub):
    """Records that replace a key's whole value: one older than the one shown is dropped
    (it arrives again when the snapshot already showed it)."""

    def __init__(self, outbox: Outbox, streams: tuple[str, ...], pending_max: int) -> None:
        super().__init__(outbox, streams, pending_max)
        self.shown: dict[tuple[str, ...], int] = {}

    def newer(self, key: tuple[str, ...], ts_ns: int) -> bool:
        if ts_ns < self.shown.get(key, -1):
            return False
        self.shown[key] = ts_ns
        return True

    def change(self, c: dict[str, Any]) -> None:
        key = (c["kind"], c["key"], c["data"].get("symbol", "") if c["kind"] == "position" else "")
        if self.newer(key, c["ts_ns"]):
            self.emit({"type": "update", "channel": self.channel, "kind": c["kind"],
                       "key": c["key"], "ts_ns": c["ts_ns"], "data": c["data"]})  # fmt: skip


class PortfolioSub(_Keyed):
    channel = "portfolio"

    def __init__(self, outbox: Outbox, accounts: list[int], pending_max: int) -> None:
        super().__init__(outbox, (ro.CHANGES_STREAM,), pending_max)
        self.accounts = frozenset(str(a) for a in accounts)

    def apply(self, stream: str, sid: str, item: Any) -> None:
        if item["kind"] in (ro.KIND_ACCOUNT, ro.KIND_POSITION) and item["key"] in self.accounts:
            self.change(item)

    async def snapshot(self, client: aredis.Redis) -> dict[str, Any]:
        pipe = client.pipeline(transaction=False)
        ids = sorted(self.accounts, key=int)
        for a in ids:
            pipe.hgetall(ro.account_key(int(a)))
            pipe.hgetall(ro.positions_key(int(a)))
        replies = await pipe.execute()
        accounts: dict[str, Any] = {}
        for i, a in enumerate(ids):
            raw, pos = replies[2 * i], replies[2 * i + 1]
            account = account_json(raw) if raw else None
            positions = {text_of(k): json.loads(v) for k, v in pos.items()}
            if account is not None:
                self.shown[(ro.KIND_ACCOUNT, a, "")] = account["ts_ns"]
            for symbol, p in positions.items():
                self.shown[(ro.KIND_POSITION, a, symbol)] = p["ts_ns"]
            accounts[a] = {"account": account, "positions": positions}
        return {"accounts": accounts}


class OrdersSub(Sub):
    """Order events of the caller's accounts, each once per stream position (the OMS's
    own redeliveries keep their ``event_id`` and ``account_seq``, docs/events.md)."""

    channel = "orders"

    def __init__(self, outbox: Outbox, streams: tuple[str, ...], accounts: list[int],
                 pending_max: int) -> None:  # fmt: skip
        super().__init__(outbox, streams, pending_max)
        self.accounts = frozenset(accounts)

    def apply(self, stream: str, sid: str, item: Any) -> None:
        if item["account_id"] in self.accounts:
            self.emit({"type": "update", "channel": self.channel, **item})

    async def snapshot(self, client: aredis.Redis) -> dict[str, Any]:
        # The orders as they stand are the REST list's (GET /v1/orders): this channel
        # carries what changes from the cursor on.
        return {"accounts": sorted(self.accounts)}


class RiskSub(_Keyed):
    channel = "risk"

    def __init__(self, outbox: Outbox, top: int, pending_max: int) -> None:
        super().__init__(outbox, (ro.CHANGES_STREAM, ro.ALERTS_STREAM), pending_max)
        self.top = top

    def apply(self, stream: str, sid: str, item: Any) -> None:
        if stream == ro.ALERTS_STREAM:
            self.emit({"type": "update", "channel": self.channel, "kind": "alert",
                       "data": item})  # fmt: skip
        elif item["kind"] != ro.KIND_POSITION:
            self.change(item)

    def house(self, row: dict[str, str]) -> None:
        if not self.held:
            self.emit({"type": "update", "channel": self.channel, "kind": "house", "data": row})

    async def snapshot(self, client: aredis.Redis) -> dict[str, Any]:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(ro.EXPOSURE)
        pipe.hgetall(ro.CURRENCY_EXPOSURE)
        pipe.hgetall(ro.HOUSE)
        pipe.zrange(ro.MARGIN_LEVELS, 0, self.top - 1)
        pipe.xrevrange(ro.ALERTS_STREAM, count=ALERTS_SHOWN)
        exposure, currencies, house, ids, alerts = await pipe.execute()
        pipe = client.pipeline(transaction=False)
        for a in ids:
            pipe.hgetall(ro.account_key(int(a)))
        accounts = [account_json(raw) for raw in await pipe.execute() if raw]
        rows = {text_of(k): json.loads(v) for k, v in exposure.items()}
        ccy = {text_of(k): json.loads(v) for k, v in currencies.items()}
        for kind, table in ((ro.KIND_EXPOSURE, rows), (ro.KIND_CURRENCY, ccy)):
            for key, row in table.items():
                self.shown[(kind, key, "")] = row["ts_ns"]
        for acc in accounts:
            self.shown[(ro.KIND_ACCOUNT, str(acc["account_id"]), "")] = acc["ts_ns"]
        return {
            "exposure": rows,
            "currencies": ccy,
            "house": {text_of(k): text_of(v) for k, v in house.items()},
            "accounts": accounts,
            # Those after the cursor come as updates.
            "alerts": [
                decode_alert_entry("", f)
                for i, f in reversed(alerts)
                if parse_id(text_of(i)) <= parse_id(self.cursor[ro.ALERTS_STREAM])
            ],
        }
