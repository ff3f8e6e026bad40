"""Balance checkpoints: point-in-time balances read through them equal the sums of postings.

The span is made tiny (16 postings) so that a few hundred orders cross many boundaries,
inside batches and at their edges, and batches of 60 orders cross several at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from benchmarks.workload import ClockedQuoteBook, OrderStream, SimClock, bench_config, flatten
from tests.trading.test_migration_0004 import _alembic
from trading.oms.engine import OMS
from trading.store import checkpoints
from trading.store.engine import migrate, open_engine
from trading.store.queries import balance_as_of
from trading.store.read_balances import balances
from trading.store.verify import verify_ledger
from trading.venues.bbook import BBookVenue

SPAN = 16


class _Rewinding(SimClock):
    """Simulated time that steps back ten seconds once, after ``at`` readings: postings are
    then out of time order, which the reads must not assume away."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.left = at

    def __call__(self) -> int:
        self.left -= 1
        if self.left == 0:
            self.now_ns -= 10_000_000_000
        return super().__call__()


def _run_oms(engine: Engine, orders: int, clock: SimClock) -> None:
    stream = OrderStream(accounts=4, seed=3, prefix="k")
    cfg = bench_config()
    book = ClockedQuoteBook(clock)
    oms = OMS(engine, stream.catalogue, book, BBookVenue(stream.catalogue, book, cfg.fees,
              cfg.venue, clock), cfg, clock)  # fmt: skip
    oms.execute(stream.setup())
    sizes = [1, 7, 60, 2, 30, 60, 13]
    done = 0
    i = 0
    while done < orders:
        n = min(sizes[i % len(sizes)], orders - done)
        results = oms.execute(flatten(stream.take(n)))
        assert not [r for r in results if isinstance(r, Exception)]
        done += n
        i += 1


def _expected(engine: Engine, as_of_ns: int) -> dict[int, int]:
    """Each ledger account's balance summed straight from its postings."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.ledger_account_id, COALESCE(SUM(p.amount), 0) FROM ledger_accounts a "
                "LEFT JOIN postings p ON p.ledger_account_id = a.ledger_account_id "
                "AND p.ts_ns <= :t GROUP BY a.ledger_account_id"
            ),
            {"t": as_of_ns},
        )
        return {int(lid): int(total) for lid, total in rows}


def _times(engine: Engine) -> list[int]:
    """Every posting time, the instants either side of each, and one before all."""
    with engine.connect() as conn:
        ts = sorted({int(r[0]) for r in conn.execute(text("SELECT ts_ns FROM postings"))})
    picked = ts[:: max(1, len(ts) // 60)] + ts[-3:]
    return sorted({ts[0] - 1, *picked, *(t + 1 for t in picked), *(t - 1 for t in picked)})


def _check_reads(engine: Engine) -> None:
    with engine.connect() as conn:
        lids = [
            int(r[0]) for r in conn.execute(text("SELECT ledger_account_id FROM ledger_accounts"))
        ]
        codes = dict(
            conn.execute(text("SELECT ledger_account_id, code FROM ledger_accounts")).all()
        )
        for t in _times(engine):
            expected = _expected(engine, t)
            assert checkpoints.balances_as_of(conn, lids, t) == expected, t
            for lid in lids[:: max(1, len(lids) // 5)]:
                assert balance_as_of(conn, codes[lid], t) == expected[lid]
            for cb in balances(conn, 1, t):
                lid = next(k for k, c in codes.items() if c == f"client:1:cash:{cb.currency}")
                assert cb.cash == -expected[lid]


@pytest.fixture
def small_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoints, "SPAN_POSTINGS", SPAN)


def test_balances_as_of_when_history_crosses_many_spans_then_equal_the_postings_sums(
    store_dsn: str, small_spans: None
) -> None:
    # Arrange
    engine = open_engine(store_dsn)
    migrate(engine)
    # Act
    _run_oms(engine, 300, _Rewinding(at=300))
    # Assert
    with engine.connect() as conn:
        spans = conn.execute(text("SELECT COUNT(*) FROM posting_spans")).scalar_one()
        top = conn.execute(text("SELECT MAX(posting_id) FROM postings")).scalar_one()
        saved = conn.execute(text("SELECT COUNT(DISTINCT posting_id) FROM balance_checkpoints"))
        boundaries = saved.scalar_one()
        backwards = conn.execute(
            text(
                "SELECT COUNT(*) FROM postings p JOIN postings q "
                "ON q.posting_id = p.posting_id + 1 WHERE q.ts_ns < p.ts_ns"
            )
        ).scalar_one()
        assert verify_ledger(conn) == []
    assert spans == -(-top // SPAN)
    assert boundaries == top // SPAN > 100
    assert backwards == 1  # the clock stepped back once: time order is not id order
    _check_reads(engine)
    engine.dispose()


def test_verify_when_a_checkpoint_or_span_is_wrong_then_it_is_reported(
    tmp_path: Path, small_spans: None
) -> None:
    # Arrange
    engine = open_engine(f"sqlite:///{tmp_path}/v.db")
    migrate(engine)
    _run_oms(engine, 40, SimClock())
    # Act
    with engine.begin() as conn:
        conn.execute(text("UPDATE balance_checkpoints SET amount = amount + 1 WHERE rowid = 3"))
        conn.execute(text("DELETE FROM posting_spans WHERE span_id = 2"))
        conn.execute(
            text(
                "INSERT INTO balance_checkpoints (ledger_account_id, posting_id, amount) "
                "SELECT MIN(ledger_account_id), 7, 0 FROM ledger_accounts"
            )
        )
        problems = verify_ledger(conn)
    # Assert
    checks = sorted(p.check for p in problems)
    assert checks == ["balance_checkpoints", "balance_checkpoints", "posting_spans"], problems
    engine.dispose()


def test_migrate_when_from_0008_with_history_then_checkpoints_are_built_from_the_postings(
    store_dsn: str, small_spans: None
) -> None:
    # Arrange: history written before 0009 (by this OMS, then the new tables emptied and the
    # old index put back, as a store at 0008 has them).
    engine = open_engine(store_dsn)
    migrate(engine)
    _run_oms(engine, 120, _Rewinding(at=150))
    with engine.begin() as conn:
        written = {
            t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2"))]
            for t in ("balance_checkpoints", "posting_spans")
        }
    _alembic(engine, "downgrade", "0008")
    # Act
    migrate(engine)
    # Assert: the migration rebuilt what the writer had written, row for row.
    with engine.connect() as conn:
        for table, rows in written.items():
            rebuilt = [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))]
            assert rebuilt == rows, table
        assert len(written["balance_checkpoints"]) > 20
        assert verify_ledger(conn) == []
    _check_reads(engine)
    engine.dispose()
