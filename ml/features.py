"""One client's history and the features of each of its events (docs/fraud.md, Features).

``ClientHistory.observe`` returns the feature vector of an event from the client's history
strictly before it (plus the event's own fields: its type, its amount, its device), then
records the event. The same object serves the stream (one per client in the flow's client
shard) and training (``ml.engine.FeatureEngine``), so both compute the same numbers.

The features are general, not tuned to any simulator: counts in time windows, "never seen
before" flags, ages in hours on a log scale, amounts on a log scale and as ratios against
the client's own history. Windows are pruned as they slide and every set is capped, so a
client's memory is bounded whatever its activity.

Amounts become floats here, once: features are model inputs, not money.
"""

from __future__ import annotations

import math
from collections import deque

from ml.events import Event
from ml.links import LINK_FEATURES, LinkView

TYPES = ("login", "deposit", "withdrawal", "destination_added", "order", "fill")

CLIENT_FEATURES: tuple[str, ...] = (
    *(f"is_{t}" for t in TYPES),
    "client_age_h_log",
    "events_1h",
    "events_24h",
    "logins_24h",
    "deposits_24h",
    "withdrawals_24h",
    "failed_logins_1h",
    "login_failed",
    "new_device",
    "new_country",
    "new_ip",
    "h_since_new_device_log",
    "h_since_new_country_log",
    "amount_log",
    "amount_vs_deposits_log",
    "withdrawal_to_net_deposits",
    "withdrawn_to_deposited",
    "h_since_deposit_log",
    "trades_since_funding_log",
    "instruments_24h",
    "instrument_new",
    "destination_new",
    "h_since_destination_added_log",
    "destination_kind_unused",
    "destinations_24h",
)
FEATURES: tuple[str, ...] = CLIENT_FEATURES + LINK_FEATURES

HOUR_NS = 3600 * 1_000_000_000
DAY_NS = 24 * HOUR_NS
# "Never": an age of ten years, so "never" sorts beyond any real age on the log scale.
NEVER_H_LOG = math.log1p(24 * 3650)
RATIO_CAP = 100.0

# Bounds on what one client keeps (memory per client stays small with millions of clients).
_MAX_EVENTS_24H = 1000
_MAX_KIND_24H = 256
_MAX_SEEN = 64
_MAX_AMOUNTS = 16

_TYPE_INDEX = {t: i for i, t in enumerate(TYPES)}


def _h_log(now_ns: int, then_ns: int | None) -> float:
    if then_ns is None:
        return NEVER_H_LOG
    return math.log1p(max(0, now_ns - then_ns) / HOUR_NS)


def _prune(q: deque[int], cutoff: int) -> int:
    while q and q[0] < cutoff:
        q.popleft()
    return len(q)


def _add(seen: set[str], key: str) -> None:
    if len(seen) < _MAX_SEEN:
        seen.add(key)


def _median(values: deque[float]) -> float:
    s = sorted(values)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


