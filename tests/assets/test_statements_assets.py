"""The statement assets materialized in process on a data directory: the daily, monthly and
yearly partitions write their layouts and report PDF throughput apart from the CSV files."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from assets.defs_statements import (
    ASSETS,
    RECONCILIATION_BREAKS,
    STORE_EXTRACT,
    daily_statements,
    monthly_statements,
    tax_statements,
)
from assets.resources import BourseHome, WarehouseResource
from assets.warehouse.client import Warehouse, default_dsn
from assets.warehouse.extract import extract_all
from tests.assets.statements_store import build_store


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("home")
    rig = build_store(f"sqlite:///{root / 'bourse.db'}")
    with Warehouse(default_dsn(root)) as wh:
        wh.ensure_schema()
        extract_all(rig.engine, wh)
    return root


def _resources(home: Path) -> dict[str, object]:
    return {"home": BourseHome(home=str(home)), "warehouse": WarehouseResource(home=str(home))}


def _materialize(asset: dg.AssetsDefinition, home: Path, key: str) -> dict[str, object]:
    result = dg.materialize([asset], resources=_resources(home), partition_key=key)
    assert result.success
    (event,) = result.asset_materializations_for_node(asset.op.name)
    return {k: v.value for k, v in event.metadata.items()}


def test_daily_statements_when_materialized_then_the_days_layout_and_pdf_rate(
    home: Path,
) -> None:
    meta = _materialize(daily_statements, home, "2026-01-05")

    folder = home / "reports" / "2026-01-05" / "statements"
    assert sorted(p.name for p in folder.iterdir()) == ["1", "2", "manifest.json"]
    for account in ("1", "2"):
        names = sorted(p.name for p in (folder / account).iterdir())
        assert names == ["positions.csv", "statement.pdf", "summary.csv", "trades.csv"]
    assert meta["accounts"] == 2 and meta["pdf_files"] == 2 and meta["csv_files"] == 6
    assert isinstance(meta["pdfs_per_s"], float) and meta["pdfs_per_s"] > 0


def test_monthly_statements_when_materialized_then_under_monthly_with_every_account(
    home: Path,
) -> None:
    meta = _materialize(monthly_statements, home, "2026-01-01")

    folder = home / "reports" / "monthly" / "2026-01" / "statements"
    assert sorted(p.name for p in folder.iterdir()) == ["1", "2", "3", "manifest.json"]
    assert meta["accounts"] == 3


def test_tax_statements_when_materialized_then_a_csv_and_pdf_per_account(home: Path) -> None:
    meta = _materialize(tax_statements, home, "2026")

    folder = home / "reports" / "tax" / "2026"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["1.csv", "1.pdf", "2.csv", "2.pdf", "3.csv", "3.pdf", "manifest.json"]
    with (folder / "1.csv").open(newline="", encoding="utf-8") as f:
        assert all(Decimal(r["gain_loss"]) for r in csv.DictReader(f))
    assert meta["lot_closures"] == 6


def test_definitions_when_loaded_then_statements_depend_on_extract_and_reconciliation() -> None:
    defs = dg.Definitions(assets=ASSETS, resources=_resources(Path("unused")))
    graph = defs.resolve_asset_graph()

    daily = graph.get(dg.AssetKey("daily_statements"))
    assert set(daily.parent_keys) == {STORE_EXTRACT, RECONCILIATION_BREAKS}
    assert graph.get(dg.AssetKey("tax_statements")).partitions_def is not None
