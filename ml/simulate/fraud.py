"""The frauds, as the issue defines them, labelled on the events that make them.

Every constant (delays, amounts, counts) is drawn from a wide range per episode, so no
single threshold separates fraud from the normal clients' hard negatives. Every event of
an episode carries the fraud's ``scenario``; only the events the issue names carry
``label`` 1.
"""

from __future__ import annotations

from ml.simulate.actions import (
    add_destination,
    deposit,
    gap,
    login,
    order,
    round_amount,
    session_start,
    trade,
    withdraw,
)
from ml.simulate.normal import Hook, hours_later, on
from ml.simulate.world import DAY_NS, ELSEWHERE, HOME_COUNTRIES, HOUR_NS, Client, World

FRAUD_KINDS = ("ato", "cycling", "card_testing", "bonus_abuse", "wash_trading")
METHODS = ("card", "bank", "ewallet", "crypto")


def _late_day(w: World, c: Client, share: float = 0.25) -> int:
    """A day after some ordinary history, leaving the episode time to finish."""
    low = min(w.days - 1, c.joined + max(1, int((w.days - c.joined) * share)))
    return w.count(low, max(low, w.days - 2))


def ato(w: World, hooks: dict[int, list[Hook]], c: Client) -> None:
    """Failed logins, a login from a device and a country never seen for the client, then
    within hours a new destination and most of the balance withdrawn to it. The victim was
    an ordinary client before: it logs in and trades in the days before the takeover."""
    takeover = _late_day(w, c)
    last_seen: list[int] = []

    def routine(w: World, c: Client, day: int) -> None:
        ts = login(w, c, session_start(w, c, day), ip=c.home_ip)
        last_seen.append(trade(w, c, ts, day, w.count(0, 3)))

    def hook(w: World, c: Client, day: int) -> None:
        ts = w.day_ns(day) + int(w.u() * DAY_NS)
        ts = max(ts, last_seen[-1] + gap(w, 600, 12 * 3600))
        device, ip = w.ids.device(), w.ids.ip()
        country = w.pick(
            [x for x in ELSEWHERE + HOME_COUNTRIES if x not in c.countries and x != c.country]
        )
        n_failed = 0 if w.chance(0.1) else w.count(1, 12)
        for _ in range(n_failed):
            if w.chance(0.25):  # a credential-stuffing tool rotates its address
                ip = w.ids.ip()
            w.rows.add(
                ts,
                "login",
                c.client_id,
                None,
                device_id=device,
                ip=ip,
                country=country,
                success=False,
                scenario="ato",
            )
            ts += gap(w, 1, 900)
        w.rows.add(
            ts,
            "login",
            c.client_id,
            None,
            device_id=device,
            ip=ip,
            country=country,
            success=True,
            label=1,
            scenario="ato",
        )
        c.countries.append(country)
        ts = hours_later(w, ts, 0.02, 6.0)
        kind = w.pick(("crypto", "crypto", "ewallet", "ewallet", "bank", "card"))
        dest, ts = add_destination(w, c, ts, kind, scenario="ato", label=1)
        ts += gap(w, 10, 2 * 3600)
        cents = max(100, int(c.balance * w.uniform(0.6, 1.0)))
        withdraw(w, c, ts, cents, dest, scenario="ato", label=1)
        del (
            c.destinations[dest],
            c.added_ns[dest],
        )  # the attacker's: the client never pays out there itself

    on(hooks, w.count(max(c.joined, takeover - 5), takeover), routine)
    on(hooks, takeover, hook)


def cycling(w: World, hooks: dict[int, list[Hook]], c: Client) -> None:
    """Deposits, then within a day or two withdrawals of about as much to a destination of
    another kind, with little or no trading between. Labelled: the withdrawals."""
    for _ in range(w.count(1, 4)):
        on(hooks, _late_day(w, c, 0.0), _cycle)


def _cycle(w: World, c: Client, day: int) -> None:
    ts = login(w, c, session_start(w, c, day, spread_h=4.0), scenario="cycling")
    method = w.pick(("card", "card", "card", "ewallet", "ewallet", "crypto", "bank"))
    if method == "card":
        if not c.cards or (len(c.cards) < 2 and w.chance(0.3)):  # two cards at most
            c.cards.append(w.ids.fingerprint())
        fp = c.cards[-1]
    else:
        fp = c.other_instruments.setdefault(method, w.ids.fingerprint())
    cents = round_amount(w, w.between(150.0, 25_000.0))
    ts = deposit(w, c, ts, cents, method, fp, scenario="cycling")
    if w.chance(0.5):
        ts = trade(w, c, ts, day, w.count(1, 3), scenario="cycling", limit_share=0.0)
    ts = hours_later(w, ts, 0.5, 46.0)
    ts = login(w, c, ts, scenario="cycling")
    kinds = [k for k in METHODS if k != method]
    dest = next(iter(c.known(ts, kinds)), None)
    if dest is None or w.chance(0.3):
        dest, ts = add_destination(w, c, ts, w.pick(kinds), scenario="cycling")
    out = int(cents * w.uniform(0.85, 1.0))
    withdraw(w, c, ts, out, dest, scenario="cycling", label=1)


def card_burst(w: World, hooks: dict[int, list[Hook]], c: Client) -> None:
    """Three or more card fingerprints tried on one client within a day, small amounts."""

    def hook(w: World, c: Client, day: int) -> None:
        first = session_start(w, c, day, spread_h=5.0)
        ts = login(w, c, first, scenario="card_testing", typos=False)
        for n in range(w.count(3, 10)):
            if n and w.chance(0.15) and ts - first < 12 * HOUR_NS:  # comes back later that day
                ts = login(w, c, ts + gap(w, 600, 4 * 3600), scenario="card_testing")
            card = w.ids.fingerprint()
            for _ in range(1 if w.chance(0.7) else w.count(2, 3)):
                units = w.between(1.0, 60.0) if w.chance(0.8) else w.between(60.0, 800.0)
                ts = deposit(
                    w,
                    c,
                    ts,
                    max(100, int(units * 100)),
                    "card",
                    card,
                    scenario="card_testing",
                    label=1,
                )
                ts += gap(w, 5, 600)

    on(hooks, _late_day(w, c, 0.0), hook)


