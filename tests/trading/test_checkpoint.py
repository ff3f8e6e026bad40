"""SQLite's WAL checkpoints on a thread of their own (trading.store.checkpoint)."""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.trading.builders import Rig, make_rig
from trading.commands import OrderAck
from trading.oms.service import OMSService
from trading.store import schema as s
from trading.store.checkpoint import Checkpointer
from trading.store.engine import open_engine
from trading.store.verify import verify_audit, verify_ledger

THREAD = "sqlite-checkpoint"


def _checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD]


def _wal_index(db: Path) -> tuple[int, int]:
    """The WAL's last valid frame and the frames already copied into the database, from
    the wal-index header (sqlite.org/walformat.html: offsets 16 and 96, native order)."""
    head = (db.parent / f"{db.name}-shm").read_bytes()[:136]
    return struct.unpack_from("=I", head, 16)[0], struct.unpack_from("=I", head, 96)[0]


def _mx_frame(db: Path) -> int:
    return _wal_index(db)[0]


def _caught_up(db: Path, pages: int) -> bool:
    mx_frame, backfilled = _wal_index(db)
    return mx_frame - backfilled < pages


def _autocheckpoint(engine_or_writer: object) -> int:
    with engine_or_writer.begin() as conn:  # type: ignore[attr-defined]
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def _wait(condition: object, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def sqlite_rig(tmp_path: Path) -> Rig:
    r = make_rig(f"sqlite:///{tmp_path}/bourse.db")
    r.open_accounts(*range(1, 9))
    return r


def _db(rig: Rig) -> Path:
    return Path(str(rig.engine.url.database))


def test_start_checkpoints_when_running_then_only_the_writer_stops_checkpointing_itself(
    sqlite_rig: Rig,
) -> None:
    oms = sqlite_rig.oms
    assert _autocheckpoint(oms._writer) == 1000  # SQLite's default, before
    cp = oms.start_checkpoints()
    try:
        assert cp is not None and cp.running
        assert _autocheckpoint(oms._writer) == 0
        # Another writer on the same pool (the relay, a CLI command) keeps its own.
        assert _autocheckpoint(sqlite_rig.engine) == 1000
    finally:
        oms.stop_checkpoints()
    assert _autocheckpoint(oms._writer) == 1000
    assert oms.checkpointer is None and not cp.running
    assert _checkpoint_threads() == []


def test_checkpointer_when_the_writer_commits_far_past_its_threshold_then_the_wal_is_reused(
    sqlite_rig: Rig,
) -> None:
    oms, db = sqlite_rig.oms, _db(sqlite_rig)
    cp = oms.start_checkpoints(pages=50, hard_pages=400, idle_s=60.0)
    assert cp is not None
    written, largest, biggest_commit, last = 0, 0, 0, _mx_frame(db)
    try:
        for i in range(60):
            cmds = [
                sqlite_rig.submit(1 + (i + k) % 8, f"w{i}-{k}", side="buy" if k % 2 else "sell")
                for k in range(10)
            ]
            assert all(isinstance(r, OrderAck) for r in oms.execute(cmds))
            now = _mx_frame(db)
            # The WAL starts over once a checkpoint copied it all: then this commit's
            # frames are all there is.
            frames = now - last if now >= last else now
            written += frames
            biggest_commit = max(biggest_commit, frames)
            largest, last = max(largest, now), now
            # Time for the thread to copy what it was woken for, as between two batches.
            assert _wait(lambda: _caught_up(db, 50))
    finally:
        oms.stop_checkpoints()
    assert cp.counts["PASSIVE"] > 0
    assert all(r.log >= 50 for r in cp.runs if r.mode == "PASSIVE")  # only past the threshold
    # Without checkpoints every frame written stays in the WAL; here it was reused: it never
    # held more than the threshold and the commit that crossed it, and the next one.
    assert written > 3 * largest, (written, largest)
    assert largest < 50 + 2 * biggest_commit, (largest, biggest_commit)
    assert os.path.getsize(f"{db}-wal") == 0  # stop() leaves it empty (TRUNCATE)
    with sqlite_rig.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(s.orders)).scalar_one() == 600
        assert verify_ledger(conn) == [] and verify_audit(conn) == []


