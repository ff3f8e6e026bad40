"""Checks a command runs before it starts work: the servers and paths it needs.

Each check returns None when all is well, or one line naming what is missing, where, and
what to do. A command runs its checks first and, on the first problem, prints that line
and exits 2 (``require``), so that a missing server never ends in a traceback, and a
command that cannot finish never starts (no half-made recovery folder, no empty store).

    from serving import checks
    checks.require(
        checks.home_dir(settings.home),
        checks.store(settings.dsn, settings.home),
        checks.redis(url),
    )

``store_is_empty`` is for a command that must not write into an existing store
(``simulate`` on a home that already holds one).
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

_TIMEOUT_S = 3
_console = Console(stderr=True)


def fail(problem: str) -> NoReturn:
    """Print ``problem`` (one line) and exit 2."""
    _console.print(f"[red]error:[/red] {escape(problem)}", soft_wrap=True)
    raise typer.Exit(2)


def require(*problems: str | None) -> None:
    """Exit 2 with the first problem, if any. The arguments are evaluated before the call:
    where a check only makes sense once another holds, call ``require`` twice."""
    for problem in problems:
        if problem is not None:
            fail(problem)


def home_dir(home: Path) -> str | None:
    """``--home`` must be a directory, or not exist yet (it is then created)."""
    for parent in (home, *home.parents):
        if parent.exists():
            if not parent.is_dir():
                where = "" if parent == home else f" ({parent})"
                return f"--home {home}{where} is a file, not a directory: give a directory"
            return None
    return None


def redis(url: str) -> str | None:
    """Redis at ``url`` must answer a PING."""
    import redis as redis_lib

    try:
        client = redis_lib.Redis.from_url(
            url, socket_connect_timeout=_TIMEOUT_S, socket_timeout=_TIMEOUT_S
        )
    except ValueError as exc:
        return f"--redis-url {url!r} is not a Redis URL ({exc}): use redis://host:port/db"
    try:
        client.ping()
    except redis_lib.RedisError as exc:
        reason = _first_line(exc)
        return (
            f"Redis at {url} is not reachable ({reason}): start it (redis-server) "
            "or point --redis-url (BOURSE_REDIS_URL) at a running one"
        )
    finally:
        client.close()
    return None


def store(dsn: str, home: Path) -> str | None:
    """The store must be reachable: ``dsn`` (empty: SQLite in ``home``) well formed, of a
    known scheme, and, for PostgreSQL, a server that accepts a connection."""
    if not dsn:
        return home_dir(home)
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    from trading.store.engine import normalize_dsn

    shown = _hide_password(dsn)
    try:
        url = make_url(normalize_dsn(dsn))
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return (
            f"--dsn {shown!r} is not a store URL: use postgresql://user@host:port/db "
            "(or leave it out for SQLite under --home)"
        )
    backend = url.get_backend_name()
    if backend not in ("postgresql", "sqlite"):
        return (
            f"--dsn {shown!r}: unknown scheme {url.drivername!r}: use postgresql://user@host/db "
            "(or leave it out for SQLite under --home)"
        )
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            return home_dir(Path(url.database).parent)
        return None
    try:
        engine = create_engine(url, connect_args={"connect_timeout": _TIMEOUT_S})
    except (NoSuchModuleError, ArgumentError) as exc:
        return f"--dsn {shown!r}: {_first_line(exc)}"
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
        reason = _first_line(getattr(exc, "orig", None) or exc)
        return (
            f"PostgreSQL at {where} is not reachable ({reason}): start it, or fix --dsn "
            "(BOURSE_DSN)"
        )
    finally:
        engine.dispose()
    return None


def store_is_empty(dsn: str, home: Path) -> str | None:
    """No store may exist yet at ``dsn`` (empty: ``home``'s SQLite file): for a command
    that writes a fresh store, such as ``simulate``, rather than adding to one."""
    if not dsn:
        db = home / "bourse.db"
        if db.exists() and db.stat().st_size > 0:
            return (
                f"{home} already holds a store ({db}): give another --home, or remove it "
                "to start afresh"
            )
        return None
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.exc import SQLAlchemyError

    from trading.store.engine import normalize_dsn

    engine = create_engine(normalize_dsn(dsn), connect_args={"connect_timeout": _TIMEOUT_S})
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
    except SQLAlchemyError as exc:
        return f"cannot read the store at {_hide_password(dsn)}: {_first_line(exc)}"
    finally:
        engine.dispose()
    if "orders" in tables or "alembic_version" in tables:
        return (
            f"the database at {_hide_password(dsn)} already holds a store: give another "
            "--dsn, or drop its tables to start afresh"
        )
    return None


def output_outside_store(output: Path, dsn: str, home: Path) -> str | None:
    """An output file must not be any file of the SQLite store (the database, its WAL and
    shared-memory files, its journal): opening it for writing would truncate the store."""
    if dsn and not dsn.startswith("sqlite"):
        return None
    db = Path(dsn.removeprefix("sqlite:///")) if dsn else home / "bourse.db"
    store_files = [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))]
    target = output.expanduser().resolve()
    for path in store_files:
        if target == path.resolve() or (path.exists() and output.exists()
                                        and output.samefile(path)):  # fmt: skip
            return f"-o {output} is a file of the store ({path}): write the export elsewhere"
    return None


def writable_file(path: Path, option: str) -> str | None:
    """A file a command is to write: not a directory, in a directory that exists."""
    if path.is_dir():
        return f"{option} {path} is a directory: give a file name"
    if not path.parent.is_dir():
        return f"{option} {path}: no directory {path.parent}: create it first"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _hide_password(dsn: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(dsn)
    except (ArgumentError, ValueError):
        return dsn
    return url.render_as_string(hide_password=True) if url.password else dsn