def shared_card(w: World, hooks_of: list[dict[int, list[Hook]]], ring: list[Client]) -> None:
    """One card fingerprint deposited from several clients over a few days."""
    card = w.ids.fingerprint()
    start = _late_day(w, ring[0], 0.0)

    def hook(w: World, c: Client, day: int) -> None:
        ts = login(w, c, session_start(w, c, day, spread_h=5.0), scenario="card_testing")
        for _ in range(w.count(1, 3)):
            units = w.between(2.0, 100.0) if w.chance(0.7) else w.between(100.0, 2_000.0)
            ts = deposit(
                w, c, ts, max(100, int(units * 100)), "card", card, scenario="card_testing", label=1
            )
            ts += gap(w, 5, 1800)
        if w.chance(0.4):
            trade(w, c, ts, day, w.count(1, 3), scenario="card_testing")

    for c, hooks in zip(ring, hooks_of, strict=True):
        day = min(w.days - 1, max(start, c.joined) + w.count(0, 4))
        on(hooks, day, hook)


def bonus_ring(w: World, ring: list[Client]) -> None:
    """New clients behind one device or one address, each depositing near the minimum,
    trading a little and withdrawing (the bonus with it). Labelled: the withdrawals."""
    mode = w.pick(("device", "device", "ip", "ip", "ip", "both"))
    device, ip = w.ids.device(), w.ids.ip()
    minimum = w.pick(("10", "20", "25", "50", "100", "200", "250"))
    first = w.count(0, max(0, w.days - 3))
    crypto = w.market.by_class.get("crypto", ())
    for c in ring:
        c.joined = min(w.days - 1, first + w.count(0, 3))
        if crypto:  # something to trade at weekends too
            c.symbols = (*c.symbols, crypto[w.index(len(crypto))])
        dev = device if mode in ("device", "both") else c.devices[-1]
        addr = ip if mode in ("ip", "both") else c.home_ip
        day = c.joined
        ts = login(
            w,
            c,
            session_start(w, c, day, spread_h=4.0),
            device=dev,
            ip=addr,
            scenario="bonus_abuse",
            typos=False,
        )
        method = "card" if w.chance(0.7) else "ewallet"
        fp = w.ids.fingerprint()
        cents = int(int(minimum) * 100 * w.uniform(1.0, 1.25))
        if w.chance(0.5):
            cents = int(minimum) * 100
        ts = deposit(w, c, ts, cents, method, fp, scenario="bonus_abuse")
        ts = trade(w, c, ts, day, w.count(1, 5), scenario="bonus_abuse", limit_share=0.1)
        ts = hours_later(w, ts, 0.3, 24.0 * w.uniform(0.5, 8.0))
        ts = login(w, c, ts, device=dev, ip=addr, scenario="bonus_abuse", typos=False)
        if w.chance(0.5):
            ts = trade(w, c, ts, day, w.count(1, 3), scenario="bonus_abuse", limit_share=0.0)
        kind = w.pick(("ewallet", "ewallet", "crypto", "bank", "card"))
        dest, ts = add_destination(w, c, ts, kind, scenario="bonus_abuse")
        ts = withdraw(
            w,
            c,
            ts,
            int(cents * w.uniform(0.7, 1.6)),
            dest,
            scenario="bonus_abuse",
            label=1,
        )
        if w.chance(0.3):
            ts = hours_later(w, ts, 1.0, 72.0)
            ts = login(w, c, ts, device=dev, ip=addr, scenario="bonus_abuse", typos=False)
            withdraw(
                w,
                c,
                ts,
                int(cents * w.uniform(0.05, 0.5)),
                dest,
                scenario="bonus_abuse",
                label=1,
            )


def wash_pair(w: World, a: Client, b: Client) -> None:
    """Two linked clients (one's device, or one address) taking opposite sides of the same
    symbol within seconds, round after round. Labelled: those fills."""
    by_device = w.chance(0.4)
    for _ in range(w.count(1, 6)):
        day = w.count(max(a.joined, b.joined), w.days - 1)
        ts = session_start(w, a, day, spread_h=3.0)
        ts = login(w, a, ts, ip=a.home_ip, scenario="wash_trading", typos=False)
        ts = login(
            w,
            b,
            ts + gap(w, 5, 120),
            device=a.devices[-1] if by_device else None,
            ip=a.home_ip,
            scenario="wash_trading",
            typos=False,
        )
        open_ = [
            n
            for n in range(len(w.market.symbols))
            if not w.is_weekend(day) or w.market.trades_weekends(n)
        ]
        symbol = open_[w.index(len(open_))]
        for _ in range(w.count(2, 10)):
            if w.chance(0.2):
                symbol = open_[w.index(len(open_))]
            side = "buy" if w.chance(0.5) else "sell"
            other = "sell" if side == "buy" else "buy"
            qty = w.market.qty(symbol, w.u(), scale=w.between(0.5, 3.0))
            first, second = (a, b) if w.chance(0.5) else (b, a)
            ts = order(w, first, ts, day, symbol, side, qty, scenario="wash_trading", fill_label=1)
            ts += gap(w, 0.3, 10.0)
            ts = order(
                w, second, ts, day, symbol, other, qty, scenario="wash_trading", fill_label=1
            )
            ts += gap(w, 5, 1200)
