"""Crash trials: a load of orders in a child process, killed with SIGKILL at a random point;
then the store is reopened and everything acknowledged must be there.

    python -m tests.trading.crash_trials --trials 100                 # SQLite
    python -m tests.trading.crash_trials --trials 50 --checkpoint-pages 8  # mid-checkpoint kills
    python -m tests.trading.crash_trials --trials 20 --store postgresql  # throwaway cluster
    python -m tests.trading.crash_trials --trials 20 --dsn postgresql://user@host/db

A trial (`run_trial`) migrates a fresh store, starts `tests.trading.crash_worker` on it,
waits for its first acknowledgement, lets it run a random while, kills it with SIGKILL,
reopens the store with a new OMS (which recovers from it) and checks:

- every acknowledged (client order id, order id) is in `orders` exactly once, with the same
  id, and the status it was acknowledged in is in its event history;
- the ledger and book invariants (`trading.verify.verify_ledger`: postings balance per
  transaction and commodity, cached balances equal the sums of postings, fills match their
  orders and lots, every order and every fill has its outbox events, gap-free per-account
  outbox sequences) and the audit chain (`verify_audit`) hold;
- the restarted OMS answers a repeated acknowledged request with the original order and
  creates nothing, takes a new order, and the invariants still hold after it.

With `--dsn`, each trial creates its own database on that server and drops it afterwards
(a failed trial's database is kept for inspection).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from tests.trading.builders import FakeClock, make_engine, make_oms, store_snapshot
from tests.trading.crash_worker import AFTER_NS
from trading.commands import Deposit, OrderAck, SubmitOrder
from trading.store import schema as s
from trading.store.engine import normalize_dsn, open_engine
from trading.store.verify import verify_audit, verify_ledger

REPO = Path(__file__).resolve().parents[2]
FIRST_ACK_TIMEOUT_S = 60.0  # the worker imports, opens the store and sets up first
RESUBMITS = 5
WORKER = "tests.trading.crash_worker"  # the module run as the child process


@dataclass
class TrialResult:
    seed: int
    store: str
    killed_after_s: float = 0.0
    killed: bool = False  # False: the worker had ended before the kill (no crash tested)
    acked: int = 0
    orders: int = 0
    fills: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def read_acks(path: Path) -> list[dict[str, Any]]:
    """Whole lines only: a line cut by the kill was never fsynced whole, so never counted."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    return [json.loads(line) for line in complete.decode().splitlines() if line]


def _wait_first_ack(proc: subprocess.Popen[bytes], ack: Path, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ack.exists() and b"\n" in ack.read_bytes():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_trial(
    seed: int,
    dsn_or_path: str | Path,
    *,
    max_kill_delay_s: float = 1.5,
    threads: int = 4,
    checkpoint_pages: int = 0,
) -> TrialResult:
    """One trial on a fresh store: a SQLAlchemy URL of an empty database, or a directory
    for a SQLite store."""
    started = time.monotonic()
    if isinstance(dsn_or_path, Path):
        dsn_or_path.mkdir(parents=True, exist_ok=True)
        dsn = f"sqlite:///{dsn_or_path / 'bourse.db'}"
        work = dsn_or_path
    else:
        dsn = dsn_or_path
        work = Path(tempfile.mkdtemp(prefix=f"bourse-crash-{seed}-"))
    store = "sqlite" if dsn.startswith("sqlite") else "postgresql"
    result = TrialResult(seed, store)
    make_engine(dsn).dispose()  # migrated before the worker starts
    ack, log = work / "acks.jsonl", work / "worker.log"
    rng = random.Random(seed)
    cmd = [
        sys.executable,
        "-m",
        WORKER,
        "--dsn",
        dsn,
        "--ack",
        str(ack),
        "--seed",
        str(seed),
        "--threads",
        str(threads),
        "--checkpoint-pages",
        str(checkpoint_pages),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        if not _wait_first_ack(proc, ack, FIRST_ACK_TIMEOUT_S):
            result.problems.append(f"the worker acknowledged nothing:\n{_tail(log)}")
            return result
        result.killed_after_s = rng.uniform(0, max_kill_delay_s)
        time.sleep(result.killed_after_s)
        result.killed = proc.poll() is None
        if result.killed:
            os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if not result.killed and proc.returncode != 0:
        result.problems.append(f"the worker failed (exit {proc.returncode}):\n{_tail(log)}")
    acks = read_acks(ack)
    result.acked = len(acks)
    engine = open_engine(dsn)
    try:
        result.problems += check_store(engine, acks, seed, result)
    except Exception as exc:  # a crash of the checks is a failed trial, with its reason
        result.problems.append(f"checking the store raised {exc!r}")
    finally:
        engine.dispose()
    result.seconds = time.monotonic() - started
    if result.ok and isinstance(dsn_or_path, str):
        shutil.rmtree(work, ignore_errors=True)
    return result


def _verify(engine: Engine, when: str) -> list[str]:
    with engine.connect() as conn:
        return [f"{when}: {p.check}: {p.detail}" for p in verify_ledger(conn) + verify_audit(conn)]


def check_store(
    engine: Engine, acks: list[dict[str, Any]], seed: int, result: TrialResult
) -> list[str]:
    problems = _verify(engine, "after the crash")
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.orders.c.account_id, s.orders.c.client_order_id, s.orders.c.order_id)
        ).all()
        history: dict[int, set[str]] = {}
        for order_id, type_ in conn.execute(
            select(s.outbox.c.order_id, s.outbox.c.type).where(s.outbox.c.order_id.is_not(None))
        ):
            history.setdefault(order_id, set()).add(type_.removeprefix("order."))
        result.orders = len(rows)
        result.fills = conn.execute(select(func.count()).select_from(s.executions)).scalar_one()
    by_key: dict[tuple[int, str], list[int]] = {}
    for account_id, cid, order_id in rows:
        by_key.setdefault((account_id, cid), []).append(order_id)
    acked_ids: dict[int, tuple[int, str]] = {}
    for a in acks:
        key = (a["account_id"], a["client_order_id"])
        found = by_key.get(key, [])
        if found != [a["order_id"]]:
            problems.append(f"acknowledged {key} as order {a['order_id']}, the store has {found}")
            continue
        if acked_ids.setdefault(a["order_id"], key) != key:
            problems.append(f"order {a['order_id']} acknowledged for two ids")
        if a["status"] not in history.get(a["order_id"], set()):
            problems.append(
                f"order {a['order_id']} was acknowledged {a['status']}, its events are "
                f"{sorted(history.get(a['order_id'], set()))}"
            )
    # A new OMS recovers from the store and keeps trading.
    clock = FakeClock(AFTER_NS)
    rig = make_oms(engine, clock)
    rig.seed_quotes()  # resting orders restored at the venue may fill on these
    rng = random.Random(seed)
    for a in rng.sample(acks, min(RESUBMITS, len(acks))):
        before = store_snapshot(engine)
        clock.advance(10**6)
        again = rig.oms.execute([SubmitOrder(rig.request(**a["request"]))])[0]
        if not (
            isinstance(again, OrderAck) and again.duplicate and again.order_id == a["order_id"]
        ):
            problems.append(f"resubmitting acknowledged {a['client_order_id']} gave {again!r}")
        if store_snapshot(engine) != before:
            problems.append(f"resubmitting acknowledged {a['client_order_id']} changed the store")
    clock.advance(10**6)
    cid = f"after-crash-{seed}"
    new = rig.oms.execute([Deposit(1, "USD", 1_000_000, cid), rig.submit(1, cid, qty="0.01")])
    if not (isinstance(new[1], OrderAck) and new[1].status.value == "filled"):
        problems.append(f"a new order after the restart gave {new!r}")
    problems += _verify(engine, "after the restart")
    return problems


