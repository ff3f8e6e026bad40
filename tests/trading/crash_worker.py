"""The child process of a crash trial: a seeded load of orders through the group-commit
service, acknowledging each order in a file that survives the kill.

    python -m tests.trading.crash_worker --dsn sqlite:////tmp/t/bourse.db --ack /tmp/t/acks \
        --seed 7

The store must be migrated already (the parent does it). The worker opens its accounts,
starts `OMSService`, and runs producer threads that submit, resubmit, cancel and amend
orders while a quote thread moves prices (so resting orders fill) and a timer sends
``Rollover`` (the time starts just before a daily cut-off, so a trial kills the OMS before,
during or after the marks and financing are booked). After every
acknowledgement (an `OrderAck` returned by the service, so committed) it appends one JSON
line to the ack file and fsyncs it: the parent, after a SIGKILL at a random point, knows
exactly what was acknowledged. The load is bounded in time and count; it stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from tests.trading.builders import QUOTES, FakeClock, make_oms
from trading.commands import (
    AmendOrder,
    CancelOrder,
    Deposit,
    OpenAccount,
    OrderAck,
    QuoteUpdate,
    Rollover,
    SubmitOrder,
)
from trading.config import OMSConfig
from trading.oms.service import OMSService
from trading.quotes import Quote
from trading.store.engine import open_engine

SYMBOLS = tuple(QUOTES)
# Monday 2026-01-05 22:00 UTC (17:00 New York), the FX daily cut-off: open positions are
# financed. A worker's time starts 0.4 to 1.4 s before it (by seed), about when the first
# orders are acknowledged: the parent's kill (0 to 1.5 s later) falls before, during or after
# the rollover. FX and crypto are open across it (metals from 22:00). The OMS after the
# crash runs an hour later.
CUTOFF_NS = 1_767_650_400 * 1_000_000_000
START_NS = CUTOFF_NS - 1_000_000_000
AFTER_NS = CUTOFF_NS + 3_600 * 1_000_000_000


def start_ns(seed: int) -> int:
    return CUTOFF_NS - 400_000_000 - 250_000_000 * (seed % 5)


# Order sizes in lots: small enough that margin lasts, varied enough to close and flip lots.
LOTS = {
    "EUR/USD": "0.{:02d}",
    "USD/JPY": "0.{:02d}",
    "XAU/USD": "0.{:02d}",
    "BTC/USD": "0.00{:02d}",
}


class MonotonicClock(FakeClock):
    """A fixed weekday's time that runs at the real pace, so FX stays open whatever today is."""

    def __init__(self, start_ns: int = START_NS) -> None:
        super().__init__(start_ns)
        self._start = start_ns
        self._origin = time.monotonic_ns()
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            # Strictly increasing: each call a distinct nanosecond.
            self.now_ns = max(self.now_ns + 1, self._start + time.monotonic_ns() - self._origin)
            return self.now_ns


class AckLog:
    """Append-only JSON lines, fsynced one by one: a line present was acknowledged."""

    def __init__(self, path: Path) -> None:
        self._file: TextIO = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())


