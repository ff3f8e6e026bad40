"""What the flow-level tests of the positions flow share: a simulated store and its outbox,
hand-made events, publishing to the event streams, running the real flow, and reading back
the lake, Redis and the store in one comparable shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import Engine, select

from pipelines.positions.lake import latest_snapshot
from pipelines.positions.redis_out import DEAD_STREAM
from pipelines.positions.run import run_positions
from pipelines.positions.spec import PositionsSpec
from trading.bus import risk as redis_read
from trading.bus.events import RedisStreamsPublisher
from trading.catalogue import default_catalogue
from trading.events import OutboxEvent
from trading.quotes import Quote, quote_key, quote_to_fields
from trading.sim.simulation import run_simulation
from trading.store import schema as s
from trading.store.engine import migrate, open_engine
from trading.store.read_balances import account_snapshot

PARTITIONS = 4
# (account_id, symbol) -> net lot steps; account_id -> (cash, used margin, pending)
Positions = dict[tuple[int, str], int]
Money = dict[int, tuple[int, int, int]]


def simulated_store(dsn: str, *, accounts: int = 8, orders: int = 300, seed: int = 4) -> Engine:
    engine = open_engine(dsn)
    migrate(engine)
    run_simulation(engine, default_catalogue(), accounts=accounts, orders=orders, seed=seed)
    return engine


def outbox(engine: Engine) -> list[OutboxEvent]:
    """The store's client events (account > 0), in the order the relay publishes them."""
    o = s.outbox
    with engine.connect() as conn:
        rows = conn.execute(select(o).where(o.c.account_id > 0).order_by(o.c.event_id))
        return [OutboxEvent(r.event_id, r.account_id, r.account_seq, r.type, r.order_id,
                            r.ts_ns, r.payload) for r in rows]  # fmt: skip


def publish(client: redis.Redis, events: list[OutboxEvent]) -> None:
    RedisStreamsPublisher(client, partitions=PARTITIONS).publish(events)


def put_quotes(client: redis.Redis, *quotes: Quote) -> None:
    """The quote snapshot hashes the flow starts from."""
    for q in quotes:
        client.hset(quote_key(q.symbol), mapping=dict(quote_to_fields(q)))  # type: ignore[arg-type]


def event(account_id: int, seq: int, kind: str, body: dict[str, Any] | str) -> OutboxEvent:
    """A hand-made event; ``body`` a dict (JSON-encoded with the envelope) or raw text."""
    event_id = account_id * 1_000 + seq
    ts_ns = 1_767_600_000_000_000_000 + event_id
    if isinstance(body, dict):
        body = json.dumps({"event_id": event_id, "type": kind, "account_id": account_id,
                           "account_seq": seq, "ts_ns": ts_ns, **body})  # fmt: skip
    return OutboxEvent(event_id, account_id, seq, kind, None, ts_ns, body)


def opened(account_id: int, currency: str = "USD") -> OutboxEvent:
    return event(account_id, 1, "account.opened", {"currency": currency, "tier": "standard"})


def deposit(account_id: int, seq: int, amount: Any, currency: str = "USD") -> OutboxEvent:
    return event(account_id, seq, "cash.deposited", {"amount": amount, "currency": currency})


def fill_open(
    account_id: int, seq: int, symbol: str, qty: int, price: int, margin: int, lot_id: int
) -> OutboxEvent:
    """A fill opening a new lot of ``qty`` (signed) on a flat symbol, no commission."""
    body = {"exec_id": f"x{account_id}-{seq}", "symbol": symbol, "currency": "USD",
            "margin_held": margin, "margin_released": 0, "realized": 0, "commission": 0,
            "position": qty, "closed_lots": [],
            "opened_lot": {"lot_id": lot_id, "qty": qty, "price": price,
                           "margin": margin}}  # fmt: skip
    return event(account_id, seq, "order.filled", body)


def run(
    home: Path,
    redis_url: str,
    dsn: str | None,
    *,
    final_ns: int = 1,
    send_closes: bool = False,
    **kw: Any,
) -> None:
    spec = PositionsSpec(home=str(home), redis_url=redis_url, dsn=dsn, until_idle=True,
                         send_closes=send_closes, final_ns=final_ns, **kw)  # fmt: skip
    run_positions(spec)


def lake_state(home: Path) -> tuple[Positions, Money]:
    positions, accounts = latest_snapshot(home / "lake")
    got = {(r["account_id"], r["symbol"]): r["net_qty"] for r in positions.iter_rows(named=True)}
    money = {r["account_id"]: (r["cash"], r["used_margin"], r["withdrawal_pending"])
             for r in accounts.filter(accounts["base"]).iter_rows(named=True)}  # fmt: skip
    return got, money


def store_state(engine: Engine) -> tuple[Positions, Money]:
    catalogue = default_catalogue()
    positions: Positions = {}
    money: Money = {}
    with engine.connect() as conn:
        for account_id in conn.execute(select(s.accounts.c.account_id)).scalars():
            snap = account_snapshot(conn, catalogue, account_id, lambda _s: None)
            own = next(b for b in snap.balances if b.currency == snap.currency)
            money[account_id] = (own.cash, own.margin_held, own.withdrawal_pending)
            for pos in snap.positions:
                if pos.net:
                    positions[(account_id, pos.symbol)] = pos.net
    return positions, money


def redis_money(client: redis.Redis, account_ids: list[int]) -> Money:
    out: Money = {}
    for aid in account_ids:
        acct = redis_read.read_account(client, aid)
        assert acct is not None, aid
        out[aid] = (acct["cash"], acct["used_margin"], acct["withdrawal_pending"])
    return out


def alerts(client: redis.Redis) -> list[dict[str, Any]]:
    return [a for _, a in redis_read.read_alerts(client, "0", 100_000)]


def dead(client: redis.Redis) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in f.items()}
            for _, f in client.xrange(DEAD_STREAM)]  # fmt: skip
