"""``bourse ml simulate``: writes a file ``read_frame`` accepts; a bad argument is one line
and exit 2, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from ml.events import read_frame
from serving.cli import app

runner = CliRunner()


def test_ml_simulate_then_writes_a_labelled_file_and_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "sim" / "events.parquet"
    args = ["ml", "simulate", "--seed", "9", "--clients", "120", "--days", "4", "--out", str(out)]
    result = runner.invoke(app, [*args, "--mix", "ato=0.03,wash_trading=0"])
    assert result.exit_code == 0, result.output
    frame = read_frame(out)
    labelled = frame.filter(pl.col("label") == 1)
    assert "wash_trading" not in set(frame["scenario"])
    assert labelled.filter(pl.col("scenario") == "ato").height == 3 * 4  # 4 victims, 3 each
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith(f"{frame.height} events, {labelled.height} labelled (ato=12 ")
    assert "wash_trading=0" in line


def test_ml_simulate_when_start_given_then_the_file_starts_that_day(tmp_path: Path) -> None:
    out = tmp_path / "e.parquet"
    args = ["ml", "simulate", "--clients", "60", "--days", "2", "--start", "2025-07-01"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    first = read_frame(out)["ts_ns"].min()
    assert isinstance(first, int)
    assert 1_751_328_000 * 10**9 <= first < 1_751_414_400 * 10**9  # 2025-07-01 UTC


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mix", "phishing=0.1"], "unknown fraud kind"),
        (["--mix", "ato"], "is not KIND=SHARE"),
        (["--mix", "ato=lots"], "is not a number"),
        (["--mix", "ato=0.4,cycling=0.4"], "at most 0.5"),
        (["--clients", "0"], "--clients must be 1 or more"),
        (["--clients", "3"], "too few"),
        (["--days", "0"], "--days must be 1 or more"),
        (["--seed", "-1"], "--seed must be 0 or more"),
        (["--start", "2026-02-30"], "not a date"),
    ],
)
def test_ml_simulate_when_bad_argument_then_one_line_and_exit_2(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    out = tmp_path / "e.parquet"
    result = runner.invoke(app, ["ml", "simulate", "--out", str(out), "--days", "1", *extra])
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
