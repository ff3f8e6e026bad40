"""Two processes against one: a Parquet replay through the whole tick pipeline, lake sink on.

Target (issue 3): >= 1.7x on this 2-core machine.

Setup, untimed: ``FILES`` Parquet files in ``TICK_SCHEMA``, one FX symbol each (the quotes
of ``ticks_throughput``: a random walk with about 1% bad ticks of every kind), written to a
temp dir. Each feed's key is ``<file name>|<symbol>`` and ``pipelines.ticks.routing`` sends
it to process ``worker_for(key, 2)``; the file names are chosen (a numbered suffix, the
first that fits) so that the two processes own four feeds each, an even share of the work.
The JSON records which process's source lists each feed (``TickSource.list_parts``), so a
change of routing shows there.

Timed, interleaved run by run, each into a fresh home directory:
``pipelines.ticks.run.run(RunSpec(home, source=<dir>, fmt="parquet", sinks=("lake",)),
processes=1)`` and the same with ``processes=2``. The one-process run screens in this
process (``bytewax.run.cli_main``); the two-process run starts two ``python -m bytewax.run``
processes, whose start (interpreter, imports, the cluster's connections) is in its wall
time. Both read the files, screen every tick, write the lake (zstd Parquet, fsynced) and
snapshot for recovery once a second, as a real replay does.

To see the work apart from the start, each run is paired with a run over a tiny copy of the
input (``TINY_ROWS`` ticks per file); ``*_less_startup`` figures subtract it from the wall
time. ``cpu_s`` adds the CPU time of this process and of the children it waited for.
"""

from __future__ import annotations

import gc
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Context, Row, summarize, write_result
from benchmarks.ticks_throughput import SYMBOLS, feed_frame
from pipelines.ticks.routing import worker_for
from pipelines.ticks.run import RunReport, RunSpec
from pipelines.ticks.run import run as run_pipeline
from pipelines.ticks.schema import partition_name
from pipelines.ticks.sources import TickSource
from trading.instruments import Catalogue, default_catalogue

NAME = "ticks_scaling"
PROCESSES = (1, 2)
TINY_ROWS = 1_000
TARGETS = {"speedup_2_over_1_min": 1.7}


def _sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"files": 8, "rows_per_file": 5_000, "batch_rows": 2_500}
    return {"files": 8, "rows_per_file": 1_000_000, "batch_rows": 100_000}


