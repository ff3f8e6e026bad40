"""The event contract: what the OMS's outbox carries to every consumer. No I/O.

An event is an ``OutboxEvent`` (the envelope: a unique ``event_id``, the account and its
gap-free ``account_seq``, the type, the order, the time) with a JSON payload of the type's
own fields; docs/events.md is the schema. The Redis Streams adapters are ``trading.bus``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trading.errors import ConfigError
from trading.fields import text_of

# The pseudo-account of events about no client account (symbol halts, end-of-day marks,
# rollover runs): client account ids are positive, so 0 is never a client's. Its events have
# their own gap-free ``account_seq`` and travel on the house stream, not a partition.
HOUSE_ACCOUNT = 0


def partition_of(account_id: int, partitions: int) -> int:
    """The bus partition of an account: stable across processes and restarts."""
    if partitions <= 0:
        raise ConfigError(f"partitions must be positive, got {partitions}")
    return account_id % partitions


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One outbox row as it travels on the bus.

    ``payload`` is the JSON text the OMS wrote: the envelope fields (event_id, type,
    account_id, account_seq, ts_ns) and the type's own fields (docs/events.md).
    """

    event_id: int
    account_id: int
    account_seq: int
    type: str
    order_id: int | None
    ts_ns: int
    payload: str


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


def event_from_fields(fields: Mapping[Any, Any]) -> OutboxEvent:
    """Parse a stream entry's fields (bytes or str, as the client decodes them)."""
    f = {text_of(k): text_of(v) for k, v in fields.items()}
    return OutboxEvent(
        event_id=int(f["event_id"]),
        account_id=int(f["account_id"]),
        account_seq=int(f["account_seq"]),
        type=f["type"],
        order_id=int(f["order_id"]) if f.get("order_id") else None,
        ts_ns=int(f["ts_ns"]),
        payload=f["payload"],
    )


def payload_of(event: OutboxEvent) -> dict[str, Any]:
    """The event's JSON payload as a dict (envelope fields included)."""
    body: dict[str, Any] = json.loads(event.payload)
    return body


class EventDeduper:
    """Turns at-least-once into exactly-once: by account sequence, and by event id per stream.

    By account (always, unless ``per_account=False``): the last ``account_seq`` seen per
    account; an event at or below it is a duplicate. A jump in the sequence of an account
    already seen (events lost, e.g. trimmed from the stream before this consumer read them)
    is counted in ``gaps``; the event is still accepted.

    By event id (when the reader says which stream an event came from: ``accept(event,
    stream)``): the highest ``event_id`` seen per stream. The relay publishes in
    ``event_id`` order and a stream is written by one relay, so within a stream ids only
    rise, except for a batch published again after a failure, whose ids are at or below
    the mark: the state is one integer per stream, however many accounts. A consumer that
    keeps no per-account state (an archive, a search index) passes ``per_account=False``
    and dedupes by event id alone.

    ``snapshot()`` / ``event_snapshot()`` and ``EventDeduper(snap, last_event_id=esnap)``
    carry the state across restarts (a Bytewax ``StatefulLogic`` snapshot, say).
    """

    def __init__(
        self,
        last_seq: Mapping[int, int] | None = None,
        *,
        last_event_id: Mapping[str, int] | None = None,
        per_account: bool = True,
    ) -> None:
        self.last_seq = dict(last_seq or {})
        self.last_event_id = dict(last_event_id or {})
        self.per_account = per_account
        self.duplicates = 0
        self.gaps = 0

    def accept(self, event: OutboxEvent, stream: str | None = None) -> bool:
        """True for an event to process, False for one already seen. ``stream``: the
        stream it was read from (``trading.bus.events.stream_name``), for the event-id
        check; required when ``per_account`` is False."""
        if stream is not None:
            if event.event_id <= self.last_event_id.get(stream, 0):
                self.duplicates += 1
                return False
        elif not self.per_account:
            raise ConfigError("an event-id deduper needs the stream each event was read from")
        if self.per_account:
            last = self.last_seq.get(event.account_id)
            if last is not None and event.account_seq <= last:
                self.duplicates += 1
                return False
            if last is not None and event.account_seq != last + 1:
                self.gaps += 1
            self.last_seq[event.account_id] = event.account_seq
        if stream is not None:
            self.last_event_id[stream] = event.event_id
        return True

    def filter(self, events: Sequence[OutboxEvent], stream: str | None = None) -> list[OutboxEvent]:
        return [e for e in events if self.accept(e, stream)]

    def snapshot(self) -> dict[int, int]:
        return dict(self.last_seq)

    def event_snapshot(self) -> dict[str, int]:
        return dict(self.last_event_id)
