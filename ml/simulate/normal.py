"""Normal clients: how each kind lives day by day, and the hard negatives a real broker
sees (households behind one address, a new phone, a big withdrawal to a long-known
account, a second card, trading then withdrawing elsewhere), which look like fraud to a
feature but are not."""

from __future__ import annotations

from collections.abc import Callable

from ml.simulate.actions import (
    add_destination,
    deposit,
    gap,
    login,
    payout_destination,
    round_amount,
    session_start,
    trade,
    usual_instrument,
    withdraw,
)
from ml.simulate.world import (
    ELSEWHERE,
    HOME_COUNTRIES,
    HOME_WEIGHTS,
    HOUR_NS,
    PROFILES,
    Client,
    World,
)

Hook = Callable[[World, Client, int], None]  # something a client does on a given day
Trip = tuple[int, int, str, str]  # first day, last day, country, the hotel's address

# Traits a normal client may carry, with the share of normal clients that carry each.
TRAITS = {
    "late_joiner": 0.1,  # opens the account during the period
    "nat": 0.1,  # shares its public address with a household or an office
    "new_device": 0.06,  # buys a new phone or computer (same country, same address)
    "typos": 0.08,  # mistypes its password often
    "big_withdrawal": 0.04,  # takes most of its balance to a destination it has long used
    "trade_then_withdraw": 0.05,  # deposits, trades for real, withdraws to another kind
}


def new_client(w: World, client_id: int, kind: str, joined: int = 0) -> Client:
    profile = PROFILES[kind]
    country = HOME_COUNTRIES[
        int(w.rng.choice(len(HOME_COUNTRIES), p=HOME_WEIGHTS / HOME_WEIGHTS.sum()))
    ]
    pool = [n for cls in profile.classes for n in w.market.by_class.get(cls, ())]
    picks = w.rng.choice(len(pool), size=min(len(pool), w.count(1, 5)), replace=False)
    c = Client(
        client_id=client_id,
        account_id=1_000_000 + client_id,
        kind=kind,
        currency="EUR" if w.chance(0.15) else "USD",
        country=country,
        hour=w.uniform(5.0, 23.0),
        devices=[w.ids.device()],
        home_ip=w.ids.ip(),
        mobile_ips=[w.ids.ip()],
        symbols=tuple(sorted(pool[int(i)] for i in picks)),
        wealth=w.between(*profile.wealth),
        joined=joined,
        typo_rate=w.uniform(0.005, 0.05),
    )
    if w.chance(0.75):
        c.cards.append(w.ids.fingerprint())
    if joined == 0:  # an existing client: money deposited before the period
        c.balance = round_amount(w, c.wealth * w.uniform(0.3, 1.5))
    return c


def live(
    w: World, c: Client, hooks: dict[int, list[Hook]] | None = None, trips: list[Trip] | None = None
) -> None:
    """The client's ordinary days from its first; hooks run first on their day."""
    p = PROFILES[c.kind]
    hooks = hooks or {}
    active_days = 30 * (5 / 7 * p.p_weekday + 2 / 7 * p.p_weekend) + 0.5
    sessions = active_days * (p.sessions[0] + p.sessions[1]) / 2
    p_deposit = min(0.9, p.deposits_per_month / sessions)
    p_withdraw = min(0.9, p.withdrawals_per_month / sessions)
    for day in range(c.joined, w.days):
        for hook in hooks.get(day, ()):
            hook(w, c, day)
        opening = day == c.joined and "late_joiner" in c.traits
        if not opening and not w.chance(p.p_weekend if w.is_weekend(day) else p.p_weekday):
            continue
        ts = session_start(w, c, day)
        for s in range(1 if opening else w.count(*p.sessions)):
            place = _place(day, trips)
            ts = login(w, c, ts, ip=place[1], country=place[0])
            if opening and s == 0:
                method, fp = usual_instrument(w, c)
                ts = deposit(w, c, ts, round_amount(w, c.wealth), method, fp)
            elif w.chance(p_deposit):
                method, fp = usual_instrument(w, c)
                units = c.wealth * w.uniform(0.05, 0.6)
                ts = deposit(w, c, ts, round_amount(w, units), method, fp)
            ts = trade(w, c, ts, day, w.count(*p.orders), limit_share=p.limit_share)
            if c.balance > 10_000 and w.chance(p_withdraw):
                dest, ts = payout_destination(w, c, ts)
                cents = int(c.balance * w.uniform(0.05, 0.5))
                ts = withdraw(w, c, ts, cents, dest)
            ts += gap(w, 1800, 5 * 3600)


def _place(day: int, trips: list[Trip] | None) -> tuple[str | None, str | None]:
    for first, last, country, ip in trips or ():
        if first <= day <= last:
            return country, ip
    return None, None


