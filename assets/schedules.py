"""The jobs and their schedules, by asset key: the end of day, the month, the year.

A job names its assets by key; a key no area defines is left out of its selection, and a
job none of whose own assets (``main``) exists is left out with its schedule, so the
definitions load whichever areas a build holds. A schedule's tick runs the period that just
closed in New York time: the trading date at 17:15 (after the 17:00 cut-off), the previous
month on the 1st, the previous year on 2 January.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from assets.days import NEW_YORK

END_OF_DAY = "end_of_day"
# Not "monthly_statements": a job may not share its name with an asset.
MONTHLY_STATEMENTS = "monthly_statements_job"
YEARLY_TAX = "yearly_tax"


@dataclass(frozen=True)
class JobPlan:
    """A job by asset key names: ``main`` are what it is for, ``upstream`` what it refreshes
    first (left out, with the job, when none of ``main`` exists)."""

    name: str
    main: tuple[str, ...]
    upstream: tuple[str, ...] = ()
    description: str = ""
    # The schedule: a cron in New York time, and which partition a tick runs.
    cron: str = ""
    partition: str = "day"  # day | month | year

    def all_keys(self) -> tuple[str, ...]:
        return self.upstream + self.main


PLANS: tuple[JobPlan, ...] = (
    JobPlan(
        END_OF_DAY,
        main=(
            "store_extract",
            "lake_ticks",
            "bars",
            "reconciliation_breaks",
            "risk_reports",
            "daily_statements",
            "regulatory_report",
        ),
        description=(
            "The day that just closed at the 17:00 New York cut-off: extracts, "
            "reconciliations (statements withheld while breaks are open), risk reports, "
            "daily statements, the regulatory report."
        ),
        # A quarter of an hour after the cut-off, so the rollover has been booked.
        cron="15 17 * * 1-5",
        partition="day",
    ),
    JobPlan(
        MONTHLY_STATEMENTS,
        main=("monthly_statements",),
        upstream=("store_extract",),
        description="Monthly statements for the month that just ended.",
        cron="0 6 1 * *",
        partition="month",
    ),
    JobPlan(
        YEARLY_TAX,
        main=("tax_statements",),
        upstream=("store_extract",),
        description="Yearly tax statements (Form 1099-B fields) for the year that just ended.",
        cron="0 6 2 1 *",
        partition="year",
    ),
)


def _keys(assets: Sequence[dg.AssetsDefinition]) -> dict[str, dg.AssetsDefinition]:
    return {key.to_user_string(): a for a in assets for key in a.keys}


def selected_keys(plan: JobPlan, assets: Sequence[dg.AssetsDefinition]) -> list[str]:
    """The plan's keys that exist, in the plan's order; empty when none of ``main`` does."""
    held = _keys(assets)
    if not any(key in held for key in plan.main):
        return []
    return [key for key in plan.all_keys() if key in held]


def schedule_name(job: str) -> str:
    return f"{job.removesuffix('_job')}_schedule"


def partition_key_for(plan: JobPlan, scheduled: dt.datetime) -> str:
    """The partition a tick at ``scheduled`` runs: the day, month or year that just closed."""
    local = scheduled.astimezone(NEW_YORK).date()
    if plan.partition == "day":
        return local.isoformat()
    if plan.partition == "month":
        last_month = local.replace(day=1) - dt.timedelta(days=1)
        return last_month.replace(day=1).isoformat()
    return str(local.year - 1)


def job_and_schedule(
    plan: JobPlan, assets: Sequence[dg.AssetsDefinition]
) -> tuple[Any, dg.ScheduleDefinition] | None:
    """The plan's job over the assets that exist, and its schedule; None when it has none."""
    keys = selected_keys(plan, assets)
    if not keys:
        return None
    job = dg.define_asset_job(
        plan.name, selection=dg.AssetSelection.assets(*keys), description=plan.description
    )
    # Until a partitioned asset of the job exists, its runs carry no partition.
    held = _keys(assets)
    partitioned = any(held[key].partitions_def is not None for key in keys)

    @dg.schedule(
        name=schedule_name(plan.name),
        job=job,
        cron_schedule=plan.cron,
        execution_timezone=str(NEW_YORK),
        description=f"{plan.description} Cron {plan.cron!r}, New York time.",
        # On as soon as the daemon runs (`dagster dev`): the end of day is not optional.
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        scheduled = context.scheduled_execution_time
        if not partitioned:
            return dg.RunRequest(run_key=scheduled.isoformat())
        key = partition_key_for(plan, scheduled)
        return dg.RunRequest(run_key=key, partition_key=key)

    return job, _schedule


def jobs_and_schedules(
    assets: Sequence[dg.AssetsDefinition],
) -> tuple[list[Any], list[dg.ScheduleDefinition]]:
    jobs: list[Any] = []
    schedules: list[dg.ScheduleDefinition] = []
    for plan in PLANS:
        made = job_and_schedule(plan, assets)
        if made is not None:
            jobs.append(made[0])
            schedules.append(made[1])
    return jobs, schedules
