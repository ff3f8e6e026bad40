"""Prove that two trees of the OMS write the same store: ``python -m benchmarks.sameness``.

A change made for speed must not change what is written. This runs a fixed, seeded set of
workloads through the real OMS into SQLite files and compares every table, row by row, of
two such runs (say ``main`` and a branch):

- ``bench``: the benchmark workload (``benchmarks.workload``: market orders that open,
  add to, reduce and flip positions, quotes between them), in batches of 200;
- ``sim``: the trading simulation (``trading.sim.simulation``: every order type and time
  in force, cancels, amends, partial fills, expiries, deposits, withdrawals held and
  decided, rollovers), then house and risk commands on the same store: symbol halts,
  account states, limit and leverage overrides, denials of every common kind, house
  closes, retried client order ids, reports for unknown orders.

Usage, from each tree's root (the tree's own code is the one imported)::

    python -m benchmarks.sameness write /tmp/a          # in the first tree
    python -m benchmarks.sameness write /tmp/b          # in the second
    python -m benchmarks.sameness compare /tmp/a /tmp/b # exit 1 on any difference

A tree without this module runs it by path, with its own interpreter, from its root:
``cd ../main && .venv/bin/python ../domain/benchmarks/sameness.py write /tmp/a``.

Time is simulated, so the same tree writes the same bytes twice (``compare`` of two runs
of one tree finds nothing); the comparison covers every column of every table, the audit
chain's hashes and the outbox's JSON payloads included.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.workload import build_workload, make_oms
from trading.catalogue import default_catalogue
from trading.commands import (
    ApplyReports,
    ClosePosition,
    Command,
    Deposit,
    HaltSymbol,
    OpenAccount,
    QuoteUpdate,
    SetAccountState,
    SetLimits,
    SubmitOrder,
)
from trading.risk import AccountState
from trading.sim.activity import Clock
from trading.sim.pricefeed import RandomWalkFeed
from trading.sim.simulation import SYMBOLS, build_oms, run_simulation
from trading.store.engine import migrate, open_engine
from trading.validate import order_request
from trading.venues.base import ExecKind, ExecutionReport

BENCH_ORDERS = 4_000
SIM_ACCOUNTS = 25
SIM_ORDERS = 3_000
SEED = 11


def _engine(path: Path) -> Any:
    engine = open_engine(f"sqlite:///{path}")
    migrate(engine)
    return engine


def write_bench(path: Path) -> None:
    engine = _engine(path)
    wl = build_workload(BENCH_ORDERS, accounts=60, seed=SEED)
    oms, _clock = make_oms(engine, wl.catalogue)
    oms.execute(wl.setup)
    for cmds in wl.batches(200):
        oms.execute(cmds)
    # A quote on every symbol moves every account's unrealized PnL: orders after it are
    # checked against the new marks.
    for cmds in wl.batches(50, 0, 200):
        oms.execute([c for c in cmds if isinstance(c, QuoteUpdate)])
    engine.dispose()


def _house_and_risk(engine: Any, last_ns: int, accounts: list[int]) -> None:
    """Commands the simulation does not draw, on the store it left."""
    catalogue = default_catalogue()
    clock = Clock(last_ns + 1_000_000_000)
    oms = build_oms(engine, catalogue, clock)
    feed = RandomWalkFeed(catalogue, SYMBOLS, SEED + 1, clock.now, size_lots=Decimal(5))

    def run(cmds: list[Command]) -> None:
        clock.now += 1_000_000
        oms.execute(cmds)

    def order(account: int, coid: str, symbol: str, side: str, qty: str, **kw: Any) -> Command:
        return SubmitOrder(
            order_request(catalogue, account_id=account, client_order_id=coid, symbol=symbol,
                          side=side, qty=qty, **kw)
        )  # fmt: skip

    run([QuoteUpdate(feed.quote(s, clock.now)) for s in SYMBOLS])
    a, b, c = accounts[:3]
    # A fresh account in another currency: conversions on every fill and margin check.
    run([OpenAccount(900, "EUR", "retail"), Deposit(900, "EUR", 5_000_000, "same-eur")])
    run(
        [
            order(900, "eur1", "EUR/USD", "buy", "0.5"),
            order(900, "eur2", "USD/JPY", "sell", "0.3"),
            order(900, "eur3", "XAU/USD", "buy", "0.1"),
            order(900, "eur4", "EUR/USD", "sell", "1"),
        ]
    )
    run([QuoteUpdate(feed.quote(s, clock.now)) for s in SYMBOLS])
    run([order(900, "eur5", "US500", "buy", "2"), order(900, "eur6", "EUR/USD", "sell", "0.2")])
    # Denials: too large for the margin, the order size limit, a halted symbol, a halted
    # account, a reducing-only account opening more.
    run([order(a, "big1", "XAU/USD", "buy", "7"), order(a, "big2", "EUR/USD", "buy", "30")])
    run([HaltSymbol("GBP/USD", True, actor="ops", reason="news"),
         order(b, "halt1", "GBP/USD", "buy", "0.1"),
         HaltSymbol("GBP/USD", False, actor="ops", reason="over")])  # fmt: skip
    run(
        [
            SetAccountState(b, AccountState.REDUCING_ONLY, actor="risk", reason="review"),
            order(b, "ro1", "EUR/USD", "buy", "0.1"),
            order(b, "ro2", "EUR/USD", "sell", "0.1"),
        ]
    )
    run(
        [
            SetAccountState(c, AccountState.HALTED, actor="risk", reason="fraud"),
            order(c, "h1", "EUR/USD", "buy", "0.1"),
            SetAccountState(c, AccountState.ACTIVE, actor="risk", reason="cleared"),
        ]
    )
    run(
        [
            SetLimits(a, leverage=5, max_order_lots=Decimal(3), actor="risk", reason="tier"),
            order(a, "lim1", "EUR/USD", "buy", "4"),
            order(a, "lim2", "EUR/USD", "buy", "2"),
        ]
    )
    # A retry of a client order id (same request: the original; another: a conflict), a
    # report for no open order, then the house closes what is open.
    run([order(a, "lim2", "EUR/USD", "buy", "2"), order(a, "lim2", "EUR/USD", "sell", "2"),
         ApplyReports([ExecutionReport("ghost-1", 999_999, ExecKind.FILL, clock.now,
                                       last_qty=1, last_price=1, venue="bbook")])])  # fmt: skip
    run([QuoteUpdate(feed.quote(s, clock.now)) for s in SYMBOLS])
    closes: list[Command] = []
    for account in (a, b, c, 900):
        for symbol in ("EUR/USD", "USD/JPY", "XAU/USD", "US500"):
            if oms.position(account, symbol) is not None:
                closes.append(ClosePosition(account, symbol, None, "stop_out", actor="risk"))
    run(closes)


def write_sim(path: Path) -> None:
    engine = _engine(path)
    report = run_simulation(engine, default_catalogue(), SIM_ACCOUNTS, SIM_ORDERS, SEED)
    _house_and_risk(engine, report.last_ns, list(range(1, SIM_ACCOUNTS + 1)))
    engine.dispose()


WORKLOADS = {"bench": write_bench, "sim": write_sim}


def write(out: Path) -> None:
    import trading

    out.mkdir(parents=True, exist_ok=True)
    print(f"code: {Path(trading.__file__).parent.parent}")
    for name, fn in WORKLOADS.items():
        db = out / f"{name}.db"
        for f in out.glob(f"{name}.db*"):
            f.unlink()
        fn(db)
        print(f"{name}: {db}")


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [r[0] for r in rows]


def _rows(conn: sqlite3.Connection, table: str) -> Iterator[tuple[Any, ...]]:
    # Every column, in a total order: the rows are compared as a sorted list.
    cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
    order = ", ".join(f'"{c}"' for c in cols)
    yield tuple(cols)
    yield from conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}')


def compare(a: Path, b: Path, shown: int = 5) -> int:
    """Print each difference; return how many tables differ."""
    differing = 0
    for name in WORKLOADS:
        ca = sqlite3.connect(a / f"{name}.db")
        cb = sqlite3.connect(b / f"{name}.db")
        ta, tb = _tables(ca), _tables(cb)
        if ta != tb:
            print(f"{name}: tables differ: {sorted(set(ta) ^ set(tb))}")
            differing += 1
        total = 0
        for table in sorted(set(ta) & set(tb)):
            ra, rb = list(_rows(ca, table)), list(_rows(cb, table))
            total += len(ra) - 1
            if ra == rb:
                continue
            differing += 1
            print(f"{name}.{table}: {len(ra) - 1} rows vs {len(rb) - 1}, columns "
                  f"{'same' if ra[0] == rb[0] else 'differ'}")  # fmt: skip
            sa, sb = set(ra), set(rb)
            only_a = [r for r in ra if r not in sb][:shown]
            only_b = [r for r in rb if r not in sa][:shown]
            for r in only_a:
                print(f"  - {r}")
            for r in only_b:
                print(f"  + {r}")
        print(f"{name}: {len(ta)} tables, {total} rows compared")
    print("same" if not differing else f"{differing} table(s) differ")
    return differing


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sameness", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="run the workloads into DIR/{bench,sim}.db")
    w.add_argument("dir", type=Path)
    c = sub.add_parser("compare", help="compare two directories written by `write`")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "write":
        write(args.dir)
    else:
        sys.exit(1 if compare(args.a, args.b) else 0)


if __name__ == "__main__":
    main()
