"""WebSocket quote fan-out: many clients on ``/v1/ws`` subscribed to the quotes channel.
Target (issue 10): p99 delivery lag <= 100 ms with 1,000 clients on 50 symbols each.

Set-up, per run: a throwaway redis-server, a fresh store, `bourse oms run` (registration
goes through it) and the API served by uvicorn in a child process
(``benchmarks.api_stack``). ``USERS`` users register and log in over HTTP; the clients share
their sessions (several connections per session, as a user's several screens do).

The clients run in ``CLIENT_PROCS`` spawned processes (so they do not starve the server's
event loop of its process): each opens its connections, authenticates with the first
message, subscribes to the quotes of every symbol of the catalogue (31: the catalogue has
fewer than the 50 the issue names; a symbol outside it is refused) and waits for the
snapshot. Quotes are then published as the tick pipeline publishes them
(``pipelines.ticks.redis_sink.publish``: the snapshot hash and ``bourse:quotes`` through its
script), at a steady ``quotes_per_s`` spread over the symbols in batches every 10 ms, each
stamped ``ts_ns`` = the wall clock just before its batch is published. For every quote a
client receives, delivery lag = its receive time (the wall clock, the same machine) - its
``ts_ns``; the API coalesces quotes per ``api_ws_quote_interval_ms`` (100 ms by default), so
a quote waits up to one interval by design. Counted for what arrives in the ``seconds``
after a 2 s warm-up, however old (a server falling behind shows as lag).

Memory per client: the API process's resident set once every client has its snapshot,
less its resident set before the first connection, over the clients.
"""

from __future__ import annotations

import array
import asyncio
import json
import multiprocessing
import os
import re
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import redis

from benchmarks import api_stack
from benchmarks.common import Context, Row, percentile, summarize, write_result
from pipelines.ticks.redis_sink import publish
from pipelines.ticks.schema import TICK_SCHEMA
from tests.servers import start_redis
from tests.trading.bus.hostproc import start_host, wait_ready
from trading.catalogue import default_catalogue

NAME = "ws_fanout"
CLIENT_PROCS = 2
WARMUP_S = 2.0
BATCH_EVERY_S = 0.01
PCTS = (50, 90, 99, 99.9)
_TS = re.compile(rb'"ts_ns":(\d+)')


def _sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"clients": 20, "users": 4, "quotes_per_s": 200, "seconds": 2.0}
    return {"clients": 1_000, "users": 100, "quotes_per_s": 500, "seconds": 10.0}


def symbols() -> list[str]:
    return list(default_catalogue().symbols)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


# -- the client processes ------------------------------------------------------------------------


async def _clients(
    url: str, tokens: list[str], syms: list[str], ready: Any, window: Any, stop: Any
) -> dict[str, Any]:
    import websockets

    lags = array.array("q")
    counts = {"messages": 0, "quotes": 0, "closed_by_server": 0}
    closes: dict[str, int] = {}
    sem = asyncio.Semaphore(50)  # connections opened at once

    async def connect(token: str) -> Any:
        async with sem:
            ws = await websockets.connect(url, max_size=None, open_timeout=120)
            await ws.send(json.dumps({"op": "auth", "token": token}))
            welcome = json.loads(await ws.recv())
            assert welcome["type"] == "welcome", welcome
            await ws.send(json.dumps({"op": "subscribe", "channel": "quotes", "symbols": syms}))
            while True:  # updates may precede nothing: the snapshot is the first answer
                msg = json.loads(await ws.recv())
                if msg["type"] == "snapshot":
                    return ws
                assert msg["type"] != "error", msg

    async def listen(ws: Any) -> None:
        try:
            async for raw in ws:
                now = time.time_ns()
                data = raw.encode() if isinstance(raw, str) else raw
                start, end = window[0], window[1]
                # What arrives in the window counts, however old: a server that falls
                # behind shows as lag, not as quotes missing from the figures.
                if start == 0 or now < start or (end and now > end):
                    continue
                counts["messages"] += 1
                for m in _TS.finditer(data):
                    lags.append(now - int(m.group(1)))
                    counts["quotes"] += 1
        except websockets.ConnectionClosed:
            pass
        if ws.close_code is not None and ws.close_code != 1000:
            counts["closed_by_server"] += 1
            closes[str(ws.close_code)] = closes.get(str(ws.close_code), 0) + 1

    conns = await asyncio.gather(*(connect(t) for t in tokens))
    ready.put(len(conns))
    tasks = [asyncio.create_task(listen(ws)) for ws in conns]
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for ws in conns:
        await ws.close()
    await asyncio.gather(*tasks)
    return {"lags": lags.tobytes(), **counts, "closes": closes}


