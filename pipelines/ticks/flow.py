"""The tick dataflow: feeds -> screen (per-feed state) -> lake, Redis, run statistics.

```
input (one partition per feed) -> stateful_batch "screen" keyed by feed
    -> lake: accepted and rejected ticks (Parquet)
    -> redis: latest quote per symbol + the quotes stream
    -> stats: accepted and rejected counts per feed, at the end of the feed
```

Items are whole Polars batches, keyed by feed; the screening state of a feed is an
immutable ``FeedState`` that Bytewax snapshots at each epoch.

Live feeds (``build_live_flow``) travel differently: a worker polls all its live feeds and
emits one ``LiveBatch`` per poll cycle, keyed by a route of that worker, and
``LiveScreenLogic`` screens every feed of it in one ``screen_many`` call (a call costs a
few milliseconds whatever the number of feeds), then emits a ``Screened`` per feed, so the
sinks are the same.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import bytewax.operators as op
import polars as pl
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from pipelines.ticks.config import FilterConfig
from pipelines.ticks.filters import FeedState, screen, screen_many
from pipelines.ticks.lake import DEFAULT_COMPRESSION, Compression, Lake, safe_name
from pipelines.ticks.sources import LiveBatch, LiveTickSource, RawItem
from trading.catalogue import Catalogue
from trading.instrument import Instrument
from trading.sessions import TradingSession


@dataclass(frozen=True, slots=True)
class Screened:
    key: str
    accepted: pl.DataFrame
    rejected: pl.DataFrame


@dataclass(frozen=True, slots=True)
class FeedStats:
    key: str
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    key: str
    symbol: str
    state: FeedState


class ScreenLogic(StatefulBatchLogic[RawItem, Screened | FeedStats, _Snapshot]):
    """Screens one feed's batches in arrival order; emits its counts at the end."""

    def __init__(self, catalogue: Catalogue, cfg: FilterConfig, resume: _Snapshot | None) -> None:
        self._catalogue = catalogue
        self._cfg = cfg
        self._key = "" if resume is None else resume.key
        self._symbol = None if resume is None else resume.symbol
        self._state = FeedState() if resume is None else resume.state

    def _screen(self, item: RawItem | None) -> Screened:
        if item is not None:
            self._key, self._symbol = item.key, item.symbol
        assert self._symbol is not None
        inst = self._catalogue.get(self._symbol)
        session = self._catalogue.session_for(self._symbol)
        ticks = item.ticks if item is not None else self._state.pending.head(0)
        out = screen(self._state, ticks, inst, self._cfg, session, final=item is None)
        rejects = None if item is None else item.rejects
        self._state, rejected = _with_rejects(out.state, out.rejected, rejects)
        return Screened(self._key, out.accepted, rejected)

    def on_batch(self, values: list[RawItem]) -> tuple[list[Screened | FeedStats], bool]:
        return [self._screen(v) for v in values], StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[Screened | FeedStats], bool]:
        if self._symbol is None:
            return [], StatefulBatchLogic.DISCARD
        last = self._screen(None)
        return [last, FeedStats(self._key, dict(self._state.counts))], StatefulBatchLogic.RETAIN

    def snapshot(self) -> _Snapshot:
        assert self._symbol is not None or self._state == FeedState()
        return _Snapshot(self._key, self._symbol or "", self._state)


def _with_rejects(
    state: FeedState, rejected: pl.DataFrame, rejects: pl.DataFrame | None
) -> tuple[FeedState, pl.DataFrame]:
    """The records normalization refused, counted in the state and put before ``rejected``."""
    if rejects is None or rejects.is_empty():
        return state, rejected
    counts = dict(state.counts)
    for reason, n in rejects.group_by("reason").len().iter_rows():
        counts[str(reason)] = counts.get(str(reason), 0) + n
    return replace(state, counts=counts), pl.concat([rejects.select(rejected.columns), rejected])


@dataclass(frozen=True, slots=True)
class _LiveSnapshot:
    """Each live feed's symbol and screening state (frozen states in a fresh mapping)."""

    feeds: Mapping[str, tuple[str, FeedState]]


