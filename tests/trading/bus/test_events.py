"""Specification of trading.bus.events: the outbox on Redis Streams, read back partition by
partition, with the consumers' dedupe. Real redis-server (the `redis_url` fixture), no mocks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.trading.test_outbox import ACCOUNTS, OutboxDesk, as_event, drain, outbox_rows
from trading.bus.events import RedisStreamsPublisher, StreamEntry, read_events, stream_name
from trading.events import (
    EventDeduper,
    OutboxEvent,
    event_fields,
    event_from_fields,
    partition_of,
    payload_of,
)
from trading.oms.outbox import OutboxRelay

PARTITIONS = 4


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as c:
        yield c


def read_all(
    client: redis.Redis, partition: int, prefix: str = "bourse:events"
) -> list[StreamEntry]:
    """Every entry of a partition, read in small pages from the start (bounded)."""
    entries: list[StreamEntry] = []
    last_id = "0"
    for _ in range(10_000):
        page = read_events(client, partition, last_id, 50, stream_prefix=prefix)
        if not page:
            return entries
        entries.extend(page)
        last_id = page[-1].stream_id
    raise AssertionError("stream never ended")


def ev(account_id: int, seq: int, event_id: int, order_id: int | None = None) -> OutboxEvent:
    return OutboxEvent(event_id, account_id, seq, "cash.deposited", order_id, 1_000 + event_id,
                       f'{{"event_id":{event_id}}}')  # fmt: skip


# --- relaying to Redis ----------------------------------------------------------------------


def test_relay_to_redis_when_oms_activity_then_every_event_in_its_account_partition_in_order(
    store_dsn: str, client: redis.Redis
) -> None:
    desk = OutboxDesk(store_dsn)
    desk.scenario()
    publisher = RedisStreamsPublisher(client, partitions=PARTITIONS)
    relay = OutboxRelay(desk.engine, publisher, batch_size=13)
    expected = [as_event(r) for r in outbox_rows(desk.engine)]

    drain(relay)

    seen: list[OutboxEvent] = []
    for p in range(PARTITIONS):
        events = [entry.event for entry in read_all(client, p)]
        assert {partition_of(e.account_id, PARTITIONS) for e in events} <= {p}
        assert [e.event_id for e in events] == sorted(e.event_id for e in events)
        seqs: dict[int, list[int]] = defaultdict(list)
        for e in events:
            seqs[e.account_id].append(e.account_seq)
        for account_id, account_seqs in seqs.items():
            assert account_seqs == list(range(1, len(account_seqs) + 1)), account_id
        seen += events
    assert sorted(seen, key=lambda e: e.event_id) == expected  # every event, exactly as stored
    assert {partition_of(a, PARTITIONS) for a in ACCOUNTS} == {0, 1, 2, 3}
    assert relay.lag() == 0
    assert all(e.order_id is not None for e in seen if e.type.startswith("order."))
    assert payload_of(seen[0])["account_seq"] == seen[0].account_seq


def test_relay_to_redis_when_a_stream_is_broken_then_nothing_marked_and_repair_delivers_once(
    tmp_path: Path, client: redis.Redis
) -> None:
    desk = OutboxDesk(f"sqlite:///{tmp_path}/bourse.db")
    desk.scenario()
    publisher = RedisStreamsPublisher(client, partitions=PARTITIONS)
    relay = OutboxRelay(desk.engine, publisher)
    expected = [as_event(r) for r in outbox_rows(desk.engine)]
    client.set(stream_name(1), "not a stream")  # XADD to it fails inside EXEC

    with pytest.raises(redis.ResponseError):
        relay.relay_once()

    assert relay.lag() == len(expected)  # nothing marked: the whole batch will be retried
    client.delete(stream_name(1))
    drain(relay)
    deduper = EventDeduper()
    delivered: list[OutboxEvent] = []
    for p in range(PARTITIONS):
        delivered += deduper.filter([entry.event for entry in read_all(client, p)])
    assert sorted(delivered, key=lambda e: e.event_id) == expected
    assert deduper.gaps == 0
    # The other partitions took the first attempt too (EXEC does not roll back): duplicates.
    assert deduper.duplicates == sum(1 for e in expected if partition_of(e.account_id, 4) != 1)


# --- the publisher ------------------------------------------------------------------------


def test_publisher_when_batch_then_one_entry_per_event_with_the_documented_fields(
    client: redis.Redis,
) -> None:
    publisher = RedisStreamsPublisher(client, stream_prefix="t:events", partitions=2)
    batch = [ev(1, 1, 1), ev(2, 1, 2, order_id=9), ev(1, 2, 3)]

    publisher.publish(batch)

    raw: Any = client.xrange("t:events:1")
    assert [fields[b"event_id"] for _id, fields in raw] == [b"1", b"3"]
    assert set(raw[0][1]) == {b"event_id", b"account_id", b"account_seq", b"type", b"order_id",
                              b"ts_ns", b"payload"}  # fmt: skip
    assert raw[0][1][b"order_id"] == b""
    assert [e.event for e in read_all(client, 0, "t:events")] == [batch[1]]
    assert [e.event for e in read_all(client, 1, "t:events")] == [batch[0], batch[2]]
    assert publisher.streams() == ["t:events:0", "t:events:1"]


def test_publisher_when_empty_batch_then_nothing_written(client: redis.Redis) -> None:
    RedisStreamsPublisher(client).publish([])

    assert client.keys("bourse:events:*") == []


def test_publisher_when_streams_exceed_maxlen_then_trimmed_approximately(
    client: redis.Redis,
) -> None:
    publisher = RedisStreamsPublisher(client, partitions=1, maxlen=10)

    for i in range(20):
        publisher.publish([ev(1, 50 * i + k + 1, 50 * i + k + 1) for k in range(50)])

    length = client.xlen(stream_name(0))
    assert 10 <= length < 1_000
    deduper = EventDeduper()
    kept = deduper.filter([e.event for e in read_all(client, 0)])
    assert kept[-1].account_seq == 1_000  # the newest survive trimming
    assert deduper.gaps == 0  # a consumer that starts late sees no jump after its first event


@pytest.mark.parametrize("kwargs", [{"partitions": 0}, {"maxlen": 0}])
def test_publisher_when_bounds_broken_then_value_error(
    client: redis.Redis, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        RedisStreamsPublisher(client, **kwargs)


# --- reading ------------------------------------------------------------------------------


def test_read_events_when_last_id_given_then_continues_after_it(client: redis.Redis) -> None:
    publisher = RedisStreamsPublisher(client, partitions=1)
    publisher.publish([ev(1, s, s) for s in range(1, 6)])

    first = read_events(client, 0, "0", 2)
    rest = read_events(client, 0, first[-1].stream_id, 10)

    assert [e.event.account_seq for e in first] == [1, 2]
    assert [e.event.account_seq for e in rest] == [3, 4, 5]
    assert read_events(client, 0, rest[-1].stream_id, 10) == []


def test_read_events_when_nothing_new_and_block_then_returns_empty(client: redis.Redis) -> None:
    assert read_events(client, 3, "$", 10, block_ms=5) == []


def test_read_events_when_client_decodes_responses_then_same_events(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url, decode_responses=True) as text_client:
        RedisStreamsPublisher(text_client, partitions=1).publish([ev(7, 1, 1, order_id=3)])

        entries = read_events(text_client, 0)

    assert [e.event for e in entries] == [ev(7, 1, 1, order_id=3)]


@pytest.mark.parametrize("kwargs", [{"count": 0}, {"block_ms": 0}])
def test_read_events_when_bounds_broken_then_value_error(
    client: redis.Redis, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        read_events(client, 0, **kwargs)


def test_event_fields_when_round_tripped_then_equal() -> None:
    event = ev(5, 4, 44, order_id=12)

    fields = {k.encode(): str(v).encode() for k, v in event_fields(event).items()}

    assert event_from_fields(fields) == event


# --- dedupe -------------------------------------------------------------------------------


def test_deduper_when_event_seen_again_then_dropped() -> None:
    deduper = EventDeduper()

    accepted = [deduper.accept(e) for e in (ev(1, 1, 1), ev(2, 1, 2), ev(1, 1, 1), ev(1, 2, 3))]

    assert accepted == [True, True, False, True]
    assert deduper.duplicates == 1
    assert deduper.snapshot() == {1: 2, 2: 1}


def test_deduper_when_sequence_jumps_then_gap_counted_and_event_kept() -> None:
    deduper = EventDeduper()

    kept = deduper.filter([ev(1, 1, 1), ev(1, 3, 3), ev(2, 5, 9)])

    assert [e.account_seq for e in kept] == [1, 3, 5]
    assert deduper.gaps == 1  # account 2 starting at 5 is a late start, not a gap


def test_deduper_when_restored_from_snapshot_then_continues_where_it_stopped() -> None:
    first = EventDeduper()
    first.filter([ev(1, 1, 1), ev(1, 2, 2)])

    restored = EventDeduper(first.snapshot())

    assert restored.filter([ev(1, 2, 2), ev(1, 3, 3)]) == [ev(1, 3, 3)]
    assert first.snapshot() == {1: 2}  # the snapshot is a copy
