"""The tick dataflow: feeds -> screen (per-feed state) -> lake, Redis, run statistics.

```
input (one partition per feed) -> stateful_batch "screen" keyed by feed
    -> lake: accepted and rejected ticks (Parquet)
    -> redis: latest quote per symbol + the quotes stream
    -> stats: accepted and rejected counts per feed, at the end of the feed
```

Items are whole Polars batches, keyed by feed; the screening state of a feed is an
immutable ``FeedState`` that Bytewax snapshots at each epoch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
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
from pipelines.ticks.filters import FeedState, screen
from pipelines.ticks.lake import Lake, safe_name
from pipelines.ticks.sources import RawItem
from trading.instruments import Catalogue


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
        state = out.state
        rejected = out.rejected
        if item is not None and not item.rejects.is_empty():
            counts = dict(state.counts)
            for reason, n in item.rejects.group_by("reason").len().iter_rows():
                counts[str(reason)] = counts.get(str(reason), 0) + n
            state = replace(state, counts=counts)
            rejected = pl.concat([item.rejects.select(rejected.columns), rejected])
        self._state = state
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


class _LakePartition(StatelessSinkPartition[Screened]):
    def __init__(self, root: Path) -> None:
        self._lake = Lake(root)

    def write_batch(self, items: list[Screened]) -> None:
        for item in items:
            self._lake.write(item.accepted, item.rejected)


class LakeSink(DynamicSink[Screened]):
    def __init__(self, root: Path) -> None:
        self._root = root

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LakePartition:
        return _LakePartition(self._root)


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
) -> Dataflow:
    flow = Dataflow("ticks")
    raw = op.input("feeds", flow, source)

    def builder(resume: _Snapshot | None) -> ScreenLogic:
        return ScreenLogic(catalogue, cfg, resume)

    screened = op.stateful_batch("screen", raw, builder)
    values = op.key_rm("values", screened)
    batches = op.filter_map("batches", values, _only_screened)
    if lake_root is not None:
        op.output("lake", batches, LakeSink(lake_root))
    if redis_url is not None:
        from pipelines.ticks.redis_sink import RedisQuoteSink

        quotes = op.map("accepted", batches, _accepted)
        op.output("redis", quotes, RedisQuoteSink(redis_url))
    for name, sink in extra_sinks:
        op.output(name, batches, sink)
    if stats_dir is not None:
        op.output("stats", op.filter_map("counts", values, _only_stats), StatsSink(stats_dir))
    return flow


def _only_screened(value: Screened | FeedStats) -> Screened | None:
    return value if isinstance(value, Screened) else None


def _only_stats(value: Screened | FeedStats) -> FeedStats | None:
    return value if isinstance(value, FeedStats) else None


def _accepted(batch: Screened) -> tuple[str, pl.DataFrame]:
    return batch.key, batch.accepted