def test_checkpointer_when_no_commit_comes_for_a_while_then_it_empties_the_wal(
    sqlite_rig: Rig,
) -> None:
    oms, db = sqlite_rig.oms, _db(sqlite_rig)
    cp = oms.start_checkpoints(idle_s=0.05)
    assert cp is not None
    try:
        oms.execute([sqlite_rig.submit(1, "idle-1")])
        assert os.path.getsize(f"{db}-wal") > 0
        assert _wait(lambda: cp.counts["TRUNCATE"] > 0)
        assert os.path.getsize(f"{db}-wal") == 0
        truncates = cp.counts["TRUNCATE"]
        time.sleep(0.3)  # idle, nothing new written: no checkpoint over an empty WAL
        assert cp.counts["TRUNCATE"] == truncates
    finally:
        oms.stop_checkpoints()


def test_checkpointer_when_a_reader_pins_the_wal_then_past_the_hard_bound_it_waits_no_longer(
    sqlite_rig: Rig,
) -> None:
    oms, db = sqlite_rig.oms, _db(sqlite_rig)
    cp = oms.start_checkpoints(pages=10, hard_pages=20, wait_ms=20, idle_s=60.0)
    assert cp is not None
    reader = open_engine(f"sqlite:///{db}").connect()
    try:
        reader.begin()
        reader.execute(select(func.count()).select_from(s.orders)).scalar_one()  # a snapshot
        for i in range(10):
            oms.execute([sqlite_rig.submit(1 + k, f"p{i}-{k}") for k in range(8)])
            _wait(lambda: cp.counts["RESTART"] > 0, 0.5)
        assert cp.counts["RESTART"] > 0
        # The reader's snapshot cannot be copied over: RESTART gives up after wait_ms.
        assert any(r.busy for r in cp.runs if r.mode == "RESTART")
        # ... and the writer carried on committing meanwhile.
        with sqlite_rig.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(s.orders)).scalar_one() == 80
    finally:
        reader.close()
        reader.engine.dispose()
        oms.stop_checkpoints()
    assert _checkpoint_threads() == []


def test_service_when_stopped_then_no_checkpoint_thread_is_left_and_the_wal_is_empty(
    sqlite_rig: Rig,
) -> None:
    db = _db(sqlite_rig)
    with OMSService(sqlite_rig.oms, max_batch=8) as svc:
        assert len(_checkpoint_threads()) == 1
        futures = [svc.submit(sqlite_rig.submit(1 + i % 8, f"s{i}")) for i in range(100)]
        assert all(isinstance(f.result(timeout=60), OrderAck) for f in futures)
    assert _checkpoint_threads() == []
    assert sqlite_rig.oms.checkpointer is None
    assert os.path.getsize(f"{db}-wal") == 0


def test_service_when_the_store_is_postgresql_then_no_checkpointer_runs(store_dsn: str) -> None:
    rig = make_rig(store_dsn)
    rig.open_accounts(1)
    sqlite = store_dsn.startswith("sqlite")
    assert (Checkpointer.for_engine(rig.engine) is not None) is sqlite
    with OMSService(rig.oms) as svc:
        assert (rig.oms.checkpointer is not None) is sqlite
        assert len(_checkpoint_threads()) == int(sqlite)
        assert isinstance(svc.submit(rig.submit(1, "pg-1")).result(timeout=60), OrderAck)
    assert _checkpoint_threads() == []


def test_for_engine_when_sqlite_is_in_memory_then_none() -> None:
    engine = open_engine("sqlite://")
    try:
        assert Checkpointer.for_engine(engine) is None
    finally:
        engine.dispose()


def test_checkpointer_when_thresholds_are_inverted_then_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hard_pages"):
        Checkpointer(tmp_path / "x.db", pages=100, hard_pages=10)
