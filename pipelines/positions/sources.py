"""The positions flow's event source: the OMS's event streams (docs/events.md) for Bytewax.

One partition per stream: ``"0"`` .. ``"P-1"`` (``bourse:events:{p}``) and ``"house"``.
A partition reads its stream after the last entry id it handed out; that id is its Bytewax
state, so a resumed flow reads on from where its last snapshot left it. Delivery is at least
once (a relay may publish a batch twice); the flow dedupes (``trading.events.EventDeduper``).

A partition that falls behind the stream's trimming (``MAXLEN ~``) or an ``XDEL`` has lost
events: its next batch says ``trimmed=True`` and the flow rebuilds that partition's
accounts from the store. Each read is one ``MULTI``: ``XINFO STREAM`` and ``XREAD``
together, so that what the read returns and what the stream says it removed are seen at one
instant (a trim between two separate calls would go unnoticed). Redis 7 is needed for the
``XINFO`` fields this reads.

An entry whose fields do not parse is not applied: it becomes a ``DeadLetter`` in the batch
and the entries after it still come. Nothing here blocks the worker thread, which the other
partitions share: a partition whose last read was empty asks Bytewax to call it again a
little later (``next_awake``: 1 ms, doubling to ``block_ms``).

The quote source is ``pipelines.positions.sources_quotes``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from pipelines.positions.records import DeadLetter
from trading.bus.events import DEFAULT_PREFIX, HOUSE, Partition, stream_name
from trading.bus.quotes import stream_last_id
from trading.events import OutboxEvent, event_from_fields
from trading.fields import text_of

RAW_CAP = 4096  # characters of a dead entry's fields kept (ASCII JSON: as many bytes)
_MAX_SEQ = (1 << 64) - 1
_INT_FIELDS = ("event_id", "account_id", "account_seq", "ts_ns", "order_id")

StreamId = tuple[int, int]


class RedisUnreachable(ConnectionError):
    """The source's Redis did not answer at build; the message is one line, with the URL."""


def connect(redis_url: str) -> redis.Redis:
    """A client of ``redis_url`` that has answered a PING.

    Raises ``ValueError`` for a URL that is not a Redis URL, ``RedisUnreachable`` when
    nothing answers (as ``serving.checks.redis`` words it for the CLI)."""
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=10)
    except ValueError as exc:
        raise ValueError(f"{redis_url!r} is not a Redis URL ({exc})") from None
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RedisUnreachable(f"Redis at {redis_url} is not reachable ({reason})") from None
    return client


def parse_id(stream_id: str | bytes) -> StreamId:
    """A stream id as a comparable pair: ``"5-1"`` -> (5, 1); ``"0"`` and ``"5"`` -> seq 0."""
    ms, _, seq = text_of(stream_id).partition("-")
    return int(ms), int(seq or 0)


def format_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


def _before(stream_id: StreamId) -> StreamId:
    ms, seq = stream_id
    return (ms, seq - 1) if seq > 0 else (ms - 1, _MAX_SEQ)


def trimmed_to(info: Mapping[str, Any] | None, last_id: str) -> StreamId | None:
    """Where a reader after ``last_id`` must go on from when entries after it may have been
    trimmed away (the id just before the oldest entry kept), by the stream's ``XINFO
    STREAM``; None when nothing after ``last_id`` was trimmed (or no stream: ``info`` None).

    When ``last_id`` itself is gone, the entries between it and the first one kept may have
    existed or not: no id says which, so the answer is "trimmed" (a needless rebuild costs
    time, a missed one costs wrong positions). A fresh reader (``"0"``) is told exactly.
    """
    if info is None or not info.get("entries-added"):
        return None
    last = parse_id(last_id)
    first = info.get("first-entry")
    if first is None:  # emptied: was anything after ``last_id`` ever added?
        generated = parse_id(info["last-generated-id"])
        return generated if generated > last else None
    if int(info["entries-added"]) == int(info["length"]):
        return None  # nothing ever left the stream
    before = _before(parse_id(first[0]))
    return before if before > last else None


def deleted_after(info: Mapping[str, Any] | None, last_id: str) -> StreamId | None:
    """The newest entry ever ``XDEL``ed when it is after ``last_id`` (a trim does not show
    there in Redis 7.0: ``trimmed_to``), else None."""
    if info is None:
        return None
    if "max-deleted-entry-id" not in info:
        raise RuntimeError("XINFO STREAM without max-deleted-entry-id: Redis 7 is needed")
    deleted = parse_id(info["max-deleted-entry-id"])
    return deleted if deleted > parse_id(last_id) else None


class Pacer:
    """When an idle partition reads next: 1 ms after its first empty read, doubling up to
    ``max_ms``; at once while reads return something."""

    def __init__(self, max_ms: int) -> None:
        if max_ms <= 0:
            raise ValueError(f"block_ms must be positive, got {max_ms}")
        self._max_ms = max_ms
        self._wait_ms = 0
        self._awake: datetime | None = None

    def busy(self) -> None:
        self._wait_ms = 0
        self._awake = None

    def idle(self) -> None:
        self._wait_ms = min(self._max_ms, max(1, self._wait_ms * 2))
        self._awake = datetime.now(UTC) + timedelta(milliseconds=self._wait_ms)

    def awake(self) -> datetime | None:
        return self._awake


@dataclass(frozen=True, slots=True)
class EventBatch:
    """What one read of one partition's stream handed out.

    ``trimmed``: events after the previous batch's last id were removed before they could
    be read (the batch may then hold no entries); the flow rebuilds the partition's accounts.
    """

    partition: str  # "0" .. "P-1", or "house"
    stream: str
    entries: list[tuple[str, OutboxEvent]]  # (stream id, event), in stream order
    dead: list[DeadLetter]
    trimmed: bool


