"""Tick sources for Bytewax: partitioned, resumable replays and the live-feed interface.

A *feed* is one partition: one vendor file and symbol, or one synthetic symbol. It yields
batches of normalized ticks (``schema.TICK_SCHEMA``) with the records that could not be
normalized beside them, and after each batch a resume token: Bytewax stores the token at
each epoch's snapshot and hands it back on resume, so a replay continues at the first batch
it had not finished. Batch boundaries depend on the token alone, so the resumed run sees
exactly the batches the uninterrupted run would have.

Live feeds (a FIX market-data session, an exchange WebSocket) implement ``LiveFeed``; they
cannot rewind, so ``LiveTickSource`` is a dynamic source and a restart resubscribes. Each
worker polls its live feeds together and emits one ``LiveBatch`` per poll cycle.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from bytewax.inputs import (
    DynamicSource,
    FixedPartitionedSource,
    StatefulSourcePartition,
    StatelessSourcePartition,
)

from pipelines.ticks import formats
from pipelines.ticks.lake import safe_name
from pipelines.ticks.routing import balanced_routes, worker_for
from pipelines.ticks.schema import REJECTED_SCHEMA
from trading.catalogue import Catalogue


@dataclass(frozen=True, slots=True)
class RawItem:
    """One batch of one feed, as it leaves the source."""

    key: str
    symbol: str
    ticks: pl.DataFrame  # TICK_SCHEMA
    rejects: pl.DataFrame  # TICK_SCHEMA + reason + detail: records normalization refused


class Feed(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def symbol(self) -> str: ...

    @property
    def weight(self) -> int:
        """How much work the feed is, roughly (bytes, ticks), to spread feeds over workers."""
        ...

    def batches(self, resume: Any | None) -> Iterator[tuple[RawItem, Any]]:
        """Batches from ``resume`` (None: the start), each with the token that follows it."""
        ...


def _no_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema={c: t for c, t in REJECTED_SCHEMA.items() if c != "day"})


@dataclass(frozen=True, slots=True)
class FileReplay:
    feed: formats.FileFeed
    catalogue: Catalogue
    batch_rows: int = 100_000

    @property
    def key(self) -> str:
        return self.feed.key

    @property
    def source(self) -> str:
        return self.feed.source

    @property
    def symbol(self) -> str:
        return self.feed.symbol

    @property
    def weight(self) -> int:
        try:
            return self.feed.path.stat().st_size
        except OSError:
            return 0

    def batches(self, resume: Any | None) -> Iterator[tuple[RawItem, Any]]:
        start = 0 if resume is None else int(resume)
        for raw in formats.read_batches(
            self.feed, self.catalogue, start_seq=start, batch_rows=self.batch_rows
        ):
            yield RawItem(self.feed.key, self.feed.symbol, raw.ticks, raw.rejects), raw.next_seq


@dataclass(frozen=True, slots=True)
class SyntheticReplay:
    catalogue: Catalogue
    symbol: str
    seed: int
    n_ticks: int
    start_ns: int
    batch_rows: int = 100_000
    # Labelled bad ticks (``anomalies.inject``) spoiling about this share of each batch;
    # their labels go to ``labels_dir`` as Parquet, one file per batch, when given.
    inject_rate: float = 0.0
    labels_dir: Path | None = None

    @property
    def key(self) -> str:
        return f"{self.source}|{self.symbol}"

    @property
    def source(self) -> str:
        from pipelines.ticks import synthetic  # a replay of files never needs it

        return synthetic.source_name(self.seed)

    @property
    def weight(self) -> int:
        return self.n_ticks

    def batches(self, resume: Any | None) -> Iterator[tuple[RawItem, Any]]:
        from pipelines.ticks import synthetic

        for frame, next_seq, state in synthetic.synthetic_batches(
            self.catalogue,
            self.symbol,
            self.seed,
            self.n_ticks,
            start_ns=self.start_ns,
            batch_rows=self.batch_rows,
            resume=resume,
        ):
            ticks = self._spoil(frame) if self.inject_rate > 0 else frame
            yield RawItem(self.key, self.symbol, ticks, _no_rejects()), (next_seq, state)

    def _spoil(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The batch with labelled bad ticks; a function of the batch alone, so a resumed
        run spoils the same rows."""
        from pipelines.ticks import anomalies

        first = int(frame["source_seq"][0])
        kinds = anomalies.STREAM_KINDS + (anomalies.START_KINDS if first == 0 else ())
        try:
            spoiled, labels = anomalies.inject(
                frame, self.catalogue.get(self.symbol), rate=self.inject_rate,
                seed=zlib.crc32(f"{self.seed}|{self.symbol}|{first}".encode()), kinds=kinds,
            )  # fmt: skip
        except ValueError:
            return frame  # a batch too short to hold them isolated: left clean
        if self.labels_dir is not None and not labels.is_empty():
            self.labels_dir.mkdir(parents=True, exist_ok=True)
            name = f"{safe_name(self.key)}-{first:012d}.parquet"
            labels.with_columns(symbol=pl.lit(self.symbol)).write_parquet(self.labels_dir / name)
        return spoiled


def _position(token: Any) -> int:
    """Records read so far, from a resume token (an int, or a tuple starting with one)."""
    return int(token[0] if isinstance(token, tuple) else token)