class LiveScreenLogic(StatefulBatchLogic[LiveBatch, Screened | FeedStats, _LiveSnapshot]):
    """Screens all the live feeds of one worker together: one ``screen_many`` call per
    batch of poll cycles, a ``Screened`` out per feed that had ticks; at the end, each
    feed's last decisions and its counts."""

    def __init__(
        self, catalogue: Catalogue, cfg: FilterConfig, resume: _LiveSnapshot | None
    ) -> None:
        self._catalogue = catalogue
        self._cfg = cfg
        self._insts: dict[str, Instrument] = {}
        self._sessions: dict[str, TradingSession | None] = {}
        self._states: dict[str, FeedState] = {}
        for key, (symbol, state) in ({} if resume is None else resume.feeds).items():
            self._know(key, symbol)
            self._states[key] = state

    def _know(self, key: str, symbol: str) -> None:
        if key not in self._insts:
            self._insts[key] = self._catalogue.get(symbol)
            self._sessions[key] = self._catalogue.session_for(symbol)

    def _screen(
        self,
        batches: dict[str, pl.DataFrame],
        rejects: dict[str, pl.DataFrame],
        *,
        final: bool,
    ) -> list[Screened | FeedStats]:
        states = {k: self._states[k] if k in self._states else FeedState() for k in batches}
        results = screen_many(
            states, batches, self._insts, self._cfg, self._sessions, final=final, replay=False
        )
        out: list[Screened | FeedStats] = []
        for key, res in results.items():
            state, rejected = _with_rejects(res.state, res.rejected, rejects.get(key))
            self._states[key] = state
            if final or not (res.accepted.is_empty() and rejected.is_empty()):
                out.append(Screened(key, res.accepted, rejected))
        return out

    def on_batch(self, values: list[LiveBatch]) -> tuple[list[Screened | FeedStats], bool]:
        # Poll cycles that queued up are screened as one batch per feed, in their order.
        ticks: dict[str, list[pl.DataFrame]] = {}
        rejects: dict[str, list[pl.DataFrame]] = {}
        for cycle in values:
            for key, item in cycle.items.items():
                self._know(key, item.symbol)
                ticks.setdefault(key, []).append(item.ticks)
                if not item.rejects.is_empty():
                    rejects.setdefault(key, []).append(item.rejects)
        out = self._screen(
            {k: fs[0] if len(fs) == 1 else pl.concat(fs) for k, fs in ticks.items()},
            {k: fs[0] if len(fs) == 1 else pl.concat(fs) for k, fs in rejects.items()},
            final=False,
        )
        return out, StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[list[Screened | FeedStats], bool]:
        if not self._states:
            return [], StatefulBatchLogic.DISCARD
        out = self._screen({k: s.pending.head(0) for k, s in self._states.items()}, {}, final=True)
        out += [FeedStats(k, dict(s.counts)) for k, s in self._states.items()]
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> _LiveSnapshot:
        return _LiveSnapshot({k: (self._insts[k].symbol, s) for k, s in self._states.items()})


class _LakePartition(StatelessSinkPartition[Screened]):
    def __init__(self, root: Path, compression: Compression) -> None:
        self._lake = Lake(root, compression)
        # Polars writes Parquet without the GIL: the items of one call (several feeds'
        # batches) are written side by side. The call returns once all are on disk, so a
        # recovery snapshot never gets ahead of the lake.
        self._pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))

    def write_batch(self, items: list[Screened]) -> None:
        if len(items) == 1:
            self._lake.write(items[0].accepted, items[0].rejected)
            return
        for done in [self._pool.submit(self._lake.write, i.accepted, i.rejected) for i in items]:
            done.result()

    def close(self) -> None:
        self._pool.shutdown()


class LakeSink(DynamicSink[Screened]):
    def __init__(self, root: Path, compression: Compression = DEFAULT_COMPRESSION) -> None:
        self._root = root
        self._compression = compression

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LakePartition:
        return _LakePartition(self._root, self._compression)


def stats_path(stats_dir: Path, key: str) -> Path:
    return stats_dir / f"{safe_name(key)}.json"


