"""The reconciliation as Dagster runs it: the asset materialized in process, its blocking
check withholding a statements-like downstream asset, the definitions loading, and the
sensors requesting a day's run when its file appears or changes."""

# No `from __future__ import annotations`: Dagster reads the context and resource types.

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import pytest

from assets.defs_recon import (
    ASSETS,
    CHECKS,
    JOBS,
    NO_OPEN_BREAKS,
    SENSORS,
    changed_days,
    dropcopy_sensor,
    reconciliation_breaks,
    settlement_sensor,
)
from assets.partitions import DAILY
from assets.recon.breaks import CSV_COLUMNS
from assets.resources import BourseHome, WarehouseResource
from tests.assets.recon_builders import DAY1, DAY2, build_days, copy_home, extract
from trading.funding_settlement import settlement_dir, settlement_path
from trading.trading_day import trading_date_of
from trading.venues.dropcopy import dropcopy_dir, dropcopy_path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("recon_asset") / "home"
    build_days(home)
    extract(home)
    return home


@pytest.fixture
def home(built: Path, tmp_path: Path) -> Path:
    return copy_home(built, tmp_path / "home")


@dg.asset(partitions_def=DAILY, deps=[reconciliation_breaks])
def statements_like(context: dg.AssetExecutionContext, home: BourseHome) -> None:
    """Stands for daily_statements: leaves a mark when it runs."""
    out = home.reports_dir() / context.partition_key / "statements"
    out.mkdir(parents=True, exist_ok=True)
    (out / "published").write_text("yes")


def _materialize(home: Path, day: dt.date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [reconciliation_breaks, statements_like],
        resources={"home": BourseHome(home=str(home)),
                   "warehouse": WarehouseResource(home=str(home))},
        partition_key=day.isoformat(),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )  # fmt: skip


def _check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == NO_OPEN_BREAKS
    return evaluation


def _published(home: Path, day: dt.date) -> bool:
    return (home / "reports" / day.isoformat() / "statements" / "published").exists()


def test_asset_when_the_day_is_clean_then_check_passes_and_downstream_runs(home: Path) -> None:
    result = _materialize(home, DAY1)

    assert result.success
    assert _check(result).passed
    assert _published(home, DAY1)
    csv_path = home / "reports" / "2026-01-05" / "reconciliation" / "breaks.csv"
    assert csv_path.read_text() == ",".join(CSV_COLUMNS) + "\n"
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {dg.AssetKey("reconciliation_breaks"), dg.AssetKey("statements_like")}


def test_asset_when_a_break_is_open_then_check_fails_and_downstream_is_withheld(
    home: Path,
) -> None:
    path = settlement_path(home, DAY2)
    path.write_text(path.read_text().replace("3000.00", "3000.50"))

    result = _materialize(home, DAY2)

    evaluation = _check(result)
    assert not evaluation.passed
    assert evaluation.metadata["open_breaks"] == dg.IntMetadataValue(1)
    assert not _published(home, DAY2)
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {dg.AssetKey("reconciliation_breaks")}
    lines = (home / "reports" / "2026-01-06" / "reconciliation" / "breaks.csv").read_text()
    assert lines.splitlines()[1].startswith("2026-01-06,amount_mismatch,pay-3,")


def test_definitions_when_loaded_then_the_asset_check_job_and_sensors_resolve(
    tmp_path: Path,
) -> None:
    defs = dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=JOBS,
        sensors=SENSORS,
        resources={"home": BourseHome(home=str(tmp_path)),
                   "warehouse": WarehouseResource(home=str(tmp_path))},
    )  # fmt: skip

    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("reconciliation")
    assert job.partitions_def == DAILY
    specs = list(defs.resolve_assets_def("reconciliation_breaks").check_specs)
    assert [(s.name, s.blocking) for s in specs] == [(NO_OPEN_BREAKS, True)]
    assert {s.name for s in SENSORS} == {"dropcopy_files", "settlement_files"}


def _evaluate(
    sensor: dg.SensorDefinition, home: Path, cursor: str | None
) -> tuple[list[str], str | None]:
    context = dg.build_sensor_context(cursor=cursor, resources={"home": BourseHome(home=str(home))})
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    keys = [r.partition_key for r in result.run_requests or [] if r.partition_key]
    return keys, result.cursor


def test_sensor_when_files_appear_or_change_then_their_days_are_requested_once(
    home: Path,
) -> None:
    keys, cursor = _evaluate(dropcopy_sensor, home, None)
    assert keys == ["2026-01-05", "2026-01-06"]

    again, cursor = _evaluate(dropcopy_sensor, home, cursor)
    assert again == []

    path = dropcopy_path(dropcopy_dir(home), "2026-01-05")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed, _ = _evaluate(dropcopy_sensor, home, cursor)
    assert changed == ["2026-01-05"]


def test_sensor_when_a_file_is_of_the_open_day_or_not_a_day_then_it_waits(home: Path) -> None:
    directory = settlement_dir(home)
    today = trading_date_of(__import__("time").time_ns())
    (directory / f"{today.isoformat()}.csv").write_text("provider_ref\n")
    (directory / "notes.csv").write_text("x\n")

    keys, _ = _evaluate(settlement_sensor, home, None)

    on_disk = sorted(p.stem for p in directory.glob("20*.csv") if p.stem != today.isoformat())
    assert keys == on_disk and today.isoformat() not in keys


def test_changed_days_when_the_directory_is_absent_then_nothing(tmp_path: Path) -> None:
    assert changed_days(tmp_path / "none", {"x.csv": 1}, before=DAY2) == ([], {})