def _client_main(
    url: str, tokens: list[str], syms: list[str], ready: Any, window: Any, stop: Any, out: Any
) -> None:
    out.put(asyncio.run(_clients(url, tokens, syms, ready, window, stop)))


# -- the publisher ---------------------------------------------------------------------------


class Publisher:
    """Quotes at a steady rate through the tick pipeline's Redis sink, round robin over the
    symbols, each bid one tick from the last (a random walk would do no better here)."""

    def __init__(self, url: str, syms: list[str], quotes_per_s: int) -> None:
        self.client = redis.Redis.from_url(url)
        self.syms = syms
        self.per_batch = max(1, round(quotes_per_s * BATCH_EVERY_S))
        cat = default_catalogue()
        self.base = {s: cat.get(s).price_to_int(Decimal(100)) for s in syms}
        self.seq = 0
        self.published = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def batch(self, syms: list[str]) -> None:
        now = time.time_ns()
        rows = []
        for s in syms:
            self.seq += 1
            bid = self.base[s] + self.seq % 50
            rows.append(
                {
                    "symbol": s,
                    "kind": "quote",
                    "ts_ns": now,
                    "recv_ns": now,
                    "bid": bid,
                    "ask": bid + 2,
                    "bid_size": None,
                    "ask_size": None,
                    "price": None,
                    "qty": None,
                    "trade_id": None,
                    "source": "bench",
                    "source_seq": self.seq,
                }
            )
        publish(self.client, pl.DataFrame(rows, schema=TICK_SCHEMA), 100_000)
        self.published += len(syms)

    def _run(self) -> None:
        start = time.perf_counter()
        k = 0
        while not self._stop.is_set():
            n = len(self.syms)
            first = k * self.per_batch
            self.batch([self.syms[(first + j) % n] for j in range(self.per_batch)])
            k += 1
            wait = start + k * BATCH_EVERY_S - time.perf_counter()
            if wait > 0:
                self._stop.wait(wait)
            elif wait < -BATCH_EVERY_S:
                # Fallen behind (the machine busy): go on from now at the same rate rather
                # than catch up in a burst the steady rate does not have.
                start, k = time.perf_counter(), 0

    def __enter__(self) -> Publisher:
        self.batch(self.syms)  # every symbol has a snapshot before anyone subscribes
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.client.close()


# -- one run ---------------------------------------------------------------------------------


