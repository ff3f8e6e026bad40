"""Specification of pipelines.ticks.redis_sink: the latest quote per symbol and a conflated,
bounded stream of updates on a real redis-server (the `redis_url` fixture), through
``publish`` and through a Bytewax dataflow ending in ``RedisQuoteSink``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
import redis
from bytewax.dataflow import Dataflow
from bytewax.operators import input as bw_input
from bytewax.operators import output as bw_output
from bytewax.testing import TestingSource, run_main

from pipelines.ticks.redis_sink import Published, RedisQuoteSink, publish
from pipelines.ticks.schema import SIZE_SCALE, TICK_SCHEMA, conform
from trading.catalogue import default_catalogue
from trading.quotes import (
    QUOTES_STREAM,
    LastTrade,
    Quote,
    quote_from_fields,
    quote_key,
    trade_from_fields,
    trade_key,
)

T0_NS = 1_767_600_000_000_000_000  # 2026-01-05 08:00 UTC, a Monday


def tick_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A frame of accepted ticks in TICK_SCHEMA; columns a row leaves out are null, except
    ``recv_ns`` (= ``ts_ns``), ``source`` and ``source_seq`` (its position)."""
    full = []
    for i, row in enumerate(rows):
        r: dict[str, Any] = dict.fromkeys(TICK_SCHEMA)
        r.update(source="test", source_seq=i)
        r.update(row)
        if r["recv_ns"] is None:
            r["recv_ns"] = r["ts_ns"]
        full.append(r)
    return conform(pl.DataFrame(full, schema={c: pl.Utf8 if c == "kind" else t
                                              for c, t in TICK_SCHEMA.items()}))  # fmt: skip


def md(symbol: str, qty_units: int) -> int:
    """Order quantity units as a market-data size (SIZE_SCALE units of the underlying)."""
    inst = default_catalogue().get(symbol)
    return qty_units * int(inst.contract_size * SIZE_SCALE) // inst.qty_scale


def quotes(symbol: str, n: int, *, bid: int, spread: int = 10, ts_ns: int = T0_NS,
           step_ns: int = 1_000, seq0: int = 0) -> list[dict[str, Any]]:  # fmt: skip
    """``n`` quotes of ``symbol``, the bid rising one unit and the time ``step_ns`` each."""
    return [
        {"symbol": symbol, "kind": "quote", "ts_ns": ts_ns + i * step_ns, "bid": bid + i,
         "ask": bid + i + spread, "bid_size": md(symbol, 100 + i),
         "ask_size": None, "source_seq": seq0 + i}
        for i in range(n)
    ]  # fmt: skip


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as c:
        yield c


def snapshot(client: redis.Redis, symbol: str) -> Quote:
    fields = client.hgetall(quote_key(symbol))
    assert fields, f"no snapshot for {symbol}"
    return quote_from_fields(symbol, fields)


def stream_quotes(client: redis.Redis) -> list[Quote]:
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(QUOTES_STREAM)  # type: ignore[assignment]
    return [quote_from_fields(f[b"symbol"].decode(), f) for _id, f in entries]


# --- snapshots --------------------------------------------------------------------------------


def test_publish_when_frame_of_several_symbols_then_snapshot_holds_last_quote_of_each(
    client: redis.Redis,
) -> None:
    frame = tick_frame(quotes("EUR/USD", 5, bid=110_000) + quotes("USD/JPY", 3, bid=150_000))

    result = publish(client, frame, 1000)

    assert result == Published(2, 0, 0, 0)
    assert snapshot(client, "EUR/USD") == Quote("EUR/USD", 110_004, 110_014, T0_NS + 4_000, 104)
    assert snapshot(client, "USD/JPY") == Quote("USD/JPY", 150_002, 150_012, T0_NS + 2_000, 102)
    raw = client.hgetall(quote_key("EUR/USD"))
    assert raw[b"seq"] == b"4" and raw[b"source"] == b"test" and raw[b"ask_size"] == b""


def test_publish_when_older_batch_after_newer_then_snapshot_not_overwritten(
    client: redis.Redis,
) -> None:
    newer = tick_frame(quotes("EUR/USD", 2, bid=120_000, ts_ns=T0_NS + 10_000))
    older = tick_frame(quotes("EUR/USD", 2, bid=110_000, ts_ns=T0_NS))
    publish(client, newer, 1000)

    result = publish(client, older, 1000)

    assert result == Published(0, 1, 0, 0)
    assert snapshot(client, "EUR/USD").bid == 120_001
    assert [q.bid for q in stream_quotes(client)] == [120_001]  # the old one not streamed


def test_publish_when_times_differ_by_100ns_at_epoch_scale_then_compared_exactly(
    client: redis.Redis,
) -> None:
    # Doubles cannot tell these apart (2**-52 relative is ~400 ns here); the script must.
    publish(client, tick_frame(quotes("EUR/USD", 1, bid=110_500, ts_ns=T0_NS + 100)), 1000)

    publish(client, tick_frame(quotes("EUR/USD", 1, bid=110_000, ts_ns=T0_NS)), 1000)

    assert snapshot(client, "EUR/USD").bid == 110_500


def test_publish_when_same_ts_in_later_batch_then_later_quote_wins(client: redis.Redis) -> None:
    publish(client, tick_frame(quotes("EUR/USD", 1, bid=110_000)), 1000)

    result = publish(client, tick_frame(quotes("EUR/USD", 1, bid=110_002)), 1000)

    assert result.quotes_written == 1
    assert snapshot(client, "EUR/USD").bid == 110_002


