"""P processes against one: a Parquet replay through the whole tick pipeline, lake sink on.

Targets: >= 1.7x on two processes (issue 3); >= 0.8 x P up to the number of cores, on a
replay long enough that the start is under a tenth of the time (issue 8).

The process counts and the input size are options (``options``): ``python -m benchmarks
--only ticks_scaling --processes 1,2,4,8 --ticks 16000000``, or ``BOURSE_BENCH_PROCESSES``
and ``BOURSE_BENCH_TICKS``; by default 1 and 2 processes over 8 M ticks.

Setup, untimed: Parquet files in ``TICK_SCHEMA``, one FX symbol each (the quotes of
``ticks_throughput``: a random walk with about 1% bad ticks of every kind; 8 files, or a
multiple of the largest process count), written to a temp dir. Each feed's key is
``<file name>|<symbol>`` and ``pipelines.ticks.routing`` sends it to process
``worker_for(key, P)``; the file names are chosen (a numbered suffix, the first that fits)
so that each process owns as many feeds as the others, for the largest count and (hashing
modulo a divisor) for every count that divides it.
The JSON records which process's source lists each feed (``TickSource.list_parts``), so a
change of routing shows there.

Timed, interleaved run by run, each into a fresh home directory:
``pipelines.ticks.run.run(RunSpec(home, source=<dir>, fmt="parquet", sinks=("lake",)),
processes=1)`` and the same with ``processes=P``. The one-process run screens in this
process (``bytewax.run.cli_main``); a P-process run starts P ``python -m bytewax.run``
processes, whose start (interpreter, imports, the cluster's connections) is in its wall
time. Both read the files, screen every tick, write the lake (zstd:1 Parquet, fsynced) and
snapshot for recovery once a second, as a real replay does.

To see the work apart from the start, each run is paired with a run over a tiny copy of the
input (``TINY_ROWS`` ticks per file); ``*_less_startup`` figures subtract it from the wall
time. ``cpu_s`` adds the CPU time of this process and of the children it waited for.
"""

from __future__ import annotations

import gc
import os
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
from trading.catalogue import Catalogue, default_catalogue

NAME = "ticks_scaling"
PROCESSES = (1, 2)
TICKS = 8_000_000
TINY_ROWS = 1_000
TARGETS = {"speedup_2_over_1_min": 1.7, "speedup_per_process_min": 0.8}


def options(ctx: Context) -> tuple[tuple[int, ...], int]:
    """The process counts and the input size: ``--processes``/``--ticks`` of ``python -m
    benchmarks``, else ``BOURSE_BENCH_PROCESSES`` (``1,2,4``) / ``BOURSE_BENCH_TICKS``,
    else (1, 2) and 8 M ticks. 1 is always measured: it is what a speed-up divides."""
    env_p = os.environ.get("BOURSE_BENCH_PROCESSES")
    processes = ctx.processes or (
        tuple(int(v) for v in env_p.split(",") if v.strip()) if env_p else PROCESSES
    )
    env_t = os.environ.get("BOURSE_BENCH_TICKS")
    ticks = ctx.ticks or (int(env_t) if env_t else TICKS)
    return tuple(sorted({1, *processes})), ticks


