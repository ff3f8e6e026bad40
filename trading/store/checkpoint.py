"""SQLite's WAL checkpoints, off the OMS's commit path.

A commit in WAL mode appends every page it dirtied to the WAL and fsyncs it. By default
SQLite also runs a checkpoint inside the commit that takes the WAL past 1,000 pages: it
copies those pages into the database file and fsyncs that too. Measured here (200 orders
per commit, ~750 WAL pages each), that checkpoint ran every one or two commits and doubled
their time (10-20 ms instead of 4-9 ms), and at a steady 1,000 orders/s it lands on one
small batch in ten or so: the latency tail.

``Checkpointer`` takes that work to a thread of its own, on a connection of its own. The
OMS's writer turns automatic checkpoints off (``writer(engine, checkpointed=True)``) and
calls ``committed()`` after each commit; the thread then runs a PASSIVE checkpoint (it
never blocks the writer, nor waits for readers) once the WAL holds ``pages`` frames not yet
copied. sqlite3 releases the GIL while it checkpoints, so the copy overlaps the next batch's
domain work. Should PASSIVE fall behind (readers pinning old snapshots, or a writer faster
than the copy) past ``hard_pages``, a RESTART checkpoint waits at most ``wait_ms`` for the
writer and readers, so the WAL cannot grow without bound; when no commit has come for
``idle_s``, a TRUNCATE checkpoint empties it. Durability does not change: a commit is
durable once its WAL frames are fsynced (``synchronous=FULL``), checkpointed or not, and a
crash mid-checkpoint is recovered by SQLite from the WAL on the next open.

Only a SQLite file store has one (``for_engine`` answers ``None`` for PostgreSQL, whose
server checkpoints by itself, and for in-memory SQLite).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

# The wal-index header at the start of the -shm file (https://sqlite.org/walformat.html,
# native byte order): mxFrame, the last valid frame, at offset 16 of the first header copy;
# nBackfill, the frames already copied into the database, at offset 96 (WalCkptInfo).
_MX_FRAME = struct.Struct("=I")
_SHM_HEADER = 136

PAGES = 1_000  # SQLite's own automatic checkpoint threshold
HARD_PAGES = 20_000  # ~80 MB of WAL with 4 KiB pages: past it, a blocking checkpoint
IDLE_S = 1.0
WAIT_MS = 200


@dataclass(frozen=True, slots=True)
class Run:
    """One checkpoint: its mode, when it ran (``time.perf_counter_ns``), and SQLite's
    answer: busy (it could not finish), frames in the WAL, frames copied."""

    mode: str
    start_ns: int
    end_ns: int
    busy: int
    log: int
    copied: int

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


class Checkpointer:
    def __init__(
        self,
        path: Path,
        *,
        pages: int = PAGES,
        hard_pages: int = HARD_PAGES,
        idle_s: float = IDLE_S,
        wait_ms: int = WAIT_MS,
        keep: int = 10_000,
    ) -> None:
        if pages < 1 or hard_pages < pages:
            raise ValueError(f"need 1 <= pages ({pages}) <= hard_pages ({hard_pages})")
        self.path = path
        self.pages = pages
        self.hard_pages = hard_pages
        self.idle_s = idle_s
        self.wait_ms = wait_ms
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._shm: int | None = None  # the -shm file, read for the WAL's backlog
        # The last checkpoints, for benchmarks and tests (a bounded record).
        self.runs: deque[Run] = deque(maxlen=keep)
        self.counts: dict[str, int] = {"PASSIVE": 0, "RESTART": 0, "TRUNCATE": 0}

    @classmethod
    def for_engine(cls, engine: Engine, **kwargs: Any) -> Checkpointer | None:
        """A checkpointer for the SQLite file behind ``engine``; ``None`` for any other
        store (PostgreSQL checkpoints by itself)."""
        url = engine.url
        if url.get_backend_name() != "sqlite" or not url.database:
            return None
        if url.database == ":memory:" or url.database.startswith("file:"):
            return None
        return cls(Path(url.database), **kwargs)

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Checkpointer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("checkpointer already started")
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="sqlite-checkpoint", daemon=True
        )
        self._thread.start()
        ready.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error

    def stop(self) -> None:
        """Empty the WAL if nothing blocks it (a TRUNCATE checkpoint), then end the thread."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._thread = None

    def committed(self) -> None:
        """A commit just landed in the WAL (called by the writer, after each commit)."""
        self._wake.set()

    # -- the thread --------------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        try:
            # Autocommit, and its own connection: a checkpoint must not run inside a
            # transaction, nor share the writer's.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        except Exception as exc:  # handed to start()'s caller
            self._error = exc
            ready.set()
            return
        self._shm = _open_shm(self.path)
        ready.set()
        try:
            self._loop(conn)
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._checkpoint(conn, "TRUNCATE")
            if self._shm is not None:
                os.close(self._shm)
                self._shm = None
            conn.close()

    def _loop(self, conn: sqlite3.Connection) -> None:
        idle_done = True  # nothing written since the last TRUNCATE
        while True:
            woken = self._wake.wait(self.idle_s)
            if self._stop.is_set():
                return
            if not woken:  # no commit for idle_s
                if not idle_done:
                    idle_done = self._try(conn, "TRUNCATE")
                continue
            self._wake.clear()
            idle_done = False
            if self._shm is None:  # no -shm yet when the thread started
                self._shm = _open_shm(self.path)
            backlog = _backlog(self._shm)
            if backlog is not None and backlog < self.pages:
                continue
            done = self._try(conn, "PASSIVE")
            last = self.runs[-1] if self.runs else None
            behind = last.log - last.copied if done and last else _backlog(self._shm) or 0
            if behind >= self.hard_pages:  # readers pin old frames, or the writer outruns it
                self._try(conn, "RESTART")

    def _try(self, conn: sqlite3.Connection, mode: str) -> bool:
        """Run a checkpoint; an error (a disk full, say) is left to the next wake-up: the
        writer's own commits do not depend on it."""
        try:
            return self._checkpoint(conn, mode)
        except sqlite3.Error:
            return False

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> bool:
        # PASSIVE never waits; RESTART and TRUNCATE wait for the writer and the readers,
        # but no longer than wait_ms (the writer's next commit waits as long at most).
        conn.execute(f"PRAGMA busy_timeout={self.wait_ms if mode != 'PASSIVE' else 0}")
        t0 = time.perf_counter_ns()
        row = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        t1 = time.perf_counter_ns()
        busy, log, copied = (int(v) for v in row) if row else (1, -1, -1)
        self.runs.append(Run(mode, t0, t1, busy, log, copied))
        self.counts[mode] += 1
        return busy == 0


def _open_shm(path: Path) -> int | None:
    try:
        return os.open(f"{path}-shm", os.O_RDONLY)
    except OSError:
        return None


def _backlog(shm: int | None) -> int | None:
    """Frames in the WAL not yet copied into the database, read from the wal-index without
    a lock (a torn read only makes one checkpoint early or late); ``None`` if unknown."""
    if shm is None:
        return None
    try:
        head = os.pread(shm, _SHM_HEADER, 0)
    except OSError:
        return None
    if len(head) < _SHM_HEADER:
        return None
    mx_frame: int = _MX_FRAME.unpack_from(head, 16)[0]
    backfilled: int = _MX_FRAME.unpack_from(head, 96)[0]
    return max(0, mx_frame - backfilled)
