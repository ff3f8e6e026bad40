"""The Dagster resources every asset shares: where the platform's data lives.

``BourseHome`` names the data directory (the store's SQLite file, the lake, the embedded
warehouse and the reports all live under it unless a DSN says otherwise).
``WarehouseResource`` opens the warehouse for one step and closes it after: a chDB
directory can be open in one process at a time, so nothing keeps it open between steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from sqlalchemy.engine import Engine

from assets.warehouse.client import Warehouse, default_dsn
from assets.warehouse.ddl import Layout
from trading.store.engine import open_readonly, sqlite_dsn


class BourseHome(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The data directory and, optionally, a PostgreSQL store instead of its SQLite file."""

    home: str
    store_dsn: str = ""

    @property
    def path(self) -> Path:
        return Path(self.home)

    def reports_dir(self) -> Path:
        return self.path / "reports"

    def lake_dir(self) -> Path:
        return self.path / "lake"

    def open_store(self) -> Engine:
        """The store, read only (the OMS host is its only writer)."""
        return open_readonly(self.store_dsn or sqlite_dsn(self.path))


class WarehouseResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The warehouse DSN (empty: chDB under the home) and its DDL layout."""

    home: str
    dsn: str = ""
    layout: str = "single"

    @contextmanager
    def open(self) -> Iterator[Warehouse]:
        layout: Layout = "cluster" if self.layout == "cluster" else "single"
        wh = Warehouse(self.dsn or default_dsn(Path(self.home)), layout=layout)
        try:
            wh.ensure_schema()
            yield wh
        finally:
            wh.close()
