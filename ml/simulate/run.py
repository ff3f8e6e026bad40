"""``simulate``: cast the clients (normal kinds, hard negatives, fraud rings) and let each
live its days; the frame comes out checked and in time order."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import polars as pl

from ml.simulate import fraud
from ml.simulate.fraud import FRAUD_KINDS
from ml.simulate.normal import (
    TRAITS,
    Hook,
    big_withdrawal,
    live,
    new_client,
    new_device,
    second_card,
    trade_then_withdraw,
    trips_for,
)
from ml.simulate.world import NORMAL_KINDS, NORMAL_WEIGHTS, Client, Member, World

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
DEFAULT_MIX: Mapping[str, float] = {kind: 0.01 for kind in FRAUD_KINDS}
# Clients one episode needs: a ring or a pair cannot be fewer.
_MIN_CLIENTS = {"ato": 1, "cycling": 1, "card_testing": 1, "bonus_abuse": 2, "wash_trading": 2}


def parse_mix(text: str) -> dict[str, float]:
    """``ato=0.02,cycling=0.01`` -> shares; kinds not named keep their default share."""
    mix = dict(DEFAULT_MIX)
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kind, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"mix entry {part!r} is not KIND=SHARE")
        try:
            mix[kind.strip()] = float(value)
        except ValueError:
            raise ValueError(f"mix share {value!r} for {kind.strip()} is not a number") from None
    return check_mix(mix)


def check_mix(mix: Mapping[str, float]) -> dict[str, float]:
    unknown = [k for k in mix if k not in FRAUD_KINDS]
    if unknown:
        raise ValueError(
            f"unknown fraud kind(s) {', '.join(unknown)} (one of {', '.join(FRAUD_KINDS)})"
        )
    out = {k: float(mix.get(k, 0.0)) for k in FRAUD_KINDS}
    for kind, share in out.items():
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share of {kind} must be between 0 and 1, got {share}")
    if sum(out.values()) > 0.5:
        raise ValueError(f"fraud shares add up to {sum(out.values()):.3f}; at most 0.5")
    return out


def fraud_counts(clients: int, mix: Mapping[str, float]) -> dict[str, int]:
    """Clients per fraud kind: the share of ``clients``, at least one episode's worth."""
    counts = {
        k: max(_MIN_CLIENTS[k], round(share * clients)) if share > 0 else 0
        for k, share in check_mix(mix).items()
    }
    if sum(counts.values()) > clients:
        raise ValueError(
            f"{clients} client(s) are too few for the mix: its frauds need {sum(counts.values())}"
        )
    return counts


