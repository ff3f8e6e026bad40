"""kill -9 of the positions flow in the middle of a stream, then a resume: the outputs equal
an uninterrupted run's and the store's, and a stop-out in progress is not sent twice.

The flow runs live (``bytewax.run``, as ``bourse pipelines positions`` runs it) in a
subprocess, on a simulated store's thousands of events published in chunks while it runs,
with one hand-made account sinking under its stop-out level. Once its close is on the bus
and the flow has taken epoch snapshots, the flow is killed with SIGKILL while events are
still arriving; the rest is published and ``--until-idle`` resumes on the same home. The
uninterrupted run reads the same events on another Redis database and another home.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import redis

from pipelines.positions.lake import latest_snapshot
from pipelines.positions.redis_out import CHANGES_STREAM
from pipelines.positions.run import ENV_SPEC, recovery_dir
from pipelines.positions.spec import PositionsSpec
from tests.pipelines.positions import flowkit as kit
from trading.bus.commands import COMMANDS_STREAM
from trading.quotes import Quote

ROOT = Path(__file__).resolve().parents[3]
VICTIM = 9001
# 0.25 lot AUD/USD bought at 0.66000 holding 550.00 USD of margin (1:30), 1,000.00 deposited;
# at a bid of 0.63000 it loses 750.00: equity 250.00, level 45.45 % (stop-out at 50 %).
# The simulation trades no AUD/USD, so no other account moves with this quote.
AUDUSD = Quote("AUD/USD", 63_000, 63_010, 1_767_600_000_000_000_000)
VICTIM_EVENTS = [
    kit.opened(VICTIM), kit.deposit(VICTIM, 2, 100_000),
    kit.fill_open(VICTIM, 3, "AUD/USD", 25, 66_000, 55_000, 1),
]  # fmt: skip
TIME_COLUMNS = ("snapshot_ns", "ts_ns")


def _closes(client: redis.Redis) -> Counter[str]:
    """ClosePosition entries on the bus, per command id."""
    return Counter(f[b"command_id"].decode() for _, f in client.xrange(COMMANDS_STREAM)
                   if f[b"type"] == b"ClosePosition")  # fmt: skip


def _snapshots_taken(recovery: Path) -> int:
    """Epoch snapshots the recovery store holds (its ``snaps`` rows, every partition)."""
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


def _frames(home: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    positions, accounts = latest_snapshot(home / "lake")
    return (positions.drop(TIME_COLUMNS).sort("account_id", "symbol"),
            accounts.drop(TIME_COLUMNS).sort("account_id", "currency"))  # fmt: skip


@pytest.mark.slow
def test_kill_9_mid_stream_then_resume_equals_an_uninterrupted_run_and_sends_no_close_twice(
    tmp_path: Path, redis_url: str, store_dsn: str
) -> None:
    engine = kit.simulated_store(store_dsn, accounts=12, orders=1500, seed=7)
    events = kit.outbox(engine)
    assert len(events) > 3000
    config = tmp_path / "positions.toml"
    # No close may time out (and be followed by a next one) while the test runs.
    config.write_text("[flow]\nclose_timeout_s = 3600\n")
    common = {"dsn": store_dsn, "config_path": str(config)}

    # The uninterrupted run, on database 1 and its own home.
    ref_url = redis_url.rsplit("/", 1)[0] + "/1"
    ref = redis.Redis.from_url(ref_url)
    kit.put_quotes(ref, AUDUSD)
    kit.publish(ref, VICTIM_EVENTS + events)
    kit.run(tmp_path / "ref", ref_url, final_ns=time.time_ns(), send_closes=True, **common)

    # The interrupted one.
    live = redis.Redis.from_url(redis_url)
    kit.put_quotes(live, AUDUSD)
    home = tmp_path / "live"
    spec = PositionsSpec(home=str(home), redis_url=redis_url, until_idle=False,
                         send_closes=True, **common)  # type: ignore[arg-type]  # fmt: skip
    recovery = recovery_dir(spec)
    n = len(events)
    chunks = [VICTIM_EVENTS + events[: n // 4], events[n // 4 : n // 2], events[n // 2 :]]
    kit.publish(live, chunks[0])
    log = (tmp_path / "flow.log").open("wb")
    cmd = [sys.executable, "-m", "bytewax.run", "pipelines.positions.run:flow_from_env()",
           "-r", str(recovery), "-s", "1", "-b", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, ENV_SPEC: spec.to_json()},
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        _wait("stop-out close", lambda: _closes(live), proc)
        before = _snapshots_taken(recovery)
        # Epochs close every second: wait for two more, so the close sent is in a snapshot.
        _wait("epoch snapshots", lambda: _snapshots_taken(recovery) > before, proc)
        time.sleep(2.2)
        kit.publish(live, chunks[1])
        time.sleep(0.3)  # in the middle of the second chunk, or just after it
        assert proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert live.xlen(CHANGES_STREAM) > 0 and _snapshots_taken(recovery) > before
    killed_closes = _closes(live)
    kit.publish(live, chunks[2])  # never seen by the killed run: it stopped mid-stream

    kit.run(home, redis_url, final_ns=time.time_ns(), send_closes=True, **common)

    # Equal to the uninterrupted run, row for row (the times aside) ...
    got, want = _frames(home), _frames(tmp_path / "ref")
    assert got[0].height > 20 and got[1].height >= 13
    assert got[0].equals(want[0]) and got[1].equals(want[1])
    # ... and to the store (the hand-made account aside: the store does not know it).
    positions, money = kit.lake_state(home)
    store_positions, store_money = kit.store_state(engine)
    assert {k: v for k, v in positions.items() if k[0] != VICTIM} == store_positions
    assert {k: v for k, v in money.items() if k != VICTIM} == store_money
    assert positions[(VICTIM, "AUD/USD")] == 25
    victim = got[1].filter(pl.col("account_id") == VICTIM).row(0, named=True)
    assert victim["margin_state"] == "stop_out" and victim["margin_level"] == "45.4545"
    # One close per command id, one stop-out close for the victim, as uninterrupted.
    closes = _closes(live)
    assert closes == killed_closes and set(closes.values()) == {1}
    assert [c for c in closes if c.startswith(f"stopout-{VICTIM}-")] == [f"stopout-{VICTIM}-1-1"]
    assert closes == _closes(ref)
