"""The simulator's shared state: the run's generator, identifiers, market and rows, and
each simulated client with the devices, addresses, cards and destinations it uses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ml.simulate.market import Market
from ml.simulate.rows import Ids, Rows

SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS
_BLOCK = 4096

# Where clients live and where travellers and attackers log in from (ISO 3166 alpha-2).
HOME_COUNTRIES = ("GB", "DE", "FR", "ES", "IT", "NL", "PL", "SE", "IE", "US", "CA", "AU", "AE")
HOME_WEIGHTS = np.array([14, 12, 10, 8, 8, 6, 6, 4, 4, 12, 6, 6, 4], dtype=float)
ELSEWHERE = (
    "PT",
    "GR",
    "TR",
    "TH",
    "MX",
    "JP",
    "SG",
    "ZA",
    "BR",
    "MA",
    "HR",
    "CY",
    "NG",
    "RU",
    "UA",
    "VN",
    "ID",
    "PH",
    "IN",
    "AR",
    "CO",
    "RO",
    "BG",
    "CZ",
    "HU",
    "AT",
    "CH",
    "BE",
    "DK",
    "NO",
)


@dataclass(frozen=True, slots=True)
class Profile:
    """How a kind of normal client behaves; each client draws its own numbers from these."""

    p_weekday: float  # chance of being active on a weekday
    p_weekend: float
    sessions: tuple[int, int]  # per active day, inclusive
    orders: tuple[int, int]  # per session, inclusive
    limit_share: float  # orders that rest as limits (filled later, or never)
    classes: tuple[str, ...]  # asset classes it trades
    deposits_per_month: float
    withdrawals_per_month: float
    wealth: tuple[float, float]  # first deposit, account currency, log-uniform range


PROFILES: dict[str, Profile] = {
    "scalper": Profile(
        0.9,
        0.15,
        (1, 3),
        (6, 30),
        0.1,
        ("fx", "index", "crypto", "metal"),
        2.0,
        1.5,
        (500.0, 50_000.0),
    ),
    "swing": Profile(
        0.35,
        0.05,
        (1, 2),
        (1, 5),
        0.4,
        ("fx", "index", "equity", "metal"),
        1.0,
        0.6,
        (300.0, 30_000.0),
    ),
    "investor": Profile(
        0.1, 0.02, (1, 1), (1, 3), 0.5, ("equity", "index"), 1.0, 0.15, (1_000.0, 100_000.0)
    ),
    "dormant": Profile(
        0.03, 0.01, (1, 1), (0, 1), 0.3, ("equity", "fx"), 0.05, 0.05, (100.0, 5_000.0)
    ),
    "traveller": Profile(
        0.4, 0.2, (1, 2), (1, 6), 0.3, ("fx", "crypto", "equity"), 1.0, 0.6, (300.0, 20_000.0)
    ),
    "second_card": Profile(
        0.35, 0.1, (1, 2), (1, 5), 0.3, ("fx", "crypto", "index"), 2.0, 0.6, (200.0, 10_000.0)
    ),
}
NORMAL_KINDS = tuple(PROFILES)
NORMAL_WEIGHTS = np.array([8, 30, 22, 14, 13, 13], dtype=float)


@dataclass(slots=True)
class Client:
    client_id: int
    account_id: int
    kind: str  # a normal kind: every client, fraudster or not, has ordinary habits
    currency: str
    country: str
    hour: float  # the UTC hour the client usually logs in at
    devices: list[str]  # the last is the one in use
    home_ip: str
    mobile_ips: list[str]
    cards: list[str] = field(default_factory=list)  # card fingerprints, first is the usual
    other_instruments: dict[str, str] = field(default_factory=dict)  # method -> fingerprint
    destinations: dict[str, str] = field(default_factory=dict)  # id -> kind, insertion order
    added_ns: dict[str, int] = field(default_factory=dict)  # id -> when it was added
    symbols: tuple[int, ...] = ()
    wealth: float = 1_000.0
    balance: int = 0  # cents, account currency; what a withdrawal may take
    joined: int = 0  # first day of activity
    typo_rate: float = 0.03
    traits: list[str] = field(default_factory=list)
    fraud: str | None = None
    group: int | None = None  # a fraud ring's or a household's number
    countries: list[str] = field(default_factory=list)  # seen on successful logins
    shared_device: str | None = None  # a household member's, used now and then

    def known(self, ts: int, kinds: tuple[str, ...] | list[str] | None = None) -> list[str]:
        """Destinations added before ts (of the given kinds): an episode written ahead of
        the day being lived may add one later in time than an ordinary session."""
        return [
            d
            for d, k in self.destinations.items()
            if self.added_ns[d] < ts and (kinds is None or k in kinds)
        ]


@dataclass(frozen=True, slots=True)
class Member:
    """Who a client is in the simulation: its normal kind, hard-negative traits, and the
    fraud it takes part in (if any). For tests and for reading a file's make-up."""

    client_id: int
    account_id: int
    kind: str
    traits: tuple[str, ...]
    fraud: str | None
    group: int | None


class World:
    """The run's generator, ids, market and output rows, and its time frame."""

    def __init__(self, seed: int, days: int, start_ns: int, weekday: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.ids = Ids(self.rng)
        self.rows = Rows()
        self.market = Market(self.rng, days)
        self.days = days
        self.start_ns = start_ns
        self.weekday0 = weekday  # Monday is 0, for the first day
        self._uniforms: list[float] = []
        self._next_u = 0
        self._normals: list[float] = []
        self._next_n = 0

    def day_ns(self, day: int) -> int:
        return self.start_ns + day * DAY_NS

    def is_weekend(self, day: int) -> bool:
        return (self.weekday0 + day) % 7 >= 5

    # One numpy call per scalar draw costs microseconds; draws come from blocks instead,
    # in the same order for the same seed.
    def u(self) -> float:
        """A uniform draw in [0, 1)."""
        if self._next_u == len(self._uniforms):
            self._uniforms = self.rng.random(_BLOCK).tolist()
            self._next_u = 0
        self._next_u += 1
        return self._uniforms[self._next_u - 1]

    def normal(self, sigma: float) -> float:
        if self._next_n == len(self._normals):
            self._normals = self.rng.standard_normal(_BLOCK).tolist()
            self._next_n = 0
        self._next_n += 1
        return self._normals[self._next_n - 1] * sigma

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.u()

    def between(self, low: float, high: float) -> float:
        """A log-uniform draw: wide ranges (seconds to hours, units to thousands)."""
        return math.exp(math.log(low) + (math.log(high) - math.log(low)) * self.u())

    def index(self, n: int) -> int:
        """An index in [0, n)."""
        return min(n - 1, int(self.u() * n))

    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        return options[self.index(len(options))]

    def chance(self, p: float) -> bool:
        return self.u() < p

    def count(self, low: int, high: int) -> int:
        """An integer in [low, high], inclusive (low when the range is empty)."""
        return low + self.index(high - low + 1) if high > low else low
