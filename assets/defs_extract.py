"""The extract area: the warehouse's mirror of the transactional store, refreshed.

``store_extract`` is unpartitioned: the mirror is one growing copy that every day's, month's
and year's reports read through their own period filters, and the copy is incremental
(``assets.warehouse.extract``), so refreshing it before any report is cheap.
"""

import time
from typing import Any

import dagster as dg

from assets.resources import BourseHome, WarehouseResource
from assets.warehouse.extract import MUTABLE, extract_all


def _final(table: str) -> str:
    return "FINAL" if table in MUTABLE else ""


@dg.asset(
    key="store_extract",
    group_name="warehouse",
    kinds={"clickhouse", "sql"},
    description=(
        "The transactional store's tables copied into the warehouse mirror, incrementally "
        "(append-only tables by id or time, changed rows by their change times)."
    ),
)
def store_extract(
    context: dg.AssetExecutionContext, home: BourseHome, warehouse: WarehouseResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    started = time.perf_counter()
    store = home.open_store()
    try:
        with warehouse.open() as wh:
            added = extract_all(
                store, wh, progress=lambda table, n: context.log.debug(f"{table}: {n} rows")
            )
            # Rows the mirror holds now, mutable tables counted once per key (FINAL).
            held = {
                table: int(wh.scalar(f"SELECT count() FROM {table} {_final(table)}"))
                for table in added
            }
    finally:
        store.dispose()
    metadata: dict[str, dg.MetadataValue] = {
        f"added/{table}": dg.MetadataValue.int(n) for table, n in added.items()
    }
    metadata.update({f"rows/{table}": dg.MetadataValue.int(n) for table, n in held.items()})
    metadata["added_total"] = dg.MetadataValue.int(sum(added.values()))
    metadata["seconds"] = dg.MetadataValue.float(round(time.perf_counter() - started, 3))
    return dg.MaterializeResult(metadata=metadata)


ASSETS: list[dg.AssetsDefinition] = [store_extract]
CHECKS: list[dg.AssetChecksDefinition] = []
SCHEDULES: list[dg.ScheduleDefinition] = []
SENSORS: list[dg.SensorDefinition] = []
JOBS: list[Any] = []  # job definitions, resolved or not
