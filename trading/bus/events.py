"""The event bus on Redis Streams: the outbox relay's publisher and the consumers' helpers.

Streams ``{prefix}:{partition}`` (default ``bourse:events:0`` .. ``bourse:events:3``); an
account's events all go to partition ``account_id % partitions``
(``trading.events.partition_of``), in ``account_seq`` order. The house's events (the
pseudo-account ``HOUSE_ACCOUNT``: symbol halts, end-of-day marks, rollover runs) go to a
stream of their own, ``{prefix}:house`` (``HOUSE``), with the same fields. Each stream entry has the
fields ``event_id, account_id, account_seq, type, order_id, ts_ns, payload`` (``order_id``
is ``""`` for events that are not about an order; ``payload`` is the event's JSON text).
The schema is docs/events.md.

Delivery is at least once: after a relay crash between publishing and marking, a batch is
published again. ``EventDeduper`` drops what a consumer has already seen by
``(account_id, account_seq)``, so the effect is exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal, NamedTuple, cast

import redis

from trading.events import HOUSE_ACCOUNT, OutboxEvent, event_fields, event_from_fields, partition_of
from trading.fields import text_of

DEFAULT_PREFIX = "bourse:events"
# The house stream's name in place of a partition number: ``read_events(client, HOUSE)``.
HOUSE: Final = "house"

Partition = int | Literal["house"]


def stream_name(partition: Partition, stream_prefix: str = DEFAULT_PREFIX) -> str:
    """``{prefix}:{partition}``, or ``{prefix}:house`` for ``HOUSE``."""
    if partition != HOUSE and (type(partition) is not int or partition < 0):
        raise ValueError(f"a partition is a number >= 0 or {HOUSE!r}, got {partition!r}")
    return f"{stream_prefix}:{partition}"


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
        """The partitions' streams (the house stream is ``house_stream``)."""
        return [stream_name(p, self.stream_prefix) for p in range(self.partitions)]

    @property
    def house_stream(self) -> str:
        return stream_name(HOUSE, self.stream_prefix)

    def stream_of(self, account_id: int) -> str:
        if account_id == HOUSE_ACCOUNT:
            return stream_name(HOUSE, self.stream_prefix)
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
    partition: Partition,
    last_id: str = "0",
    count: int = 1000,
    block_ms: int | None = None,
    *,
    stream_prefix: str = DEFAULT_PREFIX,
) -> list[StreamEntry]:
    """Up to ``count`` events of one partition (or of the house stream: ``HOUSE``) after
    ``last_id`` ("0": from the start).

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
            entries.append(StreamEntry(text_of(entry_id), event_from_fields(fields)))
    return entries
