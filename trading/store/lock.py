"""One writer per store: an exclusive lock every writer takes before it reads its state.

Two OMS writers on one store would each trade on their own picture of it (the second fills
the first's resting orders at its own prices), and every ledger invariant still holds, so
nothing else would notice. ``bourse oms run`` and ``bourse simulate`` take this lock first
and refuse (``WriterLockHeld``) while another process holds it.

- SQLite: ``flock`` on ``<database>.lock`` beside the database file. The kernel drops it
  when the process dies, however it dies; the file keeps the holder's pid for the message.
- PostgreSQL: ``pg_try_advisory_lock`` on a connection held for as long as the lock; the
  server drops it when that session ends. Advisory locks are per database, like the store.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from trading.errors import WriterLockHeld

# The advisory lock's key: any fixed 64-bit number ("bourse w" in ASCII).
ADVISORY_KEY = 0x626F7572736520


class WriterLock:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._fd: int | None = None
        self._conn: Connection | None = None
        self.where = ""

    def __enter__(self) -> WriterLock:
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock now or raise ``WriterLockHeld``; never waits."""
        if self.engine.dialect.name == "sqlite":
            self._lock_file()
        else:
            self._lock_advisory()

    def _lock_file(self) -> None:
        database = self.engine.url.database
        if not database or database == ":memory:":
            return  # a private in-memory store: no other process can reach it
        path = Path(database).with_name(Path(database).name + ".lock")
        self.where = str(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise WriterLockHeld(
                f"another writer (pid {holder}) holds the store {database}",
                lock=str(path),
                pid=holder,
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def _lock_advisory(self) -> None:
        conn = self.engine.connect()
        try:
            got: Any = conn.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}
            ).scalar_one()
            conn.commit()
        except Exception:
            conn.close()
            raise
        self.where = self.engine.url.render_as_string(hide_password=True)
        if not got:
            holder = conn.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND objid = :lo AND classid = :hi AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"lo": ADVISORY_KEY & 0xFFFFFFFF, "hi": ADVISORY_KEY >> 32},
            ).scalar()
            conn.close()
            raise WriterLockHeld(
                f"another writer (server pid {holder or '?'}) holds the store {self.where}",
                pid=str(holder or "?"),
            )
        self._conn = conn

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None

    @property
    def held(self) -> bool:
        return self._fd is not None or self._conn is not None
