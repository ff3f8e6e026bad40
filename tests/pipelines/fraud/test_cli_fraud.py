"""``bourse pipelines fraud``: one line and exit 2 without Redis or without a model; with
``--until-idle`` on one process and on two, every event is scored once and every withdrawal
held once."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from ml.model import FraudModel
from pipelines.fraud.sinks import ALERTS_STREAM, read_alerts
from serving.cli import app
from tests.pipelines.fraud import kit
from trading.bus.commands import COMMANDS_STREAM
from trading.bus.events import RedisStreamsPublisher

runner = CliRunner()


def test_an_unreachable_redis_is_one_line_and_exit_2(tmp_path: Path) -> None:
    args = ["--home", str(tmp_path), "--redis-url", "redis://127.0.0.1:1/0", "--until-idle"]
    result = runner.invoke(app, ["pipelines", "fraud", *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "127.0.0.1:1" in lines[0]


def test_no_promoted_model_is_one_line_and_exit_2(tmp_path: Path, redis_url: str) -> None:
    result = runner.invoke(app, ["pipelines", "fraud", "--home", str(tmp_path),
                                 "--redis-url", redis_url, "--until-idle"])  # fmt: skip
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "no promoted model" in lines[0], result.output


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_until_idle_scores_every_event_once_and_holds_every_withdrawal_once(
    tmp_path: Path, redis_url: str, model: FraudModel, processes: int
) -> None:
    r = redis.Redis.from_url(redis_url)
    kit.promote(tmp_path, model, threshold=0.0)
    events = kit.client_events(20, per_client=12)
    RedisStreamsPublisher(r, partitions=4).publish(events)
    withdrawals = sorted(int(e.payload.split('"withdrawal_id": ')[1].split(",")[0])
                         for e in events if e.type == "cash.withdrawal_requested")  # fmt: skip

    args = ["--home", str(tmp_path), "--redis-url", redis_url, "--until-idle"]
    result = runner.invoke(app, ["pipelines", "fraud", *args, "--processes", str(processes)])

    assert result.exit_code == 0, result.output
    ids = [f[b"alert_id"].decode() for _, f in r.xrange(ALERTS_STREAM)]
    assert sorted(ids) == sorted(f"fa-e{e.event_id}" for e in events
                                 if e.type != "account.opened")  # fmt: skip
    assert sorted(read_alerts(tmp_path / "lake")["alert_id"].to_list()) == sorted(ids)
    held = [f for _, f in r.xrange(COMMANDS_STREAM) if f[b"type"] == b"HoldWithdrawal"]
    assert sorted(int(f[b"command_id"].split(b"-")[2]) for f in held) == withdrawals