def _why(fields: Mapping[str, str], error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    if isinstance(error, UnicodeDecodeError):
        return f"a field is not UTF-8 text ({error.reason})"
    for name in _INT_FIELDS:
        value = fields.get(name, "")
        if name == "order_id" and not value:
            continue  # "" is "not about an order"
        try:
            int(value)
        except ValueError:
            return f"field {name!r} is not an integer: {value[:40]!r}"
    return f"unreadable entry: {error}"


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def dead_letter(
    stream: str, stream_id: str, fields: Mapping[Any, Any], error: Exception
) -> DeadLetter:
    """The ``DeadLetter`` of an entry ``event_from_fields`` refused with ``error``."""
    text = {text_of(k, "replace"): text_of(v, "replace") for k, v in fields.items()}
    return DeadLetter(
        stream=stream,
        stream_id=stream_id,
        reason=_why(text, error),
        ts_ns=time.time_ns(),
        event_id=_int_or_none(text.get("event_id")),
        account_id=_int_or_none(text.get("account_id")),
        raw=json.dumps(text)[:RAW_CAP],
    )


class EventPartition(StatefulSourcePartition[EventBatch, str]):
    """One stream, read after ``last_id``; ``snapshot()`` is the last id handed out."""

    def __init__(
        self,
        client: redis.Redis,
        partition: str,
        stream: str,
        last_id: str,
        *,
        until_idle: bool,
        count: int,
        block_ms: int,
    ) -> None:
        if count <= 0:
            raise ValueError(f"count must be positive, got {count}")
        self.partition = partition
        self.stream = stream
        self._client = client
        self._last = last_id
        self._count = count
        self._pacer = Pacer(block_ms)
        # until_idle: the newest entry at build; the partition ends once it is handed out.
        self._end = parse_id(stream_last_id(client, stream=stream)) if until_idle else None
        self._ended = False
        self._deleted_seen = parse_id(last_id)  # XDELs already reported (this run)

    def next_batch(self) -> list[EventBatch]:
        if self._ended:
            raise StopIteration
        info, items = self._read()
        trimmed = self._trimmed(info)
        entries: list[tuple[str, OutboxEvent]] = []
        dead: list[DeadLetter] = []
        for raw_id, fields in items:
            sid = text_of(raw_id)
            if self._end is not None and parse_id(sid) > self._end:
                break  # arrived after the build: not this run's
            self._last = sid
            try:
                entries.append((sid, event_from_fields(fields)))
            except (KeyError, ValueError) as error:
                dead.append(dead_letter(self.stream, sid, fields, error))
        if self._end is not None and parse_id(self._last) >= self._end:
            self._ended = True
        if entries or dead or trimmed:
            self._pacer.busy()
            return [EventBatch(self.partition, self.stream, entries, dead, trimmed)]
        if self._ended:
            raise StopIteration
        self._pacer.idle()
        return []

    def _read(self) -> tuple[dict[str, Any] | None, list[tuple[Any, Any]]]:
        pipe = self._client.pipeline(transaction=True)
        pipe.xinfo_stream(self.stream)
        pipe.xread({self.stream: self._last}, count=self._count)
        info, reply = pipe.execute(raise_on_error=False)
        if isinstance(info, redis.ResponseError):
            if "no such key" not in str(info):
                raise info  # e.g. the key holds another type
            info = None  # no stream yet: an empty partition
        if isinstance(reply, Exception):
            raise reply
        items = [item for _name, stream_items in reply or [] for item in stream_items]
        return cast("dict[str, Any] | None", info), items

    def _trimmed(self, info: Mapping[str, Any] | None) -> bool:
        """Whether events after the last id were lost; moves the last id past a trim, so
        that it is reported once (the entries this read returned are all after it)."""
        floor = trimmed_to(info, self._last)
        deleted = deleted_after(info, self._last)
        fresh_delete = deleted is not None and deleted > self._deleted_seen
        if deleted is not None:
            self._deleted_seen = max(self._deleted_seen, deleted)
        if floor is not None:
            self._last = format_id(floor)
        return floor is not None or fresh_delete

    def next_awake(self) -> datetime | None:
        return self._pacer.awake()

    def snapshot(self) -> str:
        return self._last

    def close(self) -> None:
        self._client.close()


class EventStreams(FixedPartitionedSource[EventBatch, str]):
    """The OMS event streams ``{prefix}:0`` .. ``{prefix}:{P-1}`` and ``{prefix}:house``.

    ``until_idle``: each partition ends once it has handed out the entries its stream held
    when the partition was built (a missing stream is an empty partition).
    """

    def __init__(
        self,
        redis_url: str,
        partitions: int = 4,
        *,
        prefix: str = DEFAULT_PREFIX,
        until_idle: bool = False,
        count: int = 1000,
        block_ms: int = 50,
    ) -> None:
        if partitions <= 0:
            raise ValueError(f"partitions must be positive, got {partitions}")
        self.redis_url = redis_url
        self.partitions = partitions
        self.prefix = prefix
        self.until_idle = until_idle
        self.count = count
        self.block_ms = block_ms

    def list_parts(self) -> list[str]:
        return [str(p) for p in range(self.partitions)] + [HOUSE]

    def build_part(self, step_id: str, for_part: str, resume_state: str | None) -> EventPartition:
        if for_part not in self.list_parts():
            raise ValueError(f"no partition {for_part!r} among {self.list_parts()}")
        partition: Partition = HOUSE if for_part == HOUSE else int(for_part)
        stream = stream_name(partition, self.prefix)
        return EventPartition(
            connect(self.redis_url), for_part, stream, resume_state or "0",
            until_idle=self.until_idle, count=self.count, block_ms=self.block_ms,
        )  # fmt: skip