def trips_for(w: World, c: Client) -> list[Trip]:
    """One or two trips abroad; the client logs in from there on its usual device."""
    out: list[Trip] = []
    for _ in range(w.count(1, 2)):
        first = w.count(0, max(0, w.days - 2))
        last = min(w.days - 1, first + w.count(1, 10))
        country = w.pick([x for x in ELSEWHERE + HOME_COUNTRIES if x != c.country])
        if all(last < a or first > b for a, b, _, _ in out):
            out.append((first, last, country, w.ids.ip()))
    return out


def on(hooks: dict[int, list[Hook]], day: int, hook: Hook) -> None:
    """Plan ``hook`` for ``day`` (after those already planned for it)."""
    hooks.setdefault(day, []).append(hook)


def second_card(w: World, hooks: dict[int, list[Hook]], c: Client) -> None:
    """Adds a second card some day and deposits with it (later deposits use either)."""

    def hook(w: World, c: Client, day: int) -> None:
        ts = login(w, c, session_start(w, c, day))
        card = w.ids.fingerprint()
        c.cards.append(card)
        ts = deposit(w, c, ts, round_amount(w, c.wealth * w.uniform(0.1, 0.6)), "card", card)
        trade(w, c, ts, day, w.count(0, 3))

    on(hooks, w.count(c.joined, max(c.joined, w.days - 1)), hook)


def new_device(w: World, hooks: dict[int, list[Hook]], c: Client) -> None:
    """A new phone or computer at home: the password is often mistyped on it at first, and
    the client may withdraw in that first session, as a taken-over account would."""

    def hook(w: World, c: Client, day: int) -> None:
        c.devices.append(w.ids.device())
        ts = login(w, c, session_start(w, c, day), ip=c.home_ip, typo_rate=0.5)
        ts = trade(w, c, ts, day, w.count(0, 3))
        if c.balance > 10_000 and w.chance(0.3):
            dest, ts = payout_destination(w, c, ts)
            withdraw(w, c, ts + gap(w, 30, 1800), int(c.balance * w.uniform(0.1, 0.7)), dest)

    on(hooks, w.count(c.joined + 1 if c.joined + 1 < w.days else c.joined, w.days - 1), hook)


def big_withdrawal(w: World, hooks: dict[int, list[Hook]], c: Client) -> None:
    """A destination added and used early; most of the balance taken there much later."""
    first = w.count(c.joined, max(c.joined, c.joined + (w.days - c.joined) // 4))
    later = w.count(min(w.days - 1, first + max(1, (w.days - first) // 2)), w.days - 1)
    dest: list[str] = []

    def early(w: World, c: Client, day: int) -> None:
        ts = login(w, c, session_start(w, c, day))
        d, ts = add_destination(w, c, ts, "bank" if w.chance(0.8) else "ewallet")
        dest.append(d)
        if c.balance > 5_000:
            withdraw(w, c, ts, int(c.balance * w.uniform(0.02, 0.15)), d)

    def late(w: World, c: Client, day: int) -> None:
        if not dest or c.balance < 1_000:
            return
        ts = login(w, c, session_start(w, c, day))
        if dest[0] in c.known(ts):
            withdraw(w, c, ts, int(c.balance * w.uniform(0.6, 0.97)), dest[0])

    on(hooks, first, early)
    on(hooks, later, late)


def trade_then_withdraw(w: World, hooks: dict[int, list[Hook]], c: Client) -> None:
    """Deposits, trades for real over a day or two, then withdraws about the deposit to a
    destination of another kind: cycling's look-alike, with genuine trading between."""
    day = w.count(c.joined, max(c.joined, w.days - 3))
    amount: list[tuple[int, str]] = []

    def dep(w: World, c: Client, day: int) -> None:
        ts = login(w, c, session_start(w, c, day))
        method, fp = usual_instrument(w, c)
        cents = round_amount(w, c.wealth * w.uniform(0.2, 1.0))
        amount.append((cents, method))
        ts = deposit(w, c, ts, cents, method, fp)
        trade(w, c, ts, day, w.count(4, 25), pause=(20.0, 1800.0))

    def out(w: World, c: Client, day: int) -> None:
        ts = login(w, c, session_start(w, c, day))
        ts = trade(w, c, ts, day, w.count(1, 8))
        kinds = [k for k in ("bank", "ewallet", "card") if k != amount[0][1]]
        dest = next(iter(c.known(ts, kinds)), None)
        if dest is None:
            dest, ts = add_destination(w, c, ts, w.pick(kinds))
        cents = min(c.balance, int(amount[0][0] * w.uniform(0.6, 1.1)))
        if cents > 0:
            withdraw(w, c, ts + gap(w, 60, 2 * 3600), cents, dest)

    on(hooks, day, dep)
    on(hooks, min(w.days - 1, day + w.count(1, 3)), out)


def hours_later(w: World, ts: int, low_h: float, high_h: float) -> int:
    return ts + int(w.between(low_h, high_h) * HOUR_NS)
