"""The WebSocket's fan-out: one reader task per stream (group) per process, feeding every
subscription of every connection, each connection with a bounded queue.

    Hub.reader(name)        the reader of ``quotes`` (bourse:quotes), ``changes``
                            (bourse:risk:changes), ``alerts`` (bourse:risk:alerts) or
                            ``events`` (bourse:events:0..P-1, one XREAD for all of them);
                            started on first use, following its streams from their newest
                            entry at that moment
    Outbox                  a connection's queue: ``offer`` never blocks; a full queue marks
                            the connection too slow (closed with 4008 by ws.py)
    Sub                     a subscription: entries reach it in stream order; while it is
                            held (its snapshot or replay being built) they wait in it

A subscription registered with a reader sees every entry after the reader's cursor at that
moment: the snapshot it sends reflects at least that cursor (the hashes are written before,
or atomically with, their stream entries), so nothing is missed; what the snapshot already
shows arrives again and is dropped by time (docs/websocket.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import redis
import redis.asyncio as aredis

from trading.fields import text_of

log = logging.getLogger(__name__)

# Close codes (docs/websocket.md).
CLOSE_UNAUTHENTICATED = 4001  # no session, or it expired or was revoked: log in again
CLOSE_SLOW = 4008  # too slow to keep up: reconnect and resume with ``since``

Decoder = Callable[[str, Mapping[bytes, bytes]], Any]


def parse_id(text: str) -> tuple[int, int]:
    """A stream id ``ms-seq`` as a comparable pair; ``ValueError`` when it is not one."""
    ms, _, seq = text.partition("-")
    if not ms.isdigit() or (seq and not seq.isdigit()) or len(text) > 41:
        raise ValueError(f"not a stream id: {text!r}")
    return int(ms), int(seq or 0)


class Outbox:
    """A connection's bounded queue of messages to send. ``offer`` never waits: a queue
    found full means the client cannot keep up, and the connection is failed instead of
    growing or slowing the readers that feed everyone."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[tuple[dict[str, Any], Callable[[], None] | None]] = asyncio.Queue(
            maxsize=max(1, maxsize)
        )
        self.failed: str | None = None
        self.failed_event = asyncio.Event()

    def offer(self, message: dict[str, Any], on_sent: Callable[[], None] | None = None) -> bool:
        if self.failed is not None:
            return False
        try:
            self.queue.put_nowait((message, on_sent))
        except asyncio.QueueFull:
            self.fail(f"more than {self.queue.maxsize} messages waiting to be sent")
            return False
        return True

    def fail(self, why: str) -> None:
        if self.failed is None:
            self.failed = why
            self.failed_event.set()
        while not self.queue.empty():  # the memory goes now, not when the socket closes
            self.queue.get_nowait()


class Sub:
    """A subscription's stream plumbing; a channel (ws_channels.py) says what an entry
    becomes (``apply``) and builds its snapshot."""

    channel = ""

    def __init__(self, outbox: Outbox, streams: tuple[str, ...], pending_max: int) -> None:
        self.outbox = outbox
        self.streams = streams
        self.cursor = dict.fromkeys(streams, "0-0")
        self.held = True
        self.pending: list[tuple[str, str, Any]] = []
        self.pending_max = pending_max

    def cursor_text(self) -> str:
        return ",".join(self.cursor[s] for s in self.streams)

    def feed(self, stream: str, sid: str, item: Any) -> None:
        if self.held:
            self.pending.append((stream, sid, item))
            if len(self.pending) > self.pending_max:
                self.outbox.fail("too far behind while its snapshot was built")
            return
        self.cursor[stream] = sid
        if item is not None:
            self.apply(stream, sid, item)

    def release(self) -> None:
        """Its snapshot or replay is queued: what arrived meanwhile follows it."""
        self.held = False
        pending, self.pending = self.pending, []
        for stream, sid, item in pending:
            if parse_id(sid) > parse_id(self.cursor[stream]):
                self.feed(stream, sid, item)

    def apply(self, stream: str, sid: str, item: Any) -> None:
        raise NotImplementedError

    def emit(self, message: dict[str, Any], on_sent: Callable[[], None] | None = None) -> bool:
        message.setdefault("cursor", self.cursor_text())
        return self.outbox.offer(message, on_sent)


