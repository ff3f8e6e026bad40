"""``bourse ml``: the fraud models' commands — ``simulate`` writes a labelled event file
(docs/fraud.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from serving.cli_shared import console, out

ml_app = typer.Typer(help="Fraud detection: simulate, train, evaluate.", no_args_is_help=True)


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
