"""Opening the store: SQLite in WAL mode (embedded default) or PostgreSQL via psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, inspect

from trading.store import schema

MIGRATIONS = Path(__file__).with_name("migrations")
IMMEDIATE = "bourse_immediate"
AUTOCHECKPOINT = "bourse_wal_autocheckpoint"
# SQLite's default: a commit that takes the WAL past this many pages checkpoints it.
DEFAULT_AUTOCHECKPOINT = 1_000


def writer(engine: Engine, *, checkpointed: bool = False) -> Engine:
    """The same engine, whose transactions take SQLite's write lock when they begin.

    ``checkpointed``: a ``trading.store.checkpoint.Checkpointer`` runs beside this writer,
    so its commits do not checkpoint the WAL themselves (``wal_autocheckpoint=0``).
    """
    auto = 0 if checkpointed else DEFAULT_AUTOCHECKPOINT
    return engine.execution_options(**{IMMEDIATE: True, AUTOCHECKPOINT: auto})


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
    # After a burst the WAL file keeps its largest size; past this it is cut back when the
    # WAL next starts over.
    cur.execute("PRAGMA journal_size_limit=67108864")  # 64 MiB
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
            options = conn.get_execution_options()
            # Per connection, and pooled connections serve every writer: set it each time
            # it differs from what this transaction wants.
            auto = options.get(AUTOCHECKPOINT, DEFAULT_AUTOCHECKPOINT)
            info = conn.connection.info
            if info.get(AUTOCHECKPOINT, DEFAULT_AUTOCHECKPOINT) != auto:
                conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={int(auto)}")
                info[AUTOCHECKPOINT] = auto
            conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(IMMEDIATE) else "BEGIN")

        return engine
    return create_engine(dsn, pool_pre_ping=True, **kwargs)


def _sqlite_read_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA query_only=ON")
    cur.close()


def open_readonly(dsn: str) -> Engine:
    """An engine that can only read the store at ``dsn``: it never creates a file, never
    migrates, and refuses (``NoStore``) a store that is missing or holds no Bourse schema.

    SQLite opens the file with ``mode=ro`` (and ``query_only`` besides); PostgreSQL sessions
    start with ``default_transaction_read_only``, so a write fails in the database itself.
    """
    from trading.errors import NoStore, StoreError

    dsn = normalize_dsn(dsn)
    if dsn.startswith("sqlite"):
        path = dsn.removeprefix("sqlite:///")
        if path == dsn or not path or path == ":memory:":
            raise NoStore(f"no store: {dsn} is not a SQLite file")
        if not Path(path).is_file():
            raise NoStore(f"no store at {path}")
        engine = create_engine(
            f"sqlite:///file:{quote(str(Path(path).resolve()))}?mode=ro&uri=true"
        )
        event.listen(engine, "connect", _sqlite_read_pragmas)
        shown = path
    else:
        engine = create_engine(dsn, connect_args={"options": "-c default_transaction_read_only=on"})
        shown = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except Exception as exc:
        engine.dispose()
        raise StoreError(f"cannot open the store {shown}: {_first_line(exc)}") from None
    missing = sorted(set(schema.metadata.tables) - tables)
    if missing:
        engine.dispose()
        what = (
            "no Bourse schema"
            if len(missing) == len(schema.metadata.tables)
            else (f"an incomplete Bourse schema (missing {', '.join(missing)})")
        )
        raise NoStore(f"{shown} holds {what}: not a store to read")
    return engine


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
