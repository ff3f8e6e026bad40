"""Dagster definitions of the daily reconciliation: the asset, its blocking check, the job
and the sensors on the venue's drop copies and the provider's settlement files.

``reconciliation_breaks`` (daily, after ``store_extract``) runs ``build_reconciliation``
and reports the check ``no_open_breaks`` with its materialization: the check is blocking,
so a day with open breaks materializes nothing downstream in the same run (the daily
statements are withheld) while the breaks are still written. The sensors request the
day's reconciliation when a file of a closed trading day appears or changes (a venue's
late correction, the provider's file arriving after the cut-off); the open day's drop copy,
appended to all day, waits for the end-of-day run.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource types.

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from assets.days import Period, parse_date
from assets.partitions import DAILY
from assets.recon.day import build_reconciliation
from assets.resources import BourseHome, WarehouseResource
from trading.catalogue import default_catalogue
from trading.funding_settlement import settlement_dir
from trading.trading_day import trading_date_of
from trading.venues.dropcopy import dropcopy_dir

NO_OPEN_BREAKS = "no_open_breaks"


@dg.asset(
    name="reconciliation_breaks",
    partitions_def=DAILY,
    deps=[dg.AssetKey("store_extract")],
    group_name="reconciliation",
    check_specs=[
        dg.AssetCheckSpec(
            NO_OPEN_BREAKS,
            asset="reconciliation_breaks",
            blocking=True,
            description="The day has no open reconciliation break: statements may go out.",
        )
    ],
    description="The trading day's reconciliation breaks: executions against the venue's "
    "drop copy, deposits and payouts against the provider's settlement file, ledger "
    "positions and client money against the books, the trial balance "
    "(docs/reconciliation.md). Written to the warehouse table `breaks` and to "
    "reports/YYYY-MM-DD/reconciliation/breaks.csv.",
)
def reconciliation_breaks(
    context: dg.AssetExecutionContext, home: BourseHome, warehouse: WarehouseResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    day = parse_date(context.partition_key)
    with warehouse.open() as wh:
        result = build_reconciliation(
            wh, Period.day(day), home.path, home.reports_dir(), default_catalogue()
        )
    kinds = ", ".join(f"{k} {n}" for k, n in result.by_kind.items()) or "none"
    if result.open:
        context.log.warning(f"{day}: {result.open} open break(s): {kinds}")
    return dg.MaterializeResult(
        metadata={
            "breaks": result.open,
            "by_kind": kinds,
            "breaks_csv": dg.MetadataValue.path(str(result.csv_path)),
            "dropcopy_rows": result.dropcopy_rows,
            "settlement_rows": result.settlement_rows,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=NO_OPEN_BREAKS,
                passed=result.open == 0,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"open_breaks": result.open, "by_kind": kinds},
            )
        ],
    )


reconciliation_job = dg.define_asset_job(
    "reconciliation",
    selection=dg.AssetSelection.assets(reconciliation_breaks),
    description="The reconciliation of one trading day (what the file sensors request).",
)


def changed_days(
    directory: Path, seen: dict[str, int], *, before: dt.date
) -> tuple[list[dt.date], dict[str, int]]:
    """Closed trading days (``< before``) whose ``YYYY-MM-DD.csv`` in ``directory`` is new
    or changed since ``seen`` (file name -> mtime in ns), and the mtimes now."""
    now: dict[str, int] = {}
    days: list[dt.date] = []
    if not directory.is_dir():
        return days, now
    for path in sorted(directory.glob("*.csv")):
        try:
            day = dt.date.fromisoformat(path.stem)
            mtime = path.stat().st_mtime_ns
        except (ValueError, OSError):
            continue  # not a day's file, or gone meanwhile
        if day >= before or not DAILY.has_partition_key(day.isoformat()):
            continue
        now[path.name] = mtime
        if seen.get(path.name) != mtime:
            days.append(day)
    return days, now


def _file_sensor(name: str, where: Callable[[Path], Path], what: str) -> dg.SensorDefinition:
    @dg.sensor(
        name=name,
        job=reconciliation_job,
        minimum_interval_seconds=60,
        description=f"Requests a trading day's reconciliation when its {what} appears or "
        "changes (days already closed; cursor: the files' mtimes).",
    )
    def sensor(context: dg.SensorEvaluationContext, home: BourseHome) -> dg.SensorResult:
        seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        today = trading_date_of(time.time_ns())
        days, now = changed_days(where(home.path), seen, before=today)
        requests = [
            dg.RunRequest(
                run_key=f"{name}:{day.isoformat()}:{now[f'{day.isoformat()}.csv']}",
                partition_key=day.isoformat(),
            )
            for day in days
        ]
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(now, sort_keys=True))

    return sensor


dropcopy_sensor = _file_sensor("dropcopy_files", dropcopy_dir, "venue drop copy")
settlement_sensor = _file_sensor("settlement_files", settlement_dir, "settlement file")

ASSETS = [reconciliation_breaks]
CHECKS: list[dg.AssetChecksDefinition] = []  # no_open_breaks is reported by the asset itself
SCHEDULES: list[dg.ScheduleDefinition] = []
SENSORS = [dropcopy_sensor, settlement_sensor]
JOBS = [reconciliation_job]
