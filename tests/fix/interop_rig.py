"""An OMS whose venue is a ``FixVenue`` logged on to one of QuickFIX's example
counterparties (tests/fix/counterparties.py): ``venue_rig.FixRig``'s helpers, with the LP a
process the test starts and stops itself instead of the project's LP simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fix.counterparties import Counterparty
from tests.fix.venue_rig import WAIT_S, FixRig
from tests.trading.builders import QUOTES, FakeClock, Rig, make_engine
from trading.catalogue import default_catalogue
from trading.config import OMSConfig
from trading.oms.engine import OMS
from trading.quotes import InMemoryQuoteBook
from trading.venues.fix.config import lp_config
from trading.venues.fix.venue import FixVenue


class _ExternalLp:
    """Stands in for the rig's LP simulator: the counterparty's own fixture stops it."""

    def stop(self) -> None:
        pass


def start_oms_rig(tmp: Path, dsn: str, cp: Counterparty, sender: str, **lp: Any) -> FixRig:
    """An OMS with two funded accounts and EUR/USD quotes, its venue the LP ``cp`` (named
    after it) reached as ``sender``; returns once the session is logged on."""
    table: dict[str, Any] = {
        "name": cp.name, "host": cp.host, "port": cp.port, "begin_string": cp.begin_string,
        "sender_comp_id": sender, "target_comp_id": cp.comp_id, "heartbeat_s": 5,
        "reconnect_s": 1,
    }  # fmt: skip
    table.update(lp)
    config = lp_config(table)
    engine = make_engine(dsn)
    clock = FakeClock()
    catalogue = default_catalogue()
    book = InMemoryQuoteBook()
    home = tmp / "home"
    venue = FixVenue(config, catalogue, clock, home)
    oms = OMS(engine, catalogue, book, venue, OMSConfig(), clock)  # type: ignore[arg-type]
    rig = FixRig(home, engine, catalogue, clock, _ExternalLp(), config, venue, oms)  # type: ignore[arg-type]
    helper = Rig(engine, oms, catalogue, book, clock, None)  # type: ignore[arg-type]
    helper.seed_quotes(QUOTES)
    helper.open_accounts(1, 2)
    venue.start()
    if not venue.wait_up(WAIT_S):
        rig.close()
        raise AssertionError(f"FixVenue did not log on to {cp.name} within {WAIT_S:g} s")
    return rig
