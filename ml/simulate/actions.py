"""What a client does in a session, written as events: log in, trade, deposit, add a
destination, withdraw. Each action takes a time and returns the time after it, so a
session's events stay in order; balances move in integer cents."""

from __future__ import annotations

from ml.simulate.rows import money
from ml.simulate.world import MINUTE_NS, SECOND_NS, Client, World

MS_NS = 1_000_000


def gap(w: World, low_s: float, high_s: float) -> int:
    """A pause between two steps, log-uniform between low_s and high_s seconds."""
    return max(1, int(w.between(low_s, high_s) * SECOND_NS))


def session_ip(w: World, c: Client) -> str:
    """Home broadband most of the time, a mobile address otherwise (which changes)."""
    if w.chance(0.75):
        return c.home_ip
    if w.chance(0.1):
        c.mobile_ips.append(w.ids.ip())
    return c.mobile_ips[-1]


def login(
    w: World,
    c: Client,
    ts: int,
    *,
    device: str | None = None,
    ip: str | None = None,
    country: str | None = None,
    scenario: str = "normal",
    typos: bool = True,
    typo_rate: float | None = None,
) -> int:
    """A successful login, after a mistyped password or two now and then (``typo_rate``,
    else the client's own rate)."""
    if device is None:
        device = c.devices[-1]
        if c.shared_device is not None and w.chance(0.3):
            device = c.shared_device
    ip = ip or session_ip(w, c)
    country = country or c.country
    if typos and w.chance(c.typo_rate if typo_rate is None else typo_rate):
        for _ in range(w.count(1, 4)):
            w.rows.add(
                ts,
                "login",
                c.client_id,
                None,
                device_id=device,
                ip=ip,
                country=country,
                success=False,
                scenario=scenario,
            )
            ts += gap(w, 3, 40)
    w.rows.add(
        ts,
        "login",
        c.client_id,
        None,
        device_id=device,
        ip=ip,
        country=country,
        success=True,
        scenario=scenario,
    )
    if country not in c.countries:
        c.countries.append(country)
    return ts + gap(w, 2, 90)


def order(
    w: World,
    c: Client,
    ts: int,
    day: int,
    symbol: int,
    side: str,
    qty: str,
    *,
    limit: bool = False,
    scenario: str = "normal",
    fill_label: int = 0,
) -> int:
    """An order and its fill: a market order fills within a second; a limit order fills
    minutes to hours later, or never (it is cancelled or expires, which is not an event)."""
    m = w.market
    price = m.price(symbol, day, w.normal(0.003))
    w.rows.add(
        ts,
        "order",
        c.client_id,
        c.account_id,
        symbol=m.symbols[symbol],
        side=side,
        qty=qty,
        price=price,
        scenario=scenario,
    )
    if limit:
        if w.chance(0.35):
            return ts + MS_NS
        fill_ts = ts + gap(w, 30, 8 * 3600)
        fill_price = price
    else:
        fill_ts = ts + int(w.between(5, 800) * MS_NS)
        fill_price = m.nudge(symbol, price, w.count(-2, 2))
    w.rows.add(
        fill_ts,
        "fill",
        c.client_id,
        c.account_id,
        symbol=m.symbols[symbol],
        side=side,
        qty=qty,
        price=fill_price,
        label=fill_label,
        scenario=scenario,
    )
    # A trade's profit or loss, roughly, so that later withdrawals see a moving balance.
    c.balance = max(0, c.balance + int(c.balance * w.normal(0.004)))
    return ts + MS_NS


def trade(
    w: World,
    c: Client,
    ts: int,
    day: int,
    n: int,
    *,
    scenario: str = "normal",
    limit_share: float = 0.2,
    pause: tuple[float, float] = (5.0, 600.0),
) -> int:
    """n orders on the client's usual symbols, market or limit, with pauses between."""
    symbols = c.symbols
    for _ in range(n):
        symbol = symbols[w.index(len(symbols))]
        if w.is_weekend(day) and not w.market.trades_weekends(symbol):
            continue
        side = "buy" if w.chance(0.55) else "sell"
        qty = w.market.qty(symbol, w.u(), scale=w.between(0.5, 2.0))
        ts = order(w, c, ts, day, symbol, side, qty, limit=w.chance(limit_share), scenario=scenario)
        ts += gap(w, *pause)
    return ts


def round_amount(w: World, units: float) -> int:
    """Cents: people type round numbers more often than not."""
    for step in (1000, 100, 50, 10):
        if units >= step * 2 and w.chance(0.5):
            return max(step, round(units / step) * step) * 100
    return max(100, int(units * 100))


def deposit(
    w: World,
    c: Client,
    ts: int,
    cents: int,
    method: str,
    instrument: str,
    *,
    scenario: str = "normal",
    label: int = 0,
) -> int:
    w.rows.add(
        ts,
        "deposit",
        c.client_id,
        c.account_id,
        amount=money(cents),
        currency=c.currency,
        method=method,
        instrument_id=instrument,
        label=label,
        scenario=scenario,
    )
    c.balance += cents
    return ts + gap(w, 5, 120)


def usual_instrument(w: World, c: Client) -> tuple[str, str]:
    """The method and fingerprint of a normal deposit: the client's card mostly, a bank
    transfer or e-wallet otherwise (each client keeps one fingerprint per method)."""
    if c.cards and w.chance(0.7):
        card = c.cards[0] if len(c.cards) == 1 or w.chance(0.5) else c.cards[-1]
        return "card", card
    method = "bank" if w.chance(0.7) else ("ewallet" if w.chance(0.7) else "crypto")
    if method not in c.other_instruments:
        c.other_instruments[method] = w.ids.fingerprint()
    return method, c.other_instruments[method]


def add_destination(
    w: World, c: Client, ts: int, kind: str, *, scenario: str = "normal", label: int = 0
) -> tuple[str, int]:
    dest = w.ids.destination()
    w.rows.add(
        ts,
        "destination_added",
        c.client_id,
        c.account_id,
        method=kind,
        destination_id=dest,
        label=label,
        scenario=scenario,
    )
    c.destinations[dest] = kind
    c.added_ns[dest] = ts
    return dest, ts + gap(w, 10, 300)


def withdraw(
    w: World,
    c: Client,
    ts: int,
    cents: int,
    dest: str,
    *,
    scenario: str = "normal",
    label: int = 0,
) -> int:
    w.rows.add(
        ts,
        "withdrawal",
        c.client_id,
        c.account_id,
        amount=money(cents),
        currency=c.currency,
        method=c.destinations[dest],
        destination_id=dest,
        label=label,
        scenario=scenario,
    )
    c.balance = max(0, c.balance - cents)
    return ts + gap(w, 5, 120)


def payout_destination(
    w: World, c: Client, ts: int, *, scenario: str = "normal"
) -> tuple[str, int]:
    """A normal client's destination: one it has, else a new one (a bank account mostly,
    the card it deposits with, sometimes an e-wallet)."""
    dests = c.known(ts)
    if dests:
        return dests[0] if len(dests) == 1 or w.chance(0.8) else dests[-1], ts
    roll = w.u()
    kind = (
        "bank"
        if roll < 0.55
        else ("card" if roll < 0.85 else ("ewallet" if roll < 0.95 else "crypto"))
    )
    return add_destination(w, c, ts, kind, scenario=scenario)


def session_start(w: World, c: Client, day: int, spread_h: float = 1.5) -> int:
    """A time on the day near the client's usual hour."""
    hour = (c.hour + w.normal(spread_h)) % 24.0
    return w.day_ns(day) + int(hour * 60 * MINUTE_NS) + int(w.u() * SECOND_NS)
