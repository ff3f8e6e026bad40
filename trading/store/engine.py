"""Opening the store: SQLite in WAL mode (embedded default) or PostgreSQL via psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

MIGRATIONS = Path(__file__).with_name("migrations")
IMMEDIATE = "bourse_immediate"


def writer(engine: Engine) -> Engine:
    """The same engine, whose transactions take SQLite's write lock when they begin."""
    return engine.execution_options(**{IMMEDIATE: True})


def sqlite_dsn(home: Path) -> str:
    return f"sqlite:///{home / 'bourse.db'}"


def normalize_dsn(dsn: str) -> str:
    """Accept plain ``postgresql://`` URLs and route them to psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit survives power loss, not just a process crash. Nothing is acknowledged
    # before it is durable.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # SQLite's default page cache is 2 MB: with a large history the indexes the OMS writes
    # (postings, outbox, orders) no longer fit and every batch reads pages back.
    cur.execute("PRAGMA cache_size=-131072")  # KiB: 128 MB per connection
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def open_engine(dsn: str, **kwargs: Any) -> Engine:
    dsn = normalize_dsn(dsn)
    if dsn.startswith("sqlite"):
        if dsn.startswith("sqlite:///"):
            Path(dsn.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(dsn, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)

        # The OMS's batches take the write lock at once (``writer(engine)``), so a batch never
        # fails half-way on a busy database; readers begin deferred and never block it (WAL).
        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            immediate = conn.get_execution_options().get(IMMEDIATE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(dsn, pool_pre_ping=True, **kwargs)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
