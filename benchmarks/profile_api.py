"""Where an order's CPU goes in the API: ``python -m benchmarks.profile_api [--orders N]``.

Starts the stack of ``benchmarks.api_orders`` (redis-server, `bourse oms run`, the API);
registers, funds and logs in the users through a first API process, then serves the orders
from a second one under cProfile in every thread (the event loop's and the pool's that runs
the routes; CPU time per thread), sends ``--orders`` orders from ``--connections``
keep-alive connections, stops the API and prints the functions that took the most CPU of
their own and in all (cumulative). Run as ``__main__`` it profiles; the API child runs
``serve()``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def _profile() -> cProfile.Profile:
    # CPU time of the thread, not wall time: a thread blocked on a socket (the bus's reply
    # listener, the event loop's select) spends none.
    return cProfile.Profile(time.thread_time_ns, 1e-9)


def serve(out: str, port: int) -> None:
    """The API child: uvicorn in this thread, every thread profiled; stats to ``out``."""
    import uvicorn

    import serving.api.main  # noqa: F401  # imported before the profile starts: not per order

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start(*_args: Any) -> None:
        # The first event in a new thread: profile it from here on.
        sys.setprofile(None)
        p = _profile()
        with lock:
            profiles.append(p)
        p.enable()

    threading.setprofile(start)
    main = _profile()
    profiles.append(main)
    config = uvicorn.Config("serving.api.main:app", factory=True, host="127.0.0.1", port=port,
                            access_log=False, log_level="warning")  # fmt: skip
    # uvicorn raises the signal that stopped it again once it has shut down: let that reach
    # a handler that returns, so that the stats are written.
    signal.signal(signal.SIGTERM, lambda *_: None)
    main.enable()
    uvicorn.Server(config).run()
    main.disable()
    stats = pstats.Stats(main)
    for p in profiles[1:]:
        p.disable()
        p.create_stats()
        if p.stats:  # type: ignore[attr-defined]  # a thread that ran nothing has none
            stats.add(p)
    stats.dump_stats(out)
    os._exit(0)  # the pool's idle threads need not be joined


def _report(path: Path, orders: int, top: int) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(str(path), stream=buf)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    buf.write(
        f"API CPU under cProfile (which slows it): {total:.2f} s, "
        f"{total * 1000 / orders:.2f} ms per order\n"
    )
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_api", description=__doc__)
    p.add_argument("--orders", type=int, default=2_000)
    p.add_argument("--accounts", type=int, default=20)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)

    import subprocess

    import httpx
    import redis

    from benchmarks import api_orders, api_stack
    from tests.servers import free_port, start_redis
    from tests.trading.bus.hostproc import REPO, QuotePump, start_host, wait_ready
    from trading.bus.client import CommandClient
    from trading.commands import Deposit

    home = Path(tempfile.mkdtemp(prefix="bourse-profile-api-"))
    dsn = f"sqlite:///{home}/bourse.db"
    out = home / "api.prof"
    with start_redis(home) as rd, QuotePump(rd.url, every_s=0.1):
        host = start_host(home, dsn, rd.url, home / "host.log")
        wait_ready(host, home / "host.log")
        port = free_port()
        env = {**os.environ, "BOURSE_HOME": str(home), "BOURSE_DSN": dsn,
               "BOURSE_REDIS_URL": rd.url, "BOURSE_API_RATE_PER_IP": "1000000000",
               "BOURSE_API_RATE_PER_USER": "1000000000",
               "BOURSE_API_RATE_LOGIN_PER_IP": "1000000000"}  # fmt: skip
        first, base = api_stack.start_api(home, dsn, rd.url, home / "api-setup.log")
        try:
            users = api_stack.users(base, "prof", args.accounts)
            with CommandClient(redis.Redis.from_url(rd.url), "setup") as setup:
                funds = [Deposit(u.account_id, "USD", 10**10, f"s-{u.account_id}") for u in users]
                assert all(x.ok for x in setup.send_many(funds, 120))
            api_orders._seed_positions(base, users)
        finally:
            api_stack.stop(first)
        code = f"from benchmarks.profile_api import serve; serve({str(out)!r}, {port})"
        api = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    if httpx.get(f"{base}/v1/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            api_orders.CONNECTIONS = args.connections
            pairs = [(u.account_id, u.token) for u in users]
            t0 = time.perf_counter()
            res = asyncio.run(api_orders._client(base, pairs, "throughput", args.orders, 0,
                                                 time.time(), "p"))  # fmt: skip
            wall = time.perf_counter() - t0
            print(f"{args.orders} orders in {wall:.1f} s ({args.orders / wall:.0f}/s) under the "
                  f"profiler: {res['statuses']}")  # fmt: skip
        finally:
            api.terminate()
            api.wait(60)
            api_stack.stop(host)
    print(_report(out, args.orders, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
