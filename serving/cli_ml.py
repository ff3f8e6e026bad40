"""``bourse ml``: train, evaluate, list and promote the fraud models (docs/fraud.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from serving import checks
from serving.cli_shared import HomeOpt, console, out, settings_for

ml_app = typer.Typer(help="Fraud models: train, evaluate, list, promote.", no_args_is_help=True)

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
        from ml.simulate import simulate

        with console.status(f"simulating {clients:,} clients over {days} days (seed {seed})"):
            frame = simulate(seed, clients, days)
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
        f"threshold={m['threshold']:.4f}"
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
        f"{result.alerts:,} alerts (top 1 %), {result.caught:,} labelled alerted"
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
    """The registered models, oldest first; the promoted one marked."""
    from ml.registry import Registry

    settings = settings_for(home, None)
    registry = Registry(settings.home)
    listed = registry.list()
    if not listed:
        checks.fail(f"no model under {registry.root}: run `bourse ml train --home {settings.home}`")
    table = Table(title=f"Fraud models under {registry.root}")
    for name in ("version", "promoted", "created", "seed", "rows", "pr_auc", "recall@1%",
                 "threshold", "data sha256"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("version", "created") else "right")
    for meta in listed:
        if "error" in meta:
            table.add_row(meta["version"], "", f"[red]{meta['error']}[/red]")
            continue
        metrics = meta.get("metrics", {})
        table.add_row(
            meta["version"],
            "yes" if meta["promoted"] else "",
            str(meta.get("created", ""))[:19],
            str(meta.get("seed", "")),
            f"{meta.get('data_rows', 0):,}",
            f"{metrics.get('pr_auc', float('nan')):.4f}",
            f"{metrics.get('recall_at_1pct', float('nan')):.4f}",
            f"{meta.get('threshold', float('nan')):.4f}",
            str(meta.get("data_sha256", ""))[:12],
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
