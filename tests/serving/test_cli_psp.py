"""``bourse psp settle``: the simulated provider's settlement files from the store."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli import app
from tests.assets.recon_builders import DAY1, DAY2, build_days
from trading.funding_settlement import settlement_dir, settlement_path

runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = tmp_path_factory.mktemp("psp") / "home"
    build_days(built)
    return built


def _rows(path: Path) -> list[tuple[str, ...]]:
    with path.open(newline="") as f:
        return [tuple(r[:5]) for r in csv.reader(f)][1:]


def test_psp_settle_when_asked_for_two_days_then_each_day_holds_what_settled(home: Path) -> None:
    for path in settlement_dir(home).glob("*.csv"):
        path.unlink()

    done = runner.invoke(app, ["psp", "settle", "--home", str(home), "--date", "2026-01-05",
                               "--to", "2026-01-06"])  # fmt: skip

    assert done.exit_code == 0, done.output
    # Monday: both opening deposits and the approved 1,000.00 payout (the rejected one is
    # not paid); Tuesday: the 3,000.00 deposit and the 500.00 payout.
    assert sorted(_rows(settlement_path(home, DAY1))) == [
        ("dep-2", "deposit", "2", "USD", "50000.00"),
        ("pay-1", "deposit", "1", "USD", "100000.00"),
        ("withdrawal:1", "withdrawal", "2", "USD", "1000.00"),
    ]
    assert sorted(_rows(settlement_path(home, DAY2))) == [
        ("pay-3", "deposit", "2", "USD", "3000.00"),
        ("withdrawal:3", "withdrawal", "1", "USD", "500.00"),
    ]


@pytest.mark.parametrize(
    "args", [["--date", "2026-13-01"], ["--date", "2026-01-06", "--to", "2026-01-05"]]
)
def test_psp_settle_when_a_date_is_bad_then_exit_2_and_nothing_written(
    tmp_path: Path, args: list[str]
) -> None:
    done = runner.invoke(app, ["psp", "settle", "--home", str(tmp_path), *args])

    assert done.exit_code == 2
    assert not (tmp_path / "psp").exists()


def test_psp_settle_when_there_is_no_store_then_exit_2(tmp_path: Path) -> None:
    done = runner.invoke(app, ["psp", "settle", "--home", str(tmp_path), "--date", "2026-01-05"])

    assert done.exit_code == 2
    assert "no store" in done.output and not (tmp_path / "psp").exists()
