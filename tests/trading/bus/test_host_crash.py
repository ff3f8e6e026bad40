"""Kill -9 of `bourse oms run` under load from several clients, repeated: what was answered
is in the store exactly once, a retry with the same command ids gets the same replies, and
`bourse ledger verify` passes."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select
from typer.testing import CliRunner

from serving.cli import app
from tests.trading.builders import make_engine
from tests.trading.bus.hostproc import QuotePump, start_host, wait_ready
from trading.bus.client import CommandClient
from trading.bus.wire import Reply
from trading.catalogue import default_catalogue
from trading.commands import Deposit, OpenAccount, SubmitOrder
from trading.store import schema as s
from trading.validate import order_request

pytestmark = pytest.mark.slow

CLIENTS = 4
BATCH = 8


class Load:
    """A client thread: orders in small batches, each with its own command id."""

    def __init__(self, url: str, n: int, seed: int) -> None:
        self.n = n
        self.client = CommandClient(redis.Redis.from_url(url), f"client-{n}")
        self.rng = random.Random(seed * 100 + n)
        self.cat = default_catalogue()
        self.sent: dict[str, SubmitOrder] = {}  # command id -> command
        self.answered: dict[str, Reply] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def order(self, i: int) -> SubmitOrder:
        return SubmitOrder(order_request(
            self.cat, account_id=self.n, client_order_id=f"c{self.n}-{i}", symbol="BTC/USD",
            side=self.rng.choice(("buy", "sell")), qty="0.01",
        ))  # fmt: skip

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            ids = [f"k{self.n}-{i + j}" for j in range(BATCH)]
            cmds = [self.order(i + j) for j in range(BATCH)]
            self.sent.update(zip(ids, cmds, strict=True))
            i += BATCH
            for reply in self.client.send_many(cmds, 3.0, command_ids=ids):
                if reply.code != "timeout":
                    self.answered[reply.command_id] = reply

    def retry_all(self) -> dict[str, Reply]:
        ids = list(self.sent)
        replies = self.client.send_many(list(self.sent.values()), 60.0, command_ids=ids)
        return {r.command_id: r for r in replies}


def _trial(seed: int, home: Path, redis_url: str, dsn: str | None) -> None:
    rng = random.Random(seed)
    log = home.parent / f"host-{seed}-a.log"
    host = start_host(home, dsn, redis_url, log)
    try:
        wait_ready(host, log)
        setup = CommandClient(redis.Redis.from_url(redis_url), "setup")
        for n in range(1, CLIENTS + 1):
            assert setup.send(OpenAccount(n), 30).ok
            assert setup.send(Deposit(n, "USD", 10**9, f"seed-{n}"), 30).ok
        loads = [Load(redis_url, n, seed) for n in range(1, CLIENTS + 1)]
        for load in loads:
            load.thread.start()
        deadline = time.monotonic() + 30
        while sum(len(x.answered) for x in loads) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.0))
        host.send_signal(signal.SIGKILL)
        host.wait(30)
        for load in loads:
            load.stop.set()
        for load in loads:
            load.thread.join(30)
        answered = {cid: r for x in loads for cid, r in x.answered.items()}
        assert len(answered) >= 40
        assert all(r.ok for r in answered.values()), [r for r in answered.values() if not r.ok]

        engine = make_engine(f"sqlite:///{home}/bourse.db" if dsn is None else dsn)
        with engine.connect() as conn:
            logged = {r[0] for r in conn.execute(select(s.command_log.c.command_id))}
            orders = dict(
                conn.execute(select(s.orders.c.order_id, s.orders.c.client_order_id)).all()
            )
        assert set(answered) <= logged, "an answered command is not in the store"
        for reply in answered.values():
            result = reply.unwrap()
            assert orders.get(result["order_id"]) == result["client_order_id"]

        log2 = home.parent / f"host-{seed}-b.log"
        host = start_host(home, dsn, redis_url, log2)
        wait_ready(host, log2)
        sent = 0
        for load in loads:
            again = load.retry_all()
            sent += len(load.sent)
            for cid, reply in load.answered.items():
                assert again[cid].text == reply.text, cid
            assert all(r.ok for r in again.values())
            load.client.close()
        setup.close()
        with engine.connect() as conn:
            n_orders = conn.execute(select(func.count()).select_from(s.orders)).scalar_one()
            n_clients = conn.execute(
                select(func.count(func.distinct(s.orders.c.client_order_id)))
            ).scalar_one()
        assert n_orders == n_clients == sent  # every command ran exactly once
        engine.dispose()
        host.send_signal(signal.SIGTERM)
        assert host.wait(60) == 0
        verify = CliRunner().invoke(app, ["ledger", "verify", "--home", str(home),
                                          *(["--dsn", dsn] if dsn else [])])  # fmt: skip
        assert verify.exit_code == 0, verify.output
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_host_when_killed_under_load_on_sqlite_then_answered_commands_survive_once(
    tmp_path: Path, redis_url: str, seed: int
) -> None:
    with QuotePump(redis_url):
        _trial(seed, tmp_path / "home", redis_url, None)


def test_host_when_killed_under_load_on_postgresql_then_answered_commands_survive_once(
    tmp_path: Path, redis_url: str, pg_dsn: str
) -> None:
    with QuotePump(redis_url):
        _trial(7, tmp_path / "home", redis_url, pg_dsn)
