"""Through the real flow on Redis: a malformed event entry and a malformed login are
dead-lettered with their reasons, and the events after them are still scored."""

from __future__ import annotations

from pathlib import Path

import redis

from ml.model import FraudModel
from pipelines.fraud.run import run_fraud
from pipelines.fraud.sinks import ALERTS_STREAM, DEAD_STREAM
from pipelines.fraud.sources import LOGINS_STREAM
from pipelines.fraud.spec import FraudSpec
from tests.pipelines.fraud import kit
from trading.bus.events import RedisStreamsPublisher


def test_malformed_entries_go_to_the_dead_stream_and_the_flow_goes_on(
    tmp_path: Path, redis_url: str, model: FraudModel
) -> None:
    r = redis.Redis.from_url(redis_url)
    kit.promote(tmp_path, model, threshold=0.0)  # every event scored is an alert
    events = kit.client_events(2, per_client=6)
    publisher = RedisStreamsPublisher(r, partitions=4)
    publisher.publish(events[:4])
    r.xadd("bourse:events:0", {"event_id": "x", "account_id": "10", "account_seq": "9",
                               "type": "cash.deposited", "order_id": "", "ts_ns": "1",
                               "payload": "{}"})  # fmt: skip
    r.xadd(LOGINS_STREAM, {**kit.login(kit.BASE_NS, 1), "ts_ns": "soon"})  # type: ignore[arg-type]
    publisher.publish(events[4:])
    r.xadd(LOGINS_STREAM, kit.login(kit.BASE_NS + 1, 2))  # type: ignore[arg-type]

    run_fraud(FraudSpec(home=str(tmp_path), redis_url=redis_url, until_idle=True))

    dead = [{k.decode(): v.decode() for k, v in f.items()} for _, f in r.xrange(DEAD_STREAM)]
    assert sorted((d["stream"], d["reason"]) for d in dead) == [
        (LOGINS_STREAM, "ts_ns is not an integer: 'soon'"),
        ("bourse:events:0", "field 'event_id' is not an integer: 'x'"),
    ]
    scored = len(events) - 2 + 1  # every event but the two openings, and the good login
    assert r.xlen(ALERTS_STREAM) == scored
