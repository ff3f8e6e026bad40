"""The warehouse connection: ClickHouse through clickhouse-connect, embedded or a server.

``chdb://PATH`` runs the ClickHouse engine in this process over a data directory (the
embedded default, ``HOME/warehouse``); ``http(s)://user:password@host:port`` reaches a
server. The SQL is the same on both. A chDB directory can be open in one process at a time,
so opening one takes an exclusive lock beside it and a second opener gets
:class:`WarehouseBusy` at once instead of a corrupted directory.

Errors::

    WarehouseError
    ├── WarehouseUnavailable   the server cannot be reached, or the DSN is not one we read
    └── WarehouseBusy          another process holds the chDB directory
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa

from assets.warehouse.ddl import Layout, create_statements

DATABASE = "bourse"


class WarehouseError(Exception):
    """The warehouse cannot serve this request."""


class WarehouseUnavailable(WarehouseError):
    """The server cannot be reached, or the DSN names no warehouse we can open."""


class WarehouseBusy(WarehouseError):
    """Another process has the embedded warehouse open."""


def default_dsn(home: Path) -> str:
    return f"chdb://{(home / 'warehouse').resolve()}"


def _chdb_path(dsn: str) -> Path:
    # Both chdb://PATH (relative or absolute) and chdb:///abs are accepted.
    rest = dsn.removeprefix("chdb://")
    return Path(rest).resolve()


def _shown(dsn: str) -> str:
    """The DSN without its password, for messages."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", dsn)


def _why(exc: Exception) -> str:
    """One line: urllib3's refusals are several nested reprs long."""
    text = str(exc)
    if "NewConnectionError" in text or "Connection refused" in text:
        return "connection refused (is the server running?)"
    if "timed out" in text.lower():
        return "timed out"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:200]


class Warehouse:
    """One open warehouse: queries in, Arrow tables out; DDL by layout."""

    def __init__(self, dsn: str, *, database: str = DATABASE, layout: Layout = "single") -> None:
        import clickhouse_connect  # heavy: only when a warehouse is opened

        self.dsn = dsn
        self.database = database
        self.layout: Layout = layout
        self._lock_fd: int | None = None
        # Embedded: the engine runs in this process, with this process's file access.
        self.embedded = dsn.startswith("chdb://")
        # clickhouse-connect logs a refused connection itself before raising; we say it once.
        logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)
        try:
            if dsn.startswith("chdb://"):
                path = _chdb_path(dsn)
                path.mkdir(parents=True, exist_ok=True)
                self._lock(path)
                boot = clickhouse_connect.get_client(dsn=f"chdb://{path}")
                boot.command(f"CREATE DATABASE IF NOT EXISTS {database}")
                boot.close()
                self.client = clickhouse_connect.get_client(dsn=f"chdb://{path}", database=database)
            elif dsn.startswith(("http://", "https://")):
                boot = clickhouse_connect.get_client(dsn=dsn)
                boot.command(f"CREATE DATABASE IF NOT EXISTS {database}")
                self.client = clickhouse_connect.get_client(dsn=dsn, database=database)
            else:
                raise WarehouseUnavailable(
                    f"warehouse DSN {dsn!r}: expected chdb://PATH or http(s)://host:port"
                )
        except WarehouseError:
            self._unlock()
            raise
        except Exception as exc:
            self._unlock()
            raise WarehouseUnavailable(f"warehouse {_shown(dsn)} unreachable: {_why(exc)}") from exc

    def _lock(self, path: Path) -> None:
        fd = os.open(path / ".bourse-warehouse.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WarehouseBusy(
                f"the embedded warehouse {path} is open in another process "
                "(a Dagster run, `bourse reports` or `bourse sql`): one at a time"
            ) from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def ensure_schema(self) -> None:
        """Creates every table and view that is missing (idempotent)."""
        for statement in create_statements(self.layout):
            self.client.command(statement)

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return self.client.command(sql, parameters=parameters)

    def arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table:
        return self.client.query_arrow(sql, parameters=parameters)

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> Sequence[Sequence[Any]]:
        return self.client.query(sql, parameters=parameters).result_rows

    def scalar(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        rows = self.rows(sql, parameters)
        return rows[0][0] if rows else None

    def insert(self, table: str, data: pa.Table) -> None:
        if data.num_rows:
            self.client.insert_arrow(table, data)

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            self._unlock()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
