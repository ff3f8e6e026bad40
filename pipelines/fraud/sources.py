"""The fraud flow's sources: the OMS's event streams and the API's login stream, each a
resumable partition (its Bytewax state: the last stream id it handed out).

Partitions ``"0"`` .. ``"P-1"`` are the event streams ``bourse:events:{p}``, read as the
positions flow reads them (``pipelines.positions.sources.EventPartition``: a batch of
``(stream id, OutboxEvent)``, an entry that does not parse as a dead letter). Partition
``"logins"`` is ``bourse:activity:logins`` (docs/activity.md): a batch of ``(stream id,
fields)``. The house stream carries no client's events: it is not read.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Final

import redis
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from ml.events import Event
from pipelines.positions.records import DeadLetter
from pipelines.positions.sources import (
    RAW_CAP,
    EventBatch,
    EventPartition,
    Pacer,
    connect,
    parse_id,
)
from trading.bus.events import DEFAULT_PREFIX, stream_name
from trading.bus.quotes import stream_last_id
from trading.fields import text_of

# The API's stream (serving/api/activity.py; pipelines may not import serving).
LOGINS_STREAM: Final = "bourse:activity:logins"
LOGINS: Final = "logins"


@dataclass(frozen=True, slots=True)
class LoginBatch:
    stream: str
    entries: list[tuple[str, dict[str, str]]]  # (stream id, fields), in stream order
    dead: list[DeadLetter]


@dataclass(frozen=True, slots=True)
class Prepared:
    """Events already in the features' form, each with its identity (tests, benchmarks)."""

    events: list[tuple[str, Event]]


class LoginPartition(StatefulSourcePartition[LoginBatch, str]):
    """The login stream, read after ``last_id``; ``snapshot()`` is the last id handed out."""

    def __init__(self, client: redis.Redis, stream: str, last_id: str, *, until_idle: bool,
                 count: int, block_ms: int) -> None:  # fmt: skip
        self._client = client
        self.stream = stream
        self._last = last_id
        self._count = count
        self._pacer = Pacer(block_ms)
        self._end = parse_id(stream_last_id(client, stream=stream)) if until_idle else None
        self._ended = self._end is not None and parse_id(last_id) >= self._end

    def next_batch(self) -> list[LoginBatch]:
        if self._ended:
            raise StopIteration
        reply: Any = self._client.xread({self.stream: self._last}, count=self._count)
        entries: list[tuple[str, dict[str, str]]] = []
        dead: list[DeadLetter] = []
        for _name, items in reply or []:
            for raw_id, raw in items:
                sid = text_of(raw_id)
                if self._end is not None and parse_id(sid) > self._end:
                    break
                self._last = sid
                try:
                    entries.append((sid, {text_of(k): text_of(v) for k, v in raw.items()}))
                except UnicodeDecodeError as exc:
                    fields = {text_of(k, "replace"): text_of(v, "replace") for k, v in raw.items()}
                    dead.append(DeadLetter(self.stream, sid, f"a field is not UTF-8 text "
                                           f"({exc.reason})", time.time_ns(),
                                           raw=json.dumps(fields)[:RAW_CAP]))  # fmt: skip
        if self._end is not None and parse_id(self._last) >= self._end:
            self._ended = True
        if entries or dead:
            self._pacer.busy()
            return [LoginBatch(self.stream, entries, dead)]
        if self._ended:
            raise StopIteration
        self._pacer.idle()
        return []

    def next_awake(self) -> Any:
        return self._pacer.awake()

    def snapshot(self) -> str:
        return self._last

    def close(self) -> None:
        self._client.close()


class FraudSources(FixedPartitionedSource[EventBatch | LoginBatch, str]):
    """The event streams ``{prefix}:0`` .. ``{prefix}:{P-1}`` and the login stream.

    ``until_idle``: each partition ends once it has handed out what its stream held when
    the partition was built."""

    def __init__(self, redis_url: str, partitions: int = 4, *, prefix: str = DEFAULT_PREFIX,
                 logins: str = LOGINS_STREAM, until_idle: bool = False, count: int = 1000,
                 block_ms: int = 50) -> None:  # fmt: skip
        if partitions <= 0:
            raise ValueError(f"partitions must be positive, got {partitions}")
        self.redis_url = redis_url
        self.partitions = partitions
        self.prefix = prefix
        self.logins = logins
        self.until_idle = until_idle
        self.count = count
        self.block_ms = block_ms

    def list_parts(self) -> list[str]:
        return [str(p) for p in range(self.partitions)] + [LOGINS]

    def build_part(self, step_id: str, for_part: str,
                   resume_state: str | None) -> StatefulSourcePartition[Any, str]:  # fmt: skip
        if for_part not in self.list_parts():
            raise ValueError(f"no partition {for_part!r} among {self.list_parts()}")
        client = connect(self.redis_url)
        kw = {"until_idle": self.until_idle, "count": self.count, "block_ms": self.block_ms}
        if for_part == LOGINS:
            return LoginPartition(client, self.logins, resume_state or "0", **kw)  # type: ignore[arg-type]
        stream = stream_name(int(for_part), self.prefix)
        return EventPartition(client, for_part, stream, resume_state or "0", **kw)  # type: ignore[arg-type]
