"""Dagster definitions of the market data: the lake's ticks into the warehouse, and bars.

``lake_ticks`` (daily) copies that UTC day's accepted ticks from the lake; running a day
again replaces it. ``bars`` (daily) records what the materialized views made of them, and
its check ``bars_cover_ticks`` holds every width's bars to the day's priced ticks.
The work is in ``assets.market``; these are thin wrappers.
"""

import datetime as dt

import dagster as dg

from assets.market import copy_lake_day, prepare_analytics, summarize_bars
from assets.partitions import DAILY
from assets.resources import BourseHome, WarehouseResource


def _day(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)


@dg.asset(
    partitions_def=DAILY,
    group_name="market",
    description="The lake's accepted ticks of one UTC day copied into the warehouse's "
    "`ticks` (re-running a day replaces it); the bars' materialized views follow.",
)
def lake_ticks(
    context: dg.AssetExecutionContext, home: BourseHome, warehouse: WarehouseResource
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    with warehouse.open() as wh:
        copied = copy_lake_day(wh, home.lake_dir(), _day(context))
        prepare_analytics(wh)
    return dg.MaterializeResult(
        metadata={
            "files": copied.files,
            "ticks": copied.ticks,
            "symbols": ", ".join(copied.symbols),
        }
    )


@dg.asset(
    partitions_def=DAILY,
    deps=[lake_ticks],
    group_name="market",
    description="1-minute, 1-hour and 1-day OHLCV bars of the day, kept incrementally by "
    "materialized views (`bars_1m`, `bars_1h`, `bars_1d`); records how many per symbol.",
)
def bars(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:  # type: ignore[type-arg]
    with warehouse.open() as wh:
        prepare_analytics(wh)
        summary = summarize_bars(wh, _day(context))
    metadata: dict[str, dg.RawMetadataValue] = {
        f"bars_{width}": n for width, n in summary.bars.items()
    }
    metadata["priced_ticks"] = summary.priced_ticks
    metadata["bars_1m_per_symbol"] = dg.MetadataValue.json(summary.symbols)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(
    asset=bars,
    partitions_def=DAILY,
    description="Each width's bars count every priced tick once.",
)
def bars_cover_ticks(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    with warehouse.open() as wh:
        prepare_analytics(wh)
        summary = summarize_bars(wh, _day(context))
    return dg.AssetCheckResult(
        passed=summary.consistent,
        metadata={"priced_ticks": summary.priced_ticks, **summary.ticks_in_bars},
    )


ASSETS: list[dg.AssetsDefinition] = [lake_ticks, bars]
CHECKS: list[dg.AssetChecksDefinition] = [bars_cover_ticks]
SCHEDULES: list[dg.ScheduleDefinition] = []
SENSORS: list[dg.SensorDefinition] = []
JOBS: list[dg.JobDefinition] = []
