"""``bourse reports``: the Dagster jobs run in this process, and ``dagster dev`` opened.

``run`` materializes the end-of-day job for one trading date, as its schedule does;
``monthly`` and ``tax`` the monthly statements and the yearly tax statements. Each runs in
process (no code server: a ``dagster asset materialize`` costs seconds of cold start) on the
instance under ``DIR/dagster``, the one ``bourse reports dagster`` serves, so these runs show
in its UI beside the scheduled ones.

Exit codes: 0 done (a day without activity gives empty reports); 1 the run failed, or the
blocking check ``no_open_breaks`` found open breaks (the breaks are written, the statements
withheld); 2 bad input, no store, or the warehouse unreachable or busy (nothing is run).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from serving.cli_shared import DsnOpt, HomeOpt, console, out, settings_for

if TYPE_CHECKING:
    import dagster as dg

reports_app = typer.Typer(
    help="Batch analytics (Dagster): end-of-day reports, monthly statements, tax statements.",
    no_args_is_help=True,
)

WarehouseOpt = Annotated[
    str | None,
    typer.Option(
        "--warehouse",
        help="Warehouse DSN, chdb://PATH or http(s)://... (default $BOURSE_WAREHOUSE_DSN, "
        "else chDB under the home).",
    ),
]
BREAKS_CHECK = "no_open_breaks"
# The repository's instance template (dagster.yaml at the root), copied on first use.
TEMPLATE = Path(__file__).resolve().parents[1] / "dagster.yaml"


def dagster_home(home: Path) -> Path:
    """``DIR/dagster``, holding a copy of the repository's dagster.yaml (kept once made:
    an installation may have edited it, for PostgreSQL say)."""
    path = home.resolve() / "dagster"
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        if not TEMPLATE.exists():
            console.print(f"[red]no Dagster instance template at {TEMPLATE}[/red]")
            raise typer.Exit(2)
        shutil.copyfile(TEMPLATE, config)
    return path


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error[/red] {message}", soft_wrap=True)
    return typer.Exit(2)


def _check_sources(home: Path, store_dsn: str, warehouse_dsn: str) -> None:
    """The store and the warehouse, opened and closed: a missing store, an unreachable
    server or a busy chDB directory is one line and exit 2, before anything runs."""
    from assets.warehouse.client import Warehouse, WarehouseError, default_dsn
    from trading.errors import StoreError
    from trading.store.engine import open_readonly, sqlite_dsn

    try:
        engine = open_readonly(store_dsn or sqlite_dsn(home))
    except StoreError as exc:
        hint = "" if store_dsn else f" (run `bourse simulate --home {home}` first)"
        raise _fail(f"no store: {exc.message}{hint}") from None
    engine.dispose()
    try:
        Warehouse(warehouse_dsn or default_dsn(home)).close()
    except WarehouseError as exc:
        raise _fail(str(exc)) from None


def _run_job(
    home: Path,
    dsn: str | None,
    warehouse: str | None,
    job_name: str,
    partition_key: str,
    what: str,
) -> dg.ExecuteInProcessResult:
    """Runs one of the definitions' jobs for one partition, with a progress bar by step."""
    import dagster as dg

    from assets.definitions import build_definitions, resources_for

    settings = settings_for(home, dsn)
    root = settings.home.resolve()
    store_dsn = settings.dsn
    warehouse_dsn = warehouse or os.environ.get("BOURSE_WAREHOUSE_DSN", "")
    _check_sources(root, store_dsn, warehouse_dsn)
    layout = os.environ.get("BOURSE_WAREHOUSE_LAYOUT") or "single"
    defs = build_definitions(resources_for(root, store_dsn, warehouse_dsn, layout))
    names = {job.name for job in defs.resolve_all_job_defs()}
    if job_name not in names:
        raise _fail(f"no {what} in this build: job {job_name!r} has none of its assets")
    job = defs.resolve_job_def(job_name)
    # The instance lives under the home: DAGSTER_HOME is this process's own (the CLI's).
    os.environ["DAGSTER_HOME"] = str(dagster_home(root))
    instance = dg.DagsterInstance.get()
    run_id = str(uuid.uuid4())
    steps = len(job.nodes_in_topological_order)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task(f"{job_name} {partition_key}", total=steps)

        def on_event(entry: Any) -> None:
            event = entry.dagster_event
            if event is None or event.event_type_value not in _STEP_DONE:
                return
            progress.update(task, advance=1, description=f"{job_name}: {event.step_key}")

        instance.add_event_listener(run_id, on_event)
        result = job.execute_in_process(
            instance=instance,
            run_id=run_id,
            partition_key=partition_key if job.partitions_def is not None else None,
            raise_on_error=False,
            tags={"bourse/launched_by": "bourse reports"},
            # The progress bar and the summary say what happened; the log is in the UI.
            run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
        )
        progress.update(task, description=f"{job_name} {partition_key}")
    return result


_STEP_DONE = frozenset({"STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"})


