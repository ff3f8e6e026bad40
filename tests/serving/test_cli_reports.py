"""``bourse reports``, checked from outside: run (the end-of-day job for a date), monthly,
tax; bad input and a missing store or busy warehouse refused before anything runs.

The home is written by ``bourse simulate --days 2`` (clients, the venue's drop copy, the
payment provider's settlement files, a rollover between the days), so the real areas run:
the reconciliation, the statements, the regulatory report, the risk reports and the bars.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from assets import definitions
from assets.warehouse.client import Warehouse
from serving.cli import app
from trading.store import schema as s
from trading.store.engine import open_engine

runner = CliRunner()
DAY = "2026-01-05"  # the simulation's first trading day (it starts that Monday)


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def _own_dagster_home(monkeypatch: pytest.MonkeyPatch) -> None:
    # The command points DAGSTER_HOME at DIR/dagster in its own process: restored after.
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("BOURSE_WAREHOUSE_DSN", raising=False)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("simulated") / "home"
    code, output = _run("simulate", "--home", str(root), "--accounts", "5", "--orders", "240",
                        "--seed", "21", "--days", "2")  # fmt: skip
    assert code == 0, output
    return root


@pytest.fixture
def home(simulated: Path, tmp_path: Path) -> Path:
    # Each test works on its own copy: reports, the warehouse and breaks stay its own.
    root = tmp_path / "home"
    shutil.copytree(simulated, root)
    return root


SUMMARY = (
    "currency,opening_balance,deposits,withdrawals,realized_pnl,commission,financing,"
    "closing_balance,unrealized_pnl,equity"
)
TAX = (
    "account_id,symbol,quantity,date_acquired,date_sold,proceeds,cost_basis,gain_loss,term,"
    "currency,lot_id,close_exec_id"
)


def _store_count(home: Path, table: str) -> int:
    engine = open_engine(f"sqlite:///{home}/bourse.db")
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(s.metadata.tables[table])).scalar_one()
    engine.dispose()
    return int(n)


def test_reports_run_when_a_day_is_given_then_the_mirror_is_refreshed_and_the_run_recorded(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = _run("reports", "run", "--home", str(home), "--date", DAY)

    assert code == 0, output
    assert "store_extract" in output and "Traceback" not in output
    with Warehouse(f"chdb://{home}/warehouse") as wh:
        orders = wh.scalar("SELECT count() FROM orders FINAL")
        fills = wh.scalar("SELECT count() FROM executions")
    assert orders == _store_count(home, "orders") > 0
    assert fills == _store_count(home, "executions") > 0
    # The run is in the instance under the home, the one `bourse reports dagster` serves.
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))  # the yaml's storage base_dir
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    runs = instance.get_runs()
    assert [r.job_name for r in runs] == [definitions.END_OF_DAY]
    assert runs[0].status == dg.DagsterRunStatus.SUCCESS
    instance.dispose()


def test_reports_run_when_no_breaks_then_every_output_is_written_and_exit_0(home: Path) -> None:
    code, output = _run("reports", "run", "--home", str(home), "--date", DAY)

    assert code == 0, output
    day = home / "reports" / DAY
    assert (day / "reconciliation" / "breaks.csv").read_text().splitlines()[1:] == []
    accounts = _store_count(home, "accounts")
    folders = sorted(p for p in (day / "statements").iterdir() if p.is_dir())
    assert len(folders) == accounts > 0
    for folder in folders:
        assert {p.name for p in folder.iterdir()} >= {
            "summary.csv", "trades.csv", "positions.csv", "statement.pdf",
        }  # fmt: skip
        assert (folder / "summary.csv").read_text().splitlines()[0] == SUMMARY
    fills = sum(1 for row in csv.DictReader((day / "regulatory" / "transactions.csv").open()))
    assert fills > 0 and (day / "regulatory" / "transactions.xml").stat().st_size > 0
    assert any((day / "risk").iterdir())
    assert str(day) in output.replace("\n", "")
    assert "no_open_breaks" in output and "passed" in output


def test_reports_run_when_a_day_has_no_activity_then_empty_reports_and_exit_0(home: Path) -> None:
    code, output = _run("reports", "run", "--home", str(home), "--date", "2026-01-10")  # Sat

    assert code == 0, output
    day = home / "reports" / "2026-01-10"
    assert (day / "reconciliation" / "breaks.csv").read_text().splitlines()[1:] == []
    rows = (day / "regulatory" / "transactions.csv").read_text().splitlines()
    assert len(rows) == 1  # the header
    for folder in (p for p in (day / "statements").iterdir() if p.is_dir()):
        summary = list(csv.DictReader((folder / "summary.csv").open()))
        assert all(r["opening_balance"] == r["closing_balance"] for r in summary)


def test_reports_run_when_breaks_are_open_then_breaks_written_statements_withheld_exit_1(
    home: Path,
) -> None:
    copy = home / "venues" / "bbook" / "dropcopy" / f"{DAY}.csv"
    lines = copy.read_text().splitlines()
    header = lines[0].split(",")
    fill = next(
        i
        for i, line in enumerate(lines[1:], 1)
        if line.split(",")[header.index("qty")] not in ("0", "0.0")
    )
    cells = lines[fill].split(",")
    exec_id = cells[header.index("exec_id")]
    price = cells[header.index("price")]
    cells[header.index("price")] = price + "1" if "." in price else price + ".1"
    lines[fill] = ",".join(cells)
    copy.write_text("\n".join(lines) + "\n")

    code, output = _run("reports", "run", "--home", str(home), "--date", DAY)

    assert code == 1, output
    day = home / "reports" / DAY
    breaks = list(csv.DictReader((day / "reconciliation" / "breaks.csv").open()))
    assert [b["kind"] for b in breaks] == ["price_mismatch"]
    assert exec_id in (day / "reconciliation" / "breaks.csv").read_text()
    assert not (day / "statements").exists()
    assert "open breaks" in output and "statements withheld" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("date", "message"),
    [
        ("2026-02-30", "not a date (YYYY-MM-DD): '2026-02-30'"),
        ("05/01/2026", "not a date (YYYY-MM-DD)"),
        ("2019-12-31", "no report day 2019-12-31"),
        ("2999-01-01", "no report day 2999-01-01"),
    ],
)
def test_reports_run_when_the_date_is_bad_then_exit_2_and_nothing_written(
    home: Path, date: str, message: str
) -> None:
    before = sorted(p.name for p in home.iterdir())

    code, output = _run("reports", "run", "--home", str(home), "--date", date)

    assert code == 2, output
    assert message in output.replace("\n", "")
    assert "Traceback" not in output
    assert sorted(p.name for p in home.iterdir()) == before


def test_reports_run_when_there_is_no_store_then_exit_2_and_nothing_created(tmp_path: Path) -> None:
    code, output = _run("reports", "run", "--home", str(tmp_path / "none"), "--date", DAY)

    assert code == 2, output
    assert "no store" in output and "bourse simulate" in output
    assert "Traceback" not in output
    assert not (tmp_path / "none").exists()


def test_reports_run_when_the_warehouse_is_open_elsewhere_then_exit_2(home: Path) -> None:
    with Warehouse(f"chdb://{home}/warehouse"):
        code, output = _run("reports", "run", "--home", str(home), "--date", DAY)

    assert code == 2, output
    assert "open in another process" in output.replace("\n", " ")
    assert not (home / "dagster").exists()


def test_reports_tax_and_monthly_then_their_period_is_written(home: Path) -> None:
    code, output = _run("reports", "tax", "--home", str(home), "--year", "2026")
    assert code == 0, output
    tax = home / "reports" / "tax" / "2026"
    sheets = sorted(tax.glob("*.csv"))
    assert sheets and all(p.with_suffix(".pdf").exists() for p in sheets)
    assert all(p.read_text().splitlines()[0] == TAX for p in sheets)
    rows = sum(len(p.read_text().splitlines()) - 1 for p in sheets)
    assert rows == _store_count(home, "lot_closures") > 0

    code, output = _run("reports", "monthly", "--home", str(home), "--month", "2026-01")
    assert code == 0, output
    monthly = home / "reports" / "monthly" / "2026-01" / "statements"
    assert len([p for p in monthly.iterdir() if p.is_dir()]) == _store_count(home, "accounts")

    code, output = _run("reports", "monthly", "--home", str(home), "--month", "2026-13")
    assert code == 2 and "not a month (YYYY-MM)" in output, output
    code, output = _run("reports", "tax", "--home", str(home), "--year", "2019")
    assert code == 2 and "no tax year 2019" in output, output


def test_reports_run_when_the_store_is_postgresql_then_it_is_read_from_there(
    tmp_path: Path, pg_dsn: str
) -> None:
    home = tmp_path / "home"
    code, output = _run("simulate", "--home", str(home), "--dsn", pg_dsn, "--accounts", "3",
                        "--orders", "80", "--seed", "22", "--days", "1")  # fmt: skip
    assert code == 0, output
    engine = open_engine(pg_dsn)
    with engine.connect() as conn:
        orders = conn.execute(select(func.count()).select_from(s.orders)).scalar_one()
    engine.dispose()

    code, output = _run("reports", "run", "--home", str(home), "--dsn", pg_dsn, "--date", DAY)

    assert code == 0, output
    with Warehouse(f"chdb://{home}/warehouse") as wh:
        assert wh.scalar("SELECT count() FROM orders FINAL") == orders > 0
    assert not (home / "bourse.db").exists()  # no SQLite store made beside it


def test_reports_run_when_postgresql_is_unreachable_then_one_line_and_exit_2(
    tmp_path: Path,
) -> None:
    dsn = "postgresql://bourse@127.0.0.1:1/bourse"  # port 1: nothing listens

    code, output = _run("reports", "run", "--home", str(tmp_path), "--dsn", dsn, "--date", DAY)

    assert code == 2, output
    assert "no store" in output and "Traceback" not in output


def test_reports_dagster_when_started_then_dagster_dev_runs_on_the_home_with_signals_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        seen.update(path=path, argv=argv, env=env, cwd=os.getcwd(),
                    sigint=signal.getsignal(signal.SIGINT),
                    sigterm=signal.getsignal(signal.SIGTERM))  # fmt: skip

    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.chdir(tmp_path)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell's `&` leaves it
    try:
        code, output = _run("reports", "dagster", "--home", str(tmp_path / "h"), "--port", "3999")
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)

    assert code == 0, output
    dagster_home = tmp_path / "h" / "dagster"
    template = Path(__file__).resolve().parents[2] / "dagster.yaml"
    assert (dagster_home / "dagster.yaml").read_text() == template.read_text()
    assert seen["argv"][1:] == [
        "dev", "-m", "assets.definitions", "--host", "127.0.0.1", "--port", "3999",
    ]  # fmt: skip
    assert seen["env"]["DAGSTER_HOME"] == str(dagster_home)
    assert seen["env"]["BOURSE_HOME"] == str(tmp_path / "h")
    assert seen["cwd"] == str(dagster_home)
    # SIGTERM reaches dagster dev's handler (it maps SIGTERM onto SIGINT's).
    assert seen["sigint"] == signal.SIG_DFL and seen["sigterm"] == signal.SIG_DFL


def test_reports_run_when_the_warehouse_server_is_unreachable_then_one_line_and_exit_2(
    home: Path,
) -> None:
    dsn = "http://analyst:s3cret@127.0.0.1:1"  # port 1: nothing listens

    code, output = _run("reports", "run", "--home", str(home), "--warehouse", dsn, "--date", DAY)

    assert code == 2, output
    text = output.replace("\n", " ")
    assert "unreachable: connection refused" in text and "Traceback" not in output
    assert "s3cret" not in output and "analyst:***@" in text
    assert not (home / "reports").exists()
