"""``bourse pipelines ticks --source synthetic --live``: paced quotes stamped with the
current time, screened and published to Redis (pipelines/ticks/live_run.py)."""

from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from serving.cli import app
from trading.catalogue import default_catalogue
from trading.quotes import QUOTES_STREAM, quote_from_fields, quote_key
from trading.sim.pricefeed import REFERENCE_MIDS

runner = CliRunner()


def test_cli_ticks_live_when_run_for_a_while_then_fresh_quotes_reach_redis(
    tmp_path: Path, redis_url: str
) -> None:
    # Arrange: crypto trades every day, so the quotes are in session whenever this runs
    symbols, rate, duration = ("BTC/USDT", "ETH/USD"), 20, 1.5
    before_ns = time.time_ns()
    # Act
    result = runner.invoke(app, [
        "pipelines", "ticks", "--source", "synthetic", "--live", "--symbols", "BTCUSDT,ETHUSD",
        "--rate", str(rate), "--duration", str(duration), "--sink", "redis",
        "--redis-url", redis_url, "--home", str(tmp_path),
    ])  # fmt: skip
    after_ns = time.time_ns()
    # Assert: every quote due in the duration was sent and screened
    assert result.exit_code == 0, result.output
    sent = len(symbols) * int(rate * duration)
    found = re.search(r"([\d,]+) quotes sent in [\d.]+ s: ([\d,]+) accepted", result.output)
    assert found, result.output
    assert int(found.group(1).replace(",", "")) == sent
    assert int(found.group(2).replace(",", "")) > 0
    client = redis.Redis.from_url(redis_url)
    catalogue = default_catalogue()
    for symbol in symbols:
        quote = quote_from_fields(symbol, client.hgetall(quote_key(symbol)))
        # stamped with the time it fell due in this run, not a replay's date
        assert before_ns <= quote.ts_ns <= after_ns
        mid = catalogue.get(symbol).price_from_int((quote.bid + quote.ask) // 2)
        reference = Decimal(REFERENCE_MIDS[symbol])
        assert abs(mid - reference) < reference / 100  # 30 quotes walk a few ticks
    assert client.xlen(QUOTES_STREAM) > 0
    client.close()


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--rate", "5"], "add --live"),
        (["--duration", "1"], "add --live"),
        (["--live", "--rate", "0"], "--rate must be within"),
        (["--live", "--ticks", "100"], "without --ticks"),
        (["--live", "--symbols", "NOPE/XYZ", "--duration", "1"], "NOPE/XYZ"),
    ],
)
def test_cli_ticks_live_when_arguments_are_wrong_then_exit_2_naming_the_problem(
    tmp_path: Path, redis_url: str, extra: list[str], says: str
) -> None:
    # Arrange
    args = ["pipelines", "ticks", "--source", "synthetic", "--home", str(tmp_path),
            "--sink", "redis", "--redis-url", redis_url]  # fmt: skip
    if "--symbols" not in extra:
        args += ["--symbols", "BTCUSDT"]
    # Act
    result = runner.invoke(app, [*args, *extra])
    # Assert
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split()), result.output
    with redis.Redis.from_url(redis_url) as client:
        assert client.xlen(QUOTES_STREAM) == 0
