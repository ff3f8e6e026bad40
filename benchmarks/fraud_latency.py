"""Event-to-hold latency through the live fraud flow at a steady 1,000 events/s.

Target (issue 12): the p99, at 1 k events/s. Measured from the ``XADD`` of a
``cash.withdrawal_requested`` event to the event stream (as the outbox relay publishes it)
to the moment its ``HoldWithdrawal`` is read from the command bus: the whole path, the
source's polling, the links stage, the client shards, the scoring, the sinks.

Setup: a throwaway Redis; a model trained through ``ml.train`` and registered with a
threshold of 0 — every event is an alert (the alert sinks' worst case: one Redis entry
and a lake write per event) and every withdrawal is held by its own alert; the flow
started as ``bourse pipelines fraud`` runs it (``bytewax.run`` of
``pipelines.fraud.run:flow_from_env()``, one process, epochs of 1 s, recovery on), warmed
by the accounts' openings and a first withdrawal. Then hand-made events of 200 clients
(``tests/pipelines/fraud/kit.client_events``: deposits, destinations, orders, fills and one
withdrawal request in six events) are published at 1,000 events/s in ticks of 10 ms, 20 s
(quick: 2 s); a reader thread takes the holds off the bus as they come. Each run starts a
fresh flow and Redis; figures are the median of the runs' p50, p99 and max. The machine's
load average before each run is kept.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from benchmarks import fraud_workload as wl
from benchmarks.common import Context, Row, percentile, summarize, write_result
from ml.model import FraudModel
from ml.registry import Registry
from pipelines.fraud.run import ENV_SPEC, recovery_dir
from pipelines.fraud.spec import FraudSpec
from trading.bus.commands import COMMANDS_STREAM
from trading.bus.events import RedisStreamsPublisher
from trading.events import OutboxEvent

NAME = "fraud_latency"
RATE = 1_000  # events/s
TICK_S = 0.01
CLIENTS = 200
ROOT = Path(__file__).resolve().parents[1]


def _sizes(quick: bool) -> dict[str, int]:
    return {"seconds": 2} if quick else {"seconds": 20}


class HoldReader:
    """Reads the command bus from its own thread: when each withdrawal's hold arrived."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        last = "0"
        while not self.stop.is_set():
            reply: Any = self.client.xread({COMMANDS_STREAM: last}, count=1000, block=50)
            now = time.perf_counter()
            for _name, items in reply or []:
                for sid, fields in items:
                    last = sid
                    if fields[b"type"] == b"HoldWithdrawal":
                        wid = int(json.loads(fields[b"body"])["withdrawal_id"])
                        self.seen.setdefault(wid, now)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.client.close()


def _wait(check: Any, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            raise RuntimeError(f"the fraud flow exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError("the fraud flow did not warm up in time")
        time.sleep(0.02)


def one_run(model: FraudModel, seconds: int, tmp: Path) -> dict[str, Any]:
    from tests.pipelines.fraud.kit import client_events
    from tests.servers import start_redis

    per_client = max(6, seconds * RATE // CLIENTS + 6)
    events = client_events(CLIENTS, per_client=per_client)
    warm, timed = events[: CLIENTS * 7], events[CLIENTS * 7 :][: seconds * RATE]
    home = tmp / "home"
    registry = Registry(home)
    registry.promote(registry.register(model, {"trained_on": "benchmark"}))
    server = start_redis()
    load = os.getloadavg()
    proc: subprocess.Popen[bytes] | None = None
    reader = HoldReader(server.url)
    try:
        spec = FraudSpec(home=str(home), redis_url=server.url)
        cmd = [sys.executable, "-m", "bytewax.run", "pipelines.fraud.run:flow_from_env()",
               "-r", str(recovery_dir(spec)), "-s", "1", "-b", "0"]  # fmt: skip
        env = {**os.environ, ENV_SPEC: spec.to_json()}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(server.url)
        publisher = RedisStreamsPublisher(client, partitions=4)
        publisher.publish(warm)
        _wait(lambda: len(reader.seen) >= CLIENTS // 2, proc)
        sent: dict[int, float] = {}
        per_tick = int(RATE * TICK_S)
        t0 = time.perf_counter()
        for i in range(0, len(timed), per_tick):
            due = t0 + (i // per_tick) * TICK_S
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            chunk = timed[i : i + per_tick]
            publisher.publish(chunk)
            now = time.perf_counter()
            for ev in chunk:
                if ev.type == "cash.withdrawal_requested":
                    sent[_wid(ev)] = now
        send_s = time.perf_counter() - t0
        _wait(lambda: all(w in reader.seen for w in sent), proc, timeout=60)
        client.close()
    finally:
        reader.close()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    lat = sorted((reader.seen[w] - t) * 1000 for w, t in sent.items())
    return {"events": len(timed), "withdrawals": len(sent), "send_s": round(send_s, 3),
            "rate_per_s": round(len(timed) / send_s, 1), "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99), "max_ms": lat[-1],
            "load_average_before": [round(x, 2) for x in load]}  # fmt: skip


def _wid(ev: OutboxEvent) -> int:
    return int(json.loads(ev.payload)["withdrawal_id"])


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    sizes = _sizes(ctx.quick)
    model, train_s = wl.model()
    model.threshold = 0.0
    ctx.log(f"  model trained in {train_s:.1f} s; threshold 0: every event alerts")
    tmp = Path(tempfile.mkdtemp(prefix="bourse-fraud-lat-"))
    runs = []
    try:
        for r in range(ctx.runs):
            res = one_run(model, sizes["seconds"], tmp / f"run{r}")
            runs.append(res)
            ctx.log(f"  run {r + 1}: {res['withdrawals']:,} holds at {res['rate_per_s']:,.0f} "
                    f"events/s: p50 {res['p50_ms']:.1f} ms, "
                    f"p99 {res['p99_ms']:.1f} ms")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    figures: dict[str, Any] = {
        key: summarize([float(r[key]) for r in runs], 2)
        for key in ("p50_ms", "p99_ms", "max_ms", "rate_per_s")
    }
    figures["runs"] = runs
    data: dict[str, Any] = {
        "params": {**sizes, "rate_per_s": RATE, "tick_s": TICK_S, "clients": CLIENTS,
                   "runs": ctx.runs, "epoch_s": 1, "threshold": 0.0},
        "figures": figures,
    }  # fmt: skip
    rows = [Row(NAME, "-", f"event-to-hold {k.removesuffix('_ms')}", figures[k], "ms",
                f"at {RATE:,} events/s") for k in ("p50_ms", "p99_ms")]  # fmt: skip
    write_result(ctx, NAME, data)
    return data, rows
