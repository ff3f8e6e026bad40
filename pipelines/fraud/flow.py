"""The fraud dataflow: events and logins -> links (one key) -> clients (per shard) -> alerts,
holds.

```
event streams, login stream (one partition each) -> links: convert, dedupe, Links.observe
    -> route by client shard -> clients: ClientHistory.observe (the vectors)
    -> score: FraudModel.score, once for all a worker's shards hold -> decide (per shard)
    -> alerts -> Redis (bourse:fraud:alerts, once each) and the lake (fraud_alerts/)
    -> holds  -> the command bus (HoldWithdrawal)
    dead letters (from the sources and the links stage) -> Redis (bourse:fraud:dead)
```

Every event passes the links stage, one key on one worker, in the order it arrived; each
client's events then reach its shard in that same order, so a client's features are what
``ml.engine.FeatureEngine`` computes over the events in that order.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import DynamicSink

from ml.model import FraudModel
from pipelines.fraud.front import Front, FrontState, Routed
from pipelines.fraud.records import Alert, DeadLetter, Hold, Scored
from pipelines.fraud.shard import Decisions, Histories, Scoring, score_all
from pipelines.fraud.sinks import HoldSink, LakeSink, RedisSink
from pipelines.fraud.sources import FraudSources
from pipelines.fraud.spec import FraudSpec
from pipelines.fraud.store_seed import client_lookup
from trading.catalogue import default_catalogue

_lock = threading.Lock()
_models: dict[str, FraudModel] = {}


def promoted_model(home: str) -> FraudModel:
    """The registry's promoted model, loaded once per process (``RegistryError`` if none)."""
    from ml.registry import Registry

    with _lock:
        model = _models.get(home)
        if model is None:
            model = _models[home] = Registry(Path(home)).promoted()
        return model


class FrontLogic(StatefulBatchLogic[Any, Any, bytes]):
    def __init__(self, spec: FraudSpec, resume: bytes | None) -> None:
        state = FrontState() if resume is None else pickle.loads(resume)  # noqa: S301 - our own
        lookup = client_lookup(spec.dsn) if spec.dsn else None
        self.front = Front(state, default_catalogue(), lookup)

    def on_batch(self, values: list[Any]) -> tuple[Iterable[Any], bool]:
        out: list[Any] = []
        for batch in values:
            routed, dead = self.front.on_batch(batch)
            out += routed
            out += dead
        return out, StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return pickle.dumps(self.front.state, protocol=pickle.HIGHEST_PROTOCOL)


@dataclass(frozen=True, slots=True)
class Outs:
    """One shard batch's outputs, as one item (a dataflow item costs, per item)."""

    alerts: list[Alert]
    holds: list[Hold]
    scored: list[Scored]


class HistoriesLogic(StatefulBatchLogic[list[Any], list[Any], bytes]):
    def __init__(self, resume: bytes | None) -> None:
        self.shard = Histories(resume)

    def on_batch(self, values: list[list[Any]]) -> tuple[Iterable[list[Any]], bool]:
        entries = values[0] if len(values) == 1 else [e for v in values for e in v]
        return [self.shard.on_entries(entries)], StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return self.shard.snapshot()


class DecisionsLogic(StatefulBatchLogic[Scoring, Outs, bytes]):
    def __init__(self, model: Callable[[], FraudModel], scored: bool, resume: bytes | None) -> None:
        self.model = model()
        self.scored = scored
        self.shard = Decisions(resume)

    def on_batch(self, values: list[Scoring]) -> tuple[Iterable[Outs], bool]:
        alerts: list[Alert] = []
        holds: list[Hold] = []
        scored: list[Scored] = []
        for entries, scores in values:
            a, h, s = self.shard.on_scored(entries, scores, self.model, self.scored)
            alerts += a
            holds += h
            scored += s
        if not (alerts or holds or scored):
            return [], StatefulBatchLogic.RETAIN
        return [Outs(alerts, holds, scored)], StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return self.shard.snapshot()


class _Scorer:
    """``score_all`` with the model loaded on first use (in each process)."""

    def __init__(self, model: Callable[[], FraudModel]) -> None:
        self.load = model
        self.model: FraudModel | None = None

    def __call__(self, items: list[tuple[str, list[Any]]]) -> list[tuple[str, Scoring]]:
        if self.model is None:
            self.model = self.load()
        return score_all(items, self.model)


@dataclass
class Built:
    flow: Dataflow
    scored: Stream[Scored]  # every scored event (a test or benchmark may output it)


def build_core(
    name: str,
    source: Source[Any],
    spec: FraudSpec,
    model: Callable[[], FraudModel],
    *,
    alerts: DynamicSink[Any] | None = None,
    lake: DynamicSink[Alert] | None = None,
    holds: DynamicSink[Hold] | None = None,
    scored: bool = False,
) -> Built:
    """The flow over any source of batches (``EventBatch``, ``LoginBatch``, ``Prepared``);
    each output absent is not written."""
    flow = Dataflow(name)
    batches = op.input("in", flow, source)
    keyed = op.key_on("to-links", batches, lambda _: "links")
    front = op.stateful_batch("links", keyed, lambda resume: FrontLogic(spec, resume))
    outs = op.map("unkey-links", front, lambda kv: kv[1])
    split = op.branch("dead", outs, lambda x: isinstance(x, DeadLetter))
    routed: Stream[tuple[str, list[Any]]] = split.falses
    vectors = op.stateful_batch("clients", routed, HistoriesLogic)
    scores = op.flat_map_batch("score", vectors, _Scorer(model))
    decided = op.stateful_batch("decide", scores,
                                lambda resume: DecisionsLogic(model, scored, resume))  # fmt: skip
    results = op.map("unkey-decide", decided, lambda kv: kv[1])
    found = op.flat_map("alerts", results, lambda o: o.alerts)
    if alerts is not None:
        op.output("redis", op.merge("to-redis", found, split.trues), alerts)
    if lake is not None:
        op.output("lake", found, lake)
    if holds is not None:
        op.output("bus", op.flat_map("holds", results, lambda o: o.holds), holds)
    return Built(flow, op.flat_map("scored", results, lambda o: o.scored))


def build_flow(spec: FraudSpec) -> Dataflow:
    source = FraudSources(spec.redis_url, spec.partitions, until_idle=spec.until_idle)
    built = build_core("fraud", source, spec, lambda: promoted_model(spec.home),
                       alerts=RedisSink(spec.redis_url), lake=LakeSink(spec.lake_root),
                       holds=HoldSink(spec.redis_url) if spec.send_holds else None)  # fmt: skip
    return built.flow


__all__ = ["Routed", "build_core", "build_flow", "promoted_model"]
