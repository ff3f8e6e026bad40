"""``--venues FILE`` on ``bourse simulate``: the venues file read at once, its FIX sessions
started when the simulation builds its OMS, the LPs' answers awaited, the sessions stopped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from serving.cli_shared import console

if TYPE_CHECKING:
    from trading.oms.engine import OMS
    from trading.venues.base import Venue
    from trading.venues.live import LiveVenues


class RoutedSimulation:
    """``simulate --venues``: the venues file read at once (a bad one is one line, exit 2),
    its FIX sessions started when the simulation builds its OMS, stopped after it."""

    def __init__(self, path: Path, logon_timeout_s: float, home: Path) -> None:
        from serving import checks
        from trading.venues.config import VenuesFileError, load_venues

        try:
            self.file = load_venues(path)
        except VenuesFileError as exc:
            checks.fail(exc.message)
        self.timeout_s = logon_timeout_s
        self.home = home
        self.live: LiveVenues | None = None

    def route(self, bbook: Venue, clock: Callable[[], int]) -> Venue:
        from serving import checks
        from trading.catalogue import default_catalogue
        from trading.venues.config import VenuesFileError
        from trading.venues.live import LiveVenues

        try:
            self.live = LiveVenues(self.file, bbook, default_catalogue(), clock, self.home)
        except VenuesFileError as exc:
            checks.fail(exc.message)
        down = self.live.start(self.timeout_s)
        if down:
            self.stop()
            checks.fail(down[0])
        return self.live.router

    def settle(self, oms: OMS) -> None:
        assert self.live is not None
        left = self.live.settle(oms, self.timeout_s)
        if left:
            console.print(f"[yellow]warning[/yellow] {left} order(s) at an LP had no answer "
                          f"after {self.timeout_s:g} s: they stay open, in doubt")  # fmt: skip

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
