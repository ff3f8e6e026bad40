"""Running the fraud flow: one process in place, or a cluster of ``bytewax.run`` processes
(``--processes N``), each told the run by the environment.

Its recovery store lives under ``HOME/pipelines/fraud/recovery`` and is kept between runs:
a run resumes from the last snapshot (the streams from the ids it had read, the links and
the clients' histories as they stood).
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
from pipelines.fraud.spec import FraudSpec

ENV_SPEC = "BOURSE_FRAUD_SPEC"
RECOVERY_PARTS = 4  # recovery partitions: fixed, whatever the process count


def flow_from_env() -> Dataflow:
    from pipelines.fraud.flow import build_flow

    return build_flow(FraudSpec.from_json(os.environ[ENV_SPEC]))


def recovery_dir(spec: FraudSpec) -> Path:
    path = spec.work_dir / "recovery"
    if not (path.is_dir() and any(path.glob("part-*.sqlite3"))):
        path.mkdir(parents=True, exist_ok=True)
        init_db_dir(path, RECOVERY_PARTS)  # type: ignore[no-untyped-call]
    return path


def run_fraud(spec: FraudSpec, processes: int = 1) -> float:
    """Run the flow (to the end of the streams with ``until_idle``); the seconds it took.
    The model is loaded first: ``ml.registry.RegistryError`` when none is promoted."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    from pipelines.fraud.flow import promoted_model

    promoted_model(spec.home)
    recovery = recovery_dir(spec)
    started = time.perf_counter()
    if processes == 1:
        from bytewax.run import cli_main

        from pipelines.fraud.flow import build_flow

        cli_main(  # type: ignore[no-untyped-call]
            build_flow(spec),
            epoch_interval=dt.timedelta(seconds=spec.epoch_s),
            recovery_config=RecoveryConfig(str(recovery)),  # type: ignore[no-untyped-call]
        )
    else:
        _run_cluster(spec, processes, recovery)
    return time.perf_counter() - started


def _run_cluster(spec: FraudSpec, processes: int, recovery: Path) -> None:
    addresses = ";".join(f"127.0.0.1:{p}" for p in free_ports(processes))
    env = {**os.environ, ENV_SPEC: spec.to_json()}
    procs = []
    for k in range(processes):
        cmd = [
            sys.executable, "-m", "bytewax.run", "pipelines.fraud.run:flow_from_env()",
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
        raise RuntimeError(f"fraud flow process exit codes {codes}")