def _summarize(result: dg.ExecuteInProcessResult, outputs: Path) -> int:
    """Prints what was materialized and checked, and where the outputs are; the exit code."""
    table = Table(title=f"run {result.run_id[:8]}")
    table.add_column("asset / check")
    table.add_column("result")
    for event in result.get_asset_materialization_events():
        # DagsterEvent's classmethod of the same name hides the property from mypy.
        mat: Any = event.step_materialization_data.materialization
        added = mat.metadata.get("added_total")
        detail = f"{added.value} rows added" if added is not None else "materialized"
        table.add_row(mat.asset_key.to_user_string(), detail)
    breaks_failed = False
    for evaluation in result.get_asset_check_evaluations():
        name = evaluation.check_name
        table.add_row(f"  check {name}", "[green]passed" if evaluation.passed else "[red]failed")
        if name == BREAKS_CHECK and not evaluation.passed:
            breaks_failed = True
    out.print(table)
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    if breaks_failed:
        breaks = outputs / "reconciliation" / "breaks.csv"
        console.print(
            f"[red]open breaks[/red]: statements withheld; the breaks are in {breaks}",
            soft_wrap=True,
        )
        return 1
    if failures or not result.success:
        for event in failures:
            error = event.step_failure_data.error if event.step_failure_data else None
            # Dagster wraps what the asset raised: its cause says what went wrong.
            while error is not None and error.cause is not None:
                error = error.cause
            first = error.message.strip().splitlines()[0] if error and error.message else ""
            console.print(f"[red]failed[/red] {event.step_key}: {first}", soft_wrap=True)
        return 1
    if outputs.exists():
        out.print(f"outputs: {outputs}")
        children = sorted(outputs.iterdir())
        folders = [c for c in children if c.is_dir()]
        for child in folders:
            count = sum(1 for p in child.rglob("*") if p.is_file())
            out.print(f"  {child}  ({count} files)")
        # A folder of one file per account (the tax year) is summed up, not listed.
        by_suffix: dict[str, int] = {}
        for child in children:
            if child.is_file():
                by_suffix[child.suffix or child.name] = (
                    by_suffix.get(child.suffix or child.name, 0) + 1
                )
        for suffix, count in sorted(by_suffix.items()):
            out.print(f"  {outputs}/*{suffix}  ({count} files)")
    else:
        out.print(f"nothing written under {outputs} (this build's assets write no reports)")
    return 0


def _daily_key(text: str) -> str:
    from assets.days import parse_date
    from assets.partitions import DAILY

    try:
        day = parse_date(text)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    key = day.isoformat()
    if not DAILY.has_partition_key(key):
        first = DAILY.get_first_partition_key()
        last = DAILY.get_last_partition_key()
        raise _fail(f"no report day {key}: reports cover {first} to {last} (today, UTC)")
    return key


@reports_app.command("run")
def run(
    date: Annotated[str, typer.Option("--date", help="The trading date, YYYY-MM-DD.")],
    home: HomeOpt = None,
    dsn: DsnOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Materialize the end-of-day assets for one trading date (as the 17:15 schedule does):
    extracts, reconciliations, risk reports, daily statements, the regulatory report."""
    from assets.schedules import END_OF_DAY

    key = _daily_key(date)
    settings = settings_for(home, dsn)
    result = _run_job(settings.home, dsn, warehouse, END_OF_DAY, key, "end-of-day assets")
    raise typer.Exit(_summarize(result, settings.home.resolve() / "reports" / key))


@reports_app.command("monthly")
def monthly(
    month: Annotated[str, typer.Option("--month", help="The month, YYYY-MM.")],
    home: HomeOpt = None,
    dsn: DsnOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Materialize the monthly statements for one month."""
    from assets.partitions import MONTHLY
    from assets.schedules import MONTHLY_STATEMENTS

    try:
        first = dt.datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise _fail(f"not a month (YYYY-MM): {month!r}") from None
    key = first.isoformat()
    if not MONTHLY.has_partition_key(key):
        raise _fail(f"no statements month {month}: months from 2026-01 to the current one")
    settings = settings_for(home, dsn)
    result = _run_job(settings.home, dsn, warehouse, MONTHLY_STATEMENTS, key, "monthly statements")
    raise typer.Exit(_summarize(result, settings.home.resolve() / "reports"))


@reports_app.command("tax")
def tax(
    year: Annotated[int, typer.Option("--year", help="The tax year, YYYY.")],
    home: HomeOpt = None,
    dsn: DsnOpt = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Materialize the yearly tax statements (realized gains per lot closure, FIFO)."""
    from assets.partitions import YEARLY
    from assets.schedules import YEARLY_TAX

    key = str(year)
    if not YEARLY.has_partition_key(key):
        raise _fail(f"no tax year {year}: years from 2026 to the current one")
    settings = settings_for(home, dsn)
    result = _run_job(settings.home, dsn, warehouse, YEARLY_TAX, key, "tax statements")
    raise typer.Exit(_summarize(result, settings.home.resolve() / "reports" / "tax" / key))


@reports_app.command("dagster")
def dagster_dev(
    home: HomeOpt = None,
    port: Annotated[int, typer.Option(help="The UI's port.")] = 3000,
    host: Annotated[str, typer.Option(help="The UI's address.")] = "127.0.0.1",
) -> None:
    """Open `dagster dev` on this data directory: every asset, check, schedule and sensor,
    the runs of `bourse reports`, and the schedules' daemon."""
    settings = settings_for(home, None)
    root = settings.home.resolve()
    env = dict(os.environ, DAGSTER_HOME=str(dagster_home(root)), BOURSE_HOME=str(root))
    exe = Path(sys.executable).with_name("dagster")
    if not exe.exists():
        raise _fail(f"no dagster executable beside {sys.executable}")
    argv = [str(exe), "dev", "-m", "assets.definitions", "--host", host, "--port", str(port)]
    console.print(f"DAGSTER_HOME={env['DAGSTER_HOME']} {' '.join(argv)}", soft_wrap=True)
    # Run from DAGSTER_HOME: dagster warns of a dagster.yaml in the current folder otherwise
    # (the repository's template). exec: the signals a supervisor sends reach dagster itself.
    os.chdir(env["DAGSTER_HOME"])
    # dagster dev stops on SIGTERM by mapping it to SIGINT's handler; a shell starting a
    # command with `&` (no job control) leaves SIGINT ignored, and the ignoring survives
    # exec, so SIGTERM would be ignored too. Both back to their defaults first.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.execve(str(exe), argv, env)  # noqa: S606 - our own venv's dagster, fixed arguments
