"""The event bus on Redis Streams: the outbox relay's publisher and the consumers' helpers.

Streams ``{prefix}:{partition}`` (default ``bourse:events:0`` .. ``bourse:events:3``); an
account's events all go to partition ``account_id % partitions``
(``trading.outbox.partition_of``), in ``account_seq`` order. Each stream entry has the
fields ``event_id, account_id, account_seq, type, order_id, ts_ns, payload`` (``order_id``
is ``""`` for events that are not about an order; ``payload`` is the event's JSON text).
The schema is docs/events.md.

Delivery is at least once: after a relay crash between publishing and marking, a batch is
published again. ``EventDeduper`` drops what a consumer has already seen by
``(account_id, account_seq)``, so the effect is exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, cast

import redis

from trading.outbox import OutboxEvent, partition_of

DEFAULT_PREFIX = "bourse:events"


def stream_name(partition: int, stream_prefix: str = DEFAULT_PREFIX) -> str:
    return f"{stream_prefix}:{partition}"


def event_fields(event: OutboxEvent) -> dict[str, str | int]:
    """The stream entry's fields for an event."""
    return {
        "event_id": event.event_id,
        "account_id": event.account_id,
        "account_seq": event.account_seq,
        "type": event.type,
        "order_id": "" if event.order_id is None else event.order_id,
        "ts_ns": event.ts_ns,
        "payload": event.payload,
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def event_from_fields(fields: Mapping[Any, Any]) -> OutboxEvent:
    """Parse a stream entry's fields (bytes or str, as the client decodes them)."""
    f = {_text(k): _text(v) for k, v in fields.items()}
    return OutboxEvent(
        event_id=int(f["event_id"]),
        account_id=int(f["account_id"]),
        account_seq=int(f["account_seq"]),
        type=f["type"],
        order_id=int(f["order_id"]) if f.get("order_id") else None,
        ts_ns=int(f["ts_ns"]),
        payload=f["payload"],
    )


class RedisStreamsPublisher:
    """``trading.outbox.Publisher`` on Redis Streams.

    A batch is one MULTI/EXEC transaction: no reader sees half a batch, and a batch that
    fails to reach Redis lands nowhere. (A command failing *inside* EXEC, e.g. a stream key
    holding another type, does not undo the others; ``execute`` then raises and the relay
    publishes the batch again, which the consumers' dedupe absorbs.) Streams are trimmed
    approximately to ``maxlen`` entries each: a consumer further behind than that loses
    events, which its deduper reports as gaps.

    On Redis Cluster, a MULTI must stay in one hash slot: publish each partition's events in
    their own transaction there (not done here: a single Redis is the deployment today).
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        stream_prefix: str = DEFAULT_PREFIX,
        partitions: int = 4,
        maxlen: int = 1_000_000,
    ) -> None:
        if partitions <= 0:
            raise ValueError(f"partitions must be positive, got {partitions}")
        if maxlen <= 0:
            raise ValueError(f"maxlen must be positive, got {maxlen}")
        self.client = redis_client
        self.stream_prefix = stream_prefix
        self.partitions = partitions
        self.maxlen = maxlen

    def streams(self) -> list[str]:
        return [stream_name(p, self.stream_prefix) for p in range(self.partitions)]

    def stream_of(self, account_id: int) -> str:
        return stream_name(partition_of(account_id, self.partitions), self.stream_prefix)

    def publish(self, events: Sequence[OutboxEvent]) -> None:
        if not events:
            return
        pipe = self.client.pipeline(transaction=True)
        for event in events:
            pipe.xadd(
                self.stream_of(event.account_id),
                event_fields(event),  # type: ignore[arg-type]  # dict is invariant
                maxlen=self.maxlen,
                approximate=True,
            )
        ids = pipe.execute()
        assert len(ids) == len(events), ("XADD replies", len(ids), len(events))


class StreamEntry(NamedTuple):
    """An event read from a stream, with its entry id (the ``last_id`` to read after)."""

    stream_id: str
    event: OutboxEvent


def read_events(
    redis_client: redis.Redis,
    partition: int,
    last_id: str = "0",
    count: int = 1000,
    block_ms: int | None = None,
    *,
    stream_prefix: str = DEFAULT_PREFIX,
) -> list[StreamEntry]:
    """Up to ``count`` events of one partition after ``last_id`` ("0": from the start).

    ``block_ms`` waits that long for new entries when there are none (``None``: do not
    wait; ``0`` would wait forever, so it is refused).
    """
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    if block_ms is not None and block_ms <= 0:
        raise ValueError(f"block_ms must be positive or None, got {block_ms}")
    stream = stream_name(partition, stream_prefix)
    reply = cast(
        "list[Any] | None",
        redis_client.xread({stream: last_id}, count=count, block=block_ms),
    )
    entries: list[StreamEntry] = []
    for _name, items in reply or []:
        for entry_id, fields in items:
            entries.append(StreamEntry(_text(entry_id), event_from_fields(fields)))
    return entries


def payload_of(event: OutboxEvent) -> dict[str, Any]:
    """The event's JSON payload as a dict (envelope fields included)."""
    body: dict[str, Any] = json.loads(event.payload)
    return body


class EventDeduper:
    """The last ``account_seq`` seen per account: turns at-least-once into exactly-once.

    ``accept(event)`` is True for an event to process and False for one already seen
    (``account_seq`` not above the last). A jump in the sequence of an account already seen
    (events lost, e.g. trimmed from the stream before this consumer read them) is counted in
    ``gaps``; the event is still accepted. ``snapshot()`` and ``EventDeduper(dict(snap))``
    carry the state across restarts (a Bytewax ``StatefulLogic`` snapshot, say).
    """

    def __init__(self, last_seq: Mapping[int, int] | None = None) -> None:
        self.last_seq = dict(last_seq or {})
        self.duplicates = 0
        self.gaps = 0

    def accept(self, event: OutboxEvent) -> bool:
        last = self.last_seq.get(event.account_id)
        if last is not None and event.account_seq <= last:
            self.duplicates += 1
            return False
        if last is not None and event.account_seq != last + 1:
            self.gaps += 1
        self.last_seq[event.account_id] = event.account_seq
        return True

    def filter(self, events: Sequence[OutboxEvent]) -> list[OutboxEvent]:
        return [e for e in events if self.accept(e)]

    def snapshot(self) -> dict[int, int]:
        return dict(self.last_seq)
