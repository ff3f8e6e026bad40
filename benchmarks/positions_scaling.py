"""The positions throughput benchmark's flow on 1, 2 and 4 processes.

Target (issue 9): scaling on 1, 2 and 4 processes; the counts come from ``--processes``
(``python -m benchmarks --only positions_scaling --processes 1,2,4,8``), else
``BOURSE_BENCH_PROCESSES``, else 1,2,4 (1 is always run: it is what a speed-up divides).
On the 2-core machine four processes cannot scale; the benchmark is for bigger machines.

Setup, untimed: the workload of ``positions_workload`` (24 k accounts x 9 symbols = 216 k
keys, half the throughput benchmark's so that three process counts and their runs stay in
a few minutes; quick: 1 k accounts), pickled per partition of the event streams into a temp
dir, and a throwaway Redis with one quote hash per symbol.

Timed, interleaved run by run: P ``python -m bytewax.run`` processes (a cluster, as
``run_positions`` starts one) of ``books_flow`` (``positions_throughput``: route ->
``BooksLogic`` -> a counting sink) over a source with one partition per stream partition
(each loads its batches from the pickle), recovery on (a fresh store, epoch 1 s). The wall
time includes the start (interpreters, imports, the pickles, the cluster's connections):
each run is paired with one over a tiny workload (``TINY_ACCOUNTS``), subtracted in the
``*_less_startup`` figures. Every run must end with the same positions and no dead letter.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.recovery import init_db_dir

from benchmarks import positions_workload as wl
from benchmarks.common import Context, Row, summarize, write_result
from benchmarks.positions_throughput import books_flow, seed_quotes
from pipelines.cluster import free_ports
from pipelines.positions.run import RECOVERY_PARTS
from pipelines.positions.sources import EventBatch
from pipelines.positions.spec import PositionsSpec
from trading.catalogue import default_catalogue

NAME = "positions_scaling"
PROCESSES = (1, 2, 4)
TINY_ACCOUNTS = 200
ENV_SPEC, ENV_DATA = "BOURSE_POSBENCH_SPEC", "BOURSE_POSBENCH_DATA"
TARGETS = {"speedup_per_process_min": 0.8}


def options(ctx: Context) -> tuple[int, ...]:
    env_p = os.environ.get("BOURSE_BENCH_PROCESSES")
    processes = ctx.processes or (
        tuple(int(v) for v in env_p.split(",") if v.strip()) if env_p else PROCESSES
    )
    return tuple(sorted({1, *processes}))


def _sizes(quick: bool) -> dict[str, int]:
    return {"accounts": 1_000} if quick else {"accounts": 6_000}


# -- what each process of the cluster runs ---------------------------------------------------


class _FilePartition(StatefulSourcePartition[EventBatch, int]):
    def __init__(self, path: Path, resume: int | None) -> None:
        with path.open("rb") as f:
            self.batches: list[EventBatch] = pickle.load(f)  # our own temp file
        self.next = resume or 0

    def next_batch(self) -> list[EventBatch]:
        if self.next >= len(self.batches):
            raise StopIteration
        self.next += 1
        return [self.batches[self.next - 1]]

    def snapshot(self) -> int:
        return self.next


class FileEvents(FixedPartitionedSource[EventBatch, int]):
    """One partition per event stream partition, its batches read from ``part-{p}.pickle``."""

    def __init__(self, data: Path) -> None:
        self.data = data

    def list_parts(self) -> list[str]:
        return sorted(p.stem.removeprefix("part-") for p in self.data.glob("part-*.pickle"))

    def build_part(self, step_id: str, for_part: str, resume: int | None) -> _FilePartition:
        return _FilePartition(self.data / f"part-{for_part}.pickle", resume)


class _TallyPartition(StatelessSinkPartition[Any]):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tally = wl.Tally.empty()

    def write_batch(self, items: list[Any]) -> None:
        for item in items:
            self.tally.add(item)

    def close(self) -> None:
        self.path.write_text(json.dumps({"totals": self.tally.totals,
                                         "items": dict(self.tally.items)}))  # fmt: skip


class TallySink(DynamicSink[Any]):
    """Counts like ``positions_throughput.CountSink``; each worker writes its tally to a file."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _TallyPartition:
        return _TallyPartition(self.out / f"tally-{worker_index}.json")


def flow_from_env() -> Dataflow:
    data = Path(os.environ[ENV_DATA])
    spec = PositionsSpec.from_json(os.environ[ENV_SPEC])
    return books_flow(FileEvents(data), spec, TallySink(data))


# -- the parent ------------------------------------------------------------------------------


def write_parts(work: wl.Workload, root: Path) -> None:
    root.mkdir(parents=True)
    parts: dict[str, list[EventBatch]] = {}
    for batch in work.batches:
        parts.setdefault(batch.partition, []).append(batch)
    for p, batches in parts.items():
        with (root / f"part-{p}.pickle").open("wb") as f:
            pickle.dump(batches, f, protocol=pickle.HIGHEST_PROTOCOL)