def simulate(
    seed: int,
    clients: int,
    days: int,
    start: datetime | None = None,
    mix: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """A labelled event file's frame (``ml.events`` contract), the same for the same seed."""
    return simulate_world(seed, clients, days, start, mix)[0]


def simulate_world(
    seed: int,
    clients: int,
    days: int,
    start: datetime | None = None,
    mix: Mapping[str, float] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[pl.DataFrame, tuple[Member, ...]]:
    """The frame and who each client is (normal kind, traits, fraud), for tests;
    ``progress`` is called with 1 after each client has lived its days."""
    if seed < 0:
        raise ValueError(f"seed must be 0 or more, got {seed}")
    if clients < 1:
        raise ValueError(f"clients must be 1 or more, got {clients}")
    if days < 1:
        raise ValueError(f"days must be 1 or more, got {days}")
    start = start or DEFAULT_START
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    counts = fraud_counts(clients, DEFAULT_MIX if mix is None else mix)
    start_ns = int(start.timestamp()) * 1_000_000_000 + start.microsecond * 1_000
    w = World(seed, days, start_ns, start.weekday())
    ids = [int(x) + 1 for x in w.rng.permutation(clients)]
    cast = _Cast(w, ids)
    cast.frauds(counts)
    cast.normals()
    cast.live(progress)
    return w.rows.frame(), cast.members()


class _Cast:
    """The clients, who they are, and what each does on which day."""

    def __init__(self, w: World, ids: list[int]) -> None:
        self.w = w
        self.ids = ids
        self.clients: list[Client] = []
        self.hooks: list[dict[int, list[Hook]]] = []
        self.trips: list[list[tuple[int, int, str, str]]] = []
        self.lives: list[bool] = []  # False: the fraud script is its whole life
        self.pairs: list[tuple[Client, Client]] = []
        self.groups = 0

    def add(
        self,
        kind: str,
        *,
        joined: int = 0,
        fraud_kind: str | None = None,
        group: int | None = None,
        lives: bool = True,
    ) -> Client:
        c = new_client(self.w, self.ids[len(self.clients)], kind, joined)
        c.fraud, c.group = fraud_kind, group
        self.clients.append(c)
        self.hooks.append({})
        self.trips.append([])
        self.lives.append(lives)
        return c

    def group(self) -> int:
        self.groups += 1
        return self.groups

    def maybe_new(self) -> int:
        """Card testers: half on accounts opened for it during the period."""
        return self.w.count(1, self.w.days - 1) if self.w.days > 1 and self.w.chance(0.5) else 0

    def one_card_kind(self) -> str:
        """A normal kind that keeps to one card of its own, so that the cards a card
        tester tries are the only reason it shows three in a day."""
        kind = self.normal_kind()
        return "swing" if kind == "second_card" else kind

    def normal_kind(self) -> str:
        p = NORMAL_WEIGHTS / NORMAL_WEIGHTS.sum()
        return NORMAL_KINDS[int(self.w.rng.choice(len(NORMAL_KINDS), p=p))]

    def frauds(self, counts: Mapping[str, int]) -> None:
        w = self.w
        left = counts["bonus_abuse"]
        while left >= 2:
            size = min(left, w.count(2, 6))
            size = left if left - size == 1 else size  # no ring of one
            g = self.group()
            fraud.bonus_ring(
                w,
                [
                    self.add("swing", fraud_kind="bonus_abuse", group=g, lives=False)
                    for _ in range(size)
                ],
            )
            left -= size
        for _ in range(counts["wash_trading"] // 2):
            g = self.group()
            a = self.add(w.pick(("scalper", "swing")), fraud_kind="wash_trading", group=g)
            b = self.add(w.pick(("scalper", "swing")), fraud_kind="wash_trading", group=g)
            self.pairs.append((a, b))
        left = counts["card_testing"]
        ring_next = w.chance(0.5)  # the two variants take turns: both appear from 3 testers
        while left > 0:
            ring_next = not ring_next
            if left >= 2 and ring_next:
                size = min(w.count(2, 5), left if left < 3 else left - 1)  # room for a burst
                g = self.group()
                ring = [
                    self.add(
                        self.one_card_kind(),
                        joined=self.maybe_new(),
                        fraud_kind="card_testing",
                        group=g,
                    )
                    for _ in range(size)
                ]
                fraud.shared_card(w, self.hooks[-size:], ring)
                left -= size
            else:
                c = self.add(
                    self.one_card_kind(), fraud_kind="card_testing", joined=self.maybe_new()
                )
                fraud.card_burst(w, self.hooks[-1], c)
                left -= 1
        for _ in range(counts["cycling"]):
            # A quiet account: what trading there is between its cycles is little.
            c = self.add(w.pick(("dormant", "dormant", "swing")), fraud_kind="cycling")
            fraud.cycling(w, self.hooks[-1], c)
        for _ in range(counts["ato"]):
            c = self.add(w.pick(("swing", "investor", "scalper", "second_card")), fraud_kind="ato")
            fraud.ato(w, self.hooks[-1], c)
        for c in self.clients:
            if c.joined and c.fraud == "card_testing":  # opens its account, then tests
                c.traits.append("late_joiner")

    def normals(self) -> None:
        w = self.w
        household: list[Client] = []
        while len(self.clients) < len(self.ids):
            kind = self.normal_kind()
            late = w.days > 1 and w.chance(TRAITS["late_joiner"])
            c = self.add(kind, joined=w.count(1, w.days - 1) if late else 0)
            hooks = self.hooks[-1]
            if late:
                c.traits.append("late_joiner")
            if kind == "traveller":
                self.trips[-1] = trips_for(w, c)
            if kind == "second_card":
                if not c.cards:
                    c.cards.append(w.ids.fingerprint())
                second_card(w, hooks, c)
            if w.chance(TRAITS["typos"]):
                c.traits.append("typos")
                c.typo_rate = w.uniform(0.1, 0.3)
            for trait, plan in (
                ("new_device", new_device),
                ("big_withdrawal", big_withdrawal),
                ("trade_then_withdraw", trade_then_withdraw),
            ):
                if w.chance(TRAITS[trait]):
                    c.traits.append(trait)
                    plan(w, hooks, c)
            if w.chance(TRAITS["nat"]):
                # A household or an office: two to five clients behind one public address,
                # each with its own device, trading on its own; in a quarter of them a
                # member sometimes logs in on the first member's device (a family tablet).
                if not household or len(household) >= w.count(2, 5):
                    household = [c]
                    c.group = self.group()
                else:
                    c.home_ip = household[0].home_ip
                    c.group = household[0].group
                    household.append(c)
                    if w.chance(0.25):
                        c.shared_device = household[0].devices[0]
                        c.traits.append("shared_device")
                c.traits.append("nat")

    def live(self, step: Callable[[int], None] | None) -> None:
        for n, c in enumerate(self.clients):
            if self.lives[n]:
                live(self.w, c, self.hooks[n], self.trips[n])
            if step is not None:
                step(1)
        for a, b in self.pairs:
            fraud.wash_pair(self.w, a, b)

    def members(self) -> tuple[Member, ...]:
        out = [
            Member(c.client_id, c.account_id, c.kind, tuple(c.traits), c.fraud, c.group)
            for c in self.clients
        ]
        return tuple(sorted(out, key=lambda m: m.client_id))
