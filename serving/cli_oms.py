"""``bourse oms``: the order management system's host."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from serving.cli_shared import DsnOpt, HomeOpt, console, settings_for

oms_app = typer.Typer(help="The order management system.", no_args_is_help=True)


@oms_app.command("run")
def oms_run(
    home: HomeOpt = None,
    dsn: DsnOpt = None,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Redis: commands, quotes, events.")
    ] = None,
    partitions: Annotated[int, typer.Option(min=1, help="Event streams, by account.")] = 4,
    expire_every: Annotated[
        float,
        typer.Option(
            "--expire-every",
            min=0.01,
            help="Seconds between timer passes: order expiry and the daily rollover.",
        ),
    ] = 1.0,
    venues: Annotated[
        Path | None,
        typer.Option(
            "--venues",
            help="Route orders by this venues file (docs/venues.md) to live FIX sessions and "
            "the B-book; an LP not logged on is reported and retried, and routing fails over.",
        ),
    ] = None,
    logon_timeout: Annotated[
        float,
        typer.Option(
            "--logon-timeout",
            min=0.1,
            help="With --venues: seconds to wait for the LPs' logons at start.",
        ),
    ] = 10.0,
) -> None:
    """Run the OMS host: the single writer, serving the command bus until SIGTERM."""
    from serving import checks
    from serving.oms_host import run_host

    settings = settings_for(home, dsn)
    checks.require(checks.home_dir(settings.home) if not settings.dsn else None)
    venues_file = None
    if venues is not None:
        from trading.venues.config import VenuesFileError, load_venues

        try:
            venues_file = load_venues(venues)
        except VenuesFileError as exc:
            checks.fail(exc.message)
    code = run_host(
        settings, redis_url, partitions=partitions, expire_every_s=expire_every, console=console,
        venues=venues_file, logon_timeout_s=logon_timeout,
    )  # fmt: skip
    raise typer.Exit(code)