def run_cluster(data: Path, spec: PositionsSpec, processes: int, recovery: Path) -> float:
    recovery.mkdir(parents=True)
    init_db_dir(recovery, RECOVERY_PARTS)  # type: ignore[no-untyped-call]
    for old in data.glob("tally-*.json"):
        old.unlink()
    addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(processes))
    env = {**os.environ, ENV_SPEC: spec.to_json(), ENV_DATA: str(data)}
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(  # our own module and numbers
            [sys.executable, "-m", "bytewax.run", "benchmarks.positions_scaling:flow_from_env()",
             "-i", str(k), "-a", addresses, "-r", str(recovery), "-s", "1", "-b", "0"],
            env=env,
        )
        for k in range(processes)
    ]  # fmt: skip
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - t0
    if any(codes):
        raise RuntimeError(f"cluster of {processes}: exit codes {codes}")
    return wall


def read_tally(data: Path) -> dict[str, Any]:
    totals: dict[str, list[int]] = {}
    dead = 0
    for f in data.glob("tally-*.json"):
        got = json.loads(f.read_text())
        totals.update(got["totals"])
        dead += got["items"].get("DeadLetter", 0)
    return {"long_qty": sum(v[0] for v in totals.values()),
            "short_qty": sum(v[1] for v in totals.values()), "dead_letters": dead}  # fmt: skip


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(ctx: Context) -> tuple[dict[str, Any], list[Row]]:
    from tests.servers import start_redis

    processes = options(ctx)
    sizes = _sizes(ctx.quick)
    runs = 1 if ctx.quick else ctx.runs
    catalogue = default_catalogue()
    tmp = Path(tempfile.mkdtemp(prefix="bourse-pos-scaling-"))
    works = {"full": wl.build(sizes["accounts"])}
    if not ctx.quick:
        works["tiny"] = wl.build(TINY_ACCOUNTS)
    server = start_redis()
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    outcomes: dict[str, dict[str, Any]] = {}
    try:
        seed_quotes(server.url, wl.quotes(catalogue))
        for which, work in works.items():
            write_parts(work, tmp / which)
        full = works["full"]
        ctx.log(f"  {full.accounts:,} accounts, {full.keys:,} keys, {full.fills:,} fills; "
                f"processes {list(processes)}")  # fmt: skip
        for r in range(runs):
            for which, work in works.items():
                for p in processes:  # interleaved, so each sees the same machine
                    spec = PositionsSpec(home=str(tmp / "home"), redis_url=server.url,
                                         until_idle=True, send_closes=False, epoch_s=1)  # fmt: skip
                    cpu0 = _children_cpu()
                    wall = run_cluster(tmp / which, spec, p, tmp / f"rec-{which}-{p}-{r}")
                    shutil.rmtree(tmp / f"rec-{which}-{p}-{r}", ignore_errors=True)
                    key = f"{which}_{p}p"
                    walls.setdefault(key, []).append(wall)
                    cpus.setdefault(key, []).append(_children_cpu() - cpu0)
                    got = read_tally(tmp / which)
                    if outcomes.setdefault(which, got) != got or got["dead_letters"]:
                        raise RuntimeError(f"{key}: {got} differs from {outcomes[which]}")
                    ctx.log(f"  run {r + 1} {which:<4} {p} process(es): {wall:.2f} s, "
                            f"{work.fills / wall:,.0f} fills/s")  # fmt: skip
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    fills = works["full"].fills
    figures: dict[str, Any] = {}
    one = walls["full_1p"]
    for p in processes:
        ws = walls[f"full_{p}p"]
        fig: dict[str, Any] = {
            "fills_per_s": summarize([fills / w for w in ws], 0),
            "seconds": summarize(ws, 3),
            "cores_used": summarize(
                [c / w for c, w in zip(cpus[f"full_{p}p"], ws, strict=True)], 2
            ),
            "speedup": summarize([a / b for a, b in zip(one, ws, strict=True)], 3),
        }
        if "tiny" in works:
            tiny, t1 = walls[f"tiny_{p}p"], walls["tiny_1p"]
            fig["startup_s"] = summarize(tiny, 3)
            fig["fills_per_s_less_startup"] = summarize(
                [fills / max(1e-3, w - t) for w, t in zip(ws, tiny, strict=True)], 0
            )
            fig["speedup_less_startup"] = summarize(
                [(a - ta) / max(1e-3, b - tb)
                 for a, b, ta, tb in zip(one, ws, t1, tiny, strict=True)], 3,
            )  # fmt: skip
        figures[f"{p}_process" + ("es" if p > 1 else "")] = fig
    figures["outcome"] = outcomes["full"]
    data: dict[str, Any] = {
        "params": {**sizes, "keys": works["full"].keys, "fills": fills,
                   "processes": list(processes), "runs": runs, "epoch_s": 1,
                   "tiny_accounts": TINY_ACCOUNTS if "tiny" in works else None},
        "targets": TARGETS,
        "figures": figures,
    }  # fmt: skip
    rows = []
    for p in processes:
        fig = figures[f"{p}_process" + ("es" if p > 1 else "")]
        rows.append(Row(NAME, "-", f"{p} process(es)", fig["fills_per_s"], "fills/s",
                        f"{fig['cores_used']['median']} cores"))  # fmt: skip
        if p > 1:
            rows.append(Row(NAME, "-", f"speedup {p} / 1", fig["speedup"], "x",
                            "wall, startup included"))  # fmt: skip
    write_result(ctx, NAME, data)
    return data, rows
