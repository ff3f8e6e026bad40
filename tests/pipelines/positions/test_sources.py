"""Specification of the positions flow's sources: the OMS event streams and the quotes, read
from a real redis-server (the `redis_url` fixture), inside real Bytewax flows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, run_main

from pipelines.positions.sources import (
    RAW_CAP,
    EventBatch,
    EventPartition,
    EventStreams,
    RedisUnreachable,
)
from pipelines.positions.sources_quotes import QuoteBatch, QuotePartition, QuoteStream
from trading.bus.events import RedisStreamsPublisher, stream_name
from trading.events import OutboxEvent, event_fields
from trading.quotes import QUOTES_STREAM, Quote, quote_key, quote_to_fields

EUR, JPY, GBP = "EUR/USD", "USD/JPY", "GBP/USD"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as c:
        yield c


def ev(account_id: int, seq: int, event_id: int) -> OutboxEvent:
    payload = json.dumps({"event_id": event_id, "account_id": account_id, "account_seq": seq})
    return OutboxEvent(event_id, account_id, seq, "cash.deposited", None, 1_000 + event_id, payload)


def run_flow(source: FixedPartitionedSource[Any, str]) -> list[Any]:
    """Every item the source hands out, through a real Bytewax flow (the source must end)."""
    out: list[Any] = []
    flow = Dataflow("sources")
    op.output("out", op.input("in", flow, source), TestingSink(out))
    run_main(flow)
    return out


def drain(part: StatefulSourcePartition[Any, str], *, ends: bool = True) -> list[Any]:
    """What a partition hands out until it ends (``ends``: built until_idle), or else until
    a read finds nothing more."""
    out: list[Any] = []
    for _ in range(100):
        try:
            batch = list(part.next_batch())
        except StopIteration:
            assert ends, "a following partition ended"
            return out
        if not batch and not ends:
            return out
        out.extend(batch)
    raise AssertionError("the partition never ended")


def partition_of(event: OutboxEvent) -> str:
    return "house" if event.account_id == 0 else str(event.account_id % 4)


def events_of(batches: list[EventBatch]) -> list[OutboxEvent]:
    return [e for b in batches for _sid, e in b.entries]


def part(url: str, name: str, resume: str | None = None, **kw: Any) -> EventPartition:
    return EventStreams(url, 4, **kw).build_part("in", name, resume)


def publish(client: redis.Redis, events: list[OutboxEvent]) -> None:
    RedisStreamsPublisher(client, partitions=4).publish(events)


# --- events ---------------------------------------------------------------------------------


def test_event_streams_when_accounts_published_then_each_partition_hands_its_own_in_order(
    redis_url: str, client: redis.Redis
) -> None:
    events = [ev(a, s, 10 * s + a) for s in (1, 2, 3) for a in range(1, 9)]
    events.append(ev(0, 1, 99))  # a house event
    publish(client, events)

    batches = run_flow(EventStreams(redis_url, 4, until_idle=True, count=5))

    assert {b.partition for b in batches} == {"0", "1", "2", "3", "house"}
    for name in ("0", "1", "2", "3", "house"):
        mine = [b for b in batches if b.partition == name]
        expected_stream = stream_name("house" if name == "house" else int(name))
        assert all(b.stream == expected_stream and not b.trimmed and not b.dead for b in mine)
        assert events_of(mine) == [e for e in events if partition_of(e) == name]
        ids = [sid for b in mine for sid, _e in b.entries]
        assert ids == sorted(ids, key=lambda s: tuple(map(int, s.split("-"))))
        assert all(len(b.entries) <= 5 for b in mine)


def test_event_streams_when_no_stream_exists_then_empty_partitions_end_in_a_flow(
    redis_url: str, client: redis.Redis
) -> None:
    assert run_flow(EventStreams(redis_url, 2, until_idle=True)) == []
    following = part(redis_url, "1")
    assert following.next_batch() == []
    awake = following.next_awake()
    assert awake is not None and awake > datetime.now(UTC)  # idle: no busy loop
    assert following.snapshot() == "0"


def test_until_idle_when_events_arrive_after_build_then_ends_at_the_build_time_last_entry(
    redis_url: str, client: redis.Redis
) -> None:
    publish(client, [ev(4, 1, 1), ev(4, 2, 2)])
    p = part(redis_url, "0", until_idle=True)
    publish(client, [ev(4, 3, 3)])

    batches = drain(p)

    assert [e.account_seq for e in events_of(batches)] == [1, 2]
    with pytest.raises(StopIteration):
        p.next_batch()


def test_resume_when_built_from_a_snapshot_id_then_only_later_entries(
    redis_url: str, client: redis.Redis
) -> None:
    publish(client, [ev(4, s, s) for s in range(1, 6)])
    first = part(redis_url, "0", count=2)
    (batch,) = first.next_batch()
    assert [e.account_seq for _sid, e in batch.entries] == [1, 2]
    state = first.snapshot()
    assert state == batch.entries[-1][0]

    resumed = part(redis_url, "0", state, until_idle=True)

    assert [e.account_seq for e in events_of(drain(resumed))] == [3, 4, 5]
    assert resumed.snapshot() > state


def test_trim_when_the_stream_was_trimmed_past_the_resume_point_then_trimmed_once(
    redis_url: str, client: redis.Redis
) -> None:
    publish(client, [ev(4, s, s) for s in range(1, 6)])
    first = part(redis_url, "0", count=2)
    first.next_batch()
    state = first.snapshot()
    client.xtrim(stream_name(0), maxlen=1, approximate=False)  # seq 3 and 4 lost

    resumed = part(redis_url, "0", state)
    batches = drain(resumed, ends=False)

    assert [b.trimmed for b in batches] == [True]
    assert [e.account_seq for e in events_of(batches)] == [5]
    publish(client, [ev(4, 6, 6)])
    (later,) = resumed.next_batch()
    assert not later.trimmed and [e.account_seq for _s, e in later.entries] == [6]


def test_trim_when_the_stream_was_emptied_then_one_empty_trimmed_batch_then_nothing(
    redis_url: str, client: redis.Redis
) -> None:
    publish(client, [ev(4, s, s) for s in range(1, 4)])
    client.xtrim(stream_name(0), maxlen=0, approximate=False)

    p = part(redis_url, "0")  # a fresh start: it wanted everything
    (batch,) = p.next_batch()
    assert batch.trimmed and batch.entries == [] and batch.dead == []
    assert p.next_batch() == []
    # the flow ends the same way with until_idle
    out = [b for b in run_flow(EventStreams(redis_url, 1, until_idle=True)) if b.partition == "0"]
    assert [(b.trimmed, b.entries) for b in out] == [(True, [])]


def test_trim_when_an_entry_after_the_resume_point_was_deleted_then_trimmed_once(
    redis_url: str, client: redis.Redis
) -> None:
    publish(client, [ev(4, s, s) for s in range(1, 5)])
    ids = [i.decode() for i, _f in client.xrange(stream_name(0))]
    client.xdel(stream_name(0), ids[0])  # before the resume point: nothing lost to it
    quiet = part(redis_url, "0", ids[1], count=1)
    assert [b.trimmed for b in drain(quiet, ends=False)] == [False, False]

    client.xdel(stream_name(0), ids[2])
    p = part(redis_url, "0", ids[1], count=1)
    batches = drain(p, ends=False)

    assert [b.trimmed for b in batches] == [True]
    assert [e.account_seq for e in events_of(batches)] == [4]


def test_trim_when_the_resume_point_went_but_the_next_entry_is_kept_then_not_trimmed(
    redis_url: str, client: redis.Redis
) -> None:
    stream = stream_name(0)
    for s in range(1, 5):
        client.xadd(stream, event_fields(ev(4, s, s)), id=f"7-{s}")  # type: ignore[arg-type]
    client.xtrim(stream, maxlen=2, approximate=False)  # 7-1 and 7-2 gone

    exact = drain(part(redis_url, "0", "7-2"), ends=False)
    # Ids leave a hole: whether anything was between 7-4 and 9-0 is unknowable: trimmed.
    client.xadd(stream, event_fields(ev(4, 5, 5)), id="9-0")  # type: ignore[arg-type]
    client.xtrim(stream, maxlen=1, approximate=False)
    unsure = drain(part(redis_url, "0", "7-4"), ends=False)

    assert [(b.trimmed, [e.account_seq for _s, e in b.entries]) for b in exact] == [(False, [3, 4])]
    assert [(b.trimmed, [e.account_seq for _s, e in b.entries]) for b in unsure] == [(True, [5])]


def test_dead_letter_when_an_entry_does_not_parse_then_it_is_set_aside_and_the_rest_come(
    redis_url: str, client: redis.Redis
) -> None:
    stream = stream_name(0)
    publish(client, [ev(4, 1, 1)])
    no_payload = {k: v for k, v in event_fields(ev(4, 2, 2)).items() if k != "payload"}
    client.xadd(stream, no_payload)  # type: ignore[arg-type]
    bad_seq = dict(event_fields(ev(8, 1, 3)), account_seq="x", payload="p" * 10_000)
    client.xadd(stream, bad_seq)  # type: ignore[arg-type]
    publish(client, [ev(4, 3, 4)])

    batches = run_flow(EventStreams(redis_url, 1, until_idle=True))
    mine = [b for b in batches if b.partition == "0"]

    assert [e.event_id for e in events_of(mine)] == [1, 4]
    dead = [d for b in mine for d in b.dead]
    assert [(d.reason, d.event_id, d.account_id, d.stream) for d in dead] == [
        ("missing field 'payload'", 2, 4, stream),
        ("field 'account_seq' is not an integer: 'x'", 3, 8, stream),
    ]
    assert json.loads(dead[0].raw)["account_seq"] == "2"
    assert len(dead[1].raw) == RAW_CAP
    ids = [i.decode() for i, _f in client.xrange(stream)]
    assert [d.stream_id for d in dead] == ids[1:3]


def test_connect_when_redis_is_unreachable_or_the_url_is_bad_then_one_clear_error() -> None:
    with pytest.raises(RedisUnreachable, match=r"Redis at redis://127\.0\.0\.1:1/0 is not"):
        EventStreams("redis://127.0.0.1:1/0").build_part("in", "0", None)
    with pytest.raises(ValueError, match="'http://x' is not a Redis URL"):
        QuoteStream("http://x", [EUR]).build_part("in", "quotes", None)
    with pytest.raises(ValueError, match="no partition '4'"):
        EventStreams("redis://127.0.0.1:1/0").build_part("in", "4", None)


# --- quotes ---------------------------------------------------------------------------------


def set_quote(client: redis.Redis, q: Quote) -> None:
    client.hset(quote_key(q.symbol), mapping=dict(quote_to_fields(q)))  # type: ignore[arg-type]


def stream_quote(client: redis.Redis, q: Quote) -> None:
    client.xadd(QUOTES_STREAM, dict(quote_to_fields(q)))  # type: ignore[arg-type]


def qpart(url: str, resume: str | None = None, **kw: Any) -> QuotePartition:
    return QuoteStream(url, [EUR, JPY], **kw).build_part("in", "quotes", resume)


def test_quotes_when_fresh_then_snapshot_batch_then_newer_updates_conflated(
    redis_url: str, client: redis.Redis
) -> None:
    set_quote(client, Quote(EUR, 110_000, 110_010, 100))
    set_quote(client, Quote(JPY, 15_000, 15_002, 50))  # stale, still the latest mark
    stream_quote(client, Quote(EUR, 109_000, 109_010, 90))  # before the start: not read
    p = qpart(redis_url)
    stream_quote(client, Quote(EUR, 110_000, 110_010, 100))  # the snapshot's again: dropped
    stream_quote(client, Quote(EUR, 109_900, 109_910, 95))  # older: dropped
    stream_quote(client, Quote(EUR, 110_001, 110_011, 110))
    stream_quote(client, Quote(GBP, 120_000, 120_010, 111))  # not a symbol of the flow
    stream_quote(client, Quote(JPY, 15_001, 15_003, 105))
    stream_quote(client, Quote(EUR, 110_002, 110_012, 120))

    (snap,) = p.next_batch()
    (live,) = p.next_batch()

    assert snap == QuoteBatch(
        {EUR: Quote(EUR, 110_000, 110_010, 100), JPY: Quote(JPY, 15_000, 15_002, 50)}, True
    )
    assert live == QuoteBatch(
        {EUR: Quote(EUR, 110_002, 110_012, 120), JPY: Quote(JPY, 15_001, 15_003, 105)}, False
    )
    assert (p.dropped, p.malformed) == (2, 0)
    assert p.next_batch() == []
    assert p.snapshot() == client.xrevrange(QUOTES_STREAM, count=1)[0][0].decode()


def test_quotes_until_idle_when_fresh_then_the_flow_ends_after_the_snapshot(
    redis_url: str, client: redis.Redis
) -> None:
    set_quote(client, Quote(EUR, 110_000, 110_010, 100))
    stream_quote(client, Quote(EUR, 110_000, 110_010, 100))

    assert run_flow(QuoteStream(redis_url, [EUR, JPY], until_idle=True)) == [
        QuoteBatch({EUR: Quote(EUR, 110_000, 110_010, 100)}, True)
    ]


def test_quotes_until_idle_when_resumed_then_the_stream_up_to_its_end_at_build(
    redis_url: str, client: redis.Redis
) -> None:
    stream_quote(client, Quote(EUR, 110_000, 110_010, 100))
    first = client.xrevrange(QUOTES_STREAM, count=1)[0][0].decode()
    stream_quote(client, Quote(EUR, 110_001, 110_011, 101))
    stream_quote(client, Quote(JPY, 15_001, 15_003, 105))
    p = qpart(redis_url, first, until_idle=True, count=1)
    stream_quote(client, Quote(EUR, 110_002, 110_012, 102))  # after the build

    batches = drain(p)

    assert batches == [
        QuoteBatch({EUR: Quote(EUR, 110_001, 110_011, 101)}, False),
        QuoteBatch({JPY: Quote(JPY, 15_001, 15_003, 105)}, False),
    ]


def test_quotes_when_an_entry_or_hash_is_malformed_then_skipped_counted_and_the_rest_come(
    redis_url: str, client: redis.Redis
) -> None:
    client.hset(quote_key(JPY), mapping={"symbol": JPY, "bid": "x", "ask": "1", "ts_ns": "5"})
    set_quote(client, Quote(EUR, 110_000, 110_010, 100))
    p = qpart(redis_url)
    client.xadd(QUOTES_STREAM, {"symbol": EUR, "bid": "2", "ask": "1", "ts_ns": "200"})  # crossed
    client.xadd(QUOTES_STREAM, {"bid": "1", "ask": "2", "ts_ns": "201"})  # no symbol
    stream_quote(client, Quote(EUR, 110_001, 110_011, 202))

    batches = drain(p, ends=False)

    assert batches == [
        QuoteBatch({EUR: Quote(EUR, 110_000, 110_010, 100)}, True),
        QuoteBatch({EUR: Quote(EUR, 110_001, 110_011, 202)}, False),
    ]
    assert p.malformed == 3


def test_quotes_when_nothing_in_redis_then_an_empty_snapshot_and_the_flow_ends(
    redis_url: str,
) -> None:
    assert run_flow(QuoteStream(redis_url, [EUR], until_idle=True)) == [QuoteBatch({}, True)]


def test_quotes_when_resumed_behind_the_trimming_then_started_again_from_the_snapshots(
    redis_url: str, client: redis.Redis
) -> None:
    stream_quote(client, Quote(EUR, 110_000, 110_010, 100))
    old = client.xrevrange(QUOTES_STREAM, count=1)[0][0].decode()
    for ts in (101, 102, 103):
        stream_quote(client, Quote(EUR, 110_000 + ts, 110_010 + ts, ts))
    set_quote(client, Quote(EUR, 110_103, 110_113, 103))
    client.xtrim(QUOTES_STREAM, maxlen=1, approximate=False)

    p = qpart(redis_url, old, until_idle=True)

    assert p.restarted
    assert drain(p) == [QuoteBatch({EUR: Quote(EUR, 110_103, 110_113, 103)}, True)]


# --- Bytewax recovery -----------------------------------------------------------------------


def run_recovered(source: FixedPartitionedSource[Any, str], db: Path) -> list[Any]:
    out: list[Any] = []
    flow = Dataflow("sources")
    op.output("out", op.input("in", flow, source), TestingSink(out))
    run_main(flow, epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(db)))
    return out


def test_recovery_when_the_flow_runs_again_then_each_source_goes_on_from_its_state(
    redis_url: str, client: redis.Redis, tmp_path: Path
) -> None:
    ev_db, q_db = tmp_path / "events", tmp_path / "quotes"
    for db in (ev_db, q_db):
        db.mkdir()
        init_db_dir(db, 1)
    set_quote(client, Quote(EUR, 110_000, 110_010, 100))
    publish(client, [ev(4, s, s) for s in (1, 2, 3)])

    events_1 = run_recovered(EventStreams(redis_url, 1, until_idle=True), ev_db)
    quotes_1 = run_recovered(QuoteStream(redis_url, [EUR], until_idle=True), q_db)
    publish(client, [ev(4, s, s) for s in (4, 5)])
    stream_quote(client, Quote(EUR, 110_001, 110_011, 101))
    events_2 = run_recovered(EventStreams(redis_url, 1, until_idle=True), ev_db)
    quotes_2 = run_recovered(QuoteStream(redis_url, [EUR], until_idle=True), q_db)

    assert [e.account_seq for e in events_of(events_1)] == [1, 2, 3]
    assert [e.account_seq for e in events_of(events_2)] == [4, 5]
    assert quotes_1 == [QuoteBatch({EUR: Quote(EUR, 110_000, 110_010, 100)}, True)]
    assert quotes_2 == [QuoteBatch({EUR: Quote(EUR, 110_001, 110_011, 101)}, False)]
