"""`bourse oms run` as a child process, for the tests and the benchmark: start it, wait
until it serves, signal it; and fresh BTC/USD quotes (crypto trades every day, so these
runs on the wall clock mean the same on a Sunday)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis

from trading.catalogue import default_catalogue
from trading.quotes import QUOTES_STREAM, Quote, quote_key, quote_to_fields

REPO = Path(__file__).resolve().parents[3]


def host_command(home: Path, dsn: str | None, redis_url: str, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "serving.cli", "oms", "run", "--home", str(home),
           "--redis-url", redis_url, *extra]  # fmt: skip
    return cmd + (["--dsn", dsn] if dsn else [])


def start_host(
    home: Path, dsn: str | None, redis_url: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    home.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            host_command(home, dsn, redis_url, *extra), cwd=REPO, stdout=out,
            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


def wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    """Until the host logs that it serves (its ``ready`` line, after claiming leftovers).
    One log file per start."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if "bourse.oms: ready" in text:
            return
        if proc.poll() is not None:
            raise AssertionError(f"host exited {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"host not ready in {timeout_s} s:\n{log.read_text()[-3000:]}")


class QuotePump:
    """Publishes a fresh BTC/USD quote (snapshot and stream) every ``every_s``."""

    def __init__(self, redis_url: str, every_s: float = 0.5, mid: str = "60000") -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.inst = default_catalogue().get("BTC/USD")
        self.mid = Decimal(mid)
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def publish(self, bid: Decimal, ask: Decimal) -> None:
        q = Quote("BTC/USD", self.inst.price_to_int(bid), self.inst.price_to_int(ask),
                  time.time_ns())  # fmt: skip
        fields: Any = quote_to_fields(q, source="test")
        pipe = self.client.pipeline()
        pipe.hset(quote_key(q.symbol), mapping=fields)
        pipe.xadd(QUOTES_STREAM, fields, maxlen=10_000, approximate=True)
        pipe.execute()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.publish(self.mid - 5, self.mid + 5)
            self._stop.wait(self.every_s)

    def __enter__(self) -> QuotePump:
        self.publish(self.mid - 5, self.mid + 5)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.client.close()
