"""Group commit for concurrent callers: a bounded queue, two threads, futures.

Callers ``submit`` a command and wait on its future. The writer thread takes whatever is
queued (up to ``max_batch``) and runs it against memory (``OMS.prepare``); the committer
thread writes each prepared batch in one transaction (``OMS.commit``) and only then
resolves its futures. Under load batches grow, so one fsync serves many orders; and while
a batch commits, the next one is already being prepared, so the domain work and the
store's work overlap instead of adding up. Nothing is acknowledged before it is durable.

Pipelining is off by default: measured here (2 cores, SQLite), it did not raise
throughput — binding rows to sqlite3 holds the GIL, so the two threads mostly take turns —
and it raised tail latency (p99 at 1,000 orders/s: 65 ms pipelined, 12 ms serial). It is
kept, tested, for stores whose commit waits on the network (PostgreSQL on another host).

On SQLite the service runs the OMS's WAL checkpoints on a thread of their own
(``trading.store.checkpoint``) from ``start`` to ``stop``: a commit then writes its pages to
the WAL and fsyncs it, and never also copies the WAL into the database file, which every
1,000 pages or so made one commit several times slower than the others (the latency tail).

Commands from the bus come as ``Envelope``s (``submit_keyed``): a ``CommandLog`` drops from
each batch the ids already executed or in flight, and adds the replies of the rest to the
batch's rows before it commits, so a reply is stored with its effect; their futures resolve
to the reply's JSON text. A command the store cannot hold stores no reply: it answers
``store_error`` and a retry with its id runs it again.

If a commit fails, every batch prepared after it is void (it was built on the failed
one's state). None of their callers is answered yet: the committer sets their commands
aside, the writer waits for the commits in flight, the OMS reloads its state from the
store, and the writer runs those commands again, in order, through ``OMS.execute``, which
isolates the command(s) the store cannot hold: only those answer ``StoreError``.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import threading
from concurrent.futures import Future
from typing import Any

from trading.commands import Command, Result
from trading.errors import StoreError
from trading.oms.commandlog import CommandLog, Envelope
from trading.oms.engine import OMS, Prepared
from trading.venues.base import ExecutionReport

_STOP = object()
_WAKE = object()  # the committer wakes an idle writer to re-run failed batches
Item = tuple[Command | Envelope, "Future[Any]"]
Replies = list[str | None] | None
# Batches prepared but not yet committed: a bound, so memory and the loss on a failed
# commit stay small.
IN_FLIGHT_MAX = 2


class OMSService:
    def __init__(
        self,
        oms: OMS,
        max_batch: int | None = None,
        max_queue: int | None = None,
        pipelined: bool = False,
        log: CommandLog | None = None,
    ) -> None:
        self.oms = oms
        self.log = log
        self.max_batch = max_batch or oms.config.max_batch
        self.pipelined = pipelined
        self._queue: queue.Queue[Item | object] = queue.Queue(
            maxsize=max_queue or oms.config.max_queue
        )
        self._commits: queue.Queue[tuple[Prepared, list[Item], Replies] | object] = queue.Queue(
            maxsize=IN_FLIGHT_MAX
        )
        self._failed = threading.Event()
        # Commands of batches whose commit failed or followed a failed one, in commit order,
        # waiting for the writer to run them again.
        self._redo: list[tuple[list[Item], tuple[ExecutionReport, ...]]] = []
        self._redo_lock = threading.Lock()
        # A slot per batch between "taken" and "committed". The writer takes the next batch
        # only when a slot is free: while the last batch commits, new commands gather in the
        # queue, so batches grow with the load instead of staying as small as they came.
        self._slots = threading.Semaphore(IN_FLIGHT_MAX)
        self._writer = threading.Thread(target=self._write, name="oms-writer", daemon=True)
        self._committer = threading.Thread(target=self._commit, name="oms-commit", daemon=True)
        self.batches = 0
        self.commands = 0
        self._own_checkpoints = False

    def __enter__(self) -> OMSService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        # What is alive now (catalogue, recovered state) lives as long as the process: keep
        # it out of the collector's full passes, which otherwise set the latency tail.
        gc.freeze()
        # SQLite's WAL checkpoints on a thread of their own while the service runs, not in
        # its commits (nothing on PostgreSQL). Stopped by ``stop`` if started here.
        self._own_checkpoints = self.oms.checkpointer is None
        self.oms.start_checkpoints()
        self._committer.start()
        self._writer.start()

    def stop(self) -> None:
        self._queue.put(_STOP)
        self._writer.join()
        # The last commits may fail after the writer left: their commands are run here.
        self._commits.join()
        if self._failed.is_set():
            self._rerun()
        self._commits.put(_STOP)
        self._committer.join()
        if self._own_checkpoints:
            self.oms.stop_checkpoints()

    def submit(self, command: Command, timeout: float | None = None) -> Future[Result]:
        """Queue a command; blocks (back-pressure) while the queue is full."""
        fut: Future[Result] = Future()
        self._queue.put((command, fut), timeout=timeout)
        return fut

    def submit_keyed(self, envelope: Envelope, timeout: float | None = None) -> Future[str]:
        """Queue a bus command; its future resolves to the reply's JSON text, after the
        reply is stored with the command's effect (or found stored already)."""
        if self.log is None:
            raise RuntimeError("submit_keyed needs an OMSService built with a CommandLog")
        fut: Future[str] = Future()
        self._queue.put((envelope, fut), timeout=timeout)
        return fut

    # -- the writer: takes batches and runs them against memory ------------------------------

    def _take(self) -> tuple[list[Item], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        items: list[Item] = [] if first is _WAKE else [first]  # type: ignore[list-item]
        while items and len(items) < self.max_batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is _STOP:
                return items, True
            if nxt is not _WAKE:
                items.append(nxt)  # type: ignore[arg-type]
        return items, False

    def _write(self) -> None:
        while True:
            if self.pipelined:
                self._slots.acquire()
            items, stop = self._take()
            if self._failed.is_set():
                self._rerun()
            if items:
                self._run(items)
            elif self.pipelined:
                self._slots.release()
            if stop:
                return

    def _run(self, items: list[Item]) -> None:
        if self.log is not None:
            try:
                items = self.log.admit(items)
            except Exception as exc:  # the store did not answer the lookup: nothing ran
                self._settle(items, _failed(items, f"command log not read: {exc!r}"))
                items = []
            if not items:
                if self.pipelined:
                    self._slots.release()
                return
        if not self.pipelined:
            self._execute(items)
            return
        try:
            prepared = self.oms.prepare(_commands(items))
            replies = self._record(prepared, items)
        except Exception:  # a bug, not a business error: nothing of it is stored
            self._slots.release()
            self._rerun()
            self._execute(items)  # isolates the command that breaks
            return
        self._commits.put((prepared, items, replies))

    def _execute(self, items: list[Item]) -> None:
        """``OMS.execute``, which isolates a command the store cannot hold; each part it
        commits carries the command log's rows of its own commands."""
        replies: list[str | None] = [None] * len(items)

        def record(prepared: Prepared, lo: int, hi: int) -> None:
            got = self._record(prepared, items[lo:hi])
            if got is not None:
                replies[lo:hi] = got

        results = self.oms.execute(_commands(items), before_commit=record)
        for i, result in enumerate(results):
            if isinstance(result, StoreError):
                replies[i] = None  # not stored: a reply recorded by a failed part is void
        self._settle(items, results, replies if self.log is not None else None)
        self._count(items)

    def _record(self, prepared: Prepared, items: list[Item]) -> Replies:
        if self.log is None:
            return None
        return self.log.record(prepared.batch, items, prepared.results)

    def _settle(self, items: list[Item], results: list[Result], replies: Replies = None) -> None:
        if self.log is None:
            _resolve(items, results)
        else:
            self.log.settle(items, results, replies)

    def _rerun(self) -> None:
        """After a failed commit: let the commits in flight finish (each failed batch and
        every one after it is set aside), reload memory, then run them again in order."""
        self._commits.join()
        self.oms.recover()
        with self._redo_lock:
            redo, self._redo = self._redo, []
            self._failed.clear()
        # The venue's reports those batches applied go back first in line, in order.
        self.oms.requeue([r for _, late in redo for r in late])
        for items, _ in redo:
            self._execute(items)

    # -- the committer: stores batches in order and answers their callers ---------------------

    def _commit(self) -> None:
        while True:
            job = self._commits.get()
            try:
                if not isinstance(job, tuple):  # the stop marker
                    return
                prepared: Prepared = job[0]
                items: list[Item] = job[1]
                if self._failed.is_set():
                    self._set_aside(items, prepared)  # built on the failed batch's state
                    continue
                try:
                    self.oms.commit(prepared)
                except Exception:
                    self._failed.set()
                    self._set_aside(items, prepared)
                    # An idle writer must come round to run them again (a full queue
                    # wakes it anyway).
                    with contextlib.suppress(queue.Full):
                        self._queue.put_nowait(_WAKE)
                    continue
                self._settle(items, prepared.results, job[2])
                self._count(items)
            finally:
                if job is not _STOP:
                    self._slots.release()
                self._commits.task_done()

    def _set_aside(self, items: list[Item], prepared: Prepared) -> None:
        with self._redo_lock:
            self._redo.append((items, prepared.late))

    def _count(self, items: list[Item]) -> None:
        self.batches += 1
        self.commands += len(items)


def _commands(items: list[Item]) -> list[Command]:
    return [cmd.command if isinstance(cmd, Envelope) else cmd for cmd, _ in items]


def _resolve(items: list[Item], results: list[Result]) -> None:
    for (_, fut), result in zip(items, results, strict=True):
        fut.set_result(result)


def _failed(items: list[Item], message: str) -> list[Result]:
    return [StoreError(message)] * len(items)