def balanced_names(symbols: tuple[str, ...], processes: int) -> dict[str, str]:
    """symbol -> file name, chosen so each process owns the same number of feeds."""
    share = -(-len(symbols) // processes)
    owned = [0] * processes
    names = {}
    for symbol in symbols:
        for v in range(1_000):
            name = f"ticks-{partition_name(symbol).lower()}-{v}.parquet"
            k = worker_for(f"{name}|{symbol}", processes)
            if owned[k] < share:
                owned[k] += 1
                names[symbol] = name
                break
        else:
            raise RuntimeError(f"no file name for {symbol} fits an even split")
    return names


def write_files(
    catalogue: Catalogue, root: Path, names: dict[str, str], rows: int, seed: int = 11
) -> int:
    root.mkdir(parents=True, exist_ok=True)
    total = 0
    for k, (symbol, name) in enumerate(names.items()):
        frame = feed_frame(catalogue, symbol, rows, seed=seed + k, source=name)
        frame.write_parquet(root / name, compression="zstd", statistics=True)
        total += frame.height
    return total


def owner_of_feed(catalogue: Catalogue, source: Path, processes: int) -> dict[str, int]:
    """feed key -> the process whose source partition reads it, as the pipeline decides."""
    feeds = RunSpec(home="-", source=str(source), fmt="parquet").feeds(catalogue)
    return {
        part: p
        for p in range(processes)
        for part in TickSource(feeds, process=p, processes=processes).list_parts()
    }


def _one(spec_args: dict[str, Any], home: Path, processes: int) -> tuple[float, float, RunReport]:
    """(wall s, CPU s of this process and its children, report) of one fresh run."""
    gc.collect()
    spec = RunSpec(home=str(home), **spec_args)
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    report = run_pipeline(spec, processes=processes)
    wall = time.perf_counter() - t0
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(
        (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime)
        for a, b in ((me0, me1), (kids0, kids1))
    )
    shutil.rmtree(home, ignore_errors=True)
    return wall, cpu, report


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    sizes = _sizes(ctx.quick)
    catalogue = default_catalogue()
    symbols = SYMBOLS[: sizes["files"]]
    names = balanced_names(symbols, max(PROCESSES))
    tmp = Path(tempfile.mkdtemp(prefix="bourse-ticks-scaling-"))
    # The quick run is a smoke test: one run, and its input is already tiny.
    runs = 1 if ctx.quick else ctx.runs
    inputs = {"full": tmp / "full"} if ctx.quick else {"full": tmp / "full", "tiny": tmp / "tiny"}
    try:
        t0 = time.perf_counter()
        ticks = write_files(catalogue, inputs["full"], names, sizes["rows_per_file"])
        if "tiny" in inputs:
            tiny_ticks = write_files(catalogue, inputs["tiny"], names, TINY_ROWS)
        owners = owner_of_feed(catalogue, inputs["full"], max(PROCESSES))
        split = [sum(1 for k in owners.values() if k == p) for p in range(max(PROCESSES))]
        ctx.log(f"  {len(names)} files, {ticks:,} ticks, feeds per process {split} "
                f"(written in {time.perf_counter() - t0:.1f} s, untimed)")  # fmt: skip
        walls: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        counts: dict[str, dict[str, int]] = {}
        for r in range(runs):
            for which, src in inputs.items():
                for p in PROCESSES:  # interleaved, so each sees the same machine
                    spec_args = {"source": str(src), "fmt": "parquet", "sinks": ("lake",),
                                 "batch_rows": sizes["batch_rows"]}  # fmt: skip
                    wall, cpu, report = _one(spec_args, tmp / f"home-{which}-{p}-{r}", p)
                    key = f"{which}_{p}p"
                    walls.setdefault(key, []).append(wall)
                    cpus.setdefault(key, []).append(cpu)
                    got = dict(sorted(report.counts.items()))
                    if counts.setdefault(key, got) != got or report.feeds_missing_stats:
                        raise RuntimeError(
                            f"{key}: counts {got}, missing {report.feeds_missing_stats}"
                        )
                    n = ticks if which == "full" else tiny_ticks
                    ctx.log(f"  run {r + 1} {which:<4} {p} process(es): {wall:.2f} s, "
                            f"{n / wall / 1e6:.2f} M ticks/s, {cpu / wall:.2f} cores")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    figures: dict[str, Any] = {}
    for p in PROCESSES:
        full = walls[f"full_{p}p"]
        fig: dict[str, Any] = {
            "ticks_per_s": summarize([ticks / w for w in full], 0),
            "seconds": summarize(full, 3),
            "cores_used": summarize(
                [c / w for c, w in zip(cpus[f"full_{p}p"], full, strict=True)], 2
            ),
            "counts": counts[f"full_{p}p"],
        }
        if "tiny" in inputs:
            tiny = walls[f"tiny_{p}p"]
            fig["startup_s"] = summarize(tiny, 3)
            fig["ticks_per_s_less_startup"] = summarize(
                [ticks / max(1e-3, w - t) for w, t in zip(full, tiny, strict=True)], 0
            )
        figures[f"{p}_process" + ("es" if p > 1 else "")] = fig
    one, two = walls["full_1p"], walls["full_2p"]
    figures["speedup"] = summarize([a / b for a, b in zip(one, two, strict=True)], 3)
    if "tiny" in inputs:
        t1, t2 = walls["tiny_1p"], walls["tiny_2p"]
        figures["speedup_less_startup"] = summarize(
            [(a - ta) / max(1e-3, b - tb) for a, b, ta, tb in zip(one, two, t1, t2, strict=True)], 3
        )
    figures["same_counts"] = counts["full_1p"] == counts["full_2p"]
    data: dict[str, Any] = {
        "params": {**sizes, "ticks": ticks, "runs": runs, "symbols": list(symbols),
                   "files": names, "owner_of_feed": owners, "feeds_per_process": split,
                   "tiny_rows_per_file": TINY_ROWS if "tiny" in inputs else None},
        "targets": TARGETS,
        "figures": figures,
    }  # fmt: skip
    rows = [
        Row(NAME, "-", f"{p} process(es)", figures[k]["ticks_per_s"], "ticks/s",
            f"{figures[k]['cores_used']['median']} cores")
        for p, k in zip(PROCESSES, ("1_process", "2_processes"), strict=True)
    ]  # fmt: skip
    rows.append(Row(NAME, "-", "speedup 2 / 1", figures["speedup"], "x", "wall, startup included"))
    if "speedup_less_startup" in figures:
        rows.append(Row(NAME, "-", "speedup 2 / 1 less startup", figures["speedup_less_startup"],
                        "x", "tiny-input run subtracted"))  # fmt: skip
    write_result(ctx, NAME, data)
    return data, rows