def _one_run(ctx: Context, rd: Any, sizes: dict[str, Any], r: int) -> dict[str, Any]:
    store = "sqlite"
    dsn = ctx.store_pool.new_dsn(store)
    home = Path(tempfile.mkdtemp(prefix="bourse-ws-fanout-", dir=ctx.store_pool.tmp))
    host = start_host(home, dsn, rd.url, home / "host.log")
    api = None
    procs: list[Any] = []
    try:
        wait_ready(host, home / "host.log")
        api, base = api_stack.start_api(home, dsn, rd.url, home / "api.log")
        users = api_stack.users(base, f"ws{r}u", sizes["users"])
        tokens = [users[k % len(users)].token for k in range(sizes["clients"])]
        syms = symbols()
        spawn = multiprocessing.get_context("spawn")
        ready, out, stop = spawn.Queue(), spawn.Queue(), spawn.Event()
        window = spawn.Array("q", [0, 0], lock=False)
        url = base.replace("http://", "ws://") + "/v1/ws"
        with Publisher(rd.url, syms, sizes["quotes_per_s"]) as pub:
            time.sleep(0.5)
            rss_before = rss_bytes(api.pid)
            procs = [
                spawn.Process(
                    target=_client_main,
                    args=(url, tokens[c::CLIENT_PROCS], syms, ready, window, stop, out),
                )
                for c in range(CLIENT_PROCS)
            ]
            t_connect = time.perf_counter()
            for p in procs:
                p.start()
            connected = sum(ready.get(timeout=600) for _ in procs)
            connect_s = time.perf_counter() - t_connect
            rss_after = rss_bytes(api.pid)
            time.sleep(WARMUP_S)
            window[0] = time.time_ns()
            cpu0, published0 = api_stack.cpu_s(api.pid), pub.published
            time.sleep(sizes["seconds"])
            window[1] = time.time_ns()
            cpu = api_stack.cpu_s(api.pid) - cpu0
            published = pub.published - published0
            stop.set()
            results = [out.get(timeout=300) for _ in procs]
        for p in procs:
            p.join()
        lags = array.array("q")
        for res in results:
            lags.frombytes(res["lags"])
        lat = sorted(x / 1e6 for x in lags)
        seconds = sizes["seconds"]
        closes: dict[str, int] = {}
        for res in results:
            for code, n in res["closes"].items():
                closes[code] = closes.get(code, 0) + n
        return {
            "clients": connected,
            "connect_s": round(connect_s, 2),
            "quotes_published_per_s": round(published / seconds, 1),
            "messages_per_s": round(sum(x["messages"] for x in results) / seconds, 1),
            "quotes_delivered_per_s": round(sum(x["quotes"] for x in results) / seconds, 1),
            "lag_ms": {f"p{p:g}": round(percentile(lat, p), 3) for p in PCTS}
            | {"max": round(lat[-1], 3)}
            if lat
            else {},
            "closed_by_server": closes,
            "api_rss_mb": {
                "before": round(rss_before / 2**20, 1),
                "with_clients": round(rss_after / 2**20, 1),
            },
            "memory_per_client_kb": round((rss_after - rss_before) / max(1, connected) / 1024, 1),
            "api_cores_used": round(cpu / seconds, 2),
        }
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        if api is not None:
            api_stack.stop(api)
        api_stack.stop(host)
        ctx.store_pool.drop(store, dsn)


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    sizes = _sizes(ctx.quick)
    data: dict[str, Any] = {
        "params": {
            **sizes,
            "symbols": len(symbols()),
            "client_processes": CLIENT_PROCS,
            "warmup_s": WARMUP_S,
            "runs": ctx.runs,
        },
        "targets": {"lag_p99_ms": 100.0},
    }
    runs: list[dict[str, Any]] = []
    with start_redis(Path(tempfile.mkdtemp(prefix="bourse-ws-redis-"))) as rd:
        for r in range(ctx.runs):
            res = _one_run(ctx, rd, sizes, r)
            res["loadavg"] = [round(x, 2) for x in os.getloadavg()]
            lag = res["lag_ms"]
            ctx.log(
                f"  run {r + 1}: {res['clients']} clients, {res['messages_per_s']:,.0f} "
                f"messages/s ({res['quotes_delivered_per_s']:,.0f} quotes/s delivered of "
                f"{res['quotes_published_per_s']:,.0f}/s published); lag p50 "
                f"{lag.get('p50', 0):.1f} ms p99 {lag.get('p99', 0):.1f} ms max "
                f"{lag.get('max', 0):.1f} ms; {res['memory_per_client_kb']} KB per client; "
                f"API {res['api_cores_used']} cores; closed {res['closed_by_server']}; "
                f"load {res['loadavg']}"
            )
            runs.append(res)
    fig: dict[str, Any] = {
        "runs": runs,
        "messages_per_s": summarize([x["messages_per_s"] for x in runs]),
        "quotes_delivered_per_s": summarize([x["quotes_delivered_per_s"] for x in runs]),
        "lag_ms": {
            q: summarize([x["lag_ms"][q] for x in runs], 3)
            for q in runs[0]["lag_ms"]
            if all(q in x["lag_ms"] for x in runs)
        },
        "memory_per_client_kb": summarize([x["memory_per_client_kb"] for x in runs]),
    }
    data["figures"] = fig
    rows = [Row(NAME, "-", "messages/s to clients", fig["messages_per_s"], "/s")]
    if "p99" in fig["lag_ms"]:  # none when nothing arrived in a run's window
        rows.append(Row(NAME, "-", "lag p50", fig["lag_ms"]["p50"], "ms"))
        rows.append(Row(NAME, "-", "lag p99", fig["lag_ms"]["p99"], "ms", "target 100"))
    rows.append(Row(NAME, "-", "memory per client", fig["memory_per_client_kb"], "KB"))
    write_result(ctx, NAME, data)
    return data, rows
