"""Hand-made event histories for the fraud tests: a clock, one builder per event type.

``History`` appends events in time order; each builder takes the client and what the event
needs, and moves the clock on by ``after`` (seconds). ``random_history`` makes a seeded mix
of every event type over a few clients sharing some devices, IPs and instruments (for the
prefix and determinism tests).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

import polars as pl

from ml.events import Event, frame_of

T0 = 1_767_600_000 * 1_000_000_000  # 2026-01-05 08:00 UTC
SECOND = 1_000_000_000
HOUR = 3600 * SECOND
DAY = 24 * HOUR


@dataclass
class History:
    now: int = T0
    events: list[Event] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)

    def _add(self, ev: Event, after: float, label: int, scenario: str) -> Event:
        self.events.append(ev)
        self.labels.append(label)
        self.scenarios.append(scenario if label else "normal")
        return ev

    def tick(self, seconds: float) -> None:
        self.now += int(seconds * SECOND)

    def login(
        self, client: int, device: str, ip: str = "10.0.0.1", country: str = "FR",
        success: bool = True, after: float = 60, label: int = 0, scenario: str = "normal",
    ) -> Event:  # fmt: skip
        self.tick(after)
        ev = Event(self.now, "login", client, None, device, ip, country, success)
        return self._add(ev, after, label, scenario)

    def deposit(
        self, client: int, amount: str, method: str = "card", instrument: str = "fp-1",
        after: float = 60, label: int = 0, scenario: str = "normal",
    ) -> Event:  # fmt: skip
        self.tick(after)
        ev = Event(
            self.now, "deposit", client, client, amount=Decimal(amount), currency="USD",
            method=method, instrument_id=instrument,
        )  # fmt: skip
        return self._add(ev, after, label, scenario)

    def destination(
        self, client: int, destination: str, method: str = "bank", after: float = 60,
        label: int = 0, scenario: str = "normal",
    ) -> Event:  # fmt: skip
        self.tick(after)
        ev = Event(
            self.now, "destination_added", client, client, method=method,
            destination_id=destination,
        )  # fmt: skip
        return self._add(ev, after, label, scenario)

    def withdraw(
        self, client: int, amount: str, destination: str, method: str = "bank",
        after: float = 60, label: int = 0, scenario: str = "normal",
    ) -> Event:  # fmt: skip
        self.tick(after)
        ev = Event(
            self.now, "withdrawal", client, client, amount=Decimal(amount), currency="USD",
            method=method, destination_id=destination,
        )  # fmt: skip
        return self._add(ev, after, label, scenario)

    def order(
        self, client: int, symbol: str = "EUR/USD", side: str = "buy", qty: str = "1",
        after: float = 60,
    ) -> Event:  # fmt: skip
        self.tick(after)
        ev = Event(
            self.now, "order", client, client, symbol=symbol, side=side, qty=Decimal(qty),
            price=Decimal("1.1"),
        )  # fmt: skip
        return self._add(ev, after, 0, "normal")

    def fill(
        self, client: int, symbol: str = "EUR/USD", side: str = "buy", qty: str = "1",
        after: float = 1, label: int = 0, scenario: str = "normal",
    ) -> Event:  # fmt: skip
        self.tick(after)
        ev = Event(
            self.now, "fill", client, client, symbol=symbol, side=side, qty=Decimal(qty),
            price=Decimal("1.1"),
        )  # fmt: skip
        return self._add(ev, after, label, scenario)

    def trade(self, client: int, symbol: str = "EUR/USD", side: str = "buy") -> None:
        self.order(client, symbol, side)
        self.fill(client, symbol, side)

    def frame(self) -> pl.DataFrame:
        return frame_of(self.events, self.labels, self.scenarios)


def random_history(seed: int, n: int = 600, clients: int = 8) -> History:
    """A seeded jumble of every event type: shared devices, IPs, instruments, close fills."""
    rng = random.Random(seed)
    h = History()
    for _ in range(n):
        c = rng.randint(1, clients)
        kind = rng.choice(("login", "login", "deposit", "withdrawal", "destination", "trade"))
        gap = rng.choice((1, 5, 30, 600, 3600, 4 * 3600, 2 * 86400))
        if kind == "login":
            h.login(
                c, f"dev-{rng.randint(1, clients + 3)}", f"10.0.0.{rng.randint(1, 5)}",
                rng.choice(("FR", "FR", "DE", "GB")), rng.random() > 0.2, after=gap,
            )  # fmt: skip
        elif kind == "deposit":
            h.deposit(
                c, str(rng.randint(10, 5000)), rng.choice(("card", "bank", "crypto")),
                f"fp-{rng.randint(1, clients + 2)}", after=gap,
            )  # fmt: skip
        elif kind == "withdrawal":
            h.withdraw(
                c, str(rng.randint(10, 5000)), f"dst-{rng.randint(1, 6)}",
                rng.choice(("bank", "crypto", "ewallet")), after=gap, label=int(rng.random() < 0.1),
            )  # fmt: skip
        elif kind == "destination":
            h.destination(c, f"dst-{rng.randint(1, 6)}", rng.choice(("bank", "crypto")), after=gap)
        else:
            h.fill(c, rng.choice(("EUR/USD", "BTC/USD")), rng.choice(("buy", "sell")), after=gap)
    return h
