"""Child processes kept alive by one parent: each started in its own session with its output
in a log file, restarted with a back-off when it exits, stopped with SIGTERM then SIGKILL.

Each child leads its own process group, so a Ctrl-C at the terminal reaches only the
supervisor, which then stops the children in order; signals go to the whole group, so a
child's own children (a Bytewax worker, a uvicorn worker) stop with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Seconds to wait before the n-th restart in a row; a child that ran this long resets it.
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
STABLE_S = 60.0


@dataclass
class Service:
    name: str
    argv: Sequence[str]
    log: Path
    env: dict[str, str] | None = None
    # A job that may finish: a clean exit (0) is not restarted, a crash is.
    finite: bool = False
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures_in_row: int = 0
    restart_at: float | None = None
    history: list[int] = field(default_factory=list)  # exit codes, oldest first

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    def __init__(
        self, say: Callable[[str], None], grace_s: float = 10.0, pid_file: Path | None = None
    ) -> None:
        self.services: list[Service] = []
        self.say = say
        self.grace_s = grace_s
        # JSON {name: pid} of the running services, rewritten on each start and stop, for
        # whoever needs to find them (a test, an operator).
        self.pid_file = pid_file

    def _write_pids(self) -> None:
        if self.pid_file is None:
            return
        pids = {s.name: s.pid for s in self.services if s.alive()}
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(pids))
        tmp.replace(self.pid_file)

    def start(self, service: Service) -> Service:
        if service not in self.services:
            self.services.append(service)
        service.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(service.env or {})}
        with service.log.open("ab") as log:
            service.process = subprocess.Popen(  # noqa: S603 - argv built by `bourse up`
                list(service.argv), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        service.started_at = time.monotonic()
        service.restart_at = None
        self._write_pids()
        return service

    def poll(self) -> None:
        """Notice exits and schedule restarts; start those whose back-off has passed."""
        now = time.monotonic()
        for svc in self.services:
            if svc.process is None:
                continue
            if svc.restart_at is None:
                code = svc.process.poll()
                if code is None:
                    continue
                svc.history.append(code)
                if code == 0 and svc.finite:
                    self.say(f"{svc.name} finished (exit 0): not restarted (log: {svc.log})")
                    svc.process = None
                    continue
                ran = now - svc.started_at
                svc.failures_in_row = 0 if ran >= STABLE_S else svc.failures_in_row + 1
                wait = BACKOFF_S[min(svc.failures_in_row, len(BACKOFF_S) - 1)]
                svc.restart_at = now + wait
                self.say(
                    f"{svc.name} exited with code {code} after {ran:.1f} s: restarting in "
                    f"{wait:g} s (log: {svc.log})"
                )
            elif now >= svc.restart_at:
                svc.restarts += 1
                self.start(svc)
                self.say(f"{svc.name} restarted (pid {svc.pid}, restart {svc.restarts})")

    def stop(self, names: Sequence[str] | None = None) -> None:
        """SIGTERM to the services (all, or those named), SIGKILL to what is left after the
        grace period; no restart follows."""
        chosen = [s for s in self.services if names is None or s.name in names]
        for svc in chosen:
            svc.restart_at = None
            if svc.alive():
                _signal_group(svc, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for svc in chosen:
            if svc.process is None:
                continue
            try:
                svc.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{svc.name} did not stop in {self.grace_s:g} s: killing it")
                _signal_group(svc, signal.SIGKILL)
                svc.process.wait()
            # Its group may outlive it (a worker that ignored SIGTERM).
            _signal_group(svc, signal.SIGKILL)
            svc.process = None
        self._write_pids()


def _signal_group(svc: Service, sig: signal.Signals) -> None:
    if svc.process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(svc.process.pid, sig)
