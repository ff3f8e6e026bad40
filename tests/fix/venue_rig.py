"""An OMS whose venue is a ``FixVenue`` logged on to the project's LP simulator on loopback.

rig = start_rig(tmp_path, "sqlite:///...", "FIX.4.4")
rig.sim.plan("rest")
order_id = rig.submit("c1", price="1.10010")
rig.settle(lambda: rig.status(order_id) == "accepted")
rig.close()
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from tests.trading.builders import QUOTES, FakeClock, Rig, make_engine
from trading.catalogue import Catalogue, default_catalogue
from trading.commands import OrderAck, SubmitOrder
from trading.config import OMSConfig
from trading.oms.engine import OMS
from trading.quotes import InMemoryQuoteBook
from trading.store import schema as s
from trading.store.verify import verify_ledger
from trading.validate import order_request
from trading.venues.fix.config import LpConfig, lp_config
from trading.venues.fix.lpsim import LpSim
from trading.venues.fix.venue import FixVenue

WAIT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout_s: float = WAIT_S, step: Callable[[], None]
             | None = None) -> bool:  # fmt: skip
    """Poll until ``predicate()`` holds (a bound on waiting, not an assertion on speed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if step is not None:
            step()
        if predicate():
            return True
        time.sleep(0.02)
    return False


def lp_for(port: int, begin_string: str = "FIX.4.4", **over: Any) -> LpConfig:
    table: dict[str, Any] = dict(name="lp1", host="127.0.0.1", port=port,
                                 begin_string=begin_string, sender_comp_id="BOURSE",
                                 target_comp_id="LP1", heartbeat_s=5, reconnect_s=1)  # fmt: skip
    table.update(over)
    return lp_config(table)


@dataclass
class FixRig:
    home: Path
    engine: Engine
    catalogue: Catalogue
    clock: FakeClock
    sim: LpSim
    lp: LpConfig
    venue: FixVenue
    oms: OMS

    def settle(self, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        """Let the OMS apply what the venue queued until ``predicate()`` holds."""
        assert wait_for(predicate, timeout_s, step=lambda: self.oms.execute([])), "timed out"

    def submit(self, client_order_id: str, *, account_id: int = 1, qty: str = "1",
               price: str | None = "1.10010", side: str = "buy", type: str = "limit",
               tif: str = "gtc") -> int:  # fmt: skip
        kw: dict[str, Any] = {"type": type, "tif": tif}
        if price is not None:
            kw["price"] = price
        req = order_request(self.catalogue, account_id=account_id,
                            client_order_id=client_order_id, symbol="EUR/USD", side=side,
                            qty=qty, **kw)  # fmt: skip
        ack = self.oms.execute_one(SubmitOrder(req))
        assert isinstance(ack, OrderAck), ack
        return ack.order_id

    def order_row(self, order_id: int) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(s.orders).where(s.orders.c.order_id == order_id)).one()

    def status(self, order_id: int) -> str:
        return str(self.order_row(order_id).status)

    def executions(self, order_id: int) -> list[Any]:
        e = s.executions
        with self.engine.connect() as conn:
            return list(conn.execute(select(e).where(e.c.order_id == order_id)
                                     .order_by(e.c.exec_id)))  # fmt: skip

    def verify(self) -> list[Any]:
        with self.engine.connect() as conn:
            return verify_ledger(conn)

    def restart_venue(self, lp: LpConfig | None = None) -> None:
        """A new process's venue and OMS on the same data directory and store."""
        self.venue.stop()
        self.venue = FixVenue(lp or self.lp, self.catalogue, self.clock, self.home)
        self.oms = OMS(self.engine, self.catalogue, self.oms.quotes, self.venue, OMSConfig(),
                       self.clock)  # type: ignore[arg-type]  # fmt: skip
        self.venue.start()
        assert self.venue.wait_up(WAIT_S)

    def close(self) -> None:
        self.venue.stop()
        self.sim.stop()
        self.engine.dispose()


def start_rig(tmp: Path, dsn: str, begin_string: str = "FIX.4.4", *,
              price: Decimal | None = Decimal("1.10010"), **lp_over: Any) -> FixRig:  # fmt: skip
    port = free_port()
    sim = LpSim(port, tmp / "lpsim", price=price)
    sim.start()
    lp = lp_for(port, begin_string, **lp_over)
    engine = make_engine(dsn)
    clock = FakeClock()
    cat = default_catalogue()
    book = InMemoryQuoteBook()
    home = tmp / "home"
    venue = FixVenue(lp, cat, clock, home)
    oms = OMS(engine, cat, book, venue, OMSConfig(), clock)  # type: ignore[arg-type]
    rig = FixRig(home, engine, cat, clock, sim, lp, venue, oms)
    # Quotes and accounts through the builders' helpers (a B-book Rig over the same OMS).
    helper = Rig(engine, oms, cat, book, clock, None)  # type: ignore[arg-type]
    helper.seed_quotes(QUOTES)
    helper.open_accounts(1, 2)
    venue.start()
    assert venue.wait_up(WAIT_S), "the venue did not log on to the LP simulator"
    return rig
