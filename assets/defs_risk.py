"""Dagster definitions of the risk desk's end-of-day reports (``assets.risk_reports``).

``risk_reports`` (daily; after ``store_extract`` has refreshed the mirror) writes
``reports/DATE/risk/{positions,pnl,exposure,margin,stop_out}.csv`` for the trading day DATE.
"""

import datetime as dt

import dagster as dg

from assets.market import prepare_analytics
from assets.partitions import DAILY
from assets.resources import BourseHome, WarehouseResource
from assets.risk_reports import build_risk_reports
from trading.catalogue import default_catalogue


@dg.asset(
    partitions_def=DAILY,
    deps=[dg.AssetKey("store_extract")],
    group_name="risk",
    description="End-of-day positions, daily PnL (account currency and USD), house "
    "exposure, margin usage and the accounts nearest stop-out, as CSV under "
    "reports/DATE/risk/.",
)
def risk_reports(
    context: dg.AssetExecutionContext, home: BourseHome, warehouse: WarehouseResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    day = dt.date.fromisoformat(context.partition_key)
    with warehouse.open() as wh:
        report, paths = build_risk_reports(wh, day, home.reports_dir(), default_catalogue())
        prepare_analytics(wh)  # the sql/ views over the refreshed mirror
    margin = report.tables["margin"]
    return dg.MaterializeResult(
        metadata={
            "dir": str(paths[0].parent),
            "accounts": len(margin),
            "positions": len(report.tables["positions"]),
            "margin_calls": sum(m["margin_state"] == "margin_call" for m in margin),
            "stop_outs": sum(m["margin_state"] == "stop_out" for m in margin),
        }
    )


ASSETS: list[dg.AssetsDefinition] = [risk_reports]
CHECKS: list[dg.AssetChecksDefinition] = []
SCHEDULES: list[dg.ScheduleDefinition] = []
SENSORS: list[dg.SensorDefinition] = []
JOBS: list[dg.JobDefinition] = []
