"""What every ``bourse`` command shares: the consoles, the --home/--dsn options, the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import Engine

from serving.settings import Settings

console = Console(stderr=True)
out = Console()

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Data directory (default $BOURSE_HOME or ./.bourse).")
]
DsnOpt = Annotated[
    str | None,
    typer.Option(
        "--dsn", help="Store URL, e.g. postgresql://user@host/db (default: SQLite in home)."
    ),
]


def settings_for(home: Path | None, dsn: str | None) -> Settings:
    overrides: dict[str, object] = {}
    if home is not None:
        overrides["home"] = home
    if dsn is not None:
        overrides["dsn"] = dsn
    return Settings(**overrides)  # type: ignore[arg-type]


def open_store(settings: Settings, create: bool = False) -> Engine:
    from trading.store.engine import migrate, open_engine

    dsn = settings.store_dsn()
    if not settings.dsn:
        db = settings.home / "bourse.db"
        if not create and not db.exists():
            console.print(
                f"[red]no store at {db}[/red]: run `bourse simulate --home {settings.home}` first"
            )
            raise typer.Exit(2)
        settings.home.mkdir(parents=True, exist_ok=True)
    engine = open_engine(dsn)
    migrate(engine)
    return engine


def open_reader(settings: Settings) -> Engine:
    """The store opened read-only: never created, never migrated; exit 2 when there is none."""
    from trading.errors import StoreError
    from trading.store.engine import open_readonly

    try:
        return open_readonly(settings.store_dsn())
    except StoreError as exc:
        console.print(f"[red]cannot verify:[/red] {exc.message}", soft_wrap=True)
        raise typer.Exit(2) from None