class _ReplayPartition(StatefulSourcePartition[tuple[str, RawItem], Any]):
    def __init__(
        self, feed: Feed, route: str, resume: Any | None, progress: Path | None = None
    ) -> None:
        self._key = route
        self._token = resume
        self._it = feed.batches(resume)
        self._progress = progress

    def next_batch(self) -> list[tuple[str, RawItem]]:
        item, token = next(self._it)  # StopIteration ends the partition: EOF
        self._token = token
        if self._progress is not None:
            # Read by the launcher to draw a progress bar; a lost update only lags it.
            self._progress.write_text(str(_position(token)))
        return [(self._key, item)]

    def snapshot(self) -> Any:
        return self._token


class TickSource(FixedPartitionedSource[tuple[str, RawItem], Any]):
    """One partition per feed; on a cluster each process lists the feeds it owns.

    ``process``/``processes`` are this process's index and the cluster's size (one worker
    per process). Feeds are spread over the processes by weight, and each feed's items
    carry a routing key that Bytewax sends to the process that reads it, so its batches
    are screened where they are read (see ``routing``).
    """

    def __init__(
        self,
        feeds: Sequence[Feed],
        *,
        process: int = 0,
        processes: int = 1,
        progress_dir: Path | None = None,
    ) -> None:
        keys = [f.key for f in feeds]
        if len(set(keys)) != len(keys):
            raise ValueError(f"feed keys must be unique: {keys}")
        self._feeds = {f.key: f for f in feeds}
        self._process = process
        self._processes = processes
        self._routes = balanced_routes({f.key: f.weight for f in feeds}, processes)
        self._progress_dir = progress_dir

    def list_parts(self) -> list[str]:
        return [
            k for k, route in self._routes.items()
            if worker_for(route, self._processes) == self._process
        ]  # fmt: skip

    def build_part(self, step_id: str, for_part: str, resume_state: Any | None) -> _ReplayPartition:
        progress = None
        if self._progress_dir is not None:
            self._progress_dir.mkdir(parents=True, exist_ok=True)
            progress = self._progress_dir / f"{hashlib.sha256(for_part.encode()).hexdigest()[:16]}"
        feed, route = self._feeds[for_part], self._routes[for_part]
        return _ReplayPartition(feed, route, resume_state, progress)


class LiveFeed(Protocol):
    """A feed that pushes ticks as they happen (FIX market data, an exchange WebSocket)."""

    @property
    def key(self) -> str: ...

    @property
    def symbol(self) -> str: ...

    def poll(self) -> RawItem | None:
        """Ticks received since the last poll, or None when there are none yet.

        Raises ``StopIteration`` when the feed has ended (it is then polled no more)."""
        ...

    def next_poll(self) -> datetime | None:
        """When to poll next (None: at once)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LiveBatch:
    """One poll cycle of a worker's live feeds: each feed that had ticks -> its ``RawItem``.

    The worker's feeds travel as one item so that they are screened in one pass
    (``filters.screen_many``): a pass costs about the same for ten feeds as for one.
    """

    items: Mapping[str, RawItem]


def live_route(worker_index: int, worker_count: int) -> str:
    """The routing key of a worker's live items: the first ``live#n`` Bytewax sends to it."""
    salt = 0
    while worker_for(f"live#{salt}", worker_count) != worker_index:
        salt += 1
    return f"live#{salt}"


class _LivePartition(StatelessSourcePartition[tuple[str, LiveBatch]]):
    def __init__(self, feeds: Sequence[LiveFeed], route: str) -> None:
        self._feeds = list(feeds)
        self._polled = list(feeds)  # those that have not ended
        self._route = route

    def next_batch(self) -> list[tuple[str, LiveBatch]]:
        if not self._polled:
            raise StopIteration  # every feed has ended (or the worker has none): EOF
        items: dict[str, RawItem] = {}
        for feed in list(self._polled):
            try:
                item = feed.poll()
            except StopIteration:
                self._polled.remove(feed)
                continue
            if item is not None:
                items[feed.key] = item
        return [(self._route, LiveBatch(items))] if items else []

    def next_awake(self) -> datetime | None:
        times = [f.next_poll() for f in self._polled]
        if not times or any(t is None for t in times):
            return None
        return min(t for t in times if t is not None)

    def close(self) -> None:
        for feed in self._feeds:
            feed.close()


class LiveTickSource(DynamicSource[tuple[str, LiveBatch]]):
    """Live feeds, spread evenly over the workers (round robin in key order); each worker
    polls its feeds together and emits one ``LiveBatch`` per poll cycle, keyed by a route
    (``live_route``) that Bytewax sends back to that same worker, so the batch is screened
    where it was read. A worker whose feeds have all ended (or that has none) ends its
    partition."""

    def __init__(self, feeds: Sequence[LiveFeed]) -> None:
        keys = [f.key for f in feeds]
        if len(set(keys)) != len(keys):
            raise ValueError(f"feed keys must be unique: {keys}")
        self._feeds = sorted(feeds, key=lambda f: f.key)

    def feeds_of(self, worker_index: int, worker_count: int) -> list[LiveFeed]:
        """The feeds that worker ``worker_index`` of ``worker_count`` polls."""
        return [f for i, f in enumerate(self._feeds) if i % worker_count == worker_index]

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LivePartition:
        feeds = self.feeds_of(worker_index, worker_count)
        return _LivePartition(feeds, live_route(worker_index, worker_count))
