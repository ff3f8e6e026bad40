"""What the two FIX benchmarks share: the project's LP simulator in a process of its own on
loopback (``python -m trading.venues.fix.lpsim``, every order acknowledged then filled), a
``FixVenue`` logged on to it, orders to send, and a handler that stamps each report's arrival.

The LP runs in its own interpreter so that it does not share the adapter's GIL: what is
measured is the adapter (quickfix's send, the session, the parsing and translation of the
reports) and the loopback, not the simulator's Python competing with it. On 2 shared cores
the simulator still competes for CPU: read the load average in the JSON.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from trading.catalogue import default_catalogue
from trading.orders import Order
from trading.validate import order_request
from trading.venues.base import ExecKind, ExecutionReport
from trading.venues.fix.config import LpConfig
from trading.venues.fix.venue import FixVenue

REPO = Path(__file__).resolve().parents[1]
LOGON_TIMEOUT_S = 30.0


@dataclass
class Arrivals:
    """Arrival times (perf_counter_ns) of each order's first ack and first fill."""

    acked: dict[int, int] = field(default_factory=dict)
    filled: dict[int, int] = field(default_factory=dict)
    others: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    expect: int = 0

    def __call__(self, reports: Sequence[ExecutionReport]) -> None:
        now = time.perf_counter_ns()
        for r in reports:
            if r.kind is ExecKind.ACCEPTED:
                self.acked.setdefault(r.order_id, now)
            elif r.kind is ExecKind.FILL:
                self.filled.setdefault(r.order_id, now)
            else:
                self.others += 1
        if self.expect and len(self.filled) >= self.expect:
            self.done.set()


class LpSession:
    """An LP simulator process and a FixVenue logged on to it, fresh per run (new session
    stores: sequence numbers start at 1)."""

    def __init__(self) -> None:
        from tests.servers import free_port

        self.tmp = Path(tempfile.mkdtemp(prefix="bourse-fix-bench-"))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trading.venues.fix.lpsim", "--port", str(self.port),
             "--home", str(self.tmp / "lp"), "--default", "fill"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.catalogue = default_catalogue()
        lp = LpConfig.model_validate({
            "name": "bench", "port": self.port, "sender_comp_id": "BOURSE",
            "target_comp_id": "LP1", "reconnect_s": 1, "heartbeat_s": 30,
        })  # fmt: skip
        self.venue = FixVenue(lp, self.catalogue, time.time_ns, self.tmp / "home")
        self.arrivals = Arrivals()
        self.venue.bind(self.arrivals)

    def __enter__(self) -> LpSession:
        self.venue.start()
        if not self.venue.wait_up(LOGON_TIMEOUT_S):
            self.close()
            raise RuntimeError(f"the LP simulator on port {self.port} did not log us on")
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.venue.stop()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def orders(self, n: int, first_id: int = 1) -> list[Order]:
        """``n`` EUR/USD limit orders of 0.01 lot, alternating sides."""
        orders = []
        for i in range(first_id, first_id + n):
            req = order_request(self.catalogue, account_id=1, client_order_id=f"b{i}",
                                symbol="EUR/USD", side="buy" if i % 2 else "sell", qty="0.01",
                                type="limit", price="1.10000", tif="day")  # fmt: skip
            orders.append(Order.from_request(i, req, time.time_ns()))
        return orders
