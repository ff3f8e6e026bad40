"""``bourse simulate`` and the store's command groups: ``ledger``, ``audit``, ``outbox``."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine

from serving.cli_shared import DsnOpt, HomeOpt, console, open_reader, open_store, out, settings_for

if TYPE_CHECKING:
    from trading.sim.activity import SimulationReport
    from trading.venues.dropcopy import DropCopy

ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
outbox_app = typer.Typer(help="The event outbox.", no_args_is_help=True)


def simulate(
    home: HomeOpt = None,
    dsn: DsnOpt = None,
    accounts: Annotated[int, typer.Option(min=1, help="Client accounts to open.")] = 20,
    orders: Annotated[int, typer.Option(min=0, help="Client orders to submit.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed writes the same store.")] = 7,
    add: Annotated[
        bool,
        typer.Option(
            "--add", help="Run on a store that already holds data (by default that is refused)."
        ),
    ] = False,
    days: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=366,
            help="Spread the orders over this many trading days (weekdays), with the clients "
            "owning the accounts, deposits and withdrawals every day, and the rollover at each "
            "cut-off between them (end-of-day marks, financing).",
        ),
    ] = None,
    venues: Annotated[
        Path | None,
        typer.Option(
            "--venues",
            help="Route orders by this venues file (docs/venues.md) to live FIX sessions and "
            "the B-book; every LP must log on (single-session simulation only).",
        ),
    ] = None,
    logon_timeout: Annotated[
        float,
        typer.Option(
            "--logon-timeout", min=0.1, help="With --venues: seconds to wait for the LPs' logons."
        ),
    ] = 10.0,
    start: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="With --days: the first trading day (YYYY-MM-DD; a weekend or holiday starts "
            "on the next trading day). Default 2026-01-05, or the day after what the store "
            "holds.",
        ),
    ] = None,
) -> None:
    """Run a seeded, deterministic trading simulation on a fresh store, then exit.

    Exit 2 when the store already holds data (unless --add) or cannot be reached, or when
    --start is given without --days or is not after what the store holds; 3 when another
    writer holds it; 1 when a command failed with a store error."""
    from serving import checks
    from serving.cli_venues import RoutedSimulation
    from trading.catalogue import default_catalogue
    from trading.errors import ConfigError, WriterLockHeld
    from trading.funding_settlement import write_settlement_files
    from trading.sim.simulation import run_simulation
    from trading.store.lock import WriterLock
    from trading.venues.dropcopy import DropCopy, dropcopy_dir

    if start is not None and days is None:
        checks.fail("--start needs --days: the single-session simulation has a fixed start")
    if venues is not None and days is not None:
        checks.fail("--venues runs with the single-session simulation, not with --days")
    settings = settings_for(home, dsn)
    checks.require(checks.home_dir(settings.home), checks.store(settings.dsn, settings.home))
    routed = None if venues is None else RoutedSimulation(venues, logon_timeout, settings.home)
    holds_data = checks.store_is_empty(settings.dsn, settings.home)
    engine = open_store(settings, create=True)
    lock = WriterLock(engine)
    try:
        lock.acquire()
    except WriterLockHeld as exc:
        console.print(f"[red]error[/red] {exc.code}: {exc.message}")
        raise typer.Exit(3) from None
    if holds_data and not add:
        lock.release()
        checks.fail(f"{holds_data}; or pass --add to simulate on top of it")
    started = time.perf_counter()
    # The venue's drop copy and the payment provider's settlement files, for the
    # reconciliations (docs/reconciliation.md).
    dropcopy = DropCopy(dropcopy_dir(settings.home), default_catalogue())
    if days is not None:
        with lock:
            report = _simulate_days(engine, settings.api_payment_provider, accounts, orders,
                                    seed, days, start, dropcopy)  # fmt: skip
    else:
        with lock, Progress(
            TextColumn("[bold]simulating"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=False,
        ) as progress:  # fmt: skip
            task = progress.add_task("orders", total=orders)
            try:
                report = run_simulation(
                    engine, default_catalogue(), accounts, orders, seed,
                    progress=lambda n: progress.update(task, completed=n), dropcopy=dropcopy,
                    route=routed.route if routed else None,
                    settle=routed.settle if routed else None,
                )  # fmt: skip
            except ConfigError as exc:  # an open order at an LP the venues file lacks
                checks.fail(exc.message)
            finally:
                if routed is not None:
                    routed.stop()
    dropcopy.close()
    write_settlement_files(settings.home, engine, report.first_ns, report.last_ns)
    elapsed = time.perf_counter() - started
    table = Table(title=f"Simulation (seed {seed}) on {engine.url.render_as_string()}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("accounts opened", str(report.accounts))
    if report.clients:
        table.add_row("clients created", str(report.clients))
    table.add_row("orders submitted", str(report.orders))
    table.add_row("cancels requested", str(report.cancels))
    table.add_row("amends requested", str(report.amends))
    table.add_row("deposits", str(report.deposits))
    table.add_row("cut-offs rolled (EOD marks, financing)", str(report.rollovers))
    for what, n in sorted(report.withdrawals.items()):
        table.add_row(f"withdrawals {what}", str(n))
    for code, n in sorted(report.errors.items()):
        table.add_row(f"refused: {code}", str(n))
    table.add_row("commands executed", str(report.commands))
    table.add_row("seconds", f"{elapsed:.2f}")
    out.print(table)
    _print_store_summary(engine)
    if report.errors.get("store_error"):
        console.print(f"[red]error[/red] store_error: {report.errors['store_error']} command(s) "
                      "were not stored")  # fmt: skip
        raise typer.Exit(1)


def _simulate_days(
    engine: Engine,
    provider: str,
    accounts: int,
    orders: int,
    seed: int,
    days: int,
    start: datetime | None,
    dropcopy: DropCopy,
) -> SimulationReport:
    """``run_days`` under two progress bars (days, orders), then a table of the days."""
    from serving import checks
    from trading.catalogue import default_catalogue
    from trading.errors import InvalidInput
    from trading.sim.days import DaySummary, run_days

    summaries: list[DaySummary] = []
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:  # fmt: skip
        day_task = progress.add_task("trading days", total=days)
        order_task = progress.add_task("orders", total=orders)

        def on_day(summary: DaySummary) -> None:
            summaries.append(summary)
            progress.update(day_task, advance=1, description=f"trading day {summary.day}")

        try:
            report = run_days(
                engine, default_catalogue(), accounts, orders, seed, days,
                start=None if start is None else start.date(), provider=provider,
                progress=lambda n: progress.update(order_task, completed=n), on_day=on_day,
                dropcopy=dropcopy,
            )  # fmt: skip
        except InvalidInput as exc:
            progress.stop()
            checks.fail(exc.message)
    table = Table(title=f"Trading days (cut-off 17:00 New York), seed {seed}")
    for name in ("day", "orders", "fills", "deposits", "withdrawals", "marks", "financing"):
        table.add_column(name, justify="left" if name == "day" else "right")
    for d in summaries:
        financing = ", ".join(f"{amount} {ccy}" for ccy, amount in d.financing.items())
        table.add_row(d.day.isoformat(), str(d.orders), str(d.fills), str(d.deposits),
                      str(d.withdrawals), str(d.eod_marks), financing or "-")  # fmt: skip
    out.print(table)
    return report


def _print_store_summary(engine: Engine) -> None:
    from sqlalchemy import text

    queries = {
        "orders by status": "SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status",
        "fills": "SELECT 'fills', COUNT(*) FROM executions",
        "ledger transactions": "SELECT 'transactions', COUNT(*) FROM ledger_txns",
        "postings": "SELECT 'postings', COUNT(*) FROM postings",
        "closed lot slices": "SELECT 'lot closures', COUNT(*) FROM lot_closures",
        "outbox events": "SELECT 'events', COUNT(*) FROM outbox",
        "audit records": "SELECT 'audit', COUNT(*) FROM audit_log",
    }
    table = Table(title="What the store holds")
    table.add_column("what")
    table.add_column("count", justify="right")
    with engine.connect() as conn:
        for title, sql in queries.items():
            for key, n in conn.execute(text(sql)):
                table.add_row(f"{title}: {key}" if "orders" in title else title, str(n))
        reasons: dict[str, int] = {}
        for reason, n in conn.execute(
            text("SELECT reason, COUNT(*) FROM orders WHERE reason IS NOT NULL GROUP BY reason")
        ):
            code = reason.split(":", 1)[0]
            reasons[code] = reasons.get(code, 0) + n
        for code, n in sorted(reasons.items()):
            table.add_row(f"orders closed with reason: {code}", str(n))
    out.print(table)


@ledger_app.command("verify")
def ledger_verify(home: HomeOpt = None, dsn: DsnOpt = None) -> None:
    """Check every ledger invariant, reading the store only.

    Exit 0 when every invariant holds; 1 with a report when one is broken, or when the store
    is empty (verifying nothing is not a pass); 2 when there is no store or no schema to read.
    """
    from trading.store.verify import CHECKS, row_counts, verify_ledger

    engine = open_reader(settings_for(home, dsn))
    with engine.connect() as conn:
        if not any(row_counts(conn).values()):
            out.print("empty store: 0 rows, nothing verified")
            raise typer.Exit(1)
        columns = (TextColumn("[bold]verifying {task.description}"), BarColumn(),
                   MofNCompleteColumn())  # fmt: skip
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("", total=len(CHECKS))
            problems = verify_ledger(
                conn, progress=lambda name: progress.update(task, advance=1, description=name)
            )
    if problems:
        for p in problems:
            out.print(f"[red]BROKEN[/red] {p.check}: {p.detail}")
        out.print(f"{len(problems)} problem(s) in {len({p.check for p in problems})} check(s)")
        raise typer.Exit(1)
    out.print(f"ledger OK: {len(CHECKS)} invariants hold")


@ledger_app.command("export")
def ledger_export(
    home: HomeOpt = None,
    dsn: DsnOpt = None,
    format: Annotated[str, typer.Option("--format", help="Output format.")] = "beancount",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Export every ledger transaction (Beancount: holdings as commodities held at cost)."""
    if format != "beancount":
        console.print(f"[red]unknown format {format!r}[/red]: supported: beancount")
        raise typer.Exit(2)
    from serving import checks
    from trading.catalogue import default_catalogue
    from trading.store.export_beancount import export_beancount

    settings = settings_for(home, dsn)
    checks.require(checks.store(settings.dsn, settings.home))
    if output is not None:
        checks.require(checks.output_outside_store(output, settings.dsn, settings.home))
        checks.require(checks.writable_file(output, "-o"))
    engine = open_store(settings)
    with engine.connect() as conn:
        if output is None:
            n = export_beancount(conn, default_catalogue(), sys.stdout)
        else:
            with output.open("w", encoding="utf-8") as fh:
                n = export_beancount(conn, default_catalogue(), fh)
    console.print(f"exported {n} transactions")


@audit_app.command("verify")
def audit_verify(
    home: HomeOpt = None,
    dsn: DsnOpt = None,
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            help="SEQ:HASH from `bourse audit head`, kept outside the store: the chain must "
            "still reach that record with that hash.",
        ),
    ] = None,
) -> None:
    """Detect any edited or deleted audit record, reading the store only.

    Exit 0 when the chain is intact (and reaches the anchor, if given); 1 when it is broken,
    the anchored record is missing or differs, or the log is empty (an empty log verifies
    nothing); 2 when there is no store or no schema to read, or the anchor is malformed.
    """
    from sqlalchemy import text

    from trading.errors import InvalidInput
    from trading.oms.audit import parse_anchor
    from trading.store.verify import verify_audit

    try:
        pinned = parse_anchor(anchor) if anchor is not None else None
    except InvalidInput as exc:
        console.print(f"[red]bad anchor:[/red] {exc.message}", soft_wrap=True)
        raise typer.Exit(2) from None
    engine = open_reader(settings_for(home, dsn))
    with engine.connect() as conn:
        problems = verify_audit(conn, pinned)
        count = conn.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one()
    if problems:
        for p in problems:
            out.print(f"[red]BROKEN[/red] {p.detail}", soft_wrap=True)
        raise typer.Exit(1)
    if count == 0:
        out.print("empty store: 0 audit records, nothing verified")
        raise typer.Exit(1)
    reached = f", reaches the anchor at record {pinned[0]}" if pinned else ""
    out.print(f"audit log OK: {count} records, chain intact{reached}")


@audit_app.command("head")
def audit_head(home: HomeOpt = None, dsn: DsnOpt = None) -> None:
    """Print the chain's head as `SEQ HASH`, to keep outside the store (a ticket, a log, a
    notary) and pass back later as `bourse audit verify --anchor SEQ:HASH`.

    Exit 1 when the log is empty or its last record is not the head the store records (run
    `bourse audit verify`); 2 when there is no store or no schema to read.
    """
    from sqlalchemy import text

    from trading.store.verify import audit_head as read_head

    engine = open_reader(settings_for(home, dsn))
    with engine.connect() as conn:
        head = read_head(conn)
        count = conn.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one()
    if head is None:
        if count == 0:
            console.print("empty store: no audit record to anchor")
        else:
            console.print("[red]the audit head does not match the last record[/red]: "
                          "run `bourse audit verify`")  # fmt: skip
        raise typer.Exit(1)
    out.print(f"{head[0]} {head[1]}", soft_wrap=True)


@outbox_app.command("relay")
def outbox_relay(
    home: HomeOpt = None,
    dsn: DsnOpt = None,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Redis to publish to.")
    ] = None,
    partitions: Annotated[int, typer.Option(min=1, help="Streams, partitioned by account.")] = 4,
    once: Annotated[
        bool, typer.Option("--once", help="Publish what is pending, then exit.")
    ] = False,
) -> None:
    """Publish outbox events to Redis Streams (at least once), marking them published."""
    import threading

    import redis

    from serving import checks
    from trading.bus.events import RedisStreamsPublisher
    from trading.oms.outbox import OutboxRelay

    settings = settings_for(home, dsn)
    url = redis_url or settings.redis_url
    # Both servers answer before anything is opened, migrated or published.
    checks.require(checks.store(settings.dsn, settings.home))
    checks.require(checks.redis(url))
    engine = open_store(settings)
    client = redis.Redis.from_url(url)
    relay = OutboxRelay(engine, RedisStreamsPublisher(client, partitions=partitions),
                        partitions=partitions)  # fmt: skip
    if once:
        total = 0
        with Progress(TextColumn("[bold]relaying"), BarColumn(), MofNCompleteColumn(),
                      console=console, transient=True) as progress:  # fmt: skip
            task = progress.add_task("", total=relay.lag())
            while n := relay.relay_once():
                total += n
                progress.update(task, advance=n)
        out.print(f"published {total} events; {relay.lag()} pending")
        return
    stop = threading.Event()
    console.print("relaying; Ctrl-C stops")
    try:
        relay.run(stop)
    except KeyboardInterrupt:
        stop.set()
    out.print(f"published {relay.published} events")
