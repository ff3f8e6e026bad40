"""Specification of the quote layout in Redis (trading.quotes' encoding) and of
serving.quotes.RedisQuoteBook, the OMS's quote source on the pipeline's snapshots, on a real
redis-server (the `redis_url` fixture). The last tests price OMS orders from quotes published
by the pipeline's sink function."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from pipelines.ticks.redis_sink import publish
from tests.pipelines.test_redis_sink import T0_NS, quotes, tick_frame
from tests.trading.builders import FakeClock
from trading.bus.quotes import RedisQuoteBook, read_quotes, stream_last_id
from trading.catalogue import default_catalogue
from trading.commands import Deposit, OpenAccount, OrderAck, SubmitOrder
from trading.config import OMSConfig
from trading.oms.engine import OMS
from trading.orders import OrderStatus
from trading.quotes import (
    Quote,
    quote_from_fields,
    quote_key,
    quote_to_fields,
)
from trading.store.engine import migrate, open_engine
from trading.store.schema import executions
from trading.validate import order_request
from trading.venues.bbook import BBookVenue

MAX_AGE_NS = 2_000_000_000  # 2 s

EUR = Quote("EUR/USD", 110_000, 110_010, T0_NS, 500, None)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as c:
        yield c


def store(client: redis.Redis, q: Quote) -> None:
    client.hset(quote_key(q.symbol), mapping=dict(quote_to_fields(q, source="t", seq=7)))  # type: ignore[arg-type]


# --- encoding -----------------------------------------------------------------------------


def test_quote_fields_when_encoded_and_decoded_then_same_quote() -> None:
    fields = quote_to_fields(EUR, source="histdata", seq=42, recv_ns=T0_NS + 5)

    assert fields["bid"] == "110000" and fields["bid_size"] == "500" and fields["ask_size"] == ""
    assert fields["seq"] == "42" and fields["recv_ns"] == str(T0_NS + 5)
    assert quote_from_fields("EUR/USD", fields) == EUR
    as_bytes = {k.encode(): v.encode() for k, v in fields.items()}
    assert quote_from_fields("EUR/USD", as_bytes) == EUR


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bid": "1.1"}, "'bid' is '1.1', not a decimal integer"),
        ({"ask": ""}, "'ask' is '', not a decimal integer"),
        ({"ts_ns": None}, "'ts_ns' missing"),
        ({"bid_size": "lots"}, "'bid_size' is 'lots'"),
        ({"symbol": "GBP/USD"}, "holds symbol 'GBP/USD'"),
        ({"bid": "110020"}, "crossed or non-positive"),
        ({"bid": "0"}, "crossed or non-positive"),
    ],
)
def test_quote_from_fields_when_hash_malformed_then_value_error_names_symbol_and_field(
    change: dict[str, str | None], message: str
) -> None:
    fields: dict[str, str] = quote_to_fields(EUR)
    for k, v in change.items():
        if v is None:
            del fields[k]
        else:
            fields[k] = v

    with pytest.raises(ValueError, match="quote hash of 'EUR/USD'") as err:
        quote_from_fields("EUR/USD", fields)
    assert message in str(err.value)


def test_quote_from_fields_when_empty_then_value_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        quote_from_fields("EUR/USD", {})


# --- RedisQuoteBook -------------------------------------------------------------------------


def test_redis_quote_book_when_fresh_snapshot_then_returned(client: redis.Redis) -> None:
    store(client, EUR)
    book = RedisQuoteBook(client, max_age_ns=MAX_AGE_NS, clock=lambda: T0_NS + 1_000_000)

    assert book.get("EUR/USD") == EUR
    assert book.stale_reads == 0


def test_redis_quote_book_when_no_snapshot_then_none_and_not_counted_stale(
    client: redis.Redis,
) -> None:
    book = RedisQuoteBook(client, max_age_ns=MAX_AGE_NS, clock=lambda: T0_NS)

    assert book.get("EUR/USD") is None
    assert book.stale_reads == 0


def test_redis_quote_book_when_snapshot_older_than_max_age_then_none_and_counted(
    client: redis.Redis,
) -> None:
    store(client, EUR)
    now = [T0_NS + MAX_AGE_NS]
    book = RedisQuoteBook(client, max_age_ns=MAX_AGE_NS, clock=lambda: now[0])
    assert book.get("EUR/USD") == EUR  # exactly max_age old is still fresh

    now[0] += 1
    assert book.get("EUR/USD") is None
    assert book.get("EUR/USD") is None

    assert book.stale_reads == 2
    assert book.stale_by_symbol["EUR/USD"] == 2


def test_redis_quote_book_when_snapshot_malformed_then_none_and_counted(
    client: redis.Redis,
) -> None:
    client.hset(quote_key("EUR/USD"), mapping={"bid": "x", "ask": "1", "ts_ns": str(T0_NS)})
    book = RedisQuoteBook(client, max_age_ns=MAX_AGE_NS, clock=lambda: T0_NS)

    assert book.get("EUR/USD") is None
    assert book.malformed_reads == 1


def test_redis_quote_book_when_get_many_then_each_symbol_fresh_missing_or_stale(
    client: redis.Redis,
) -> None:
    jpy = Quote("USD/JPY", 150_000, 150_020, T0_NS + 3 * MAX_AGE_NS)
    store(client, EUR)  # stale at the clock below
    store(client, jpy)
    book = RedisQuoteBook(client, max_age_ns=MAX_AGE_NS, clock=lambda: jpy.ts_ns + 1)

    got = book.get_many(["USD/JPY", "EUR/USD", "XAU/USD", "USD/JPY"])

    assert got == {"USD/JPY": jpy, "EUR/USD": None, "XAU/USD": None}
    assert list(got) == ["USD/JPY", "EUR/USD", "XAU/USD"]
    assert book.stale_reads == 1
    assert book.get_many([]) == {}


def test_redis_quote_book_when_max_age_not_positive_then_value_error(
    client: redis.Redis,
) -> None:
    with pytest.raises(ValueError, match="max_age_ns"):
        RedisQuoteBook(client, max_age_ns=0, clock=lambda: T0_NS)


# --- the stream, as a WebSocket reads it -----------------------------------------------------


def test_read_quotes_when_published_after_last_id_then_only_later_updates_read(
    client: redis.Redis,
) -> None:
    publish(client, tick_frame(quotes("EUR/USD", 2, bid=110_000)), 1000)
    last_id = stream_last_id(client)
    publish(client, tick_frame(quotes("EUR/USD", 2, bid=110_100, ts_ns=T0_NS + 10_000)), 1000)

    entries = read_quotes(client, last_id)

    assert [e.quote.bid for e in entries] == [110_101]
    assert stream_last_id(client) == entries[-1].stream_id
    assert [e.quote.bid for e in read_quotes(client, "0")] == [110_001, 110_101]


def test_stream_last_id_when_no_stream_then_zero(client: redis.Redis) -> None:
    assert stream_last_id(client) == "0-0"


# --- OMS orders priced from quotes in Redis --------------------------------------------------


def make_oms(tmp_path: Path, client: redis.Redis, clock: FakeClock) -> tuple[OMS, RedisQuoteBook]:
    engine = open_engine(f"sqlite:///{tmp_path}/bourse.db")
    migrate(engine)
    cat = default_catalogue()
    cfg = OMSConfig()
    book = RedisQuoteBook(client, max_age_ns=MAX_AGE_NS, clock=clock)
    oms = OMS(engine, cat, book, BBookVenue(cat, book, cfg.fees, cfg.venue, clock), cfg, clock)
    for result in oms.execute([OpenAccount(1), Deposit(1, "USD", 10_000_000, "dep-1")]):
        assert not isinstance(result, Exception), result
    return oms, book


def buy(oms: OMS, client_order_id: str) -> SubmitOrder:
    return SubmitOrder(
        order_request(oms.catalogue, account_id=1, client_order_id=client_order_id,
                      symbol="EUR/USD", side="buy", qty="1")
    )  # fmt: skip


def test_oms_when_quotes_published_to_redis_then_market_buy_fills_at_ask_plus_markup(
    tmp_path: Path, client: redis.Redis
) -> None:
    eur = default_catalogue().get("EUR/USD")
    bid = eur.price_to_int(Decimal("1.10000"))
    publish(client, tick_frame(quotes("EUR/USD", 20, bid=bid, spread=12)), 1000)
    last_ask = bid + 19 + 12
    clock = FakeClock(T0_NS + 19_000 + 250_000_000)  # 250 ms after the last quote
    oms, _book = make_oms(tmp_path, client, clock)
    markup = OMSConfig().fees.markup_ticks[eur.symbol_group] * eur.tick_int
    assert markup > 0

    ack = oms.execute_one(buy(oms, "c1"))

    assert isinstance(ack, OrderAck)
    assert ack.status is OrderStatus.FILLED
    assert ack.filled_notional == ack.filled_qty * (last_ask + markup)
    with oms.engine.connect() as conn:
        prices = (
            conn.execute(select(executions.c.price).where(executions.c.order_id == ack.order_id))
            .scalars()
            .all()
        )
    assert prices == [last_ask + markup]


def test_oms_when_redis_snapshot_stale_then_market_buy_denied_until_fresh_quote(
    tmp_path: Path, client: redis.Redis
) -> None:
    publish(client, tick_frame(quotes("EUR/USD", 3, bid=110_000)), 1000)
    clock = FakeClock(T0_NS + 2_000 + MAX_AGE_NS + 1)
    oms, book = make_oms(tmp_path, client, clock)

    result = oms.execute([buy(oms, "c1")])[0]

    assert isinstance(result, OrderAck), result
    assert result.status is OrderStatus.DENIED  # pre-trade risk finds no usable quote
    assert result.filled_qty == 0
    assert (result.reason or "").startswith("no_quote")
    assert book.stale_by_symbol["EUR/USD"] >= 1

    # A fresh quote from the feed, and the same OMS deals again.
    publish(client, tick_frame(quotes("EUR/USD", 1, bid=110_050, ts_ns=clock() - 1_000)), 1000)
    again = oms.execute_one(buy(oms, "c2"))
    assert isinstance(again, OrderAck) and again.status is OrderStatus.FILLED
