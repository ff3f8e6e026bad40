"""``bourse up`` from outside: the platform starts, its live feed puts fresh quotes in
Redis, a killed service comes back, SIGTERM stops every child and exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from tests.servers import free_port
from trading.quotes import quote_key

pytestmark = [pytest.mark.slow, pytest.mark.redis]

SERVICES = {"redis", "oms", "ticks", "positions", "api"}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but is not reaped yet is a zombie: not alive.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def _until(what: str, check: object, timeout_s: float = 120.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _pids(home: Path) -> dict[str, int]:
    try:
        return dict(json.loads((home / "logs" / "up.pids.json").read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _quote_ts(client: redis.Redis, symbol: str) -> int:
    """The ``ts_ns`` of ``symbol``'s quote snapshot; 0 when there is none yet."""
    raw = client.hget(quote_key(symbol), "ts_ns")
    return int(raw) if raw else 0


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def test_up_when_started_then_serves_restarts_a_dead_service_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.cli", "up", "--home", str(home), "--port", str(port),
         "--grace", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    seen: set[int] = set()
    try:
        _until("the API's health", lambda: _get(f"{base}/v1/health") == 200)
        assert _get(f"{base}/dashboard") == 200
        pids = _pids(home)
        assert set(pids) >= SERVICES
        seen = set(pids.values())
        for name, pid in pids.items():
            assert _alive(pid), name
        # The live feed: a BTC/USD quote (crypto trades every day) stamped with the current
        # time reaches Redis, which ``up`` started on a port its children are told.
        argv = Path(f"/proc/{pids['ticks']}/cmdline").read_bytes().decode().split("\0")
        url = argv[argv.index("--redis-url") + 1]
        since_ns = time.time_ns()
        with redis.Redis.from_url(url) as client:
            _until("a fresh BTC/USD quote",
                   lambda: _quote_ts(client, "BTC/USD") >= since_ns)  # fmt: skip
            assert _quote_ts(client, "BTC/USD") <= time.time_ns()

        old = pids["positions"]
        os.killpg(old, signal.SIGKILL)
        _until(
            "positions restarted",
            lambda: _pids(home).get("positions", old) != old and _alive(_pids(home)["positions"]),
        )
        seen |= set(_pids(home).values())
        assert _get(f"{base}/v1/health") == 200

        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "positions exited" in text and "positions restarted" in text, text
    assert "fraud flow" in text and "username admin" in text and "otpauth://" in text, text
    assert "stopped" in text
    for pid in seen:
        assert not _alive(pid), f"pid {pid} left running"
    assert _pids(home) == {}
