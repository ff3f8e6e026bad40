"""A stop-out end to end: a real OMS host on a real Redis, the relay, and the positions
flow run ``--until-idle`` (with closes sent) again and again, resuming from its recovery
store each time. The flow must close the losing position through the command bus once,
see the fill come back, end the stop-out, and never send a second close."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pipelines.positions.run import run_positions
from pipelines.positions.spec import PositionsSpec
from tests.trading.bus.test_host import Served, serve
from trading.bus import risk as redis_out
from trading.bus.commands import COMMANDS_STREAM
from trading.bus.events import RedisStreamsPublisher
from trading.commands import Deposit, OpenAccount, SubmitOrder
from trading.oms.outbox import OutboxRelay
from trading.store import schema as s
from trading.validate import order_request


@pytest.fixture
def served(store_dsn: str, redis_url: str) -> Iterator[Served]:
    sv = serve(store_dsn, redis_url)
    yield sv
    sv.client.close()
    sv.stopped()


def _relay(sv: Served) -> None:
    relay = OutboxRelay(sv.oms.engine, RedisStreamsPublisher(sv.redis))
    while relay.relay_once():
        pass


def _flow(home: Path, redis_url: str, dsn: str, run: int) -> None:
    spec = PositionsSpec(home=str(home), redis_url=redis_url, dsn=dsn, until_idle=True,
                         send_closes=True, final_ns=run)  # fmt: skip
    run_positions(spec)


def _house_orders(sv: Served) -> list[Any]:
    o = s.orders
    with sv.oms.engine.connect() as conn:
        return list(conn.execute(select(o).where(o.c.initiator == "house")))


def _alerts(sv: Served) -> list[str]:
    return [a["kind"] for _, a in redis_out.read_alerts(sv.redis, "0", 1000)]


def test_stop_out_when_the_level_falls_under_then_one_close_through_the_bus_and_it_ends(
    served: Served, redis_url: str, store_dsn: str, tmp_path: Path
) -> None:
    sv = served
    cat = sv.oms.catalogue
    for cmd in (OpenAccount(9), Deposit(9, "USD", 100_000, "d1")):
        sv.client.send(cmd, 30).unwrap()
    buy = order_request(cat, account_id=9, client_order_id="b1", symbol="EUR/USD",
                        side="buy", qty="0.25")  # fmt: skip
    sv.client.send(SubmitOrder(buy), 30).unwrap()
    _relay(sv)
    _flow(tmp_path, redis_url, store_dsn, 1)
    account = redis_out.read_account(sv.redis, 9)
    assert account is not None and account["margin_state"] == "ok"
    assert not _house_orders(sv)
    # EUR/USD falls 250 pips: 0.25 lot loses about 625 USD of 1,000 USD.
    sv.quote("EUR/USD", "1.07500", "1.07510")
    _flow(tmp_path, redis_url, store_dsn, 2)
    sent = sv.redis.xrange(COMMANDS_STREAM)
    closes = [f for _, f in sent if f[b"type"] == b"ClosePosition"]
    assert len(closes) == 1
    body = json.loads(closes[0][b"body"])
    assert body["account_id"] == 9 and body["symbol"] == "EUR/USD"
    assert closes[0][b"command_id"] == b"stopout-9-1-1"
    assert body["reason"].startswith("stop-out stopout-9-1-1: margin level ")
    assert "at bid 1.07500" in body["reason"]
    kinds = _alerts(sv)
    assert "margin_call" in kinds and "stop_out_started" in kinds
    assert "stop_out_close_sent" in kinds
    # The host runs the close; its events come back through the relay.
    for _ in range(100):
        if _house_orders(sv):
            break
        sv.stop.wait(0.1)
    orders = _house_orders(sv)
    assert len(orders) == 1 and orders[0].status == "filled"
    _relay(sv)
    _flow(tmp_path, redis_url, store_dsn, 3)
    _flow(tmp_path, redis_url, store_dsn, 4)
    assert "stop_out_ended" in _alerts(sv)
    assert redis_out.read_positions(sv.redis, 9) == {}
    closes = [f for _, f in sv.redis.xrange(COMMANDS_STREAM) if f[b"type"] == b"ClosePosition"]
    assert len(closes) == 1 and len(_house_orders(sv)) == 1