class _StatsPartition(StatelessSinkPartition[FeedStats]):
    def __init__(self, root: Path) -> None:
        self._root = root

    def write_batch(self, items: list[FeedStats]) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        for item in items:
            path = stats_path(self._root, item.key)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps({"key": item.key, "counts": item.counts}, sort_keys=True))
            os.replace(tmp, path)


class StatsSink(DynamicSink[FeedStats]):
    def __init__(self, root: Path) -> None:
        self._root = root

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _StatsPartition:
        return _StatsPartition(self._root)


def build_flow(
    source: Source[Any],
    catalogue: Catalogue,
    cfg: FilterConfig,
    *,
    lake_root: Path | None,
    stats_dir: Path | None,
    redis_url: str | None = None,
    extra_sinks: Sequence[tuple[str, DynamicSink[Screened]]] = (),
    lake_compression: Compression = DEFAULT_COMPRESSION,
) -> Dataflow:
    """The tick dataflow over ``source``: a replay (``TickSource``) screened feed by feed,
    or live feeds (``LiveTickSource``), which ``build_live_flow`` screens together."""
    if isinstance(source, LiveTickSource):
        return build_live_flow(
            source, catalogue, cfg, lake_root=lake_root, redis_url=redis_url,
            stats_dir=stats_dir, extra_sinks=extra_sinks, lake_compression=lake_compression,
        )  # fmt: skip
    flow = Dataflow("ticks")
    raw = op.input("feeds", flow, source)

    def builder(resume: _Snapshot | None) -> ScreenLogic:
        return ScreenLogic(catalogue, cfg, resume)

    screened = op.stateful_batch("screen", raw, builder)
    _outputs(screened, lake_root, stats_dir, redis_url, extra_sinks, lake_compression)
    return flow


def build_live_flow(
    source: LiveTickSource,
    catalogue: Catalogue,
    cfg: FilterConfig,
    *,
    lake_root: Path | None,
    redis_url: str | None,
    stats_dir: Path | None = None,
    extra_sinks: Sequence[tuple[str, DynamicSink[Screened]]] = (),
    lake_compression: Compression = DEFAULT_COMPRESSION,
) -> Dataflow:
    """Live feeds, each worker's screened together once per poll cycle (``LiveScreenLogic``),
    into the same sinks as a replay."""
    flow = Dataflow("ticks_live")
    raw = op.input("feeds", flow, source)

    def builder(resume: _LiveSnapshot | None) -> LiveScreenLogic:
        return LiveScreenLogic(catalogue, cfg, resume)

    screened = op.stateful_batch("screen", raw, builder)
    _outputs(screened, lake_root, stats_dir, redis_url, extra_sinks, lake_compression)
    return flow


def _outputs(
    screened: op.KeyedStream[Screened | FeedStats],
    lake_root: Path | None,
    stats_dir: Path | None,
    redis_url: str | None,
    extra_sinks: Sequence[tuple[str, DynamicSink[Screened]]],
    lake_compression: Compression = DEFAULT_COMPRESSION,
) -> None:
    values = op.key_rm("values", screened)
    batches = op.filter_map("batches", values, _only_screened)
    if lake_root is not None:
        op.output("lake", batches, LakeSink(lake_root, lake_compression))
    if redis_url is not None:
        from pipelines.ticks.redis_sink import RedisQuoteSink

        quotes = op.map("accepted", batches, _accepted)
        op.output("redis", quotes, RedisQuoteSink(redis_url))
    for name, sink in extra_sinks:
        op.output(name, batches, sink)
    if stats_dir is not None:
        op.output("stats", op.filter_map("counts", values, _only_stats), StatsSink(stats_dir))


def _only_screened(value: Screened | FeedStats) -> Screened | None:
    return value if isinstance(value, Screened) else None


def _only_stats(value: Screened | FeedStats) -> FeedStats | None:
    return value if isinstance(value, FeedStats) else None


def _accepted(batch: Screened) -> tuple[str, pl.DataFrame]:
    return batch.key, batch.accepted
