"""A venues file brought to life: a FIX session per LP, started and awaited, and the router
over them and the B-book, as ``bourse simulate --venues`` and ``bourse oms run --venues``
use them.

quickfix is imported only by the FIX venue, and only when a venues file is used: without
the ``fix`` extra this says so in one line instead of failing at import.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from trading.catalogue import Catalogue
from trading.orders import OrderStatus
from trading.routing import RoutingError
from trading.venues.base import Venue
from trading.venues.config import VenuesFile, VenuesFileError
from trading.venues.router import RouterVenue

if TYPE_CHECKING:
    from trading.oms.engine import OMS
    from trading.venues.fix.venue import FixVenue

# An order in these states at an LP waits for the LP's word (an ack, a fill, a refusal).
_AWAITING = frozenset(
    {OrderStatus.SUBMITTED, OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE}
)


class LiveVenues:
    def __init__(
        self,
        venues: VenuesFile,
        bbook: Venue,
        catalogue: Catalogue,
        clock: Callable[[], int],
        home: Path,
    ) -> None:
        try:
            from trading.venues.fix.venue import FixVenue
        except ImportError as exc:
            raise VenuesFileError(
                f"{venues.source}: FIX sessions need the fix extra (quickfix): "
                f"uv sync --extra fix ({exc})"
            ) from None
        try:
            routing = venues.routes.resolved(catalogue, [lp.name for lp in venues.lps])
        except RoutingError as exc:
            raise VenuesFileError(f"{venues.source}: {exc}") from None
        self.venues = venues
        self.lps: dict[str, FixVenue] = {
            lp.name: FixVenue(lp, catalogue, clock, home) for lp in venues.lps
        }
        self.router = RouterVenue(
            bbook,
            self.lps,
            routing,
            catalogue,
            priority={lp.name: lp.priority for lp in venues.lps},
        )

    def start(self, timeout_s: float) -> list[str]:
        """Start every session and wait for their logons; one line per LP still not logged
        on after ``timeout_s`` (quickfix keeps trying to reconnect it)."""
        for venue in self.lps.values():
            venue.start()
        deadline = time.monotonic() + timeout_s
        down = []
        for venue in self.lps.values():
            if not venue.wait_up(max(0.0, deadline - time.monotonic())):
                lp = venue.lp
                down.append(
                    f"lp_unreachable: {lp.name} ({lp.begin_string} {lp.sender_comp_id}->"
                    f"{lp.target_comp_id} at {lp.host}:{lp.port}) did not log on within "
                    f"{timeout_s:g} s"
                )
        return down

    def stop(self) -> None:
        for venue in self.lps.values():
            venue.stop()

    def awaiting(self, oms: OMS) -> int:
        """Open orders at an LP that wait for its answer."""
        return sum(
            1
            for order in list(oms._open.values())
            if order.venue in self.lps and order.status in _AWAITING
        )

    def settle(self, oms: OMS, timeout_s: float, poll_s: float = 0.02) -> int:
        """Apply the LPs' reports until no order at an LP waits for one, or ``timeout_s``
        passed; the number still waiting."""
        deadline = time.monotonic() + timeout_s
        while True:
            oms.execute([])  # a batch of no command applies the reports queued meanwhile
            left = self.awaiting(oms)
            if left == 0 or time.monotonic() >= deadline:
                return left
            time.sleep(poll_s)
