"""``bourse pipelines ticks --source fix:VENUES.toml --live``: FIX market data from an LP
(tests/fix/mdsim.py on loopback) screened by the live tick flow, into the lake and Redis."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import redis
from typer.testing import CliRunner

from serving.cli import app
from tests.fix.counterparties import CounterpartyError
from tests.fix.mdsim import Quote, start_mdsim
from tests.servers import free_port
from trading.quotes import QUOTES_STREAM, quote_from_fields, quote_key

runner = CliRunner()
# Crypto trades every day: the quotes are in session whenever this runs.
SCRIPT: dict[str, list[Quote]] = {
    "BTC/USDT": [
        ("43000.15", "43000.40", "1.5", "2"),
        ("43000.20", "43000.45", "1", "3"),
        (None, "43000.50", None, "0.25"),  # a one-sided book: rejected as missing_price
        ("43000.10", "43000.35", "0.00000001", "5"),
    ],
    "ETH/USDT": [("2300.10", "2300.25", "10", "12")],
}
DURATION_S = 6  # the run's length: the script plays within its first second once logged on


def _venues(path: Path, port: int, *, market_data: bool = True) -> Path:
    path.write_text(f"""
default_route = "bbook"

[[lp]]
name = "mdlp"
host = "127.0.0.1"
port = {port}
begin_string = "FIX.4.4"
sender_comp_id = "CLIENT"
target_comp_id = "MDSIM"
reconnect_s = 1
market_data = {"true" if market_data else "false"}
""")
    return path


def _units(text: str, precision: int) -> int:
    return int(Decimal(text) * 10**precision)


def test_cli_ticks_fix_when_an_lp_streams_quotes_then_they_are_screened_into_lake_and_redis(
    tmp_path: Path, redis_url: str
) -> None:
    # Arrange
    try:
        sim = start_mdsim(tmp_path / "mdsim", SCRIPT)
    except CounterpartyError as exc:
        pytest.fail(str(exc), pytrace=False)
    venues = _venues(tmp_path / "venues.toml", sim.port)
    home = tmp_path / "home"
    home.mkdir()
    # Act: SOL/USD is in the catalogue, not at the LP: its subscription is refused
    with sim:
        result = runner.invoke(app, [
            "pipelines", "ticks", "--source", f"fix:{venues}", "--live",
            "--symbols", "BTCUSDT,ETH/USDT,SOL/USD", "--duration", str(DURATION_S),
            "--sink", "lake,redis", "--redis-url", redis_url, "--home", str(home),
        ])  # fmt: skip
    # Assert: every quote the LP sent was screened; the one-sided one rejected
    assert result.exit_code == 0, result.output
    sent = sum(len(q) for q in SCRIPT.values())
    found = re.search(r"([\d,]+) quotes sent in [\d.]+ s: ([\d,]+) accepted, ([\d,]+) rejected",
                      result.output)  # fmt: skip
    assert found, result.output
    assert [int(g) for g in found.groups()] == [sent, sent - 1, 1]
    assert "missing_price: 1" in result.output

    ticks = pl.read_parquet(home / "lake" / "ticks" / "**" / "*.parquet").sort("source_seq")
    btc = ticks.filter(pl.col("symbol") == "BTC/USDT")
    one_sided = {2}
    want = [q for i, q in enumerate(SCRIPT["BTC/USDT"]) if i not in one_sided]
    assert btc["bid"].to_list() == [_units(q[0] or "", 2) for q in want]
    assert btc["ask"].to_list() == [_units(q[1] or "", 2) for q in want]
    assert btc["ask_size"].to_list() == [_units(q[3] or "", 8) for q in want]
    assert btc["bid_size"].to_list()[-1] == 1  # 0.00000001 BTC: one SIZE_SCALE unit
    assert set(btc["source"].to_list()) == {"fix:mdlp|BTC/USDT"}
    assert btc["source_seq"].to_list() == [0, 1, 3]
    rejected = pl.read_parquet(home / "lake" / "ticks_rejected" / "**" / "*.parquet")
    assert rejected.select("symbol", "source_seq", "reason").rows() == [
        ("BTC/USDT", 2, "missing_price")
    ]
    # Redis: each symbol's snapshot is its last accepted quote
    client = redis.Redis.from_url(redis_url)
    try:
        last_btc = quote_from_fields("BTC/USDT", client.hgetall(quote_key("BTC/USDT")))
        assert (last_btc.bid, last_btc.ask) == (_units("43000.10", 2), _units("43000.35", 2))
        last_eth = quote_from_fields("ETH/USDT", client.hgetall(quote_key("ETH/USDT")))
        assert (last_eth.bid, last_eth.ask) == (_units("2300.10", 2), _units("2300.25", 2))
        # The stream is conflated (one entry per symbol per batch): between one per symbol
        # and one per accepted quote.
        assert len(SCRIPT) <= client.xlen(QUOTES_STREAM) <= sent - 1
    finally:
        client.close()


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("unreachable", "is not reachable"),
        ("no market data", "no [[lp]] has market_data = true"),
        ("not live", "add --live"),
        ("rate", "--rate applies to the synthetic source"),
    ],
)
def test_cli_ticks_fix_when_the_source_cannot_work_then_exit_2_naming_the_problem(
    tmp_path: Path, redis_url: str, case: str, says: str
) -> None:
    # Arrange: a port nothing listens on
    venues = _venues(tmp_path / "venues.toml", free_port(), market_data=case != "no market data")
    args = ["pipelines", "ticks", "--source", f"fix:{venues}", "--symbols", "BTCUSDT",
            "--duration", "1", "--sink", "redis", "--redis-url", redis_url,
            "--home", str(tmp_path)]  # fmt: skip
    if case != "not live":
        args.append("--live")
    if case == "rate":
        args += ["--rate", "5"]
    # Act
    result = runner.invoke(app, args)
    # Assert
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    with redis.Redis.from_url(redis_url) as client:
        assert client.xlen(QUOTES_STREAM) == 0


def test_cli_ticks_fix_when_interrupted_then_it_logs_out_and_exits_0(tmp_path: Path) -> None:
    # Arrange: importing quickfix resets SIGINT to the C default; the CLI must put Python's
    # handler back, or Ctrl-C kills it before the logout.
    try:
        sim = start_mdsim(tmp_path / "mdsim", SCRIPT)
    except CounterpartyError as exc:
        pytest.fail(str(exc), pytrace=False)
    venues = _venues(tmp_path / "venues.toml", sim.port)
    home = tmp_path / "home"
    home.mkdir()
    bourse = Path(sys.executable).with_name("bourse")
    with sim:
        run = subprocess.Popen(
            [str(bourse), "pipelines", "ticks", "--source", f"fix:{venues}", "--live",
             "--symbols", "BTCUSDT", "--sink", "lake", "--home", str(home)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            # Act: once quotes are in the lake, Ctrl-C
            lake = home / "lake" / "ticks"
            deadline = time.monotonic() + 60
            while not list(lake.rglob("*.parquet")) and time.monotonic() < deadline:
                assert run.poll() is None, run.communicate()[0]
                time.sleep(0.1)
            run.send_signal(signal.SIGINT)
            output = run.communicate(timeout=60)[0]
        finally:
            if run.poll() is None:
                run.kill()
        log = sim.log()
    # Assert
    assert run.returncode == 0, output
    assert "Received logout request" in log, log[-2000:]  # the session logged out