# -- PostgreSQL databases for the command line ---------------------------------------------


@contextmanager
def _databases(server_dsn: str) -> Iterator[Any]:
    """Yields a function making a fresh database on the server of `server_dsn` (and a
    function dropping one)."""
    admin = create_engine(normalize_dsn(server_dsn), isolation_level="AUTOCOMMIT")

    def create() -> str:
        name = f"crash_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        return make_url(normalize_dsn(server_dsn)).set(database=name).render_as_string(False)

    def drop(url: str) -> None:
        name = make_url(url).database
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    try:
        yield create, drop
    finally:
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    p = argparse.ArgumentParser(description="Crash trials of the OMS: SIGKILL, then verify.")
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--seed", type=int, default=1, help="seed of the first trial")
    p.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--dsn", help="a PostgreSQL server URL: each trial makes its own database")
    p.add_argument("--max-kill-delay", type=float, default=1.5, help="seconds after first ack")
    p.add_argument(
        "--checkpoint-pages", type=int, default=0,
        help="SQLite: the worker checkpoints the WAL past this many pages (8: beside nearly "
        "every commit)",
    )  # fmt: skip
    args = p.parse_args(argv)
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="bourse-crash-"))
    results: list[TrialResult] = []
    with ExitStack() as stack:
        dsn = args.dsn
        if dsn is None and args.store == "postgresql":
            from tests.servers import start_postgres

            dsn = stack.enter_context(start_postgres()).dsn
        dbs = stack.enter_context(_databases(dsn)) if dsn else None
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("crash trials", total=args.trials)
            for seed in range(args.seed, args.seed + args.trials):
                target: str | Path = dbs[0]() if dbs else root / f"trial-{seed}"
                r = run_trial(
                    seed, target, max_kill_delay_s=args.max_kill_delay,
                    checkpoint_pages=args.checkpoint_pages,
                )  # fmt: skip
                results.append(r)
                if dbs and r.ok:
                    dbs[1](str(target))
                if not r.ok:
                    progress.console.print(f"[red]trial {seed} failed[/red] ({target}):")
                    for problem in r.problems[:20]:
                        progress.console.print(f"  - {problem}")
                progress.advance(task)
    failed = [r for r in results if not r.ok]
    not_killed = [r.seed for r in results if not r.killed]
    acked = sum(r.acked for r in results)
    console.print(
        f"{len(results)} trials on {results[0].store if results else args.store}: "
        f"{len(results) - len(failed)} passed, {len(failed)} failed; "
        f"{acked} acknowledged orders checked, {sum(r.orders for r in results)} orders and "
        f"{sum(r.fills for r in results)} fills in the stores; "
        f"kill after first ack 0-{args.max_kill_delay:g} s; "
        f"{sum(r.seconds for r in results):.0f} s in all"
    )
    if not_killed:
        console.print(f"[yellow]not killed (worker had ended): trials {not_killed}[/yellow]")
    if failed:
        console.print(f"[red]failed trials: {[r.seed for r in failed]}[/red]")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
