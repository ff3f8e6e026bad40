"""The positions flow when its input goes wrong, through the real flow on a real Redis:
malformed and unknown events are dead-lettered with a reason and the flow goes on; a gap in
an account's sequence and a stream trimmed before the flow read it rebuild from the store,
after which the lake and Redis equal the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from tests.pipelines.positions import flowkit as kit
from trading.bus import risk as redis_read
from trading.bus.events import stream_name
from trading.events import event_fields


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def test_malformed_and_unknown_events_are_dead_lettered_and_the_flow_goes_on(
    tmp_path: Path, redis_url: str, client: redis.Redis
) -> None:
    bad_fill = kit.fill_open(6, 2, "EUR/USD", 100, 110_000, 366_667, 1)
    body = json.loads(bad_fill.payload)
    body["margin_held"] = 3666.67  # a float is not money
    events = [
        kit.opened(1), kit.deposit(1, 2, 100_000),
        kit.event(1, 3, "cash.deposited", "{not json"),
        kit.deposit(1, 4, 50_000),
        kit.opened(2), kit.deposit(2, 2, 12.5), kit.deposit(2, 3, 20_000),
        kit.opened(3), kit.event(3, 2, "loyalty.points_awarded", {"points": 5}),
        kit.deposit(3, 3, 30_000),
        kit.opened(6), kit.event(6, 2, "order.filled", json.dumps(body)),
        kit.deposit(6, 3, 1_000),
    ]  # fmt: skip
    kit.publish(client, events)
    # An entry the source cannot even read as an event (account_seq is not a number),
    # then account 5's own events after it on the same stream.
    broken = {**event_fields(kit.deposit(5, 9, 1)), "account_seq": "x"}
    client.xadd(stream_name(1), broken)  # type: ignore[arg-type]
    kit.publish(client, [kit.opened(5), kit.deposit(5, 2, 7_000)])

    kit.run(tmp_path, redis_url, None)

    # Every later event, of the same account and of others, was applied.
    assert kit.redis_money(client, [1, 2, 3, 5, 6]) == {
        1: (150_000, 0, 0), 2: (20_000, 0, 0), 3: (30_000, 0, 0), 5: (7_000, 0, 0),
        6: (1_000, 0, 0)}  # fmt: skip
    assert redis_read.read_positions(client, 6) == {}
    _, money = kit.lake_state(tmp_path)
    assert money[1] == (150_000, 0, 0) and money[6] == (1_000, 0, 0)
    dead = {(d["account_id"], d["event_id"]): d for d in kit.dead(client)}
    assert set(dead) == {("1", "1003"), ("2", "2002"), ("3", "3002"), ("6", "6002"),
                         ("5", "5009")}  # fmt: skip
    assert "JSON" in dead[("1", "1003")]["reason"] or "Expecting" in dead[("1", "1003")]["reason"]
    assert "'amount' must be an integer" in dead[("2", "2002")]["reason"]
    assert "unknown event type 'loyalty.points_awarded'" in dead[("3", "3002")]["reason"]
    assert "'margin_held' must be an integer" in dead[("6", "6002")]["reason"]
    assert "'account_seq' is not an integer" in dead[("5", "5009")]["reason"]
    assert dead[("5", "5009")]["stream"] == stream_name(1)
    assert dead[("1", "1003")]["raw"] == "{not json"
    alerts = kit.alerts(client)
    lettered = {a["account_id"] for a in alerts if a["kind"] == "dead_letter"}
    assert lettered == {1, 2, 3, 5, 6}
    # No store: the flow says it could not rebuild, and goes on from the events.
    rebuilds = [a for a in alerts if a["kind"] == "rebuild"]
    assert rebuilds and all(a["details"]["rebuilt"] == "false" for a in rebuilds)


def test_a_dead_letter_and_a_gap_rebuild_their_accounts_from_the_store(
    tmp_path: Path, redis_url: str, store_dsn: str, client: redis.Redis
) -> None:
    engine = kit.simulated_store(store_dsn)
    events = kit.outbox(engine)
    ids = sorted({e.account_id for e in events})
    a, b = ids[0], ids[1]
    mine_a = [k for k, e in enumerate(events) if e.account_id == a]
    mine_b = [k for k, e in enumerate(events) if e.account_id == b]
    assert len(mine_a) > 20 and len(mine_b) > 20
    bad = mine_a[len(mine_a) // 2]
    gone = mine_b[len(mine_b) // 2]
    published = list(events)
    e = published[bad]
    published[bad] = type(e)(e.event_id, e.account_id, e.account_seq, e.type, e.order_id,
                             e.ts_ns, e.payload[: len(e.payload) // 2])  # fmt: skip
    lost = published.pop(gone)
    kit.publish(client, published)

    kit.run(tmp_path, redis_url, store_dsn)

    positions, money = kit.store_state(engine)
    assert positions and len(money) == len(ids)
    assert kit.lake_state(tmp_path) == (positions, money)
    assert kit.redis_money(client, ids) == {aid: money[aid] for aid in ids}
    dead = kit.dead(client)
    assert [(d["account_id"], d["event_id"]) for d in dead] == [(str(a), str(e.event_id))]
    alerts = kit.alerts(client)
    assert [x["account_id"] for x in alerts if x["kind"] == "dead_letter"] == [a]
    rebuilds = [x for x in alerts if x["kind"] == "rebuild"]
    assert {x["account_id"] for x in rebuilds} == {a, b}
    assert all(x["details"]["rebuilt"] == "true" for x in rebuilds)
    gap = next(x for x in rebuilds if x["account_id"] == b)
    assert f"event {lost.account_seq + 1} follows {lost.account_seq - 1}" in gap["message"]


def test_a_stream_trimmed_before_it_was_read_rebuilds_its_partition_from_the_store(
    tmp_path: Path, redis_url: str, store_dsn: str, client: redis.Redis
) -> None:
    engine = kit.simulated_store(store_dsn)
    events = kit.outbox(engine)
    kit.publish(client, events)
    stream = stream_name(1)
    assert client.xlen(stream) > 50
    client.xtrim(stream, maxlen=5, approximate=False)

    kit.run(tmp_path, redis_url, store_dsn)

    positions, money = kit.store_state(engine)
    assert kit.lake_state(tmp_path) == (positions, money)
    ids = sorted(money)
    assert kit.redis_money(client, ids) == money
    rebuilds = [x for x in kit.alerts(client) if x["kind"] == "rebuild"]
    assert rebuilds and all(x["details"]["rebuilt"] == "true" for x in rebuilds)
    assert all(stream in x["message"] for x in rebuilds)
    # Exactly partition 1's accounts were read again; the others came from their events.
    rebuilt = {int(a) for x in rebuilds for a in x["details"]["accounts"].split(",") if a}
    assert rebuilt == {a for a in ids if a % 4 == 1} and rebuilt
