"""Every Dagster definition of Bourse: the areas' assets, checks and sensors, the jobs and
their schedules, and the resources, read from the environment.

Each area is a module ``assets.defs_<area>`` exporting ``ASSETS``, ``CHECKS``, ``SCHEDULES``,
``SENSORS`` and ``JOBS``; an area not in this build is passed over. The end-of-day, monthly
and yearly jobs and their schedules are ``assets/schedules.py``'s, by asset key.

``dagster dev -m assets.definitions`` (or ``bourse reports dagster``) serves ``defs``;
``bourse reports run`` builds the same jobs over ``build_definitions(resources_for(DIR))``.

Environment: ``BOURSE_HOME`` (the data directory, default ``./.bourse``), ``BOURSE_DSN``
(the store; empty: SQLite under the home), ``BOURSE_WAREHOUSE_DSN`` (empty: chDB under the
home), ``BOURSE_WAREHOUSE_LAYOUT`` (``single`` or ``cluster``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg

from assets.resources import BourseHome, WarehouseResource
from assets.schedules import (
    END_OF_DAY,
    MONTHLY_STATEMENTS,
    YEARLY_TAX,
    jobs_and_schedules,
    schedule_name,
)

__all__ = [
    "AREAS",
    "END_OF_DAY",
    "MONTHLY_STATEMENTS",
    "YEARLY_TAX",
    "build_definitions",
    "defs",
    "gather",
    "resources_for",
    "schedule_name",
]

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


@dataclass
class Areas:
    """What the area modules define, gathered."""

    modules: list[str] = field(default_factory=list)
    assets: list[dg.AssetsDefinition] = field(default_factory=list)
    checks: list[dg.AssetChecksDefinition] = field(default_factory=list)
    schedules: list[Any] = field(default_factory=list)
    sensors: list[Any] = field(default_factory=list)
    jobs: list[Any] = field(default_factory=list)


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
    jobs, schedules = jobs_and_schedules(gathered.assets)
    return dg.Definitions(
        assets=gathered.assets,
        asset_checks=gathered.checks,
        schedules=[*gathered.schedules, *schedules],
        sensors=gathered.sensors,
        jobs=[*gathered.jobs, *jobs],
        resources=dict(resources) if resources is not None else _from_environment(os.environ),
    )


defs = build_definitions()
