"""``bourse pipelines ticks``: the contract checked from outside."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.ticks import lake
from serving.cli import app
from tests.pipelines.test_flow import BINANCE_TRADES, TRUEFX

runner = CliRunner()


def _count(output: str, label: str) -> int:
    match = re.search(rf"{re.escape(label)}\s*│?\s*([\d,]+)", output)
    assert match, f"no {label!r} in:\n{output}"
    return int(match.group(1).replace(",", ""))


def test_cli_ticks_when_a_vendor_file_replays_then_counts_by_reason_and_lake(
    tmp_path: Path,
) -> None:
    # Act
    result = runner.invoke(app, ["pipelines", "ticks", "--source", str(TRUEFX),
                                 "--format", "truefx", "--home", str(tmp_path)])  # fmt: skip
    # Assert
    assert result.exit_code == 0, result.output
    assert _count(result.output, "accepted") == 999
    assert _count(result.output, "rejected: locked") == 1
    assert lake.read(tmp_path / "lake").height == 999


def test_cli_ticks_when_a_directory_then_every_file_of_the_format(tmp_path: Path) -> None:
    # Arrange
    src = tmp_path / "src"
    src.mkdir()
    (src / "btcusdt-trades-a.parquet").write_bytes(BINANCE_TRADES.read_bytes())
    (src / "btcusdt-trades-b.parquet").write_bytes(BINANCE_TRADES.read_bytes())
    # Act
    result = runner.invoke(app, ["pipelines", "ticks", "--source", str(src), "--format",
                                 "binance-trades", "--home", str(tmp_path / "h")])  # fmt: skip
    # Assert
    assert result.exit_code == 0, result.output
    assert _count(result.output, "accepted") == 2 * 2_001


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "nowhere.csv", "--format", "histdata"], "nowhere.csv"),
        (["--source", str(TRUEFX), "--format", "bloomberg"], "--format must be one of"),
        (["--source", str(TRUEFX), "--format", "truefx", "--sink", "kafka"], "unknown sink"),
        (["--source", "synthetic", "--ticks", "10"], "needs --symbols"),
        (["--source", "synthetic", "--symbols", "EURUSD"], "--ticks"),
        (["--source", "synthetic", "--symbols", "NOPE", "--ticks", "5"], "NOPE"),
    ],
)
def test_cli_ticks_when_arguments_are_wrong_then_exit_2_with_a_clear_error(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["pipelines", "ticks", "--home", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "lake").exists()