def test_publish_when_script_flushed_from_server_then_reloaded_and_published(
    client: redis.Redis,
) -> None:
    publish(client, tick_frame(quotes("EUR/USD", 1, bid=110_000)), 1000)
    client.script_flush()

    result = publish(client, tick_frame(quotes("EUR/USD", 1, bid=110_001, ts_ns=T0_NS + 1)), 1000)

    assert result.quotes_written == 1
    assert snapshot(client, "EUR/USD").bid == 110_001


# --- the stream ---------------------------------------------------------------------------


def test_publish_when_batches_then_stream_has_one_entry_per_symbol_per_batch(
    client: redis.Redis,
) -> None:
    for b in range(3):
        rows = quotes("EUR/USD", 4, bid=110_000 + 10 * b, ts_ns=T0_NS + b * 10_000_000)
        rows += quotes("USD/JPY", 2, bid=150_000 + 10 * b, ts_ns=T0_NS + b * 10_000_000)
        publish(client, tick_frame(rows), 1000)

    entries = stream_quotes(client)

    assert len(entries) == 6
    assert sorted((q.symbol, q.bid) for q in entries) == sorted(
        [("EUR/USD", 110_003 + 10 * b) for b in range(3)]
        + [("USD/JPY", 150_001 + 10 * b) for b in range(3)]
    )
    assert entries[-1].ts_ns >= entries[0].ts_ns


def test_publish_when_many_batches_then_stream_length_stays_near_maxlen(
    client: redis.Redis,
) -> None:
    maxlen = 50
    symbols = list(default_catalogue().symbols[:10])
    for b in range(100):  # 1,000 entries offered
        rows = [r for s in symbols for r in quotes(s, 1, bid=1_000 + b, ts_ns=T0_NS + b)]
        publish(client, tick_frame(rows), maxlen)

    length = client.xlen(QUOTES_STREAM)

    # MAXLEN ~ trims whole radix-tree nodes (100 entries by default), so the bound is loose.
    assert maxlen <= length <= maxlen + 100
    assert snapshot(client, symbols[3]).bid == 1_099


# --- trades -------------------------------------------------------------------------------


def test_publish_when_trades_then_last_print_per_symbol_and_nothing_streamed(
    client: redis.Redis,
) -> None:
    rows = [
        {"symbol": "BTC/USDT", "kind": "trade", "ts_ns": T0_NS + i, "price": 6_000_000 + i,
         "qty": md("BTC/USDT", 1_000 * (i + 1)),
         "trade_id": f"t{i}"}
        for i in range(3)
    ] + [{"symbol": "ETH/USDT", "kind": "trade", "ts_ns": T0_NS, "price": 300_000,
          "qty": md("ETH/USDT", 5), "trade_id": None}]  # fmt: skip

    result = publish(client, tick_frame(rows), 1000)

    assert result == Published(0, 0, 2, 0)
    btc = trade_from_fields("BTC/USDT", client.hgetall(trade_key("BTC/USDT")))
    assert btc == LastTrade("BTC/USDT", 6_000_002, 3_000, T0_NS + 2, "t2")
    eth = trade_from_fields("ETH/USDT", client.hgetall(trade_key("ETH/USDT")))
    assert eth.trade_id == ""
    assert client.xlen(QUOTES_STREAM) == 0


def test_publish_when_older_trade_then_last_print_kept(client: redis.Redis) -> None:
    row = {"symbol": "BTC/USDT", "kind": "trade", "qty": 1_000, "trade_id": "x"}
    publish(client, tick_frame([{**row, "ts_ns": T0_NS + 5, "price": 6_000_500}]), 1000)

    result = publish(client, tick_frame([{**row, "ts_ns": T0_NS, "price": 6_000_000}]), 1000)

    assert result.trades_skipped == 1
    assert client.hget(trade_key("BTC/USDT"), "price") == b"6000500"


def test_publish_when_empty_frame_then_nothing_written(client: redis.Redis) -> None:
    assert publish(client, tick_frame([]), 1000) == Published(0, 0, 0, 0)
    assert client.dbsize() == 0


def test_publish_when_maxlen_not_positive_then_value_error(client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="stream_maxlen"):
        publish(client, tick_frame(quotes("EUR/USD", 1, bid=110_000)), 0)


# --- through Bytewax ------------------------------------------------------------------------


def test_redis_quote_sink_when_dataflow_of_frames_then_snapshot_and_stream_written(
    client: redis.Redis, redis_url: str
) -> None:
    items = [
        ("EUR/USD", tick_frame(quotes("EUR/USD", 3, bid=110_000))),
        ("USD/JPY", tick_frame(quotes("USD/JPY", 2, bid=150_000))),
        ("EUR/USD", tick_frame(quotes("EUR/USD", 3, bid=110_100, ts_ns=T0_NS + 1_000_000))),
    ]
    flow = Dataflow("redis_sink_test")
    stream = bw_input("ticks", flow, TestingSource(items))
    bw_output("redis", stream, RedisQuoteSink(redis_url, stream_maxlen=1000))

    run_main(flow)  # type: ignore[no-untyped-call]

    assert snapshot(client, "EUR/USD") == Quote(
        "EUR/USD", 110_102, 110_112, T0_NS + 1_000_000 + 2_000, 102
    )
    assert snapshot(client, "USD/JPY").bid == 150_001
    streamed = stream_quotes(client)
    assert {q.symbol for q in streamed} == {"EUR/USD", "USD/JPY"}
    assert [q for q in streamed if q.symbol == "EUR/USD"][-1] == snapshot(client, "EUR/USD")


def test_publish_when_quote_has_no_ask_then_value_error_and_nothing_written(
    client: redis.Redis,
) -> None:
    rows = quotes("EUR/USD", 2, bid=110_000)
    rows[-1]["ask"] = None

    with pytest.raises(ValueError, match=r"'EUR/USD' \(source_seq 1\) has no \['ask'\]"):
        publish(client, tick_frame(rows), 1000)
    assert client.dbsize() == 0
