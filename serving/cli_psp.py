"""``bourse psp settle``: the simulated payment provider writes its daily settlement files.

A real provider sends its file after each day; the simulated one (``bourse simulate``
writes its files itself) is asked here for the days a running platform (``bourse up``,
the API's deposits, the back office's payouts) traded, so that the daily reconciliation
has its file (docs/reconciliation.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from serving.cli_shared import DsnOpt, HomeOpt, console, out, settings_for

psp_app = typer.Typer(help="The simulated payment provider.", no_args_is_help=True)


def _day(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        console.print(f"[red]error[/red] {option}: not a date (YYYY-MM-DD): {text!r}")
        raise typer.Exit(2) from None


@psp_app.command("settle")
def settle(
    date: Annotated[str, typer.Option("--date", help="First trading day, YYYY-MM-DD.")],
    to: Annotated[
        str | None, typer.Option("--to", help="Last trading day (default: --date).")
    ] = None,
    home: HomeOpt = None,
    dsn: DsnOpt = None,
) -> None:
    """Write HOME/psp/settlements/DATE.csv for each trading day from --date to --to: the
    deposits and approved payouts the store shows the provider settled that day.

    Exit 2 on a bad date or when there is no store."""
    from trading.errors import StoreError
    from trading.funding_settlement import settled_rows, write_settlement_file
    from trading.store.engine import open_readonly
    from trading.trading_day import cutoff_ns

    first = _day(date, "--date")
    last = _day(to, "--to") if to is not None else first
    if last < first:
        console.print(f"[red]error[/red] --to {last} is before --date {first}")
        raise typer.Exit(2)
    settings = settings_for(home, dsn)
    try:
        engine = open_readonly(settings.store_dsn())
    except StoreError as exc:
        console.print(f"[red]error[/red] {exc.code}: {exc.message}", soft_wrap=True)
        raise typer.Exit(2) from None
    day = first
    while day <= last:
        rows = settled_rows(engine, cutoff_ns(day - dt.timedelta(days=1)), cutoff_ns(day))
        path = write_settlement_file(settings.home, day, rows)
        out.print(f"{day}: {len(rows)} settlement(s) -> {path}")
        day += dt.timedelta(days=1)
    engine.dispose()
