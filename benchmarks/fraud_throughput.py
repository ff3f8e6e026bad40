"""Events scored per second through the fraud flow, one process, batched, beside a plain loop.

Target (issue 12): >= 100 k events/s per process, the plain loop doing the same work beside
it in the same run.

Setup, untimed: a seeded workload (``fraud_workload.events``: 200 k events of 20 k clients,
each on its own device and address but for a few shared ones; quick: 5 k of 500) cut into
batches of 1,000 as a stream read hands them out; a model trained
through ``ml.train`` on a small labelled history.

Timed, interleaved run by run:

- ``dataflow``: ``pipelines.fraud.flow.build_core`` over a ``bytewax.testing.TestingSource``
  of ``Prepared`` batches: the links stage (one key, ``Links.observe``), then the client
  shards (``ClientHistory.observe``, ``FraudModel.score`` once per shard batch), alerts
  counted by a sink (no Redis, no lake, no bus); ``bytewax.run.cli_main``, one worker, a
  ``RecoveryConfig`` in a fresh temp dir, epochs of 1 s;
- ``plain_loop``: ``ml.engine.FeatureEngine.observe`` on each event, then
  ``FraudModel.score`` once per batch of 1,000, in one Python loop.

Both must score every event and raise the same number of alerts. Also kept: the
machine's load average before the runs (other work on a shared machine slows both).
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.run import cli_main
from bytewax.testing import TestingSource

from benchmarks import fraud_workload as wl
from benchmarks.common import Context, Row, summarize, write_result
from ml.engine import FeatureEngine
from ml.model import FraudModel
from pipelines.fraud.flow import build_core
from pipelines.fraud.records import Alert
from pipelines.fraud.sources import Prepared
from pipelines.fraud.spec import FraudSpec

NAME = "fraud_throughput"
TARGETS = {"events_per_s": 100_000}
EPOCH = dt.timedelta(seconds=1)


def _sizes(quick: bool) -> dict[str, int]:
    return {"events": 5_000, "clients": 500} if quick else {"events": 200_000, "clients": 20_000}


class _CountPart(StatelessSinkPartition[Alert]):
    def __init__(self, counts: list[int]) -> None:
        self.counts = counts

    def write_batch(self, items: list[Alert]) -> None:
        self.counts[0] += len(items)


class CountSink(DynamicSink[Alert]):
    def __init__(self) -> None:
        self.counts = [0]

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CountPart:
        return _CountPart(self.counts)


def run_dataflow(batches: list[Any], model: FraudModel, recovery: Path) -> tuple[float, int]:
    recovery.mkdir(parents=True)
    init_db_dir(recovery, 1)  # type: ignore[no-untyped-call]
    sink = CountSink()
    spec = FraudSpec(home=str(recovery), redis_url="redis://unused")
    source = TestingSource([Prepared(b) for b in batches])
    built = build_core("fraud-bench", source, spec, lambda: model, alerts=sink)
    gc.collect()
    t0 = time.perf_counter()
    cli_main(built.flow, epoch_interval=EPOCH,  # type: ignore[no-untyped-call]
             recovery_config=RecoveryConfig(str(recovery)))  # type: ignore[no-untyped-call]  # fmt: skip
    return time.perf_counter() - t0, sink.counts[0]


def plain_loop(batches: list[Any], model: FraudModel) -> tuple[float, int]:
    gc.collect()
    t0 = time.perf_counter()
    engine = FeatureEngine()
    alerts = 0
    for batch in batches:
        rows = [engine.observe(ev) for _ident, ev in batch]
        scores = model.score(np.asarray(rows, dtype=np.float64))
        alerts += int((scores >= model.threshold).sum())
    return time.perf_counter() - t0, alerts


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    sizes = _sizes(ctx.quick)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    evs = wl.events(sizes["events"], sizes["clients"])
    batches = wl.batches(evs)
    model, train_s = wl.model()
    setup_s = time.perf_counter() - t0
    ctx.log(f"  {len(evs):,} events of {sizes['clients']:,} clients in {len(batches):,} "
            f"batches; model trained in {train_s:.1f} s (setup {setup_s:.1f} s)")  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="bourse-fraud-bench-"))
    walls: dict[str, list[float]] = {"dataflow": [], "plain_loop": []}
    alerts: dict[str, int] = {}
    try:
        for r in range(ctx.runs):
            wall, n = run_dataflow(batches, model, tmp / f"recovery{r}")
            shutil.rmtree(tmp / f"recovery{r}", ignore_errors=True)
            walls["dataflow"].append(wall)
            alerts["dataflow"] = n
            ctx.log(f"  run {r + 1} dataflow   {len(evs) / wall:10,.0f} events/s ({wall:.2f} s)")
            wall, n = plain_loop(batches, model)
            walls["plain_loop"].append(wall)
            alerts["plain_loop"] = n
            ctx.log(f"  run {r + 1} plain_loop {len(evs) / wall:10,.0f} events/s ({wall:.2f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if alerts["dataflow"] != alerts["plain_loop"]:
        raise RuntimeError(f"the two paths raised different alerts: {alerts}")
    figures: dict[str, Any] = {}
    for key, ws in walls.items():
        figures[key] = {"events_per_s": summarize([len(evs) / w for w in ws], 0),
                        "seconds": summarize(ws, 3), "alerts": alerts[key]}  # fmt: skip
    figures["dataflow_over_loop"] = summarize(
        [d / p for d, p in zip(walls["dataflow"], walls["plain_loop"], strict=True)], 3
    )
    data: dict[str, Any] = {
        "params": {**sizes, "batch": wl.BATCH, "epoch_s": EPOCH.total_seconds(),
                   "runs": ctx.runs, "setup_s": round(setup_s, 2),
                   "threshold": model.threshold,
                   "load_average_before": [round(x, 2) for x in load_before]},
        "targets": TARGETS,
        "figures": figures,
    }  # fmt: skip
    rows = [Row(NAME, "-", key, figures[key]["events_per_s"], "events/s",
                "recovery on, epoch 1 s" if key == "dataflow" else "no Bytewax")
            for key in walls]  # fmt: skip
    rows.append(Row(NAME, "-", "dataflow / plain loop", figures["dataflow_over_loop"], "x",
                    "wall time ratio, same run"))  # fmt: skip
    write_result(ctx, NAME, data)
    return data, rows
