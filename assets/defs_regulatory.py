"""Dagster definitions of the regulatory area: the daily transaction report (MiFIR RTS 22).

The asset is a thin wrapper over ``assets.regulatory.report.build_regulatory_report``; the
firm's identifiers come from the environment (``assets.regulatory.firm``).
"""

# No `from __future__ import annotations`: Dagster reads the parameters' annotations as types.
from typing import Any

import dagster as dg

from assets.days import Period, parse_date
from assets.partitions import DAILY
from assets.regulatory.firm import FirmSettings
from assets.regulatory.report import build_regulatory_report
from assets.resources import BourseHome, WarehouseResource
from trading.catalogue import default_catalogue


@dg.asset(
    partitions_def=DAILY,
    deps=[dg.AssetKey("store_extract")],
    group_name="regulatory",
    kinds={"xml", "csv"},
    description=(
        "MiFIR RTS 22 transaction report of the trading day: one ISO 20022 auth.016.001.03 "
        "transaction per fill, reports/YYYY-MM-DD/regulatory/transactions.{xml,csv}"
    ),
)
def regulatory_report(
    context: dg.AssetExecutionContext, home: BourseHome, warehouse: WarehouseResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    day = parse_date(context.partition_key)
    firm = FirmSettings().firm()
    out_dir = home.reports_dir() / day.isoformat() / "regulatory"
    with warehouse.open() as wh:
        result = build_regulatory_report(
            wh, Period.day(day), out_dir, firm=firm, catalogue=default_catalogue()
        )
    metadata: dict[str, Any] = {
        "transactions": result.transactions,
        "excluded_not_financial_instrument": len(result.excluded),
        "executing_entity_lei": firm.lei,
        "csv": dg.MetadataValue.path(str(result.csv_path)),
        "xml": dg.MetadataValue.path(str(result.xml_path)) if result.xml_path else "none (nil)",
    }
    return dg.MaterializeResult(metadata=metadata)


ASSETS: list[Any] = [regulatory_report]
CHECKS: list[Any] = []
SCHEDULES: list[Any] = []
SENSORS: list[Any] = []
JOBS: list[Any] = []