def _sizes(
    quick: bool, processes: tuple[int, ...] = PROCESSES, ticks: int = TICKS
) -> dict[str, int]:
    # One file (feed) per process at least, a multiple of the largest count so that every
    # process gets as many feeds (names are balanced for the largest count, and hashing
    # modulo a divisor keeps that balance).
    top = max(processes)
    files = top * max(1, -(-8 // top))
    if quick:
        return {"files": files, "rows_per_file": 5_000, "batch_rows": 2_500}
    return {"files": files, "rows_per_file": max(TINY_ROWS, ticks // files), "batch_rows": 100_000}


def balanced_names(symbols: tuple[str, ...], processes: int) -> dict[str, str]:
    """file name -> symbol, one file per entry of ``symbols``, names chosen so each process
    owns the same number of feeds."""
    share = -(-len(symbols) // processes)
    owned = [0] * processes
    names = {}
    for k, symbol in enumerate(symbols):
        for v in range(1_000):
            name = f"ticks-{partition_name(symbol).lower()}-{k}-{v}.parquet"
            w = worker_for(f"{name}|{symbol}", processes)
            if owned[w] < share:
                owned[w] += 1
                names[name] = symbol
                break
        else:
            raise RuntimeError(f"no file name for {symbol} fits an even split")
    return names


def write_files(
    catalogue: Catalogue, root: Path, names: dict[str, str], rows: int, seed: int = 11
) -> int:
    root.mkdir(parents=True, exist_ok=True)
    total = 0
    for k, (name, symbol) in enumerate(names.items()):
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
    processes, want = options(ctx)
    sizes = _sizes(ctx.quick, processes, want)
    catalogue = default_catalogue()
    # More files than symbols: the symbols again, each file its own feed (its own key).
    symbols = tuple(SYMBOLS[k % len(SYMBOLS)] for k in range(sizes["files"]))
    names = balanced_names(symbols, max(processes))
    tmp = Path(tempfile.mkdtemp(prefix="bourse-ticks-scaling-"))
    # The quick run is a smoke test: one run, and its input is already tiny.
    runs = 1 if ctx.quick else ctx.runs
    inputs = {"full": tmp / "full"} if ctx.quick else {"full": tmp / "full", "tiny": tmp / "tiny"}
    try:
        t0 = time.perf_counter()
        ticks = write_files(catalogue, inputs["full"], names, sizes["rows_per_file"])
        if "tiny" in inputs:
            tiny_ticks = write_files(catalogue, inputs["tiny"], names, TINY_ROWS)
        owners = owner_of_feed(catalogue, inputs["full"], max(processes))
        split = [sum(1 for k in owners.values() if k == p) for p in range(max(processes))]
        ctx.log(f"  {len(names)} files, {ticks:,} ticks, feeds per process {split} "
                f"(written in {time.perf_counter() - t0:.1f} s, untimed)")  # fmt: skip
        walls: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        counts: dict[str, dict[str, int]] = {}
        for r in range(runs):
            for which, src in inputs.items():
                for p in processes:  # interleaved, so each sees the same machine
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
    one = walls["full_1p"]
    for p in processes:
        full = walls[f"full_{p}p"]
        fig: dict[str, Any] = {
            "ticks_per_s": summarize([ticks / w for w in full], 0),
            "seconds": summarize(full, 3),
            "cores_used": summarize(
                [c / w for c, w in zip(cpus[f"full_{p}p"], full, strict=True)], 2
            ),
            "cpu_us_per_tick": summarize([c / ticks * 1e6 for c in cpus[f"full_{p}p"]], 3),
            "counts": counts[f"full_{p}p"],
            "speedup": summarize([a / b for a, b in zip(one, full, strict=True)], 3),
        }
        if "tiny" in inputs:
            tiny, t1 = walls[f"tiny_{p}p"], walls["tiny_1p"]
            fig["startup_s"] = summarize(tiny, 3)
            fig["ticks_per_s_less_startup"] = summarize(
                [ticks / max(1e-3, w - t) for w, t in zip(full, tiny, strict=True)], 0
            )
            fig["speedup_less_startup"] = summarize(
                [
                    (a - ta) / max(1e-3, b - tb)
                    for a, b, ta, tb in zip(one, full, t1, tiny, strict=True)
                ],
                3,
            )
        figures[f"{p}_process" + ("es" if p > 1 else "")] = fig
    # The figures of the first target, kept under their old names.
    if 2 in processes:
        figures["speedup"] = figures["2_processes"]["speedup"]
        if "tiny" in inputs:
            figures["speedup_less_startup"] = figures["2_processes"]["speedup_less_startup"]
    figures["same_counts"] = all(counts[f"full_{p}p"] == counts["full_1p"] for p in processes)
    data: dict[str, Any] = {
        "params": {**sizes, "ticks": ticks, "processes": list(processes), "runs": runs,
                   "files": names, "owner_of_feed": owners, "feeds_per_process": split,
                   "tiny_rows_per_file": TINY_ROWS if "tiny" in inputs else None},
        "targets": TARGETS,
        "figures": figures,
    }  # fmt: skip
    rows = []
    for p in processes:
        fig = figures[f"{p}_process" + ("es" if p > 1 else "")]
        rows.append(Row(NAME, "-", f"{p} process(es)", fig["ticks_per_s"], "ticks/s",
                        f"{fig['cores_used']['median']} cores"))  # fmt: skip
        if p > 1:
            rows.append(Row(NAME, "-", f"speedup {p} / 1", fig["speedup"], "x",
                            "wall, startup included"))  # fmt: skip
            if "speedup_less_startup" in fig:
                less = fig["speedup_less_startup"]
                rows.append(Row(NAME, "-", f"speedup {p} / 1 less startup", less, "x",
                                "tiny-input run subtracted"))  # fmt: skip
    write_result(ctx, NAME, data)
    return data, rows
