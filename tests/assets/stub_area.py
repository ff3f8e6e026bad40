"""A stand-in area for the tests of the wiring: assets under the real keys the other areas
define (``reconciliation_breaks`` with its blocking check ``no_open_breaks``,
``daily_statements``, ``monthly_statements``, ``tax_statements``), doing the least that
shows the jobs, schedules and ``bourse reports`` behave: each writes one file where the
output layout says.

Breaks are injected by a file ``HOME/stub_breaks.csv`` (its lines are the breaks).
No ``from __future__ import annotations``: Dagster reads the resource annotations.
"""

import dagster as dg

from assets.partitions import DAILY, MONTHLY, YEARLY
from assets.resources import BourseHome

INJECTED = "stub_breaks.csv"


@dg.asset(key="reconciliation_breaks", partitions_def=DAILY, deps=["store_extract"])
def reconciliation_breaks(context: dg.AssetExecutionContext, home: BourseHome) -> None:
    out = home.reports_dir() / context.partition_key / "reconciliation"
    out.mkdir(parents=True, exist_ok=True)
    injected = home.path / INJECTED
    lines = injected.read_text().splitlines() if injected.exists() else []
    (out / "breaks.csv").write_text("\n".join(["kind,detail", *lines]) + "\n")


@dg.asset_check(asset="reconciliation_breaks", name="no_open_breaks", blocking=True)
def no_open_breaks(context: dg.AssetCheckExecutionContext, home: BourseHome) -> dg.AssetCheckResult:
    del context
    injected = home.path / INJECTED
    count = len(injected.read_text().splitlines()) if injected.exists() else 0
    return dg.AssetCheckResult(passed=count == 0, metadata={"open_breaks": count})


@dg.asset(key="daily_statements", partitions_def=DAILY, deps=["reconciliation_breaks"])
def daily_statements(context: dg.AssetExecutionContext, home: BourseHome) -> None:
    out = home.reports_dir() / context.partition_key / "statements"
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.csv").write_text("account_id\n")


@dg.asset(key="monthly_statements", partitions_def=MONTHLY, deps=["store_extract"])
def monthly_statements(context: dg.AssetExecutionContext, home: BourseHome) -> None:
    out = home.reports_dir() / "monthly" / context.partition_key[:7]
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.csv").write_text("account_id\n")


@dg.asset(key="tax_statements", partitions_def=YEARLY, deps=["store_extract"])
def tax_statements(context: dg.AssetExecutionContext, home: BourseHome) -> None:
    out = home.reports_dir() / "tax" / context.partition_key
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.csv").write_text("account_id\n")


@dg.sensor(name="stub_drop_copy_sensor", asset_selection=["reconciliation_breaks"])
def drop_copy_sensor() -> dg.SkipReason:
    return dg.SkipReason("no new drop copy")


ASSETS = [reconciliation_breaks, daily_statements, monthly_statements, tax_statements]
CHECKS = [no_open_breaks]
SCHEDULES: list[dg.ScheduleDefinition] = []
SENSORS = [drop_copy_sensor]
JOBS: list[dg.JobDefinition] = []
