"""``bourse ml``: the fraud models' commands (docs/fraud.md) — ``simulate`` writes a labelled
event file; ``train``, ``evaluate``, ``models`` and ``promote`` work the registry."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from serving import checks
from serving.cli_shared import HomeOpt, console, out, settings_for

ml_app = typer.Typer(
    help="Fraud detection: simulate, train, evaluate, list and promote models.",
    no_args_is_help=True,
)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error[/red] {message}", soft_wrap=True, markup=True, highlight=False)
    return typer.Exit(2)


@ml_app.command("simulate")
def simulate(
    out_path: Annotated[Path, typer.Option("--out", help="The Parquet file to write.")],
    seed: Annotated[int, typer.Option(help="Seed: the same seed writes the same file.")] = 7,
    clients: Annotated[int, typer.Option(help="Clients to simulate.")] = 2_000,
    days: Annotated[int, typer.Option(help="Days to simulate.")] = 30,
    start: Annotated[
        str | None, typer.Option(help="First day, YYYY-MM-DD (UTC; default 2026-01-05).")
    ] = None,
    mix: Annotated[
        str | None,
        typer.Option(
            help="Each fraud kind's share of clients, e.g. ato=0.02,cycling=0.01 "
            "(kinds not named keep 0.01; 0 leaves one out)."
        ),
    ] = None,
) -> None:
    """Write a labelled event file of normal clients and frauds (scenario simulator).

    Exit 2 on a bad argument."""
    from ml.events import write_frame
    from ml.simulate import DEFAULT_MIX, parse_mix, simulate_world

    if seed < 0:
        raise _fail(f"--seed must be 0 or more, got {seed}")
    if clients < 1:
        raise _fail(f"--clients must be 1 or more, got {clients}")
    if days < 1:
        raise _fail(f"--days must be 1 or more, got {days}")
    first: datetime | None = None
    if start is not None:
        try:
            first = datetime.strptime(start, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise _fail(f"--start: not a date (YYYY-MM-DD): {start!r}") from None
    try:
        shares = parse_mix(mix) if mix is not None else dict(DEFAULT_MIX)
        with Progress(
            TextColumn("[bold]simulating clients"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("", total=clients)
            frame, _ = simulate_world(
                seed, clients, days, first, shares, lambda n: progress.advance(task, n)
            )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        write_frame(frame, out_path)
    except OSError as exc:
        raise _fail(f"cannot write {out_path}: {exc.strerror or exc}") from None
    labelled = frame.filter(frame["label"] == 1)["scenario"].value_counts(sort=False)
    by_kind = dict(zip(labelled["scenario"].to_list(), labelled["count"].to_list(), strict=True))
    kinds = " ".join(f"{k}={by_kind.get(k, 0)}" for k in shares)
    out.print(
        f"{frame.height} events, {sum(by_kind.values())} labelled ({kinds}) -> {out_path}",
        soft_wrap=True,
        highlight=False,
    )


# Without --events, training simulates this much (a few minutes on two cores).
DEFAULT_CLIENTS = 2_000
DEFAULT_DAYS = 30

EventsOpt = Annotated[
    Path | None, typer.Option("--events", help="A labelled event file (Parquet).")
]


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=True,
    )  # fmt: skip


def _read(path: Path) -> Any:
    from ml.events import EventFileError, read_frame

    try:
        return read_frame(path)
    except EventFileError as exc:
        checks.fail(str(exc))


@ml_app.command()
def train(
    home: HomeOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Split, models and simulation seed.")] = 0,
    events: EventsOpt = None,
    clients: Annotated[
        int, typer.Option("--clients", min=1, help="Without --events: clients to simulate.")
    ] = DEFAULT_CLIENTS,
    days: Annotated[
        int, typer.Option("--days", min=1, help="Without --events: days to simulate.")
    ] = DEFAULT_DAYS,
    promote: Annotated[
        bool, typer.Option("--promote/--no-promote", help="Promote the new model.")
    ] = True,
) -> None:
    """Train a model on a labelled file (or a simulation with the seed) and register it."""
    from ml.registry import Registry, RegistryError
    from ml.train import TrainingError
    from ml.train import train as train_model

    settings = settings_for(home, None)
    if events is not None:
        frame = _read(events)
        source = str(events)
    else:
        from ml.simulate import simulate as simulate_events

        with console.status(f"simulating {clients:,} clients over {days} days (seed {seed})"):
            frame = simulate_events(seed, clients, days)
        source = f"simulate(seed={seed}, clients={clients}, days={days})"
    with _progress() as progress:
        task = progress.add_task("features", total=frame.height)

        def tell(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total)

        try:
            trained = train_model(frame, seed, tell)
        except TrainingError as exc:
            progress.stop()
            checks.fail(str(exc))
    registry = Registry(settings.home)
    meta = {
        "metrics": trained.metrics,
        "data_sha256": trained.data_sha256,
        "data_rows": trained.rows,
        "data_source": source,
    }
    version = registry.register(trained.model, meta)
    if promote:
        try:
            registry.promote(version)
        except RegistryError as exc:
            checks.fail(str(exc))
    m = trained.metrics
    out.print(
        f"model {version}{' (promoted)' if promote else ''}: validation "
        f"pr_auc={m['pr_auc']:.4f} recall_at_1pct={m['recall_at_1pct']:.4f} "
        f"threshold={m['threshold']:.4f}",
        soft_wrap=True,
    )


@ml_app.command()
def evaluate(
    events: Annotated[Path, typer.Option("--events", help="A labelled event file (Parquet).")],
    home: HomeOpt = None,
) -> None:
    """Score every event of a labelled file with the promoted model; alert on the top 1 %.

    The last line is ``pr_auc=<x> recall_at_1pct=<y>``.
    """
    from ml.evaluate import EvaluationError
    from ml.evaluate import evaluate as evaluate_model

    model = _promoted(home)
    frame = _read(events)
    with _progress() as progress:
        task = progress.add_task("scoring events", total=frame.height)
        try:
            result = evaluate_model(
                model, frame, lambda done: progress.update(task, completed=done)
            )
        except EvaluationError as exc:
            progress.stop()
            checks.fail(f"{events}: {exc}")
    out.print(
        f"model {model.version}: {result.events:,} events, {result.labelled:,} labelled, "
        f"{result.alerts:,} alerts (top 1 %), {result.caught:,} labelled alerted",
        soft_wrap=True,
    )
    print(result.line())


def _promoted(home: Path | None) -> Any:
    from ml.registry import Registry, RegistryError

    settings = settings_for(home, None)
    if not settings.home.is_dir():
        checks.fail(f"no home at {settings.home}")
    try:
        return Registry(settings.home).promoted()
    except RegistryError as exc:
        checks.fail(str(exc))


@ml_app.command()
def models(home: HomeOpt = None) -> None:
    """The registered models, oldest first (a version is its UTC time); the promoted marked.

    Each model's whole record (data sha256, libraries, metrics by kind) is its meta.json.
    """
    from ml.registry import Registry

    settings = settings_for(home, None)
    registry = Registry(settings.home)
    listed = registry.list()
    if not listed:
        checks.fail(f"no model under {registry.root}: run `bourse ml train --home {settings.home}`")
    table = Table(title=f"Fraud models under {registry.root}", box=box.SIMPLE_HEAD)
    table.add_column("version", no_wrap=True, min_width=16)
    for name in ("promoted", "seed", "rows", "pr_auc", "recall@1%", "threshold"):
        table.add_column(name, justify="right", min_width=len(name), no_wrap=True)
    for meta in listed:
        if "error" in meta:
            table.add_row(meta["version"], "", f"[red]{meta['error']}[/red]")
            continue
        metrics = meta.get("metrics", {})
        table.add_row(
            meta["version"],
            "yes" if meta["promoted"] else "",
            str(meta.get("seed", "")),
            f"{meta.get('data_rows', 0):,}",
            f"{metrics.get('pr_auc', float('nan')):.4f}",
            f"{metrics.get('recall_at_1pct', float('nan')):.4f}",
            f"{meta.get('threshold', float('nan')):.4f}",
        )
    out.print(table)


@ml_app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to promote.")],
    home: HomeOpt = None,
) -> None:
    """Promote a registered model (checked: it loads and its features are the code's)."""
    from ml.registry import Registry, RegistryError

    settings = settings_for(home, None)
    if not settings.home.is_dir():
        checks.fail(f"no home at {settings.home}")
    try:
        Registry(settings.home).promote(version)
    except RegistryError as exc:
        checks.fail(str(exc))
    out.print(f"promoted {version}")
