"""Orders through the command bus to `bourse oms run`, against the same orders through an
in-process ``OMSService``, in the same run. Targets: bus throughput >= 80 % of in process;
ack p99 <= 10 ms at a steady 1,000 orders/s.

Set-up, per store and run: a throwaway redis-server on loopback; a fresh store; a quote
pump writing a fresh BTC/USD quote (snapshot and ``bourse:quotes``) every 100 ms. BTC/USD
trades every day, so the wall clock can drive the OMS: the host runs exactly as deployed.

- ``bus``: ``bourse oms run`` as a child process; ``CLIENTS`` client processes (spawned),
  each with its own ``CommandClient`` and accounts. Throughput: each client sends its share
  in windows of ``WINDOW`` (``send_many``: XADD pipelined, wait for all replies), so
  CLIENTS x WINDOW orders are in flight; orders/s is all orders over the wall time from the
  first send to the last reply. Latency: each client sends single orders on a fixed
  schedule (1,000/s in all); an order's latency runs from just before its XADD to its
  reply's arrival in the client (the listener thread), so it includes the client's encoding,
  Redis both ways, the host's decoding, the command log's lookup, the batch and its durable
  commit.
- ``in_process``: the same OMS wiring (the Redis-fed quote book, the wall clock) under an
  ``OMSService`` in this process; CLIENTS threads send the same windows; the latency
  producer submits on the same schedule (submit to future resolved).

Market orders of 0.01 BTC, buy and sell in turn per account, on professional accounts
(200 orders/s each before the rate limit), funded so margin never binds.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import redis

from benchmarks.common import Context, Row, percentile, summarize, write_result
from tests.servers import start_redis
from tests.trading.bus.hostproc import QuotePump, start_host, wait_ready
from trading.bus.client import CommandClient
from trading.bus.follow import FollowedQuoteBook
from trading.catalogue import default_catalogue
from trading.commands import Deposit, OpenAccount, SubmitOrder
from trading.config import OMSConfig
from trading.oms.engine import OMS
from trading.oms.service import OMSService
from trading.store.engine import migrate, open_engine
from trading.validate import order_request
from trading.venues.bbook import BBookVenue

NAME = "bus"
CLIENTS = 4
WINDOW = 100
RATE = 1_000
ACCOUNTS_PER_CLIENT = 25
PCTS = (50, 90, 99, 99.9)


def _sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"orders": 2_000, "latency_seconds": 2.0}
    return {"orders": 20_000, "latency_seconds": 10.0}


def _accounts(client_no: int) -> list[int]:
    first = 1 + client_no * ACCOUNTS_PER_CLIENT
    return list(range(first, first + ACCOUNTS_PER_CLIENT))


def _orders(client_no: int, n: int, tag: str) -> list[SubmitOrder]:
    cat = default_catalogue()
    accounts = _accounts(client_no)
    out = []
    for i in range(n):
        side = "buy" if (i // len(accounts)) % 2 == 0 else "sell"
        out.append(SubmitOrder(order_request(
            cat, account_id=accounts[i % len(accounts)], client_order_id=f"{tag}{client_no}-{i}",
            symbol="BTC/USD", side=side, qty="0.01",
        )))  # fmt: skip
    return out


def _setup_commands() -> list[Any]:
    cmds: list[Any] = []
    for c in range(CLIENTS):
        for a in _accounts(c):
            cmds += [OpenAccount(a, "USD", "professional"), Deposit(a, "USD", 10**10, f"s-{a}")]
    return cmds


# -- the client processes ------------------------------------------------------------------------


def _client_main(url: str, client_no: int, mode: str, n: int, start_at: float, out: Any) -> None:
    client = CommandClient(redis.Redis.from_url(url), f"bench-{client_no}")
    orders = _orders(client_no, n, mode[0])
    client.send_many(orders[:1], 30)  # the listener and the connections up before the clock
    orders = orders[1:]
    time.sleep(max(0.0, start_at - time.time()))
    t0 = time.time()
    ok = 0
    lat_ms: list[float] = []
    if mode == "throughput":
        for i in range(0, len(orders), WINDOW):
            ok += sum(r.ok for r in client.send_many(orders[i : i + WINDOW], 120))
    else:
        period_ns = 1_000_000_000 * CLIENTS // RATE
        start = time.perf_counter_ns()
        pending: list[tuple[int, Future[Any]]] = []
        done: dict[int, int] = {}
        for i, order in enumerate(orders):
            wait = start + i * period_ns - time.perf_counter_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
            sent = time.perf_counter_ns()
            (_, fut), = client.submit_many([order])  # fmt: skip
            fut.add_done_callback(lambda _f, i=i: done.__setitem__(i, time.perf_counter_ns()))
            pending.append((sent, fut))
        ok = sum(fut.result(120).ok for _, fut in pending)
        # A future's waiters wake before its callbacks run: wait for the last stamps.
        while len(done) < len(pending):
            time.sleep(0.001)
        lat_ms = [(done[i] - sent) / 1e6 for i, (sent, _) in enumerate(pending)]
    out.put({"client": client_no, "t0": t0, "t1": time.time(), "ok": ok, "lat_ms": lat_ms})
    client.close()


def _run_clients(url: str, mode: str, per_client: int) -> list[dict[str, Any]]:
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    start_at = time.time() + 4.0  # the children import and build their orders first
    procs = [
        spawn.Process(target=_client_main, args=(url, c, mode, per_client + 1, start_at, out))
        for c in range(CLIENTS)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return results


# -- one run --------------------------------------------------------------------------------


def _latency(lat_ms: list[float]) -> dict[str, float]:
    lat = sorted(lat_ms)
    return {f"p{p:g}": round(percentile(lat, p), 3) for p in PCTS} | {"max": round(lat[-1], 3)}


def _bus_run(ctx: Context, store: str, url: str, sizes: dict[str, Any]) -> dict[str, Any]:
    dsn = ctx.store_pool.new_dsn(store)
    home = Path(tempfile.mkdtemp(prefix="bourse-bus-", dir=ctx.store_pool.tmp))
    log = home / "host.log"
    host = start_host(home, dsn, url, log)
    try:
        wait_ready(host, log)
        with CommandClient(redis.Redis.from_url(url), "bench-setup") as setup:
            assert all(r.ok for r in setup.send_many(_setup_commands(), 120))
        per = sizes["orders"] // CLIENTS
        res = _run_clients(url, "throughput", per)
        wall = max(r["t1"] for r in res) - min(r["t0"] for r in res)
        ok = sum(r["ok"] for r in res)
        per_lat = int(sizes["latency_seconds"] * RATE) // CLIENTS
        lres = _run_clients(url, "latency", per_lat)
        lat = [x for r in lres for x in r["lat_ms"]]
        return {
            "orders": per * CLIENTS, "ok": ok, "orders_per_s": round(per * CLIENTS / wall, 1),
            "latency_orders": len(lat), "latency_ok": sum(r["ok"] for r in lres),
            "latency_ms": _latency(lat),
        }  # fmt: skip
    finally:
        host.send_signal(signal.SIGTERM)
        try:
            host.wait(60)
        except Exception:
            host.kill()
        ctx.store_pool.drop(store, dsn)


def _in_process_run(ctx: Context, store: str, url: str, sizes: dict[str, Any]) -> dict[str, Any]:
    dsn = ctx.store_pool.new_dsn(store)
    engine = open_engine(dsn)
    migrate(engine)
    client = redis.Redis.from_url(url)
    config = OMSConfig()
    cat = default_catalogue()
    book = FollowedQuoteBook(client, max_age_ns=config.venue.max_quote_age_ms * 10**6,
                             clock=time.time_ns)  # fmt: skip
    venue = BBookVenue(cat, book, config.fees, config.venue, time.time_ns)
    oms = OMS(engine, cat, book, venue, config, time.time_ns)
    try:
        oms.execute(_setup_commands())
        per = sizes["orders"] // CLIENTS
        lists = [_orders(c, per, "t") for c in range(CLIENTS)]
        with OMSService(oms) as svc:

            def produce(orders: list[SubmitOrder], ok: list[int]) -> None:
                for i in range(0, len(orders), WINDOW):
                    futs = [svc.submit(o) for o in orders[i : i + WINDOW]]
                    ok.append(sum(not isinstance(f.result(120), Exception) for f in futs))

            oks: list[list[int]] = [[] for _ in range(CLIENTS)]
            threads = [threading.Thread(target=produce, args=(lists[c], oks[c]))
                       for c in range(CLIENTS)]  # fmt: skip
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            n_lat = int(sizes["latency_seconds"] * RATE)
            orders = [o for c in range(CLIENTS) for o in _orders(c, n_lat // CLIENTS, "l")]
            done = [0] * len(orders)
            sent = [0] * len(orders)
            start = time.perf_counter_ns()
            period = 1_000_000_000 // RATE
            futs: list[Future[Any]] = []
            for i, order in enumerate(orders):
                wait = start + i * period - time.perf_counter_ns()
                if wait > 0:
                    time.sleep(wait / 1e9)
                sent[i] = time.perf_counter_ns()
                fut = svc.submit(order)
                fut.add_done_callback(lambda _f, i=i: done.__setitem__(i, time.perf_counter_ns()))
                futs.append(fut)
            lat_ok = sum(not isinstance(f.result(120), Exception) for f in futs)
            while not all(done):  # the callbacks run just after the waiters wake
                time.sleep(0.001)
        lat = [(d - s) / 1e6 for d, s in zip(done, sent, strict=True)]
        return {
            "orders": per * CLIENTS, "ok": sum(sum(x) for x in oks),
            "orders_per_s": round(per * CLIENTS / wall, 1), "latency_orders": len(lat),
            "latency_ok": lat_ok, "latency_ms": _latency(lat),
        }  # fmt: skip
    finally:
        engine.dispose()
        client.close()
        ctx.store_pool.drop(store, dsn)


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    sizes = _sizes(ctx.quick)
    data: dict[str, Any] = {
        "params": {
            **sizes,
            "clients": CLIENTS,
            "window": WINDOW,
            "orders_per_s": RATE,
            "runs": ctx.runs,
        },
        "targets": {"bus_over_in_process": 0.8, "bus_p99_ms": 10.0},
        "stores": {},
    }
    rows: list[Row] = []
    with start_redis(Path(tempfile.mkdtemp(prefix="bourse-bus-redis-"))) as rd:
        for store in ctx.stores:
            runs: dict[str, list[dict[str, Any]]] = {"in_process": [], "bus": []}
            for r in range(ctx.runs):
                with QuotePump(rd.url, every_s=0.1):
                    for mode, fn in (("in_process", _in_process_run), ("bus", _bus_run)):
                        with redis.Redis.from_url(rd.url) as c:
                            c.delete("bourse:commands")
                        res = fn(ctx, store, rd.url, sizes)
                        res["loadavg"] = [round(x, 2) for x in os.getloadavg()]
                        lat = res["latency_ms"]
                        ctx.log(
                            f"  {store:<10} {mode:<10} run {r + 1}: "
                            f"{res['orders_per_s']:,.0f} orders/s ({res['ok']}/{res['orders']} "
                            f"ok), at {RATE}/s p50 {lat['p50']:.2f} ms p99 {lat['p99']:.2f} ms "
                            f"max {lat['max']:.2f} ms; load {res['loadavg']}"
                        )
                        runs[mode].append(res)
            fig: dict[str, Any] = {}
            for mode, mode_runs in runs.items():
                fig[mode] = {
                    "runs": mode_runs,
                    "orders_per_s": summarize([x["orders_per_s"] for x in mode_runs]),
                    "latency_ms": {
                        q: summarize([x["latency_ms"][q] for x in mode_runs], 3)
                        for q in mode_runs[0]["latency_ms"]
                    },
                }
            ratio = (
                fig["bus"]["orders_per_s"]["median"] / fig["in_process"]["orders_per_s"]["median"]
            )
            fig["bus_over_in_process"] = round(ratio, 3)
            data["stores"][store] = fig
            for mode in ("in_process", "bus"):
                rows.append(Row(NAME, store, f"{mode} orders/s", fig[mode]["orders_per_s"], "/s"))
                for q in ("p50", "p99"):
                    rows.append(Row(NAME, store, f"{mode} ack {q} at {RATE:,}/s",
                                    fig[mode]["latency_ms"][q], "ms"))  # fmt: skip
            rows.append(Row(NAME, store, "bus / in process", round(ratio, 3), "", "target 0.8"))
    write_result(ctx, NAME, data)
    return data, rows
