"""Every Dagster definition of Bourse: the areas' assets, checks and sensors, the jobs and
their schedules, and the resources, read from the environment.

Each area is a module ``assets.defs_<area>`` exporting ``ASSETS``, ``CHECKS``, ``SCHEDULES``,
``SENSORS`` and ``JOBS``. The jobs below name their assets by key; a key no area defines is
left out of the selection (and a job none of whose own assets exists is left out), so the
definitions load whichever areas a build holds.

``dagster dev -m assets.definitions`` (or ``bourse reports dagster``) serves ``defs``;
``bourse reports run`` builds the same jobs over ``build_definitions(resources_for(DIR))``.

Environment: ``BOURSE_HOME`` (the data directory, default ``./.bourse``), ``BOURSE_DSN``
(the store; empty: SQLite under the home), ``BOURSE_WAREHOUSE_DSN`` (empty: chDB under the
home), ``BOURSE_WAREHOUSE_LAYOUT`` (``single`` or ``cluster``).
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg

from assets.days import NEW_YORK
from assets.resources import BourseHome, WarehouseResource

# The areas, in the order the UI lists their definitions. A name whose module this build
# does not hold is passed over (the areas arrive one branch at a time).
AREAS: tuple[str, ...] = (
    "assets.defs_extract",
    "assets.defs_market",
    "assets.defs_risk",
    "assets.defs_statements",
    "assets.defs_regulatory",
    "assets.defs_recon",
)

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


@dataclass
class Areas:
    """What the area modules define, gathered."""

    modules: list[str] = field(default_factory=list)
    assets: list[dg.AssetsDefinition] = field(default_factory=list)
    checks: list[dg.AssetChecksDefinition] = field(default_factory=list)
    schedules: list[Any] = field(default_factory=list)
    sensors: list[Any] = field(default_factory=list)
    jobs: list[Any] = field(default_factory=list)

    def asset_keys(self) -> set[str]:
        return {key.to_user_string() for a in self.assets for key in a.keys}

    def partitions_of(self, key: str) -> dg.PartitionsDefinition[Any] | None:
        for a in self.assets:
            if dg.AssetKey.from_user_string(key) in a.keys:
                return a.partitions_def
        return None


def _present(names: Iterable[str]) -> list[ModuleType]:
    modules = []
    for name in names:
        if importlib.util.find_spec(name) is not None:
            modules.append(importlib.import_module(name))
    return modules


def gather(areas: Sequence[str] | None = None) -> Areas:
    out = Areas()
    for module in _present(AREAS if areas is None else areas):
        out.modules.append(module.__name__)
        out.assets.extend(module.ASSETS)
        out.checks.extend(module.CHECKS)
        out.schedules.extend(module.SCHEDULES)
        out.sensors.extend(module.SENSORS)
        out.jobs.extend(module.JOBS)
    return out


def selected_keys(plan: JobPlan, areas: Areas) -> list[str]:
    """The plan's keys that exist, in the plan's order; empty when none of ``main`` does."""
    held = areas.asset_keys()
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


def _job_and_schedule(plan: JobPlan, areas: Areas) -> tuple[Any, Any] | None:
    keys = selected_keys(plan, areas)
    if not keys:
        return None
    job = dg.define_asset_job(
        plan.name, selection=dg.AssetSelection.assets(*keys), description=plan.description
    )
    # Until a partitioned asset of the job exists, its runs carry no partition.
    partitioned = any(areas.partitions_of(key) is not None for key in keys)

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


def resources_for(
    home: str | Path,
    store_dsn: str = "",
    warehouse_dsn: str = "",
    layout: str = "single",
) -> dict[str, Any]:
    """The resources for one data directory (what ``bourse reports`` runs with)."""
    root = str(Path(home).resolve())
    return {
        "home": BourseHome(home=root, store_dsn=store_dsn),
        "warehouse": WarehouseResource(home=root, dsn=warehouse_dsn, layout=layout),
    }


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    # DSNs may hold passwords: EnvVar keeps them out of the UI and the run config.
    def secret(name: str) -> Any:
        return dg.EnvVar(name) if env.get(name) else ""

    root = str(Path(env.get("BOURSE_HOME") or ".bourse").resolve())
    return {
        "home": BourseHome(home=root, store_dsn=secret("BOURSE_DSN")),
        "warehouse": WarehouseResource(
            home=root,
            dsn=secret("BOURSE_WAREHOUSE_DSN"),
            layout=env.get("BOURSE_WAREHOUSE_LAYOUT") or "single",
        ),
    }


def build_definitions(
    resources: Mapping[str, Any] | None = None, areas: Sequence[str] | None = None
) -> dg.Definitions:
    gathered = gather(areas)
    jobs = list(gathered.jobs)
    schedules = list(gathered.schedules)
    for plan in PLANS:
        made = _job_and_schedule(plan, gathered)
        if made is not None:
            jobs.append(made[0])
            schedules.append(made[1])
    return dg.Definitions(
        assets=gathered.assets,
        asset_checks=gathered.checks,
        schedules=schedules,
        sensors=gathered.sensors,
        jobs=jobs,
        resources=dict(resources) if resources is not None else _from_environment(os.environ),
    )


defs = build_definitions()
