"""`bourse oms run` as its own process: SIGTERM drains, one writer per store, one clear line
when Redis or the store cannot be reached."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select
from typer.testing import CliRunner

from serving.cli import app
from tests.trading.builders import make_engine
from tests.trading.bus.hostproc import QuotePump, host_command, start_host, wait_ready
from trading.bus.client import CommandClient
from trading.catalogue import default_catalogue
from trading.commands import Deposit, OpenAccount, SubmitOrder
from trading.errors import WriterLockHeld
from trading.store import schema as s
from trading.store.lock import WriterLock
from trading.validate import order_request


def _run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _dsn_arg(store_dsn: str) -> str | None:
    return None if store_dsn.startswith("sqlite") else store_dsn


def _home(tmp_path: Path, store_dsn: str) -> Path:
    # On SQLite the store is the home's bourse.db, as store_dsn names it.
    return Path(store_dsn.removeprefix("sqlite:///")).parent if store_dsn.startswith("sqlite") \
        else tmp_path / "home"  # fmt: skip


def test_sigterm_when_commands_are_in_flight_then_they_are_answered_and_it_exits_0(
    store_dsn: str, redis_url: str, tmp_path: Path
) -> None:
    home = _home(tmp_path, store_dsn)
    log = tmp_path / "host.log"
    proc = start_host(home, _dsn_arg(store_dsn), redis_url, log)
    try:
        wait_ready(proc, log)
        cat = default_catalogue()
        with QuotePump(redis_url), CommandClient(redis.Redis.from_url(redis_url), "t") as client:
            assert client.send(OpenAccount(1), 30).ok
            assert client.send(Deposit(1, "USD", 100_000_000, "d1"), 30).ok
            orders = [
                SubmitOrder(
                    order_request(
                        cat,
                        account_id=1,
                        client_order_id=f"o{i}",
                        symbol="BTC/USD",
                        side="buy" if i % 2 else "sell",
                        qty="0.01",
                    )
                )
                for i in range(300)
            ]
            futures = client.submit_many(orders)
            futures[0][1].result(30)  # some are in, many still queued or in the stream
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, log.read_text()[-3000:]
            answered = [f.result() for _, f in futures if f.done()]
        text = log.read_text()
        assert "Traceback" not in text
        assert "host stopped" in text
        assert answered and all(r.ok for r in answered)
        engine = make_engine(store_dsn)
        with engine.connect() as conn:
            ids = {r[0] for r in conn.execute(select(s.command_log.c.command_id))}
        assert {r.command_id for r in answered} <= ids
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_second_writer_when_one_holds_the_store_then_it_refuses_in_one_line(
    store_dsn: str, redis_url: str, tmp_path: Path
) -> None:
    home = _home(tmp_path, store_dsn)
    dsn = _dsn_arg(store_dsn)
    log = tmp_path / "first.log"
    first = start_host(home, dsn, redis_url, log)
    try:
        wait_ready(first, log)
        second = _run(host_command(home, dsn, redis_url))
        assert second.returncode == 3, second
        assert "writer_lock_held" in second.stderr + second.stdout
        assert "Traceback" not in second.stderr
        sim = CliRunner().invoke(app, ["simulate", "--home", str(home), "--orders", "10",
                                       *(["--dsn", dsn] if dsn else [])])  # fmt: skip
        assert sim.exit_code == 3, sim.output
        assert "writer_lock_held" in sim.output
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
    # Released at exit: the next writer starts (on top of the host's store: --add).
    sim = CliRunner().invoke(app, ["simulate", "--home", str(home), "--orders", "10", "--add",
                                   *(["--dsn", dsn] if dsn else [])])  # fmt: skip
    assert sim.exit_code == 0, sim.output


def test_writer_lock_when_taken_twice_then_the_second_raises_until_released(
    store_dsn: str,
) -> None:
    engine = make_engine(store_dsn)
    other = make_engine(store_dsn)
    with WriterLock(engine) as held:
        assert held.held
        with pytest.raises(WriterLockHeld) as info:
            WriterLock(other).acquire()
        assert info.value.code == "writer_lock_held"
    with WriterLock(other) as again:
        assert again.held


def test_oms_run_when_redis_is_unreachable_then_one_line_and_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = _run(host_command(home, None, "redis://127.0.0.1:1/0"))
    assert done.returncode == 2
    assert "redis_unreachable" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not home.exists()  # a refused start leaves nothing behind


def test_oms_run_when_home_is_a_file_then_one_line_and_exit_2(
    tmp_path: Path, redis_url: str
) -> None:
    home = tmp_path / "afile"
    home.write_text("not a directory")
    done = _run(host_command(home, None, redis_url))
    assert done.returncode == 2, done
    assert "is a file, not a directory" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert home.read_text() == "not a directory"


def test_oms_run_when_the_store_is_unreachable_then_one_line_and_exit_2(
    tmp_path: Path, redis_url: str
) -> None:
    done = _run(host_command(tmp_path, "postgresql://nobody@127.0.0.1:1/none", redis_url))
    assert done.returncode == 2, done
    assert "store_unreachable" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_simulate_when_a_command_failed_with_a_store_error_then_exit_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trading.oms.engine import OMS, Prepared

    real = OMS.commit

    def flaky(self: OMS, prepared: Prepared) -> None:
        # A store that cannot hold withdrawals: isolation fails those commands alone.
        if prepared.batch.new_withdrawals:
            raise RuntimeError("disk full")
        real(self, prepared)

    monkeypatch.setattr(OMS, "commit", flaky)
    result = CliRunner().invoke(app, ["simulate", "--home", str(tmp_path), "--orders", "50"])
    assert result.exit_code == 1, result.output
    assert "store_error" in result.output
    with make_engine(f"sqlite:///{tmp_path}/bourse.db").connect() as conn:
        assert conn.execute(select(func.count()).select_from(s.orders)).scalar_one() > 0
