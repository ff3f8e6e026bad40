"""Client statements (daily, monthly) and the yearly tax statement as Dagster assets.

The work is in ``assets/statements/``; these are thin wrappers that pick the period from the
partition key, open the warehouse for the step and report what was written. PDF rendering
is timed apart from the CSV files (``pdfs_per_s``), as the end-of-day benchmark reports it.

The broker's name on the PDFs comes from ``BOURSE_BROKER_NAME`` (default ``Bourse``).
"""

import datetime as dt
import os
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.days import Period, parse_date
from assets.partitions import DAILY, MONTHLY, YEARLY
from assets.resources import BourseHome, WarehouseResource
from assets.statements.manifest import (
    DEFAULT_BROKER,
    Published,
    daily_dir,
    monthly_dir,
    publish_statements,
)
from assets.statements.tax import tax_dir
from assets.statements.tax_pdf import publish_tax
from trading.catalogue import default_catalogue

STORE_EXTRACT = dg.AssetKey("store_extract")
RECONCILIATION_BREAKS = dg.AssetKey("reconciliation_breaks")


def broker_name() -> str:
    return os.environ.get("BOURSE_BROKER_NAME", "").strip() or DEFAULT_BROKER


def _metadata(result: Published) -> dict[str, Any]:
    return {
        "folder": dg.MetadataValue.path(str(result.folder)),
        "accounts": result.accounts,
        "trades": result.trades,
        "csv_files": result.csv_files,
        "pdf_files": result.pdf_files,
        "query_s": round(result.query_s, 3),
        "csv_s": round(result.csv_s, 3),
        "pdf_s": round(result.pdf_s, 3),
        "pdfs_per_s": round(result.pdfs_per_s, 1),
    }


def _publish(warehouse: WarehouseResource, period: Period, out: Path) -> dg.MaterializeResult:  # type: ignore[type-arg]
    with warehouse.open() as wh:
        result = publish_statements(wh, period, out, default_catalogue(), broker=broker_name())
    return dg.MaterializeResult(metadata=_metadata(result))


@dg.asset(
    key="daily_statements",
    partitions_def=DAILY,
    deps=[STORE_EXTRACT, RECONCILIATION_BREAKS],
    group_name="statements",
    description="Each account's statement for the trading day: summary, trades and positions "
    "CSV, a PDF, and statements/manifest.json under reports/YYYY-MM-DD/.",
)
def daily_statements(
    context: AssetExecutionContext, home: BourseHome, warehouse: WarehouseResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    period = Period.day(parse_date(context.partition_key))
    return _publish(warehouse, period, daily_dir(home.reports_dir(), period))


@dg.asset(
    key="monthly_statements",
    partitions_def=MONTHLY,
    deps=[STORE_EXTRACT, RECONCILIATION_BREAKS],
    group_name="statements",
    description="Each account's statement for the calendar month of trading days, under "
    "reports/monthly/YYYY-MM/statements/.",
)
def monthly_statements(
    context: AssetExecutionContext, home: BourseHome, warehouse: WarehouseResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    first = dt.date.fromisoformat(context.partition_key)
    period = Period.month(first.year, first.month)
    return _publish(warehouse, period, monthly_dir(home.reports_dir(), period))


@dg.asset(
    key="tax_statements",
    partitions_def=YEARLY,
    deps=[STORE_EXTRACT],
    group_name="statements",
    description="Each account's realized gains and losses of the year per lot closure (Form "
    "1099-B fields), reports/tax/YYYY/<account_id>.csv and .pdf.",
)
def tax_statements(
    context: AssetExecutionContext, home: BourseHome, warehouse: WarehouseResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    year = int(context.partition_key)
    with warehouse.open() as wh:
        result = publish_tax(
            wh, year, tax_dir(home.reports_dir(), year), default_catalogue(), broker=broker_name()
        )
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str(result.folder)),
            "accounts": result.accounts,
            "lot_closures": result.lots,
            "csv_s": round(result.csv_s, 3),
            "pdf_s": round(result.pdf_s, 3),
            "pdfs_per_s": round(result.accounts / result.pdf_s, 1) if result.pdf_s else 0.0,
        }
    )


# Their jobs and schedules are the wiring's (assets/schedules.py), with the end of day's.
ASSETS: list[Any] = [daily_statements, monthly_statements, tax_statements]
CHECKS: list[Any] = []
SCHEDULES: list[Any] = []
SENSORS: list[Any] = []
JOBS: list[Any] = []
