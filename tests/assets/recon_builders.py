"""Two trading days on the real OMS with the venue's drop copy on, the provider's
settlement files written, and the store extracted into a warehouse: what the reconciliation
tests start from (each test works on its own copy of the data directory).

Monday 2026-01-05 (trading day 2026-01-05): deposits (one through the provider with its
own reference, one without), fills that open, partly close and flip positions, a resting
order canceled, a withdrawal approved and one rejected. The FX cut-off (22:00 UTC) then
rolls with positions open: marks and financing, posted on trading day 2026-01-06. Tuesday:
a deposit, a close, a payout.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.trading.builders import T0_NS, FakeClock, Rig, add_destination, make_engine
from trading.catalogue import default_catalogue
from trading.commands import (
    CancelOrder,
    DecideWithdrawal,
    Deposit,
    Done,
    OpenAccount,
    OrderAck,
    RequestWithdrawal,
    Rollover,
)
from trading.config import OMSConfig
from trading.funding import DepositMethod
from trading.funding_settlement import write_settlement_files
from trading.oms.engine import OMS
from trading.quotes import InMemoryQuoteBook
from trading.store.engine import open_readonly, sqlite_dsn
from trading.venues.bbook import BBookVenue
from trading.venues.dropcopy import DropCopy, dropcopy_dir

NS = 1_000_000_000
HOUR = 3_600 * NS
MON_22 = 1_767_650_400 * NS  # Monday 2026-01-05 22:00 UTC: 17:00 New York, the cut-off
DAY1 = dt.date(2026, 1, 5)
DAY2 = dt.date(2026, 1, 6)


@dataclass
class Built:
    home: Path
    rig: Rig
    dropcopy: DropCopy


def _ok(result: object) -> None:
    assert isinstance(result, OrderAck | Done), result


def build_days(home: Path) -> Built:
    """The store, the drop copy and the settlement files of the two days under ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    clock = FakeClock()
    config = OMSConfig()
    cat = default_catalogue()
    book = InMemoryQuoteBook()
    dropcopy = DropCopy(dropcopy_dir(home), cat)
    venue = BBookVenue(cat, book, config.fees, config.venue, clock, dropcopy)
    engine = make_engine(sqlite_dsn(home))
    oms = OMS(engine, cat, book, venue, config, clock)
    rig = Rig(engine, oms, cat, book, clock, venue, config)
    rig.seed_quotes()
    for r in oms.execute([
        OpenAccount(1), OpenAccount(2),
        Deposit(1, "USD", 10_000_000, "dep-1", DepositMethod.CARD, "fp-1", "simpsp", "pay-1"),
        Deposit(2, "USD", 5_000_000, "dep-2"),
        Rollover(clock()),
    ]):  # fmt: skip
        _ok(r)
    dest1, dest2 = add_destination(oms, 1), add_destination(oms, 2)
    clock.advance(60 * NS)
    rig.seed_quotes()
    for cmd in (rig.submit(1, "b1", qty="2"), rig.submit(2, "s1", side="sell", qty="1"),
                rig.submit(1, "g1", symbol="XAU/USD", qty="1"),
                rig.submit(1, "c1", side="sell", qty="1"),
                rig.submit(2, "f1", qty="3"),  # flips the short into a long
                rig.submit(2, "l1", type="limit", price="1.00000", qty="1")):  # fmt: skip
        _ok(oms.execute_one(cmd))
    resting = oms.execute_one(rig.submit(2, "l2", type="limit", price="1.00000", qty="1"))
    assert isinstance(resting, OrderAck)
    _ok(oms.execute_one(CancelOrder(2, resting.order_id)))
    clock.advance(HOUR)
    w1 = oms.execute_one(RequestWithdrawal(2, "USD", 100_000, dest2))
    w2 = oms.execute_one(RequestWithdrawal(1, "USD", 250_000, dest1))
    assert isinstance(w1, Done) and isinstance(w2, Done)
    _ok(oms.execute_one(DecideWithdrawal(int(w1.ref.split(":")[1]), True, "ok")))
    _ok(oms.execute_one(DecideWithdrawal(int(w2.ref.split(":")[1]), False, "no")))
    # The cut-off passes with positions open: financing, posted on the next trading day.
    clock.now_ns = MON_22 + NS
    _ok(oms.execute_one(Rollover(clock())))
    clock.advance(2 * HOUR)
    rig.seed_quotes()
    _ok(oms.execute_one(Deposit(2, "USD", 300_000, "dep-3", DepositMethod.CARD, "fp-2",
                                "simpsp", "pay-3")))  # fmt: skip
    _ok(oms.execute_one(rig.submit(1, "c2", side="sell", qty="1")))
    w3 = oms.execute_one(RequestWithdrawal(1, "USD", 50_000, dest1))
    assert isinstance(w3, Done)
    _ok(oms.execute_one(DecideWithdrawal(int(w3.ref.split(":")[1]), True, "ok")))
    dropcopy.close()
    write_settlement_files(home, engine, T0_NS, clock())
    return Built(home, rig, dropcopy)


def extract(home: Path) -> None:
    from assets.warehouse.client import Warehouse
    from assets.warehouse.extract import extract_all

    store = open_readonly(sqlite_dsn(home))
    with Warehouse(f"chdb://{home}/warehouse") as wh:
        wh.ensure_schema()
        extract_all(store, wh)
    store.dispose()


def copy_home(source: Path, target: Path) -> Path:
    """A private copy of a built data directory (store, files and warehouse)."""
    # chDB links its tables by relative symlinks: copied as links, they point into the copy.
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
    return target
