"""The wiring: the definitions load with whichever areas a build holds, the jobs select by
key, the schedules run the day, month and year that just closed, and dagster.yaml is an
instance Dagster accepts with one run at a time and retries."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from assets import definitions as d
from assets.partitions import DAILY, MONTHLY, YEARLY

ROOT = Path(__file__).resolve().parents[2]
# The extract and the stand-in area alone: the real areas define the same keys.
WITH_STUB = ("assets.defs_extract", "tests.assets.stub_area")


def _present_areas() -> list[str]:
    return [name for name in d.AREAS if (ROOT / (name.replace(".", "/") + ".py")).exists()]


def test_definitions_when_loaded_then_every_area_definition_is_listed() -> None:
    dg.Definitions.validate_loadable(d.defs)
    modules = [__import__(name, fromlist=["ASSETS"]) for name in _present_areas()]

    graph = d.defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    checks = {c.name for c in graph.asset_check_keys}
    expected_keys = {k.to_user_string() for m in modules for a in m.ASSETS for k in a.keys}
    expected_checks = {c.name for m in modules for c_def in m.CHECKS for c in c_def.check_keys}
    # A check may also be declared on its asset (check_specs), as the blocking one is.
    expected_checks |= {c.name for m in modules for a in m.ASSETS for c in a.check_keys}

    assert "assets.defs_extract" in _present_areas()
    assert keys >= {
        "store_extract", "lake_ticks", "bars", "risk_reports", "reconciliation_breaks",
        "daily_statements", "monthly_statements", "tax_statements", "regulatory_report",
    }  # fmt: skip
    assert checks >= {"no_open_breaks", "bars_cover_ticks"}
    assert keys == expected_keys
    assert checks == expected_checks
    schedules = {s.name for s in d.defs.schedules or []}
    sensors = {s.name for s in d.defs.sensors or []}
    assert {s.name for m in modules for s in m.SCHEDULES} <= schedules
    assert {s.name for m in modules for s in m.SENSORS} == sensors
    assert "end_of_day_schedule" in schedules


def test_definitions_when_only_the_extract_exists_then_end_of_day_alone_unpartitioned() -> None:
    defs = d.build_definitions(d.resources_for("/tmp/unused"), areas=("assets.defs_extract",))

    jobs = {j.name: j for j in defs.resolve_all_job_defs() if not j.name.startswith("__")}

    assert set(jobs) == {d.END_OF_DAY}
    assert jobs[d.END_OF_DAY].partitions_def is None
    nodes = [n.name for n in jobs[d.END_OF_DAY].nodes_in_topological_order]
    assert nodes == ["store_extract"]
    schedule = defs.resolve_schedule_def("end_of_day_schedule")
    request = schedule(dg.build_schedule_context(scheduled_execution_time=_ny(2026, 3, 2, 17, 15)))
    assert isinstance(request, dg.RunRequest) and request.partition_key is None


def test_definitions_when_every_area_exists_then_jobs_select_their_assets_by_key() -> None:
    defs = d.build_definitions(d.resources_for("/tmp/unused"), areas=WITH_STUB)
    dg.Definitions.validate_loadable(defs)

    eod = defs.resolve_job_def(d.END_OF_DAY)
    monthly = defs.resolve_job_def(d.MONTHLY_STATEMENTS)
    yearly = defs.resolve_job_def(d.YEARLY_TAX)

    assert eod.partitions_def == DAILY
    assert monthly.partitions_def == MONTHLY
    assert yearly.partitions_def == YEARLY
    assert _assets(eod) == {"store_extract", "reconciliation_breaks", "daily_statements"}
    assert _assets(monthly) == {"store_extract", "monthly_statements"}
    assert _assets(yearly) == {"store_extract", "tax_statements"}
    # The blocking check runs in the end-of-day job, between the breaks and the statements.
    assert "reconciliation_breaks_no_open_breaks" in {
        n.name for n in eod.nodes_in_topological_order
    }
    assert {s.name for s in defs.sensors or []} == {"stub_drop_copy_sensor"}


def _assets(job: dg.JobDefinition) -> set[str]:
    return {k.to_user_string() for k in job.asset_layer.executable_asset_keys}


def _ny(*args: int) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime(*args, tzinfo=ZoneInfo("America/New_York"))


@pytest.mark.parametrize(
    ("job", "when", "key"),
    [
        # Monday's trading day closes at 17:00 New York: the 17:15 run is that date's.
        (d.END_OF_DAY, (2026, 3, 2, 17, 15), "2026-03-02"),
        # The Monday after the clocks went forward (17:15 EDT is 21:15 UTC).
        (d.END_OF_DAY, (2026, 3, 9, 17, 15), "2026-03-09"),
        # New Year's Eve's run, late in UTC terms already the next year (22:15 UTC).
        (d.END_OF_DAY, (2026, 12, 31, 17, 15), "2026-12-31"),
        (d.MONTHLY_STATEMENTS, (2026, 4, 1, 6, 0), "2026-03-01"),
        (d.MONTHLY_STATEMENTS, (2027, 1, 1, 6, 0), "2026-12-01"),
        (d.YEARLY_TAX, (2027, 1, 2, 6, 0), "2026"),
    ],
)
def test_schedule_when_it_ticks_then_it_runs_the_period_that_just_closed(
    job: str, when: tuple[int, ...], key: str
) -> None:
    defs = d.build_definitions(d.resources_for("/tmp/unused"), areas=WITH_STUB)
    schedule = defs.resolve_schedule_def(d.schedule_name(job))
    context = dg.build_schedule_context(scheduled_execution_time=_ny(*when))

    request = schedule(context)

    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == key
    assert schedule.execution_timezone == "America/New_York"
    assert schedule.job_name == job


def test_end_of_day_schedule_when_read_then_weekdays_at_17_15_new_york() -> None:
    schedule = d.defs.resolve_schedule_def("end_of_day_schedule")
    start = _ny(2026, 3, 6, 18, 0)  # a Friday evening
    ticks = []
    from dagster._utils.schedules import cron_string_iterator

    cron, tz = schedule.cron_schedule, schedule.execution_timezone
    assert isinstance(cron, str)
    for tick in cron_string_iterator(start.timestamp(), cron, tz):
        ticks.append(tick)
        if len(ticks) == 3:
            break

    # Friday's run has passed: Monday, Tuesday, Wednesday at 17:15 local time.
    assert [(t.date().isoformat(), t.hour, t.minute) for t in ticks] == [
        ("2026-03-09", 17, 15),
        ("2026-03-10", 17, 15),
        ("2026-03-11", 17, 15),
    ]


def test_resources_when_read_from_the_environment_then_dsns_stay_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BOURSE_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("BOURSE_WAREHOUSE_DSN", "http://analyst:secret@clickhouse:8123")
    monkeypatch.delenv("BOURSE_DSN", raising=False)

    resources = d.build_definitions(areas=()).resources

    home, warehouse = resources["home"], resources["warehouse"]
    assert home.home == str((tmp_path / "h").resolve())
    assert home.store_dsn == ""  # SQLite under the home
    assert isinstance(warehouse.dsn, dg.EnvVar)
    assert warehouse.dsn.env_var_name == "BOURSE_WAREHOUSE_DSN"


def test_resources_when_no_environment_then_the_home_is_dot_bourse(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("BOURSE_HOME", "BOURSE_DSN", "BOURSE_WAREHOUSE_DSN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    resources = d.build_definitions(areas=()).resources

    assert resources["home"].home == str(tmp_path.resolve() / ".bourse")
    assert resources["warehouse"].dsn == ""


def test_dagster_yaml_when_loaded_then_sqlite_under_dagster_home_one_run_two_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copyfile(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    instance = dg.DagsterInstance.get()

    coordinator = instance.run_coordinator
    assert type(coordinator).__name__ == "QueuedRunCoordinator"
    assert coordinator.get_run_queue_config().max_concurrent_runs == 1  # type: ignore[attr-defined]
    assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
    assert type(instance.run_storage).__name__ == "SqliteRunStorage"
    instance.dispose()
    assert (tmp_path / "history" / "runs.db").exists()


def test_dagster_cli_when_validating_the_definitions_then_they_load(tmp_path: Path) -> None:
    shutil.copyfile(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path), BOURSE_HOME=str(tmp_path / "home"))
    dagster = Path(sys.executable).with_name("dagster")

    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "assets.definitions"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr
