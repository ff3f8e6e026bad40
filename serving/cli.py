"""The ``bourse`` command line."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine

from serving.settings import Settings

app = typer.Typer(
    help="Bourse: a trading platform back end for retail brokers.", no_args_is_help=True
)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
outbox_app = typer.Typer(help="The event outbox.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(audit_app, name="audit")
app.add_typer(outbox_app, name="outbox")
oms_app = typer.Typer(help="The order management system.", no_args_is_help=True)
app.add_typer(oms_app, name="oms")
pipelines_app = typer.Typer(help="Streaming dataflows (Bytewax).", no_args_is_help=True)
app.add_typer(pipelines_app, name="pipelines")

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


def _settings(home: Path | None, dsn: str | None) -> Settings:
    overrides: dict[str, object] = {}
    if home is not None:
        overrides["home"] = home
    if dsn is not None:
        overrides["dsn"] = dsn
    return Settings(**overrides)  # type: ignore[arg-type]


def _engine(settings: Settings, create: bool = False) -> Engine:
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


@app.command()
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
) -> None:
    """Run a seeded, deterministic trading simulation on a fresh store, then exit.

    Exit 2 when the store already holds data (unless --add) or cannot be reached; 3 when
    another writer holds it; 1 when a command failed with a store error."""
    from serving import checks
    from trading.errors import WriterLockHeld
    from trading.instruments import default_catalogue
    from trading.sim.simulation import run_simulation
    from trading.store.lock import WriterLock

    settings = _settings(home, dsn)
    checks.require(checks.home_dir(settings.home), checks.store(settings.dsn, settings.home))
    holds_data = checks.store_is_empty(settings.dsn, settings.home)
    engine = _engine(settings, create=True)
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
    with lock, Progress(
        TextColumn("[bold]simulating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task("orders", total=orders)
        report = run_simulation(
            engine, default_catalogue(), accounts, orders, seed,
            progress=lambda n: progress.update(task, completed=n),
        )  # fmt: skip
    elapsed = time.perf_counter() - started
    table = Table(title=f"Simulation (seed {seed}) on {engine.url.render_as_string()}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("accounts opened", str(report.accounts))
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


def _reader(settings: Settings) -> Engine:
    """The store opened read-only: never created, never migrated; exit 2 when there is none."""
    from trading.errors import StoreError
    from trading.store.engine import open_readonly

    try:
        return open_readonly(settings.store_dsn())
    except StoreError as exc:
        console.print(f"[red]cannot verify:[/red] {exc.message}", soft_wrap=True)
        raise typer.Exit(2) from None


@ledger_app.command("verify")
def ledger_verify(home: HomeOpt = None, dsn: DsnOpt = None) -> None:
    """Check every ledger invariant, reading the store only.

    Exit 0 when every invariant holds; 1 with a report when one is broken, or when the store
    is empty (verifying nothing is not a pass); 2 when there is no store or no schema to read.
    """
    from trading.store.verify import CHECKS, row_counts, verify_ledger

    engine = _reader(_settings(home, dsn))
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
    from trading.instruments import default_catalogue
    from trading.store.export_beancount import export_beancount

    settings = _settings(home, dsn)
    checks.require(checks.store(settings.dsn, settings.home))
    if output is not None:
        checks.require(checks.output_outside_store(output, settings.dsn, settings.home))
        checks.require(checks.writable_file(output, "-o"))
    engine = _engine(settings)
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
    engine = _reader(_settings(home, dsn))
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

    engine = _reader(_settings(home, dsn))
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

    settings = _settings(home, dsn)
    url = redis_url or settings.redis_url
    # Both servers answer before anything is opened, migrated or published.
    checks.require(checks.store(settings.dsn, settings.home))
    checks.require(checks.redis(url))
    engine = _engine(settings)
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
) -> None:
    """Run the OMS host: the single writer, serving the command bus until SIGTERM."""
    from serving.oms_host import run_host

    settings = _settings(home, dsn)
    code = run_host(
        settings, redis_url, partitions=partitions, expire_every_s=expire_every, console=console
    )
    raise typer.Exit(code)


@pipelines_app.command("ticks")
def pipelines_ticks(
    source: Annotated[
        str, typer.Option("--source", help="A vendor file or directory, or 'synthetic'.")
    ],
    home: HomeOpt = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="histdata | truefx | binance-quotes | binance-trades | parquet (files only).",
        ),
    ] = None,
    sink: Annotated[str, typer.Option("--sink", help="Comma-separated: lake, redis.")] = "lake",
    processes: Annotated[int, typer.Option("--processes", min=1, help="Bytewax processes.")] = 1,
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Synthetic: comma-separated symbols.")
    ] = None,
    ticks: Annotated[int, typer.Option("--ticks", min=0, help="Synthetic: ticks per symbol.")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Synthetic: the generator's seed.")] = 0,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Files: the symbol, when the name has none.")
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Redis for the quote snapshot and stream.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Filter thresholds (TOML).")
    ] = None,
    batch_rows: Annotated[int, typer.Option("--batch-rows", min=1)] = 100_000,
    inject: Annotated[
        float,
        typer.Option(
            "--inject",
            help="Synthetic: spoil about this share of the ticks (at most 0.05) with labelled "
            "bad ticks of every kind, to see the screening at work.",
        ),
    ] = 0.0,
    lake_compression: Annotated[
        str,
        typer.Option(
            "--lake-compression",
            help="The lake's Parquet codec: zstd[:level], lz4, snappy or uncompressed "
            "(docs/lake.md says why zstd:1 is the default).",
        ),
    ] = "zstd:1",
) -> None:
    """Normalize, filter and publish ticks; print accepted and rejected counts by reason."""
    from pipelines.ticks.formats import FeedError, select_files
    from pipelines.ticks.run import RunSpec, expected_records, run
    from serving import checks
    from trading.errors import InvalidInput

    settings = _settings(home, None)
    checks.require(checks.home_dir(settings.home))
    try:
        spec = RunSpec(
            home=str(settings.home.resolve()),
            source=source if source == "synthetic" else str(Path(source).resolve()),
            fmt=fmt,
            symbol=symbol,
            symbols=tuple(s.strip() for s in (symbols or "").split(",") if s.strip()),
            ticks=ticks,
            seed=seed,
            sinks=tuple(s.strip() for s in sink.split(",") if s.strip()),
            redis_url=redis_url or settings.redis_url,
            batch_rows=batch_rows,
            config_path=str(config) if config else None,
            inject_rate=inject,
            lake_compression=lake_compression,
        )
        if "redis" in spec.sinks and spec.redis_url:
            checks.require(checks.redis(spec.redis_url))
        if not spec.synthetic and spec.fmt is not None and Path(spec.source).is_dir():
            _, skipped = select_files(Path(spec.source), spec.fmt)
            for path, why in skipped:
                console.print(f"[yellow]skipped[/yellow] {escape(f'{path.name}: {why}')}")
        with Progress(TextColumn("[bold]screening ticks"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                      transient=True) as progress:  # fmt: skip
            task = progress.add_task("", total=expected_records(spec))

            def advance(done: int) -> None:
                progress.update(task, completed=done)

            report = run(spec, processes=processes, on_progress=advance)
    except (FeedError, ValueError, InvalidInput) as exc:
        checks.fail(str(exc))
    table = Table(title="ticks", show_footer=True)
    table.add_column("outcome", footer="total")
    total = report.accepted + report.rejected
    table.add_column("ticks", justify="right", footer=f"{total:,}")
    table.add_row("accepted", f"{report.accepted:,}")
    table.add_row("rejected", f"{report.rejected:,}")
    for reason, n in sorted(report.counts.items(), key=lambda kv: -kv[1]):
        if reason != "accepted":
            table.add_row(f"rejected: {reason}", f"{n:,}")
    out.print(table)
    rate = total / report.elapsed_s if report.elapsed_s > 0 else 0.0
    resumed = " (resumed after an interruption)" if report.resumed else ""
    out.print(f"{total:,} ticks in {report.elapsed_s:.2f} s ({rate:,.0f}/s){resumed}; "
              f"lake: {report.lake_root}")  # fmt: skip
    for key in report.feeds_missing_stats:
        out.print(f"[yellow]no ticks from {key}[/yellow]")
    if spec.inject_rate:
        from pipelines.ticks.run import injected

        n, caught = injected(spec)
        found = "" if caught is None else f", {caught:,} of them rejected for the labelled reason"
        out.print(f"{n:,} labelled bad ticks injected{found}; labels: "
                  f"{escape(str(spec.labels_dir))}")  # fmt: skip


def main() -> None:
    app()


if __name__ == "__main__":
    main()
