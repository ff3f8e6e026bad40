"""The positions dataflow: OMS events -> books per shard -> marks, stop-outs, exposure.

```
events (one partition per stream) -> route by account shard -> books (stateful, per shard)
    -> closes ------------------------------------------> the command bus (ClosePosition)
    -> shard totals -> house (stateful, one key) -> exposure rows, limit alerts
    -> account and position rows, alerts, dead letters -> Redis (docs/risk.md)
    -> snapshots ----------------------------------------> the lake (positions/, accounts/)
```

Quotes do not travel through the dataflow: each process follows the quote stream into one
``QuoteMap`` (``process.py``), and every shard re-marks from it on a short timer, so a
quote reaches every process that holds the symbol while the recovery snapshots hold only
what events changed (a book's snapshot is pickled once, and reused until it changes).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from pipelines.positions.exposure import HouseBook
from pipelines.positions.lake import LakeSnapshotSink, Snapshot
from pipelines.positions.process import CloseSink, process_context
from pipelines.positions.records import CloseOrder
from pipelines.positions.redis_out import RiskRedisSink
from pipelines.positions.shard import SHARDS, Shard, ShardState, ShardTotals, shard_of
from pipelines.positions.sources import EventBatch, EventStreams
from pipelines.positions.spec import PositionsSpec

TICK = timedelta(milliseconds=100)
_APART = (CloseOrder, ShardTotals, Snapshot)  # routed on their own


@dataclass(frozen=True, slots=True)
class Item:
    kind: str  # "events", "trimmed", "dead"
    payload: Any
    shard: str  # the key it is routed by (a stateful builder is not told its key)


def _now() -> datetime:
    return datetime.now(UTC)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1_000


def route(batch: EventBatch, partitions: int) -> list[tuple[str, Item]]:
    out: list[tuple[str, Item]] = []
    if batch.trimmed and batch.partition != "house":
        part = int(batch.partition)
        out += [(f"s{k:02d}", Item("trimmed", (part, partitions, batch.stream), f"s{k:02d}"))
                for k in range(SHARDS)]  # fmt: skip
    by_shard: dict[str, list[Any]] = {}
    for stream_id, event in batch.entries:
        if event.account_id == 0:
            continue
        by_shard.setdefault(shard_of(event.account_id), []).append((batch.stream, stream_id, event))
    out += [(key, Item("events", entries, key)) for key, entries in by_shard.items()]
    for dead in batch.dead:
        key = shard_of(dead.account_id or 0)
        out.append((key, Item("dead", dead, key)))
    return out


@dataclass(frozen=True, slots=True)
class Rows:
    """The Redis sink's records of one step call, as one item: a dataflow moves an item
    through each operator at a cost, and a batch of events makes hundreds of rows."""

    items: list[Any]


def _pack(out: list[Any]) -> list[Any]:
    rows = [x for x in out if not isinstance(x, _APART)]
    rest = [x for x in out if isinstance(x, _APART)]
    return [Rows(rows), *rest] if rows else rest


class _FlatPart(StatelessSinkPartition[Rows]):
    def __init__(self, inner: StatelessSinkPartition[Any]) -> None:
        self.inner = inner

    def write_batch(self, items: list[Rows]) -> None:
        self.inner.write_batch([x for rows in items for x in rows.items])

    def close(self) -> None:
        self.inner.close()


class RowsSink(DynamicSink[Rows]):
    """The Redis sink, taking ``Rows``."""

    def __init__(self, inner: DynamicSink[Any]) -> None:
        self.inner = inner

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _FlatPart:
        return _FlatPart(self.inner.build(step_id, worker_index, worker_count))


class BooksLogic(StatefulBatchLogic[Item, Any, bytes]):
    """One shard's books: events in, marked rows, alerts and closes out."""

    def __init__(self, spec: PositionsSpec, resume: bytes | None) -> None:
        self.ctx = process_context(spec)
        # Each book is pickled on its own and kept until it moves again: an epoch's
        # snapshot costs what moved in it, not the whole shard.
        self.blobs: dict[int, bytes] = {}
        state = None
        if resume is not None:
            name, self.blobs, stopouts = pickle.loads(resume)  # noqa: S301 - our own snapshot
            books = {aid: pickle.loads(blob) for aid, blob in self.blobs.items()}  # noqa: S301
            state = ShardState(name, books, pickle.loads(stopouts))  # noqa: S301
        self.shard = Shard(state, self.ctx.shard)
        self.spec = spec
        self.snap: bytes | None = resume
        self.version = 0
        self.snapped = 0
        self.next_ns = _ns(_now())
        self.beat = _now() + TICK

    def on_batch(self, values: list[Item]) -> tuple[Iterable[Any], bool]:
        now = _ns(_now())
        out: list[Any] = []
        for item in values:
            self.shard.state.name = item.shard
            if item.kind == "events":
                out += self.shard.on_events(item.payload, now)
            elif item.kind == "trimmed":
                part, parts, stream = item.payload
                out += self.shard.on_trimmed(part, parts, stream, now)
            else:
                out += self.shard.on_dead(item.payload, now)
        self.version += 1
        return _pack(out), StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[Any], bool]:
        self.beat = _now() + TICK
        now = _ns(_now())
        out = list(self.shard.on_quotes(now))
        if out:
            self.version += 1
        every = int(self.ctx.shard.config.snapshot_s * 1e9)
        if not self.spec.until_idle and now >= self.next_ns:
            boundary = now - now % every
            if self.next_ns:
                out.append(self.shard.snapshot(boundary, now))
            self.next_ns = boundary + every
        return _pack(out), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[Any], bool]:
        if not self.spec.until_idle:
            return [], StatefulBatchLogic.RETAIN
        self.ctx.follower.wait()
        now = _ns(_now())
        out = list(self.shard.on_quotes(now))
        out.append(self.shard.snapshot(self.spec.final_ns, now))
        out.append(self.shard.all_totals())
        self.version += 1
        return _pack(out), StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        # A fixed beat, moved on only when it fires: Bytewax asks again after every batch,
        # and "now + tick" would put it off for as long as events keep coming.
        if self.beat <= _now():
            self.beat = _now() + TICK
        return self.beat

    def snapshot(self) -> bytes:
        if self.snap is None or self.snapped != self.version:
            books = self.shard.state.books
            for aid in self.shard.changed:
                book = books.get(aid)
                if book is None:
                    self.blobs.pop(aid, None)
                else:
                    self.blobs[aid] = pickle.dumps(book, protocol=pickle.HIGHEST_PROTOCOL)
            self.shard.changed.clear()
            stopouts = pickle.dumps(self.shard.state.stopouts, protocol=pickle.HIGHEST_PROTOCOL)
            self.snap = pickle.dumps((self.shard.state.name, self.blobs, stopouts),
                                     protocol=pickle.HIGHEST_PROTOCOL)  # fmt: skip
            self.snapped = self.version
        return self.snap


