"""Hand-made histories of each fraud kind and each normal kind, written from the issue's
descriptions (not by the simulator), for the model tests.

Each fraud story labels the events that make the fraud; ``expected`` lists the labelled
events that must alert (the first card of a burst, the first client on a shared card and
the first fill of a wash pair have nothing before them to give them away).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ml.events import Event
from tests.ml.builders import DAY, HOUR, SECOND, History, ordinary_life


@dataclass
class Story:
    history: History
    expected: list[Event]


def _crowd(h: History, first: int = 100, n: int = 6) -> None:
    """Ordinary clients around the story, so it is not scored alone."""
    for c in range(first, first + n):
        ordinary_life(h, c, days=8)


def ato() -> Story:
    # A known client; failed logins, then a new device in a new country; a new crypto
    # destination half an hour later; most of the balance withdrawn to it.
    h = History()
    _crowd(h)
    ordinary_life(h, 1)
    for _ in range(3):
        h.login(1, "dev-attacker", "203.0.113.9", "VN", success=False, after=40)
    out = [
        h.login(1, "dev-attacker", "203.0.113.9", "VN", after=30, label=1, scenario="ato"),
        h.destination(1, "dst-evil", "crypto", after=1800, label=1, scenario="ato"),
        h.withdraw(1, "2700", "dst-evil", "crypto", after=300, label=1, scenario="ato"),
    ]
    return Story(h, out)


def cycling() -> Story:
    # A quiet account: deposits by card, no trading, about the same out to an e-wallet.
    h = History()
    _crowd(h)
    h.login(2, "dev-c", "198.51.100.77", "DE", after=600)
    out = []
    for cycle in range(3):
        h.login(2, "dev-c", "198.51.100.77", "DE", after=DAY / SECOND)
        h.deposit(2, f"{4000 + 500 * cycle}", "card", "fp-c", after=120)
        if cycle == 0:
            h.destination(2, "dst-wallet", "ewallet", after=9 * HOUR / SECOND)
        h.login(2, "dev-c", "198.51.100.77", "DE", after=HOUR / SECOND)
        out.append(h.withdraw(2, f"{3900 + 480 * cycle}", "dst-wallet", "ewallet", after=120,
                              label=1, scenario="cycling"))  # fmt: skip
    return Story(h, out)


def card_testing() -> Story:
    # A new client tries six cards in an hour; then one card used by three clients.
    h = History()
    _crowd(h)
    h.login(3, "dev-t", "192.0.2.44", "GB", after=600)
    burst = [h.deposit(3, f"{5 + 7 * i}", "card", f"fp-stolen-{i}", after=300, label=1,
                       scenario="card_testing") for i in range(6)]  # fmt: skip
    shared = []
    for c in (4, 5, 6):
        h.login(c, f"dev-s{c}", f"192.0.2.{c}", "GB", after=3 * HOUR / SECOND)
        shared.append(h.deposit(c, "25", "card", "fp-stolen-x", after=120, label=1,
                                scenario="card_testing"))  # fmt: skip
    return Story(h, burst[2:] + shared[1:])


def bonus_abuse() -> Story:
    # Four new clients on one device: the minimum in, a trade, a little more out.
    h = History()
    _crowd(h)
    ring = (11, 12, 13, 14)
    for c in ring:
        h.login(c, "dev-farm", "203.0.113.50", "PL", after=1800)
        h.deposit(c, "50", "ewallet", f"fp-w{c}", after=120)
        h.trade(c, "EUR/USD", "buy")
    out = []
    for c in ring:
        h.destination(c, f"dst-r{c}", "ewallet", after=DAY / SECOND / 2)
        out.append(h.withdraw(c, "70", f"dst-r{c}", "ewallet", after=60, label=1,
                              scenario="bonus_abuse"))  # fmt: skip
    return Story(h, out)


def wash_trading() -> Story:
    # Two clients behind one address trade against each other, seconds apart.
    h = History()
    _crowd(h)
    ordinary_life(h, 21, days=5, ip="203.0.113.77")
    ordinary_life(h, 22, days=5, ip="203.0.113.77")
    h.login(21, "dev-home-21", "203.0.113.77", after=3600)
    h.login(22, "dev-home-22", "203.0.113.77", after=60)
    fills = []
    for r in range(5):
        side, other = ("buy", "sell") if r % 2 else ("sell", "buy")
        h.order(21, "BTC/USD", side, "2", after=120)
        fills.append(h.fill(21, "BTC/USD", side, "2", after=0.2, label=1,
                            scenario="wash_trading"))  # fmt: skip
        h.order(22, "BTC/USD", other, "2", after=3)
        fills.append(h.fill(22, "BTC/USD", other, "2", after=0.2, label=1,
                            scenario="wash_trading"))  # fmt: skip
    return Story(h, fills[1:])


FRAUDS: dict[str, Callable[[], Story]] = {
    "ato": ato, "cycling": cycling, "card_testing": card_testing,
    "bonus_abuse": bonus_abuse, "wash_trading": wash_trading,
}  # fmt: skip


def normal(kind: str) -> History:
    h = History()
    _crowd(h)
    if kind == "scalper":
        ordinary_life(h, 31, days=5)
        for i in range(60):
            h.order(31, "US500", "buy" if i % 2 else "sell", after=40)
            h.fill(31, "US500", "buy" if i % 2 else "sell", after=0.1)
    elif kind == "traveller":  # abroad for four days, on the usual device
        ordinary_life(h, 32, days=10)
        for _ in range(4):
            h.login(32, "dev-home-32", "100.64.8.8", "JP", after=DAY / SECOND)
            h.trade(32, "USD/JPY")
        ordinary_life(h, 32, days=3, start=False)
    elif kind == "second_card":
        ordinary_life(h, 33, days=10)
        h.login(33, "dev-home-33", "198.51.100.33", after=DAY / SECOND)
        h.deposit(33, "1000", "card", "fp-second-33", after=120)
        ordinary_life(h, 33, days=3, start=False)
        h.deposit(33, "800", "card", "fp-second-33", after=DAY / SECOND)
    elif kind == "new_phone":  # a new device at home, a typo on it
        ordinary_life(h, 34, days=10)
        h.login(34, "dev-phone-34", "198.51.100.34", success=False, after=DAY / SECOND)
        h.login(34, "dev-phone-34", "198.51.100.34", after=20)
        h.trade(34)
        ordinary_life(h, 34, days=3, device="dev-phone-34", start=False)
    elif kind == "household":  # three clients behind one address, trading on their own
        for c in (35, 36, 37):
            ordinary_life(h, c, days=6, ip="198.51.100.200")
    elif kind == "big_withdrawal":  # 70 % of the balance to the bank account of weeks ago
        ordinary_life(h, 38, days=20)
        h.login(38, "dev-home-38", "198.51.100.38", after=DAY / SECOND)
        h.withdraw(38, "2000", "dst-bank-38", "bank", after=300)
    else:
        raise ValueError(kind)
    return h


NORMALS = ("scalper", "traveller", "second_card", "new_phone", "household", "big_withdrawal")
