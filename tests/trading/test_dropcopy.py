"""The B-book venue's drop copy: every report copied once its batch is stored, nothing of a
batch undone, one file per trading day at the 17:00 New York cut-off, and a failed write
that never fails the OMS."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from assets import days
from tests.trading.builders import FakeClock, Rig, make_engine
from trading.catalogue import default_catalogue
from trading.commands import CancelOrder, ExpireDue, OrderAck, QuoteUpdate
from trading.config import OMSConfig
from trading.oms.engine import OMS
from trading.quotes import InMemoryQuoteBook
from trading.store import schema as s
from trading.trading_day import cutoff_ns, trading_date_of
from trading.venues.bbook import BBookVenue
from trading.venues.dropcopy import COLUMNS, DropCopy, dropcopy_dir, dropcopy_path

NS = 1_000_000_000
MON_22 = 1_767_650_400 * NS  # Monday 2026-01-05 22:00 UTC: 17:00 New York


def _rig(tmp_path: Path, dropcopy: DropCopy | None) -> Rig:
    clock = FakeClock()
    config = OMSConfig()
    cat = default_catalogue()
    book = InMemoryQuoteBook()
    venue = BBookVenue(cat, book, config.fees, config.venue, clock, dropcopy)
    oms = OMS(make_engine(f"sqlite:///{tmp_path / 'bourse.db'}"), cat, book, venue, config, clock)
    rig = Rig(oms.engine, oms, cat, book, clock, venue, config)
    rig.seed_quotes()
    rig.open_accounts(1, 2)
    return rig


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    with path.open() as f:
        assert f.readline().rstrip("\n") == ",".join(COLUMNS)
    return rows


@pytest.fixture
def copy(tmp_path: Path) -> DropCopy:
    return DropCopy(dropcopy_dir(tmp_path / "home"), default_catalogue())


def test_dropcopy_when_orders_fill_rest_and_cancel_then_every_report_is_copied_once(
    tmp_path: Path, copy: DropCopy
) -> None:
    rig = _rig(tmp_path, copy)
    for cmd in (rig.submit(1, "m1", qty="2"), rig.submit(2, "m2", symbol="XAU/USD", side="sell"),
                rig.submit(2, "l1", type="limit", price="1.00000")):  # fmt: skip
        assert isinstance(rig.oms.execute_one(cmd), OrderAck)
    resting = rig.oms.open_order(3)
    assert resting is not None and resting.client_order_id == "l1"
    rig.oms.execute_one(CancelOrder(2, 3))

    rows = _read(dropcopy_path(copy.directory, "2026-01-05"))

    assert [(r["exec_id"], r["kind"]) for r in rows] == [
        ("A1", "accepted"), ("F1-200", "fill"), ("A2", "accepted"), ("F2-100", "fill"),
        ("A3", "accepted"), ("C3", "canceled"),
    ]  # fmt: skip
    with rig.engine.connect() as conn:
        stored = {r.exec_id: r for r in conn.execute(select(s.executions))}
    assert set(stored) == {"F1-200", "F2-100"}
    for row in rows:
        if row["kind"] != "fill":
            assert (row["qty"], row["price"]) == ("0", "")
            continue
        inst = rig.catalogue.get(row["symbol"])
        fill = stored[row["exec_id"]]
        assert Decimal(row["price"]) == Decimal(fill.price) / inst.price_scale
        assert Decimal(row["qty"]) == Decimal(fill.qty) / inst.qty_scale
        assert (int(row["order_id"]), int(row["account_id"]), int(row["ts_ns"])) == (
            fill.order_id, fill.account_id, fill.ts_ns)  # fmt: skip
    assert rows[1]["side"] == "buy" and rows[3]["side"] == "sell"
    assert rows[1]["price"] == "1.10013"  # EUR/USD: five decimals, as quoted
    assert copy.pending == 0


def test_dropcopy_when_a_batch_is_undone_then_none_of_its_reports_is_copied(
    tmp_path: Path, copy: DropCopy
) -> None:
    rig = _rig(tmp_path, copy)
    rig.oms.prepare([rig.submit(1, "lost", qty="1")])  # run against memory, never stored
    assert copy.pending == 2  # accepted and filled, held for the commit that never comes

    rig.oms.recover()  # what a failed commit does: the store is the truth, the venue resets
    rig.oms.execute_one(rig.submit(1, "kept", qty="1"))

    rows = _read(dropcopy_path(copy.directory, "2026-01-05"))
    assert [r["exec_id"] for r in rows] == ["A1", "F1-100"]
    with rig.engine.connect() as conn:
        orders = [r.client_order_id for r in conn.execute(select(s.orders.c.client_order_id))]
    assert orders == ["kept"]


def test_dropcopy_when_reports_cross_the_cutoff_then_each_goes_to_its_trading_day(
    tmp_path: Path, copy: DropCopy
) -> None:
    rig = _rig(tmp_path, copy)
    # A day order rests on Monday and expires at midnight UTC, after the 22:00 UTC cut-off.
    rig.oms.execute_one(rig.submit(1, "day", type="limit", price="1.00000", tif="day"))
    rig.clock.now_ns = MON_22 + 2 * 3_600 * NS + NS
    rig.oms.execute([QuoteUpdate(rig.quote("EUR/USD", "1.1", "1.1001")), ExpireDue(rig.clock())])

    monday = _read(dropcopy_path(copy.directory, "2026-01-05"))
    tuesday = _read(dropcopy_path(copy.directory, "2026-01-06"))

    assert [r["exec_id"] for r in monday] == ["A1"]
    assert [(r["exec_id"], r["kind"]) for r in tuesday] == [("E1", "expired")]


def test_dropcopy_when_none_is_given_then_the_venue_writes_nothing(tmp_path: Path) -> None:
    rig = _rig(tmp_path, None)
    rig.oms.execute_one(rig.submit(1, "m1"))

    assert rig.venue.dropcopy is None
    assert not (tmp_path / "home").exists()
    assert {p.name.split("-")[0] for p in tmp_path.iterdir()} == {"bourse.db"}


def test_dropcopy_when_a_write_fails_then_the_oms_goes_on_and_the_rows_follow_later(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the directory should be")
    copy = DropCopy(blocked / "dropcopy", default_catalogue())
    rig = _rig(tmp_path, copy)

    ack = rig.oms.execute_one(rig.submit(1, "m1"))

    assert isinstance(ack, OrderAck) and ack.status.value == "filled"
    assert copy.pending == 2 and copy.written == 0
    blocked.unlink()
    rig.oms.execute_one(rig.submit(1, "m2"))
    rows = _read(dropcopy_path(blocked / "dropcopy", "2026-01-05"))
    assert [r["exec_id"] for r in rows] == ["A1", "F1-100", "A2", "F2-100"]
    assert copy.pending == 0


def test_dropcopy_when_unwritten_rows_pass_the_bound_then_the_oldest_are_dropped(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    copy = DropCopy(blocked / "dropcopy", default_catalogue(), max_pending=3)
    rig = _rig(tmp_path, copy)
    for n in range(3):
        rig.oms.execute_one(rig.submit(1, f"m{n}"))

    assert copy.pending == 3
    blocked.unlink()
    rig.oms.execute_one(rig.submit(1, "m3"))
    rows = _read(dropcopy_path(blocked / "dropcopy", "2026-01-05"))
    assert [r["exec_id"] for r in rows] == ["F2-100", "A3", "F3-100", "A4", "F4-100"]


def test_dropcopy_when_opened_again_then_rows_append_under_one_header(
    tmp_path: Path, copy: DropCopy
) -> None:
    rig = _rig(tmp_path, copy)
    rig.oms.execute_one(rig.submit(1, "m1"))
    copy.close()
    rig.oms.execute_one(rig.submit(1, "m2"))

    rows = _read(dropcopy_path(copy.directory, "2026-01-05"))

    assert [r["exec_id"] for r in rows] == ["A1", "F1-100", "A2", "F2-100"]


@pytest.mark.parametrize(
    "instant",
    [
        dt.datetime(2026, 1, 5, 22, 0, tzinfo=dt.UTC),  # the cut-off itself (winter: 22:00)
        dt.datetime(2026, 1, 5, 22, 0, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 5, 21, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 8, 21, 0, tzinfo=dt.UTC),  # first day of summer time: 21:00
        dt.datetime(2026, 3, 8, 21, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC),  # the night the clocks go back
        dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
    ],
)
def test_trading_day_when_compared_with_the_analytics_then_the_same(instant: dt.datetime) -> None:
    ts = int(instant.timestamp()) * NS + instant.microsecond * 1_000

    assert trading_date_of(ts) == days.trading_date_of(ts)
    day = trading_date_of(ts)
    assert cutoff_ns(day) == days.cutoff_ns(day)
    assert cutoff_ns(day - dt.timedelta(days=1)) < ts <= cutoff_ns(day)


def test_dropcopy_when_the_service_commits_in_its_own_thread_then_the_copy_equals_the_store(
    tmp_path: Path, copy: DropCopy
) -> None:
    from trading.oms.service import OMSService

    rig = _rig(tmp_path, copy)
    with OMSService(rig.oms, max_batch=7, pipelined=True) as service:
        futures = [service.submit(rig.submit(1 + n % 2, f"p{n}", qty="0.1")) for n in range(60)]
        results = [f.result(timeout=30) for f in futures]
    assert all(isinstance(r, OrderAck) for r in results)

    rows = _read(dropcopy_path(copy.directory, "2026-01-05"))
    with rig.engine.connect() as conn:
        stored = {r.exec_id for r in conn.execute(select(s.executions.c.exec_id))}
    assert {r["exec_id"] for r in rows if r["kind"] == "fill"} == stored
    assert len(stored) == 60 and len(rows) == 120 and copy.pending == 0