class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.clock = MonotonicClock(start_ns(args.seed))
        self.engine = open_engine(args.dsn)
        cfg = OMSConfig(max_batch=args.max_batch)
        self.rig = make_oms(self.engine, self.clock, cfg)
        self.cat = self.rig.catalogue
        self.acks = AckLog(Path(args.ack))
        self.deadline = time.monotonic() + args.max_seconds
        self.stop = threading.Event()
        self.mid2: dict[str, int] = {}
        self.spread: dict[str, int] = {}
        self.accounts = list(range(1, args.accounts + 1))
        self.submitted = 0
        self.count_lock = threading.Lock()

    def setup(self) -> None:
        cmds: list[Any] = []
        for sym, (bid, ask) in QUOTES.items():
            inst = self.cat.get(sym)
            b, a = inst.price_to_int(Decimal(bid)), inst.price_to_int(Decimal(ask))
            self.mid2[sym], self.spread[sym] = a + b, a - b
            cmds.append(self.quote(sym))
        for a in self.accounts:
            cmds += [OpenAccount(a, tier="professional"), Deposit(a, "USD", 100_000_000, f"s{a}")]
        cmds.append(Rollover(self.clock()))  # the cut-offs before the start, nothing open
        for result in self.rig.oms.execute(cmds):
            assert not isinstance(result, Exception), result

    def rollovers(self, svc: OMSService) -> None:
        """The host's timer: a Rollover every 100 ms (most find nothing due)."""
        while self.running():
            result = svc.submit(Rollover(self.clock())).result()
            assert not isinstance(result, Exception), result
            time.sleep(0.1)

    def quote(self, sym: str) -> QuoteUpdate:
        bid = (self.mid2[sym] - self.spread[sym]) // 2
        return QuoteUpdate(Quote(sym, bid, bid + self.spread[sym], self.clock()))

    def running(self) -> bool:
        return not self.stop.is_set() and time.monotonic() < self.deadline

    def quotes(self, svc: OMSService, rng: random.Random) -> None:
        while self.running():
            sym = rng.choice(SYMBOLS)
            step = self.spread[sym] // 2 or self.cat.get(sym).tick_int
            self.mid2[sym] = max(self.mid2[sym] + rng.randint(-3, 3) * step, 4 * self.spread[sym])
            svc.submit(self.quote(sym)).result()
            time.sleep(0.005)

    def request(self, rng: random.Random, account: int, cid: str) -> dict[str, Any]:
        sym = rng.choice(SYMBOLS)
        inst = self.cat.get(sym)
        type_ = rng.choices(["market", "limit", "stop"], [5, 4, 1])[0]
        side = rng.choice(["buy", "sell"])
        qty = LOTS[sym].format(rng.randint(1, 20))
        fields: dict[str, Any] = {
            "account_id": account,
            "client_order_id": cid,
            "symbol": sym,
            "side": side,
            "type": type_,
            "qty": qty,
        }
        px_int = (self.mid2[sym] + rng.randint(-4, 4) * self.spread[sym]) // 2
        px = str(inst.price_from_int(max(px_int - px_int % inst.tick_int, inst.tick_int)))
        if type_ == "limit":
            fields["price"] = px
        elif type_ == "stop":
            fields["trigger_price"] = px
        return fields

    def producer(self, svc: OMSService, n: int, rng: random.Random) -> None:
        mine: list[tuple[int, int, str]] = []  # (account, order id, symbol) acknowledged
        sent: list[dict[str, Any]] = []
        i = 0
        while self.running():
            with self.count_lock:
                if self.submitted >= self.args.max_orders:
                    return
                self.submitted += 1
            i += 1
            roll = rng.random()
            if roll < 0.08 and mine:
                account, oid, _ = rng.choice(mine)
                svc.submit(CancelOrder(account, oid)).result()
                continue
            if roll < 0.14 and mine:
                account, oid, sym = rng.choice(mine)
                qty = self.cat.get(sym).qty_to_int(Decimal(LOTS[sym].format(rng.randint(1, 20))))
                svc.submit(AmendOrder(account, oid, qty=qty)).result()
                continue
            if roll < 0.20 and sent:
                fields = rng.choice(sent)  # the same request again: the same order back
            else:
                cid = f"s{self.args.seed}-t{n}-{i}"
                fields = self.request(rng, rng.choice(self.accounts), cid)
                sent.append(fields)
            req = self.rig.request(**fields)
            result = svc.submit(SubmitOrder(req)).result()
            if isinstance(result, OrderAck):
                self.acks.write(
                    {
                        "account_id": result.account_id,
                        "client_order_id": result.client_order_id,
                        "order_id": result.order_id,
                        "status": result.status.value,
                        "duplicate": result.duplicate,
                        "request": fields,
                    }
                )
                if not result.duplicate:
                    mine.append((result.account_id, result.order_id, req.symbol))

    def run(self) -> None:
        self.setup()
        # Odd seeds run the pipelined service: a kill between two overlapping commits must
        # leave the store as consistent as a kill between two serial ones.
        if self.args.checkpoint_pages:
            # A WAL checkpoint after (nearly) every commit, on its own thread: the kill
            # lands in or between checkpoints as well as commits.
            self.rig.oms.start_checkpoints(pages=self.args.checkpoint_pages)
        svc = OMSService(self.rig.oms, pipelined=self.args.seed % 2 == 1)
        svc.start()
        threads = [
            threading.Thread(target=self.quotes, args=(svc, random.Random(self.args.seed))),
            threading.Thread(target=self.rollovers, args=(svc,)),
        ] + [
            threading.Thread(
                target=self.producer,
                args=(svc, n, random.Random(self.args.seed * 1_000 + n)),
            )
            for n in range(self.args.threads)
        ]
        for t in threads:
            t.start()
        for t in threads[2:]:
            t.join()
        self.stop.set()
        threads[0].join()
        threads[1].join()
        svc.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dsn", required=True, help="SQLAlchemy URL of a migrated store")
    p.add_argument("--ack", required=True, help="file of acknowledged orders (JSON lines)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--accounts", type=int, default=8)
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--max-orders", type=int, default=50_000)
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument(
        "--checkpoint-pages", type=int, default=0,
        help="SQLite: checkpoint the WAL past this many pages (default: the service's own)",
    )  # fmt: skip
    Load(p.parse_args(argv)).run()


if __name__ == "__main__":
    main()
