"""``bourse pipelines``: the streaming dataflows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from serving.cli_shared import DsnOpt, HomeOpt, console, out, settings_for

LIVE_RATE = 10.0  # quotes per second per symbol of a live synthetic feed, by default

pipelines_app = typer.Typer(help="Streaming dataflows (Bytewax).", no_args_is_help=True)


@pipelines_app.command("ticks")
def pipelines_ticks(
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="A vendor file or directory, 'synthetic', or fix:VENUES.toml (live FIX "
            "market data from the file's [[lp]] marked market_data = true).",
        ),
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
        str | None,
        typer.Option("--symbols", help="Synthetic and FIX: comma-separated symbols."),
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
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Synthetic: a live feed instead of a replay: quotes at --rate per symbol, "
            "stamped with the current time, until Ctrl-C (or --duration).",
        ),
    ] = False,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate", help=f"Live: quotes per second, per symbol (default {LIVE_RATE:g})."
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Live: stop after this many seconds.")
    ] = None,
) -> None:
    """Normalize, filter and publish ticks; print accepted and rejected counts by reason."""
    from pipelines.ticks.formats import FeedError, select_files
    from pipelines.ticks.run import RunSpec, expected_records, run
    from serving import checks
    from trading.errors import InvalidInput

    settings = settings_for(home, None)
    checks.require(checks.home_dir(settings.home))
    if source.startswith("fix:") and not live:
        checks.fail("a FIX market-data source is live: add --live")
    if live:
        fix_source = source.startswith("fix:")
        if (source != "synthetic" and not fix_source) or ticks or inject or processes != 1:
            checks.fail("--live runs the synthetic or a fix:VENUES.toml source on one process: "
                        "without --ticks, --inject or --processes")  # fmt: skip
        if fix_source and rate is not None:
            checks.fail("--rate applies to the synthetic source: the LP sets a FIX feed's pace")
        per_s = LIVE_RATE if rate is None else rate
        _ticks_live(settings.home, symbols, per_s, duration, seed, sink,
                    redis_url or settings.redis_url, config, lake_compression,
                    fix_venues=source.removeprefix("fix:") if fix_source else None)  # fmt: skip
        return
    if duration is not None or rate is not None:
        checks.fail("--rate and --duration apply to a live feed: add --live")
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


def _ticks_live(
    home: Path, symbols: str | None, rate: float, duration: float | None, seed: int, sink: str,
    redis_url: str, config: Path | None, lake_compression: str, *, fix_venues: str | None = None,
) -> None:  # fmt: skip
    from pipelines.ticks.live_run import LiveSpec, run_live
    from serving import checks
    from trading.errors import InvalidInput

    try:
        spec = LiveSpec(
            home=str(home.resolve()),
            symbols=tuple(s.strip() for s in (symbols or "").split(",") if s.strip()),
            rate_per_s=rate, seed=seed,
            sinks=tuple(s.strip() for s in sink.split(",") if s.strip()),
            redis_url=redis_url, config_path=str(config) if config else None,
            lake_compression=lake_compression, duration_s=duration, fix_venues=fix_venues,
        )  # fmt: skip
        if "redis" in spec.sinks and spec.redis_url:
            checks.require(checks.redis(spec.redis_url))
        how_long = f"for {duration:g} s" if duration else "until Ctrl-C"
        if fix_venues is not None:
            from pipelines.ticks.fix_source import market_data_lps, unreachable

            lps = market_data_lps(Path(fix_venues))
            checks.require(unreachable(lps))
            names = ", ".join(lp.name for lp in lps)
            console.print(f"live FIX market data from {names}: {len(spec.symbols)} symbol(s), "
                          f"{how_long}")  # fmt: skip
        else:
            console.print(f"live synthetic feed: {len(spec.symbols)} symbol(s) at {rate:g} "
                          f"quotes/s each, stamped with the current time, {how_long}")  # fmt: skip
        report = run_live(spec)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except (ValueError, InvalidInput) as exc:
        checks.fail(str(exc))
    total = report.accepted + report.rejected
    out.print(f"{report.sent:,} quotes sent in {report.elapsed_s:.2f} s: {report.accepted:,} "
              f"accepted, {report.rejected:,} rejected of {total:,} screened")  # fmt: skip
    for reason, n in sorted(report.counts.items(), key=lambda kv: -kv[1]):
        if reason != "accepted":
            out.print(f"  rejected: {reason}: {n:,}")


@pipelines_app.command("positions")
def pipelines_positions(
    home: HomeOpt = None,
    dsn: DsnOpt = None,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Redis: the event and quote streams.")
    ] = None,
    processes: Annotated[int, typer.Option("--processes", min=1, help="Bytewax processes.")] = 1,
    partitions: Annotated[
        int, typer.Option("--partitions", min=1, help="The relay's event stream partitions.")
    ] = 4,
    until_idle: Annotated[
        bool,
        typer.Option(
            "--until-idle",
            help="Process every event and quote available, write a final snapshot to the "
            "lake, and exit.",
        ),
    ] = False,
    send_closes: Annotated[
        bool | None,
        typer.Option(
            "--send-closes/--no-send-closes",
            help="Send a stop-out's closes to the OMS (default: yes, except with --until-idle).",
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Margin levels and house limits (TOML).")
    ] = None,
) -> None:
    """Live positions, PnL, margin and house exposure; margin calls and stop-outs."""
    import time

    from pipelines.positions.config import load_config
    from pipelines.positions.run import run_positions
    from pipelines.positions.spec import PositionsSpec
    from serving import checks
    from trading.errors import ConfigError

    settings = settings_for(home, dsn)
    url = redis_url or settings.redis_url
    checks.require(checks.home_dir(settings.home))
    checks.require(checks.redis(url))
    store_dsn = settings.store_dsn()
    has_store = bool(settings.dsn) or (settings.home / "bourse.db").is_file()
    if settings.dsn:
        checks.require(checks.store(settings.dsn, settings.home))
    try:
        load_config(config)
        spec = PositionsSpec(
            home=str(settings.home.resolve()),
            redis_url=url,
            dsn=store_dsn if has_store else None,
            partitions=partitions,
            until_idle=until_idle,
            send_closes=(not until_idle) if send_closes is None else send_closes,
            config_path=str(config.resolve()) if config else None,
            final_ns=time.time_ns(),
        )
    except (ConfigError, ValueError) as exc:
        checks.fail(str(exc))
    if not has_store:
        console.print("[yellow]no store in --home: an account the streams cannot tell in full "
                      "is not rebuilt[/yellow]")  # fmt: skip
    if not until_idle:
        console.print("following the event streams; Ctrl-C stops")
    try:
        elapsed = run_positions(spec, processes)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except RuntimeError as exc:
        checks.fail(str(exc))
    out.print(f"positions: done in {elapsed:.2f} s; lake: {spec.lake_root}")


@pipelines_app.command("fraud")
def pipelines_fraud(
    home: HomeOpt = None,
    dsn: DsnOpt = None,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Redis: the event and login streams.")
    ] = None,
    processes: Annotated[int, typer.Option("--processes", min=1, help="Bytewax processes.")] = 1,
    partitions: Annotated[
        int, typer.Option("--partitions", min=1, help="The relay's event stream partitions.")
    ] = 4,
    until_idle: Annotated[
        bool,
        typer.Option("--until-idle", help="Score every event and login available, and exit."),
    ] = False,
    send_holds: Annotated[
        bool,
        typer.Option("--send-holds/--no-send-holds",
                     help="Hold an alerted account's pending withdrawals through the OMS."),
    ] = True,
) -> None:  # fmt: skip
    """Fraud scoring as events happen: alerts, and holds on risky withdrawals."""
    from ml.registry import RegistryError
    from pipelines.fraud.run import run_fraud
    from pipelines.fraud.spec import FraudSpec
    from serving import checks

    settings = settings_for(home, dsn)
    url = redis_url or settings.redis_url
    checks.require(checks.home_dir(settings.home))
    checks.require(checks.redis(url))
    has_store = bool(settings.dsn) or (settings.home / "bourse.db").is_file()
    if settings.dsn:
        checks.require(checks.store(settings.dsn, settings.home))
    try:
        spec = FraudSpec(home=str(settings.home.resolve()), redis_url=url,
                         dsn=settings.store_dsn() if has_store else None, partitions=partitions,
                         until_idle=until_idle, send_holds=send_holds)  # fmt: skip
    except ValueError as exc:
        checks.fail(str(exc))
    if not until_idle:
        console.print("following the event and login streams; Ctrl-C stops")
    try:
        elapsed = run_fraud(spec, processes)
    except RegistryError as exc:
        checks.fail(f"no model to score with: {exc}")
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except RuntimeError as exc:
        checks.fail(str(exc))
    out.print(f"fraud: done in {elapsed:.2f} s; alerts: bourse:fraud:alerts and "
              f"{spec.lake_root / 'fraud_alerts'}")  # fmt: skip
