"""The API stack the HTTP and WebSocket benchmarks run against: the API served by uvicorn
in a child process (beside a throwaway redis-server and `bourse oms run`, which the
benchmarks start with ``tests.servers`` and ``tests.trading.bus.hostproc``), and its users,
registered, funded and logged in over HTTP before anything is timed.

The API's own rate limits (per IP, per user, log-ins per IP) are raised for these runs:
every benchmark client comes from 127.0.0.1, which a deployment's limits would rightly
refuse at 1,000 requests a second. The OMS's per-account limit stays: orders are spread
over many accounts, as ``benchmarks.bus`` spreads them.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.servers import free_port
from tests.trading.bus.hostproc import REPO

PASSWORD = "Bench-Password-42"
_UNLIMITED = str(10**9)


@dataclass(frozen=True)
class User:
    username: str
    account_id: int
    token: str


def start_api(home: Path, dsn: str, redis_url: str, log: Path, workers: int = 1) -> tuple[
    subprocess.Popen[bytes], str
]:  # fmt: skip
    """uvicorn serving ``serving.api.main:app`` (as ``bourse serve`` does, without the
    access log: one line per request would be part of what is measured); its base URL.
    Idle connections are kept 75 s, as behind a load balancer: uvicorn's 5 s would close a
    client's connections while it waits for its start, racing its first requests."""
    port = free_port()
    env = {
        **os.environ, "PYTHONUNBUFFERED": "1", "BOURSE_HOME": str(home), "BOURSE_DSN": dsn,
        "BOURSE_REDIS_URL": redis_url, "BOURSE_API_RATE_PER_IP": _UNLIMITED,
        "BOURSE_API_RATE_PER_USER": _UNLIMITED, "BOURSE_API_RATE_LOGIN_PER_IP": _UNLIMITED,
    }  # fmt: skip
    cmd = [sys.executable, "-m", "uvicorn", "serving.api.main:app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "75"]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/v1/ready", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"the API not ready in 60 s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _register_and_login(
    http: httpx.AsyncClient, username: str, sessions: int, sem: asyncio.Semaphore
) -> list[User]:
    body = {"username": username, "password": PASSWORD, "email": f"{username}@example.com",
            "name": "Bench User", "country": "FR", "birth_date": "1985-04-02"}  # fmt: skip
    async with sem:
        res = await http.post("/v1/auth/register", json=body)
        if res.status_code != 201:
            raise RuntimeError(f"register {username}: {res.status_code} {res.text}")
        account_id = int(res.json()["account_id"])
        users = []
        for k in range(sessions):
            res = await http.post("/v1/auth/login", json={
                "username": username, "password": PASSWORD, "device_id": f"bench-{k}"})  # fmt: skip
            if res.status_code != 200:
                raise RuntimeError(f"login {username}: {res.status_code} {res.text}")
            users.append(User(username, account_id, res.json()["token"]))
    return users


def users(base: str, prefix: str, count: int, sessions: int = 1) -> list[User]:
    """Registers ``count`` users (each with its account) and logs each in ``sessions``
    times (a session per device); orders need no second factor, so none is enrolled.
    Eight at a time: each registration and log-in hashes a password (argon2)."""

    async def main() -> list[User]:
        sem = asyncio.Semaphore(8)
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            made = await asyncio.gather(*(
                _register_and_login(http, f"{prefix}{k:05d}", sessions, sem) for k in range(count)
            ))  # fmt: skip
        return [u for group in made for u in group]

    return asyncio.run(main())


_SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+)$")

Histogram = tuple[dict[float, float], float, float]  # cumulative buckets (s), sum (s), count


def scrape(base: str, method: str, route: str) -> Histogram:
    """The API's own timing of one route so far (its Prometheus histogram, every status;
    one worker's view when there are several)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    buckets: dict[float, float] = {}
    total = count = 0.0
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or f'route="{route}"' not in m.group(2) or f'method="{method}"' not in m.group(2):
            continue
        name, value = m.group(1), float(m.group(3))
        if name.endswith("_bucket"):
            le = re.search(r'le="([^"]+)"', m.group(2))
            assert le is not None
            bound = float("inf") if le.group(1) == "+Inf" else float(le.group(1))
            buckets[bound] = buckets.get(bound, 0.0) + value
        elif name.endswith("_sum"):
            total += value
        elif name.endswith("_count"):
            count += value
    return buckets, total, count


def between(before: Histogram, after: Histogram) -> dict[str, Any]:
    """What the API timed between two scrapes: the count, the mean, and the bucket bound
    under which half and 99 % of the requests were answered, in ms."""
    buckets = {b: n - before[0].get(b, 0.0) for b, n in after[0].items()}
    count = after[2] - before[2]
    out: dict[str, Any] = {"count": int(count)}
    if count > 0:
        out["mean_ms"] = round((after[1] - before[1]) / count * 1000, 3)
        for q in (50, 99):
            bound = next(b for b in sorted(buckets) if buckets[b] >= count * q / 100)
            out[f"p{q}_at_most_ms"] = None if bound == float("inf") else bound * 1000
    return out


def cpu_s(pid: int) -> float:
    """CPU seconds (user and system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
