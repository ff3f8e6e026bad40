"""Orders priced from quotes that came through the whole pipeline into Redis."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from pipelines.ticks import lake
from pipelines.ticks.run import RunSpec, run
from tests.pipelines.test_flow import HISTDATA
from tests.trading.builders import FakeClock
from tests.trading.bus.test_quotes import buy
from trading.bus.quotes import RedisQuoteBook
from trading.catalogue import default_catalogue
from trading.commands import Deposit, OpenAccount, OrderAck
from trading.config import OMSConfig
from trading.oms.engine import OMS
from trading.orders import OrderStatus
from trading.store.engine import migrate, open_engine
from trading.venues.bbook import BBookVenue

EST_TO_UTC_NS = 5 * 3_600 * 10**9


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as c:
        c.flushdb()
        yield c


def _histdata_ns(stamp: str) -> int:
    import datetime as dt

    local = dt.datetime.strptime(stamp, "%Y%m%d %H%M%S%f").replace(tzinfo=dt.UTC)
    return int(local.timestamp()) * 10**9 + local.microsecond * 1_000 + EST_TO_UTC_NS


def _oms(tmp_path: Path, client: redis.Redis, clock: FakeClock) -> tuple[OMS, RedisQuoteBook]:
    """An OMS over a fresh store, pricing from the Redis snapshot, with one funded account."""
    cat = default_catalogue()
    engine = open_engine(f"sqlite:///{tmp_path}/bourse.db")
    migrate(engine)
    cfg = OMSConfig()
    book = RedisQuoteBook(client, max_age_ns=5 * 10**9, clock=clock)
    oms = OMS(engine, cat, book, BBookVenue(cat, book, cfg.fees, cfg.venue, clock), cfg, clock)
    oms.execute([OpenAccount(1), Deposit(1, "USD", 10_000_000, "dep-1")])
    return oms, book


def test_pricing_when_quotes_come_through_the_pipeline_then_orders_fill_at_the_last_good_ask(
    tmp_path: Path, client: redis.Redis, redis_url: str
) -> None:
    # Arrange: the real HistData sample, plus an erroneous print 2 % up as its last tick
    lines = HISTDATA.read_text().splitlines()
    last_good = lines[-1].split(",")
    spike_stamp = "20200101 230053000"
    spike = f"{spike_stamp},1.143700,1.143720,0"
    source = tmp_path / "eurusd-with-spike.csv"
    source.write_text("\n".join([*lines, spike]) + "\n")
    spec = RunSpec(home=str(tmp_path / "home"), source=str(source), fmt="histdata",
                   sinks=("lake", "redis"), redis_url=redis_url, batch_rows=1_000)  # fmt: skip
    report = run(spec)
    cat = default_catalogue()
    eur = cat.get("EUR/USD")
    cfg = OMSConfig()
    oms, book = _oms(tmp_path, client, FakeClock(_histdata_ns(spike_stamp) + 200_000_000))
    # Act
    ack = oms.execute_one(buy(oms, "c1"))
    # Assert: the spike never reached pricing; the fill is at the last good ask + markup
    rejected = lake.read(spec.lake_root, rejected=True)
    assert rejected["reason"].to_list() == ["spike"]
    assert report.accepted == len(lines)
    good_ask = eur.price_to_int(Decimal(last_good[2]))
    markup = cfg.fees.markup_ticks[eur.symbol_group] * eur.tick_int
    assert isinstance(ack, OrderAck)
    assert ack.status is OrderStatus.FILLED
    assert ack.filled_notional == ack.filled_qty * (good_ask + markup)
    quote = book.get("EUR/USD")
    assert quote is not None
    assert quote.ask == good_ask
    assert quote.ts_ns == _histdata_ns(last_good[0])


def test_pricing_when_the_pipeline_quote_is_older_than_the_limit_then_no_fill(
    tmp_path: Path, client: redis.Redis, redis_url: str
) -> None:
    # Arrange: the sample's quotes are from 2020; the OMS clock is a minute after the last
    spec = RunSpec(home=str(tmp_path / "home"), source=str(HISTDATA), fmt="histdata",
                   sinks=("redis",), redis_url=redis_url)  # fmt: skip
    run(spec)
    last = HISTDATA.read_text().splitlines()[-1].split(",")[0]
    oms, book = _oms(tmp_path, client, FakeClock(_histdata_ns(last) + 60 * 10**9))
    # Act
    ack = oms.execute_one(buy(oms, "c1"))
    # Assert
    assert isinstance(ack, OrderAck)
    assert ack.status is OrderStatus.DENIED
    assert ack.filled_qty == 0
    assert book.stale_reads >= 1