class HouseLogic(StatefulBatchLogic[ShardTotals, Any, bytes]):
    """The house's exposure: every shard's totals per symbol, valued and limited."""

    def __init__(self, spec: PositionsSpec, resume: bytes | None) -> None:
        self.ctx = process_context(spec)
        self.spec = spec
        self.book: HouseBook = pickle.loads(resume) if resume is not None else HouseBook()  # noqa: S301
        self.beat = _now() + TICK

    def _mark(self, everything: bool = False) -> list[Any]:
        rows, currencies, alerts = self.book.mark(
            self.ctx.catalogue, dict(self.ctx.quotes.quotes), self.ctx.shard.config,
            _ns(_now()), everything=everything,
        )  # fmt: skip
        return [*rows, *currencies, *alerts]

    def on_batch(self, values: list[ShardTotals]) -> tuple[Iterable[Any], bool]:
        for totals in values:
            self.book.apply(totals.shard, totals.totals)
        return _pack(self._mark()), StatefulBatchLogic.RETAIN

    def on_notify(self) -> tuple[Iterable[Any], bool]:
        self.beat = _now() + TICK
        return _pack(self._mark()), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[Any], bool]:
        if not self.spec.until_idle:
            return [], StatefulBatchLogic.RETAIN
        self.ctx.follower.wait()
        rows, currencies, alerts = self.book.mark(
            self.ctx.catalogue, dict(self.ctx.quotes.quotes), self.ctx.shard.config,
            _ns(_now()), everything=True,
        )  # fmt: skip
        snap = Snapshot(self.spec.final_ns, "house", (), (), tuple(rows), tuple(currencies))
        return _pack([*rows, *currencies, *alerts, snap]), StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        # A fixed beat, moved on only when it fires: Bytewax asks again after every batch,
        # and "now + tick" would put it off for as long as events keep coming.
        if self.beat <= _now():
            self.beat = _now() + TICK
        return self.beat

    def snapshot(self) -> bytes:
        return pickle.dumps(self.book, protocol=pickle.HIGHEST_PROTOCOL)


def build_flow(spec: PositionsSpec) -> Dataflow:
    flow = Dataflow("positions")
    source = EventStreams(spec.redis_url, spec.partitions, until_idle=spec.until_idle)
    batches = op.input("events", flow, source)
    keyed = op.flat_map("route", batches, lambda b: route(b, spec.partitions))
    books = op.stateful_batch("books", keyed, lambda resume: BooksLogic(spec, resume))
    outs = op.map("unkey", books, lambda kv: kv[1])
    closes = op.branch("closes", outs, lambda x: isinstance(x, CloseOrder))
    totals = op.branch("totals", closes.falses, lambda x: isinstance(x, ShardTotals))
    house_in = op.key_on("to-house", totals.trues, lambda _: "house")
    house = op.stateful_batch("house", house_in, lambda resume: HouseLogic(spec, resume))
    house_out = op.map("unkey-house", house, lambda kv: kv[1])
    rows = op.merge("rows", totals.falses, house_out)
    snaps = op.branch("snapshots", rows, lambda x: isinstance(x, Snapshot))
    op.output("lake", snaps.trues, LakeSnapshotSink(spec.lake_root))
    op.output("redis", snaps.falses, RowsSink(RiskRedisSink(spec.redis_url)))
    op.output("bus", closes.trues, CloseSink(spec))
    return flow
