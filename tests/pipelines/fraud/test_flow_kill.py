"""kill -9 of the fraud flow in the middle of the streams, then a resume: the same alerts
and the same holds as an uninterrupted run, none twice (on the alert stream, in the lake,
on the command bus).

The flow runs live (``bytewax.run``, as ``bourse pipelines fraud`` runs it) in a
subprocess, on hand-made events published in chunks while it runs, with a threshold every
score reaches: every event is an alert and every withdrawal request is held by its own.
Once alerts are out and epoch snapshots taken, it is killed with SIGKILL while events are
still arriving; the rest is published and ``--until-idle`` resumes on the same home. The
uninterrupted run reads the same events on another Redis database and another home.
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import redis

from ml.model import FraudModel
from pipelines.fraud.run import ENV_SPEC, recovery_dir, run_fraud
from pipelines.fraud.sinks import ALERTS_STREAM, read_alerts
from pipelines.fraud.sources import LOGINS_STREAM
from pipelines.fraud.spec import FraudSpec
from tests.pipelines.fraud import kit
from trading.bus.commands import COMMANDS_STREAM
from trading.bus.events import RedisStreamsPublisher

ROOT = Path(__file__).resolve().parents[3]
CLIENTS = 60


def _alerts(client: redis.Redis) -> Counter[str]:
    return Counter(f[b"alert_id"].decode() for _, f in client.xrange(ALERTS_STREAM))


def _holds(client: redis.Redis) -> Counter[str]:
    return Counter(f[b"command_id"].decode() for _, f in client.xrange(COMMANDS_STREAM)
                   if f[b"type"] == b"HoldWithdrawal")  # fmt: skip


def _snapshots_taken(recovery: Path) -> int:
    total = 0
    for part in recovery.glob("part-*.sqlite3"):
        with sqlite3.connect(part) as db:
            total += db.execute("SELECT COUNT(*) FROM snaps").fetchone()[0]
    return total


def _wait(what: str, check: object, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert proc.poll() is None, f"the flow exited with {proc.returncode} before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.05)


def _publish(client: redis.Redis, events: list[object], logins: list[dict[str, str]]) -> None:
    RedisStreamsPublisher(client, partitions=4).publish(events)  # type: ignore[arg-type]
    for entry in logins:
        # The same ids on both databases: a login's alert id is made of its stream id.
        client.xadd(LOGINS_STREAM, entry, id=f"{entry['ts_ns']}-0")  # type: ignore[arg-type]


def test_kill_9_mid_stream_then_resume_raises_the_same_alerts_and_holds_none_twice(
    tmp_path: Path, redis_url: str, model: FraudModel
) -> None:
    events = kit.client_events(CLIENTS, per_client=30)
    logins = [kit.login(kit.BASE_NS + i * 10**9, 1 + i % CLIENTS, device=f"dev-{i % 7}")
              for i in range(300)]  # fmt: skip
    n, m = len(events), len(logins)
    cuts = [(0, 0), (n // 4, m // 4), (n // 2, m // 2), (n, m)]
    chunks = [(events[a:b], logins[c:d]) for (a, c), (b, d) in itertools.pairwise(cuts)]
    withdrawals = sum(e.type == "cash.withdrawal_requested" for e in events)
    assert n > 1500 and withdrawals > 200

    ref_url = redis_url.rsplit("/", 1)[0] + "/1"
    ref = redis.Redis.from_url(ref_url)
    kit.promote(tmp_path / "ref", model, threshold=0.0)
    _publish(ref, events, logins)
    run_fraud(FraudSpec(home=str(tmp_path / "ref"), redis_url=ref_url, until_idle=True))
    want_alerts, want_holds = _alerts(ref), _holds(ref)
    assert len(want_alerts) == n - CLIENTS + m  # every event but the openings
    assert len(want_holds) == withdrawals

    live = redis.Redis.from_url(redis_url)
    home = tmp_path / "live"
    kit.promote(home, model, threshold=0.0)
    spec = FraudSpec(home=str(home), redis_url=redis_url)
    recovery = recovery_dir(spec)
    _publish(live, *chunks[0])
    log = (tmp_path / "flow.log").open("wb")
    cmd = [sys.executable, "-m", "bytewax.run", "pipelines.fraud.run:flow_from_env()",
           "-r", str(recovery), "-s", "1", "-b", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, ENV_SPEC: spec.to_json()},
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        _wait("holds", lambda: _holds(live), proc)
        before = _snapshots_taken(recovery)
        _wait("epoch snapshots", lambda: _snapshots_taken(recovery) > before, proc)
        time.sleep(1.5)
        _publish(live, *chunks[1])
        time.sleep(0.3)  # in the middle of the second chunk, or just after it
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    killed = _alerts(live)
    assert 0 < sum(killed.values()) < len(want_alerts)
    _publish(live, *chunks[2])

    run_fraud(FraudSpec(home=str(home), redis_url=redis_url, until_idle=True))

    got_alerts, got_holds = _alerts(live), _holds(live)
    assert got_alerts == want_alerts and set(got_alerts.values()) == {1}
    assert got_holds == want_holds and set(got_holds.values()) == {1}
    lake = read_alerts(home / "lake")["alert_id"].to_list()
    assert sorted(lake) == sorted(want_alerts)