class ClientHistory:
    """What the features need of one client's past; bounded memory."""

    __slots__ = (
        "added", "client_id", "countries", "dep_amounts", "deposited", "deposits",
        "destinations", "devices", "ev_1h", "ev_24h", "failed", "first_ns", "instrument_ns",
        "instruments", "ips", "last_deposit_ns", "logins", "methods", "new_country_ns",
        "new_device_ns", "trades_since_funding", "used_destinations", "withdrawals", "withdrawn",
    )  # fmt: skip

    def __init__(self, client_id: int) -> None:
        self.client_id = client_id
        self.first_ns: int | None = None
        self.ev_1h: deque[int] = deque(maxlen=_MAX_EVENTS_24H)
        self.ev_24h: deque[int] = deque(maxlen=_MAX_EVENTS_24H)
        self.logins: deque[int] = deque(maxlen=_MAX_KIND_24H)
        self.deposits: deque[int] = deque(maxlen=_MAX_KIND_24H)
        self.withdrawals: deque[int] = deque(maxlen=_MAX_KIND_24H)
        self.failed: deque[int] = deque(maxlen=_MAX_KIND_24H)
        self.added: deque[int] = deque(maxlen=_MAX_KIND_24H)
        self.devices: set[str] = set()
        self.countries: set[str] = set()
        self.ips: set[str] = set()
        self.new_device_ns: int | None = None
        self.new_country_ns: int | None = None
        self.dep_amounts: deque[float] = deque(maxlen=_MAX_AMOUNTS)
        self.deposited = 0.0
        self.withdrawn = 0.0
        self.last_deposit_ns: int | None = None
        self.trades_since_funding = 0
        self.instruments: set[str] = set()
        self.instrument_ns: deque[tuple[int, str]] = deque(maxlen=_MAX_KIND_24H)
        self.methods: set[str] = set()
        self.destinations: dict[str, int] = {}  # destination -> when it was added
        self.used_destinations: set[str] = set()

    def observe(self, ev: Event, link: LinkView) -> tuple[float, ...]:
        """The features of ``ev`` (``FEATURES`` order) from history before it; then record."""
        now = ev.ts_ns
        t = ev.type
        index = _TYPE_INDEX.get(t)
        if index is None:
            raise ValueError(f"unknown event type {t!r} (one of {TYPES})")
        onehot = [0.0] * len(TYPES)
        onehot[index] = 1.0
        age = 0.0 if self.first_ns is None else math.log1p((now - self.first_ns) / HOUR_NS)
        h_cut = now - HOUR_NS
        d_cut = now - DAY_NS
        events_1h = _prune(self.ev_1h, h_cut)
        events_24h = _prune(self.ev_24h, d_cut)
        logins_24h = _prune(self.logins, d_cut)
        deposits_24h = _prune(self.deposits, d_cut)
        withdrawals_24h = _prune(self.withdrawals, d_cut)
        failed_1h = _prune(self.failed, h_cut)
        added_24h = _prune(self.added, d_cut)
        while self.instrument_ns and self.instrument_ns[0][0] < d_cut:
            self.instrument_ns.popleft()

        login_failed = new_device = new_country = new_ip = 0.0
        amount_log = amount_vs = to_net = to_deposited = 0.0
        instruments_24h = float(len({i for _, i in self.instrument_ns}))
        instrument_new = destination_new = kind_unused = 0.0
        h_dest = NEVER_H_LOG
        amount = 0.0 if ev.amount is None else float(ev.amount)

        if t == "login":
            login_failed = 1.0 if ev.success is False else 0.0
            # "New" only once the client has a past: a first login is not a takeover.
            if ev.device_id is not None and self.devices and ev.device_id not in self.devices:
                new_device = 1.0
            if ev.country is not None and self.countries and ev.country not in self.countries:
                new_country = 1.0
            if ev.ip is not None and self.ips and ev.ip not in self.ips:
                new_ip = 1.0
        elif t in ("deposit", "withdrawal"):
            amount_log = math.log1p(max(amount, 0.0))
            if self.dep_amounts and amount > 0:
                amount_vs = math.log(amount / max(_median(self.dep_amounts), 1e-9))
            if t == "deposit":
                inst = ev.instrument_id
                if inst is not None:
                    if inst not in {i for _, i in self.instrument_ns}:
                        instruments_24h += 1.0
                    if self.instruments and inst not in self.instruments:
                        instrument_new = 1.0
            else:
                net = self.deposited - self.withdrawn
                to_net = min(amount / net, RATIO_CAP) if net > 0 else RATIO_CAP
                if self.deposited > 0:
                    to_deposited = min((self.withdrawn + amount) / self.deposited, RATIO_CAP)
                else:
                    to_deposited = RATIO_CAP
                dest = ev.destination_id
                if dest is not None:
                    destination_new = 0.0 if dest in self.used_destinations else 1.0
                    h_dest = _h_log(now, self.destinations.get(dest))
                if ev.method is not None and ev.method not in self.methods:
                    kind_unused = 1.0
        elif t == "destination_added" and ev.method is not None and ev.method not in self.methods:
            kind_unused = 1.0

        values = (
            *onehot,
            age,
            float(events_1h),
            float(events_24h),
            float(logins_24h),
            float(deposits_24h),
            float(withdrawals_24h),
            float(failed_1h),
            login_failed,
            new_device,
            new_country,
            new_ip,
            _h_log(now, self.new_device_ns),
            _h_log(now, self.new_country_ns),
            amount_log,
            amount_vs,
            to_net,
            to_deposited,
            _h_log(now, self.last_deposit_ns),
            math.log1p(self.trades_since_funding),
            instruments_24h,
            instrument_new,
            destination_new,
            h_dest,
            kind_unused,
            float(added_24h),
            *link.values,
        )
        self._record(ev, amount, new_device, new_country)
        return values

    def _record(self, ev: Event, amount: float, new_device: float, new_country: float) -> None:
        now = ev.ts_ns
        t = ev.type
        if self.first_ns is None:
            self.first_ns = now
        self.ev_1h.append(now)
        self.ev_24h.append(now)
        if t == "login":
            if ev.success is False:
                self.failed.append(now)
                return  # a failed login proves nothing about the device being the client's
            self.logins.append(now)
            if new_device:
                self.new_device_ns = now
            if new_country:
                self.new_country_ns = now
            if ev.device_id is not None:
                _add(self.devices, ev.device_id)
            if ev.country is not None:
                _add(self.countries, ev.country)
            if ev.ip is not None:
                _add(self.ips, ev.ip)
        elif t == "deposit":
            self.deposits.append(now)
            self.deposited += amount
            if amount > 0:
                self.dep_amounts.append(amount)
            self.last_deposit_ns = now
            self.trades_since_funding = 0
            if ev.instrument_id is not None:
                _add(self.instruments, ev.instrument_id)
                self.instrument_ns.append((now, ev.instrument_id))
            if ev.method is not None:
                _add(self.methods, ev.method)
        elif t == "withdrawal":
            self.withdrawals.append(now)
            self.withdrawn += amount
            self.trades_since_funding = 0
            if ev.destination_id is not None:
                _add(self.used_destinations, ev.destination_id)
        elif t == "destination_added":
            self.added.append(now)
            if ev.destination_id is not None and (
                ev.destination_id in self.destinations or len(self.destinations) < _MAX_SEEN
            ):
                self.destinations[ev.destination_id] = now
        else:  # order, fill
            self.trades_since_funding += 1