class Reader:
    """One task following ``streams`` with XREAD on its own connection, handing each entry,
    decoded once, to every subscription registered."""

    def __init__(
        self,
        client: aredis.Redis,
        name: str,
        streams: tuple[str, ...],
        decode: Decoder,
        *,
        count: int = 1000,
        block_ms: int = 1000,
        after_batch: Callable[[list[Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.streams = streams
        self.decode = decode
        self.count = count
        self.block_ms = block_ms
        self.after_batch = after_batch
        self.cursor = dict.fromkeys(streams, "0-0")
        self.subs: set[Sub] = set()
        self.task: asyncio.Task[None] | None = None
        self.started = asyncio.Event()

    async def start(self, timeout_s: float = 10.0) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name=f"ws-reader-{self.name}")
        await asyncio.wait_for(self.started.wait(), timeout_s)

    def add(self, sub: Sub) -> dict[str, str]:
        """Registers ``sub``; the cursor its snapshot must reflect (every entry after it
        reaches ``sub``)."""
        self.subs.add(sub)
        return dict(self.cursor)

    def remove(self, sub: Sub) -> None:
        self.subs.discard(sub)

    async def _run(self) -> None:
        while not self.started.is_set():
            try:
                for stream in self.streams:
                    last: Any = await self.client.xrevrange(stream, count=1)
                    self.cursor[stream] = text_of(last[0][0]) if last else "0-0"
                self.started.set()
            except redis.RedisError as error:
                log.warning("ws reader %s cannot start: %s", self.name, error)
                await asyncio.sleep(1.0)
        while True:
            try:
                streams: Any = dict(self.cursor)
                reply: Any = await self.client.xread(streams, count=self.count, block=self.block_ms)
            except redis.RedisError as error:
                log.warning("ws reader %s: %s", self.name, error)
                await asyncio.sleep(1.0)
                continue
            batch: list[Any] = []
            for raw_stream, entries in reply or []:
                stream = text_of(raw_stream)
                for raw_id, fields in entries:
                    sid = text_of(raw_id)
                    self.cursor[stream] = sid
                    try:
                        item = self.decode(stream, fields)
                    except (ValueError, KeyError, TypeError) as error:
                        log.error("ws reader %s: entry %s unusable: %s", self.name, sid, error)
                        item = None
                    batch.append(item)
                    for sub in list(self.subs):
                        sub.feed(stream, sid, item)
                    # The connections' senders run between entries: a client that keeps up
                    # never finds a whole XREAD batch in its queue at once.
                    await asyncio.sleep(0)
            if batch and self.after_batch is not None and self.subs:
                await self.after_batch(batch)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def collect(self, since: dict[str, str], upto: dict[str, str],
                      limit: int) -> list[tuple[str, str, Any]] | None:  # fmt: skip
        """The entries after ``since`` up to ``upto`` (the cursor a subscription was
        registered at), decoded; None when some are no longer in the streams or there are
        more than ``limit``."""
        found: list[tuple[str, str, Any]] = []
        for stream in self.streams:
            start, end = since[stream], upto[stream]
            if parse_id(start) > parse_id(end):
                return None  # a position this server never gave (another Redis?)
            if start == end:
                continue
            if not await self._kept_after(stream, start):
                return None
            entries: Any = await self.client.xrange(stream, f"({start}", end, count=limit + 1)
            for raw_id, fields in entries:
                try:
                    item = self.decode(stream, fields)
                except (ValueError, KeyError, TypeError):
                    item = None
                found.append((stream, text_of(raw_id), item))
            if len(found) > limit:
                return None
        return found

    @staticmethod
    def apply(sub: Sub, entries: list[tuple[str, str, Any]]) -> None:
        for stream, sid, item in entries:
            sub.cursor[stream] = sid
            if item is not None:
                sub.apply(stream, sid, item)

    async def _kept_after(self, stream: str, since: str) -> bool:
        """Whether every entry of ``stream`` after ``since`` is still in it. Trimming takes
        the oldest entries, so that holds when the oldest kept is at or before ``since``
        (conservative when ``since`` was itself trimmed with nothing after it); an entry
        deleted by XDEL is recorded by Redis 7 as the largest id deleted."""
        try:
            info: Any = await self.client.xinfo_stream(stream)
        except redis.ResponseError:
            return False  # the stream is gone, and entries came after ``since``
        deleted = info.get("max-deleted-entry-id")
        if deleted is not None and parse_id(text_of(deleted)) > parse_id(since):
            return False
        first = info.get("first-entry")
        # Called only when entries came after ``since``: an empty stream lost them.
        return first is not None and parse_id(text_of(first[0])) <= parse_id(since)


class Hub:
    """The process's readers and the quote coalescing ticker; one per app."""

    def __init__(self, redis_url: str, *, quote_interval_ms: int) -> None:
        self.redis_url = redis_url
        self.quote_interval_s = quote_interval_ms / 1000
        self.readers: dict[str, Reader] = {}
        self.tickers: set[Callable[[], None]] = set()
        self._client: aredis.Redis | None = None
        self._ticker: asyncio.Task[None] | None = None

    @property
    def client(self) -> aredis.Redis:
        """Snapshots and replays go through this client (a pool), never a reader's."""
        if self._client is None:
            self._client = aredis.Redis.from_url(self.redis_url)
        return self._client

    def reader(
        self, name: str, streams: tuple[str, ...], decode: Decoder,
        after_batch: Callable[[list[Any]], Awaitable[None]] | None = None,
    ) -> Reader:  # fmt: skip
        if name not in self.readers:
            # Its own client: a blocked XREAD holds its connection for its whole wait.
            own = aredis.Redis.from_url(self.redis_url)
            self.readers[name] = Reader(own, name, streams, decode, after_batch=after_batch)
        return self.readers[name]

    def tick_every_interval(self, tick: Callable[[], None]) -> None:
        self.tickers.add(tick)
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name="ws-quote-ticker")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.quote_interval_s)
            for tick in list(self.tickers):
                tick()

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for reader in self.readers.values():
            await reader.stop()
            await reader.client.aclose()
        if self._client is not None:
            await self._client.aclose()
