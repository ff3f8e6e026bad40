"""Running the positions flow: one process in place, or a cluster of ``bytewax.run``
processes (``--processes N``), each told the run by the environment.

Its recovery store lives under ``HOME/pipelines/positions/recovery`` and is kept between
runs: a run resumes from the last snapshot (the streams from the ids it had read, the books
as they stood), whether the one before was killed or ran ``--until-idle`` to the end.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir

from pipelines.cluster import free_ports
from pipelines.positions.spec import PositionsSpec

ENV_SPEC = "BOURSE_POSITIONS_SPEC"
RECOVERY_PARTS = 4  # recovery partitions: fixed, whatever the process count


def flow_from_env() -> Dataflow:
    from pipelines.positions.flow import build_flow

    return build_flow(PositionsSpec.from_json(os.environ[ENV_SPEC]))


def recovery_dir(spec: PositionsSpec) -> Path:
    path = spec.work_dir / "recovery"
    if not (path.is_dir() and any(path.glob("part-*.sqlite3"))):
        path.mkdir(parents=True, exist_ok=True)
        init_db_dir(path, RECOVERY_PARTS)  # type: ignore[no-untyped-call]
    return path


def run_positions(spec: PositionsSpec, processes: int = 1) -> float:
    """Run the flow (to the end of the streams with ``until_idle``); the seconds it took."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    recovery = recovery_dir(spec)
    started = time.perf_counter()
    if processes == 1:
        from bytewax.run import cli_main

        from pipelines.positions.flow import build_flow

        cli_main(  # type: ignore[no-untyped-call]
            build_flow(spec),
            epoch_interval=dt.timedelta(seconds=spec.epoch_s),
            recovery_config=RecoveryConfig(str(recovery)),  # type: ignore[no-untyped-call]
        )
    else:
        _run_cluster(spec, processes, recovery)
    if spec.until_idle:
        _final_snapshot_written(spec)
    return time.perf_counter() - started


def _final_snapshot_written(spec: PositionsSpec) -> None:
    """A run that found no account still leaves its final snapshot, empty: a reader then
    sees "no positions", not "no snapshot" (shards write theirs only once they hold one)."""
    from pipelines.positions import lake

    if spec.final_ns not in lake.snapshots(spec.lake_root):
        lake.write_snapshot(spec.lake_root, spec.final_ns, "empty", (), ())


def _run_cluster(spec: PositionsSpec, processes: int, recovery: Path) -> None:
    addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(processes))
    env = {**os.environ, ENV_SPEC: spec.to_json()}
    procs = []
    for k in range(processes):
        cmd = [
            sys.executable, "-m", "bytewax.run", "pipelines.positions.run:flow_from_env()",
            "-i", str(k), "-a", addresses, "-r", str(recovery), "-s", str(spec.epoch_s),
            "-b", "0",
        ]  # fmt: skip
        # Built here from our own module path and numbers, not from input.
        procs.append(subprocess.Popen(cmd, env=env))  # noqa: S603
    try:
        codes = [p.wait() for p in procs]
    except BaseException:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait()
        raise
    if any(codes):
        raise RuntimeError(f"positions flow process exit codes {codes}")
