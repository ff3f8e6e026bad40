"""A seeded synthetic price source: one random walk per symbol with realistic spreads.

The platform has one generator: the trading simulation prices orders with it, and the tick
pipeline's synthetic source grows from it. Prices move in whole ticks, so quotes are exact
integers from the start; a walk is a function of its seed alone.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
import random
import sys
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from statistics import NormalDist

from trading.catalogue import Catalogue
from trading.errors import ConfigError
from trading.instrument import AssetClass, Instrument
from trading.quotes import Quote
from trading.sessions import TradingSession

# Plausible mid prices for the seed catalogue; anything else starts at 100.
REFERENCE_MIDS: dict[str, str] = {
    "EUR/USD": "1.0850", "GBP/USD": "1.2700", "USD/JPY": "148.50", "USD/CHF": "0.8800",
    "AUD/USD": "0.6600", "USD/CAD": "1.3500", "NZD/USD": "0.6100", "EUR/GBP": "0.8550",
    "EUR/JPY": "161.10", "GBP/JPY": "188.60", "EUR/CHF": "0.9550", "AUD/JPY": "98.00",
    "EUR/AUD": "1.6400", "XAU/USD": "2350.00", "XAG/USD": "28.500", "US500": "5200.0",
    "US100": "18200.0", "US30": "39000.0", "DE40": "18000.0", "UK100": "8100.0",
    "JP225": "39000", "BTC/USD": "65000.00", "ETH/USD": "3400.00", "SOL/USD": "150.00",
    "BTC/USDT": "65000.00", "ETH/USDT": "3400.00", "AAPL": "190.00", "MSFT": "420.00",
    "NVDA": "900.00", "TSLA": "175.00", "AMZN": "180.00",
}  # fmt: skip

# Typical raw spread as a fraction of price, and volatility per square root of a second.
_SPREAD = {
    AssetClass.FX: 0.00001, AssetClass.METAL: 0.0001, AssetClass.INDEX: 0.0001,
    AssetClass.CRYPTO: 0.0002, AssetClass.EQUITY: 0.0002,
}  # fmt: skip
_VOL_PER_SQRT_S = {
    AssetClass.FX: 0.00004, AssetClass.METAL: 0.00008, AssetClass.INDEX: 0.00008,
    AssetClass.CRYPTO: 0.0002, AssetClass.EQUITY: 0.0001,
}  # fmt: skip


@dataclass(slots=True)
class _Walk:
    inst: Instrument
    mid_ticks: int
    spread_ticks: int
    vol_ticks_per_sqrt_s: float
    last_ns: int


class RandomWalkFeed:
    """Quotes for ``symbols`` from a seeded random walk; ``size_lots`` bounds quoted depth."""

    def __init__(
        self,
        catalogue: Catalogue,
        symbols: Iterable[str],
        seed: int,
        start_ns: int,
        size_lots: Decimal | None = None,
    ) -> None:
        self._rng = random.Random(seed)
        self._size_lots = size_lots
        self._walks: dict[str, _Walk] = {}
        for symbol in symbols:
            inst = catalogue.get(symbol)
            mid = Decimal(REFERENCE_MIDS.get(inst.symbol, "100"))
            tick = inst.tick_size
            mid_ticks = int(mid / tick)
            spread = max(1, round(float(mid) * _SPREAD[inst.asset_class] / float(tick)))
            vol = float(mid) * _VOL_PER_SQRT_S[inst.asset_class] / float(tick)
            self._walks[inst.symbol] = _Walk(inst, mid_ticks, spread, vol, start_ns)

    @property
    def symbols(self) -> list[str]:
        return list(self._walks)

    def quote(self, symbol: str, ts_ns: int) -> Quote:
        """Move ``symbol``'s walk to ``ts_ns`` and quote it."""
        w = self._walks[symbol]
        dt_s = max(ts_ns - w.last_ns, 0) / 1e9
        w.last_ns = max(ts_ns, w.last_ns)
        sigma = w.vol_ticks_per_sqrt_s * math.sqrt(dt_s)
        # A rare volatility burst: a move several sigmas wide.
        if self._rng.random() < 0.002:
            sigma *= 8
        w.mid_ticks = max(w.spread_ticks + 1, w.mid_ticks + round(self._rng.gauss(0, sigma)))
        half = w.spread_ticks // 2
        bid_ticks = w.mid_ticks - half
        ask_ticks = bid_ticks + w.spread_ticks
        tick = w.inst.tick_int
        size = None
        if self._size_lots is not None:
            # Depth varies quote to quote, so large orders fill in steps.
            scaled = int(self._size_lots * w.inst.qty_scale) * self._rng.choice((1, 2, 5, 10))
            lot = w.inst.lot_int
            size = max(lot, scaled // 10 // lot * lot)
        return Quote(symbol, bid_ticks * tick, ask_ticks * tick, ts_ns, size, size)

    def step(self, ts_ns: int) -> Quote:
        """Quote a symbol chosen at random."""
        return self.quote(self._rng.choice(list(self._walks)), ts_ns)


# --- the per-symbol tick generator -----------------------------------------------------------
#
# One tick draws exactly three 32-bit words from the symbol's Mersenne Twister, whatever
# happens at that tick, so a walk is the same however its ticks are asked for (one call of
# n, or n calls of one) and a snapshot of the generator's state continues it exactly. The
# words index precomputed tables (quantiles of the exponential and normal laws, spread and
# size distributions), which keeps the per-tick work to a few look-ups and additions:
#
#   word 0: bits 20-31 the arrival interval, bits 0-7 the bid size, bits 8-15 the ask size
#   word 1: bits 20-31 the mid's move (and a gap's size at a session reopen), bits 0-11 the
#           spread
#   word 2: a rare event when below a threshold: a regime switch, or a jump; the word's
#           position below the threshold is the event's own uniform draw

_TABLE_BITS = 12  # 4,096 entries: small enough to stay in the CPU's cache
_TABLE = 1 << _TABLE_BITS
_SHIFT = 32 - _TABLE_BITS
_LOW = _TABLE - 1
_NS_PER_S = 1_000_000_000
_NS_PER_MINUTE = 60 * _NS_PER_S
_OPEN_SCAN_MINUTES = 24 * 60  # how far ahead one look at the session goes
_ALWAYS = 2**62  # "open until" for a session that never closes
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

CALM, BURST = 0, 1

_Out = tuple[list[int], list[int], list[int], list[int], list[int]]


@dataclass(frozen=True, slots=True)
class TickProfile:
    """How one asset class trades, for the tick generator.

    ``interval_ms``: mean time between quotes (arrivals are Poisson). ``spread_bps``: the
    usual raw spread. ``vol_per_sqrt_s``: volatility of the mid, as a fraction of the price
    per square root of a second. ``jump_bps``: the smallest true gap (a lasting level shift,
    as on news): gaps are 1 to 3 times this, well beyond a normal move, so that a filter's
    spike check sees them and must let them through because the ticks after confirm them.
    ``size_lots``: the quoted sizes, in lots, one drawn per side and tick.
    """

    interval_ms: float
    spread_bps: float
    vol_per_sqrt_s: float
    jump_bps: float
    size_lots: tuple[str, ...]
    # Mean time spent calm between volatility bursts, mean length of a burst, and the mean
    # calm time between jumps (a jump happens ten times as often inside a burst).
    calm_s: float = 1_200.0
    burst_s: float = 90.0
    jump_every_s: float = 12 * 3_600.0
    # During a burst: volatility per tick, arrival rate and spread are multiplied by these.
    burst_vol: float = 3.0
    burst_rate: float = 3.0
    burst_spread: float = 3.0


TICK_PROFILES: dict[AssetClass, TickProfile] = {
    AssetClass.FX: TickProfile(100, 0.5, 0.00004, 15, ("1", "1", "2", "3", "5", "10", "20")),
    AssetClass.METAL: TickProfile(250, 1.5, 0.00008, 30, ("1", "1", "2", "5", "10")),
    AssetClass.INDEX: TickProfile(200, 1.0, 0.00008, 30, ("1", "2", "5", "10", "25", "50")),
    AssetClass.CRYPTO: TickProfile(50, 1.0, 0.0002, 50, ("0.01", "0.05", "0.1", "0.5", "1", "5")),
    AssetClass.EQUITY: TickProfile(100, 2.0, 0.0001, 50, ("100", "200", "300", "500", "1000")),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class WalkState:
    """Everything a symbol's walk needs to continue: immutable and picklable.

    ``mid_ticks`` is the mid in whole ticks, ``ts_ns`` the time of the last tick (or the
    start), ``regime`` CALM or BURST, ``rng_state`` the ``random.Random.getstate()`` of the
    symbol's generator. The spread is drawn afresh each tick, so it is not part of the
    state. ``count``, ``bursts`` and ``jumps`` count what the walk has produced so far.
    """

    symbol: str
    seed: int
    ts_ns: int
    mid_ticks: int
    regime: int
    rng_state: tuple[object, ...]
    count: int = 0
    bursts: int = 0
    jumps: int = 0


def symbol_seed(seed: int, symbol: str) -> int:
    """The seed of ``symbol``'s walk: stable across runs and platforms (unlike ``hash``)."""
    digest = hashlib.blake2b(f"{seed}\x00{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def reference_mid_ticks(inst: Instrument) -> int:
    """Where a walk starts: the reference mid of the symbol (100 if none), in ticks."""
    mid = Decimal(REFERENCE_MIDS.get(inst.symbol, "100"))
    return max(1, int(mid / inst.tick_size))


def _words(rng: random.Random, count: int) -> Sequence[int]:
    """``count`` successive 32-bit outputs of ``rng``, in order.

    ``getrandbits`` fills a large integer from its least significant word up, one output
    per word, so the bytes of that integer (little-endian) are the outputs in order: the
    same stream as ``count`` calls of ``getrandbits(32)``, made in C.
    """
    if count == 0:
        return ()
    raw = rng.getrandbits(32 * count).to_bytes(4 * count, "little")
    if sys.byteorder == "little":
        return memoryview(raw).cast("I")
    return [int.from_bytes(raw[i : i + 4], "little") for i in range(0, 4 * count, 4)]


def _quantiles(inverse_cdf: Callable[[float], float]) -> list[float]:
    return [inverse_cdf((k + 0.5) / _TABLE) for k in range(_TABLE)]


@functools.cache
def _normal_quantiles() -> tuple[float, ...]:
    return tuple(_quantiles(NormalDist().inv_cdf))


@functools.cache
def _exp_quantiles() -> tuple[float, ...]:
    return tuple(_quantiles(lambda u: -math.log1p(-u)))


@dataclass(frozen=True, slots=True)
class _Regime:
    interval_ns: list[int]  # by the top bits of word 0
    move: list[int]  # mid move in price units, by the top bits of word 1
    below: list[int]  # mid - bid, price units, by the low bits of word 1
    above: list[int]  # ask - mid
    switch_below: int  # word 2 below this: switch regime
    event_below: int  # word 2 below this (and not a switch): a jump


class TickGenerator:
    """Quotes of one symbol, tick by tick, from a seeded walk that respects its session.

    The mid moves in whole ticks (a tick-time random walk whose step matches the asset
    class's volatility at its mean arrival rate); arrivals are Poisson; the spread varies
    tick to tick. Two regimes alternate: calm, and bursts of higher volatility, faster ticks
    and wider spreads. Rarely the mid jumps by a lasting gap (and a burst follows, as after
    news). No tick falls while the session is closed: the next comes after the reopen, and
    the mid gaps by a move in proportion to the time closed (a weekend gap for FX).
    Prices are positive multiples of the tick, with bid < ask.
    """

    def __init__(
        self,
        inst: Instrument,
        session: TradingSession,
        seed: int,
        start_ns: int,
        state: WalkState | None = None,
        *,
        profile: TickProfile | None = None,
    ) -> None:
        self.inst = inst
        self.session = session
        # A profile other than the asset class's (a stress run with more jumps, say) must be
        # given again to resume: the state does not carry it.
        self.profile = profile = profile or TICK_PROFILES[inst.asset_class]
        self._tick = tick = inst.tick_int
        ref_ticks = reference_mid_ticks(inst)
        if state is None:
            rng = random.Random(symbol_seed(seed, inst.symbol))
            state = WalkState(inst.symbol, seed, start_ns, ref_ticks, CALM, rng.getstate())
        elif state.symbol != inst.symbol or state.seed != seed:
            raise ConfigError(
                f"state of {state.symbol} seed {state.seed} cannot continue "
                f"{inst.symbol} seed {seed}"
            )
        self._seed = seed
        self._rng = random.Random()
        self._rng.setstate(state.rng_state)
        self._ts = state.ts_ns
        self._mid = state.mid_ticks * tick
        self._regime = state.regime
        self._count, self._bursts, self._jumps = state.count, state.bursts, state.jumps

        # Tables in price units; the spread and step come from the reference price, so
        # they are a function of the symbol alone (a resumed walk builds the same ones).
        ref = float(ref_ticks)
        spread0 = max(1.0, ref * profile.spread_bps / 10_000)
        sigma0 = ref * profile.vol_per_sqrt_s * math.sqrt(profile.interval_ms / 1_000)
        self._sigma_ticks = sigma0
        self._jump_ticks = ref * profile.jump_bps / 10_000
        mean_ns = profile.interval_ms * 1_000_000
        self._mean_ns = mean_ns
        self._regimes = (
            self._regime_tables(mean_ns, sigma0, spread0, 1.0, 1.0, 1.0),
            self._regime_tables(
                mean_ns, sigma0, spread0, profile.burst_rate, profile.burst_vol,
                profile.burst_spread,
            ),
        )  # fmt: skip
        self._floor = (max(self._regimes[BURST].below) // tick + 1) * tick
        sizes = [_size_units(inst, lots) for lots in profile.size_lots]
        self._sizes = [sizes[k * len(sizes) >> 8] for k in range(256)]
        self._open_until = self._scan_open(self._ts) if self._is_open(self._ts) else self._ts

    def _regime_tables(
        self, mean_ns: float, sigma: float, spread: float, rate: float, vol: float, wide: float
    ) -> _Regime:
        p = self.profile
        tick = self._tick
        interval = [max(1_000, round(mean_ns / rate * e)) for e in _exp_quantiles()]
        move = [round(sigma * vol * z) * tick for z in _normal_quantiles()]
        # The spread: usually its base, with an exponential tail of wider quotes.
        spreads = [max(1, round(spread * wide * (1 + 0.5 * e))) for e in _exp_quantiles()]
        below = [s // 2 * tick for s in spreads]
        above = [(s - s // 2) * tick for s in spreads]
        mean_s = mean_ns / rate / _NS_PER_S
        stay_s = p.calm_s if rate == 1.0 else p.burst_s
        jump_every = p.jump_every_s if rate == 1.0 else p.jump_every_s / 10
        switch = round(mean_s / stay_s * 2**32)
        jump = round(mean_s / jump_every * 2**32)
        return _Regime(interval, move, below, above, switch, switch + jump)

    # --- the public face -----------------------------------------------------------------

    def state(self) -> WalkState:
        return WalkState(
            self.inst.symbol, self._seed, self._ts, self._mid // self._tick,
            self._regime, self._rng.getstate(), self._count, self._bursts, self._jumps,
        )  # fmt: skip

    def generate(self, n: int) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
        """The next ``n`` ticks: (ts_ns, bid, ask, bid_size, ask_size), price and qty units.

        Runs of ticks without an event or a session boundary (nearly all of them) are built
        a run at a time, with comprehensions and ``accumulate``; a tick with an event, at a
        session boundary or at the price floor takes ``_step``. Both follow the same rules
        in the same order, so the split changes nothing in the output.
        """
        out: _Out = ([], [], [], [], [])
        if n <= 0:
            return out
        words = _words(self._rng, 3 * n)
        w0s, w1s, w2s = words[0::3], words[1::3], words[2::3]
        sizes = self._sizes
        # Sizes do not depend on the path.
        out[3].extend([sizes[w & 0xFF] for w in w0s])
        out[4].extend([sizes[(w >> 8) & 0xFF] for w in w0s])
        most = max(r.event_below for r in self._regimes)
        events = [k for k, w in enumerate(w2s) if w < most]
        events.append(n)
        ts_out, bid_out, ask_out = out[0], out[1], out[2]
        i = 0
        for e in events:
            r = self._regimes[self._regime]
            if e < n and w2s[e] >= r.event_below:
                continue  # below another regime's threshold, not this one's
            while i < e:  # ticks i..e-1: no event
                stop = self._run(i, e, w0s, w1s, ts_out, bid_out, ask_out)
                if stop < e:  # tick ``stop`` crosses the session or the floor
                    self._step(w0s[stop], w1s[stop], w2s[stop], out)
                    stop += 1
                i = stop
            if e < n:
                self._step(w0s[e], w1s[e], w2s[e], out)
                i = e + 1
        self._count += n
        return out

    def _run(
        self,
        i: int,
        j: int,
        w0s: Sequence[int],
        w1s: Sequence[int],
        ts_out: list[int],
        bid_out: list[int],
        ask_out: list[int],
    ) -> int:
        """Append ticks i.. up to j (exclusive), stopping before the first one that reaches
        the session's open limit or the price floor; returns where it stopped."""
        r = self._regimes[self._regime]
        interval, move = r.interval_ns, r.move
        ts = list(accumulate([interval[w >> _SHIFT] for w in w0s[i:j]], initial=self._ts))
        if ts[-1] >= self._open_until:
            j = i + bisect_left(ts, self._open_until, 1) - 1
            del ts[j - i + 1 :]
        if j == i:
            return i
        w1 = w1s[i:j]
        mids = list(accumulate([move[w >> _SHIFT] for w in w1], initial=self._mid))
        floor = self._floor
        if min(mids) < floor:  # stop before the first tick below the floor: ``_step`` clamps it
            j = i + next(k for k, m in enumerate(mids) if m < floor) - 1
            if j <= i:
                return i
            del ts[j - i + 1 :], mids[j - i + 1 :]
            w1 = w1s[i:j]
        del ts[0], mids[0]
        below, above = r.below, r.above
        ts_out.extend(ts)
        bid_out.extend([m - below[w & _LOW] for m, w in zip(mids, w1, strict=True)])
        ask_out.extend([m + above[w & _LOW] for m, w in zip(mids, w1, strict=True)])
        self._ts, self._mid = ts[-1], mids[-1]
        return j

    def _step(self, w0: int, w1: int, w2: int, out: _Out) -> None:
        """One tick, by the rules in their order: arrival, session, event, move, spread."""
        r = self._regimes[self._regime]
        prev = self._ts
        ts = prev + r.interval_ns[w0 >> _SHIFT]
        mid = self._mid
        if ts >= self._open_until:
            ts, mid, self._open_until = self._cross(prev, ts, mid, w1)
        if w2 < r.event_below:
            self._regime, mid = self._event(self._regime, mid, w2)
            r = self._regimes[self._regime]
        mid = max(self._floor, mid + r.move[w1 >> _SHIFT])
        k = w1 & _LOW
        out[0].append(ts)
        out[1].append(mid - r.below[k])
        out[2].append(mid + r.above[k])
        self._ts, self._mid = ts, mid

    # --- the rare paths ------------------------------------------------------------------

    def _event(self, regime: int, mid: int, word: int) -> tuple[int, int]:
        r = self._regimes[regime]
        if word < r.switch_below:
            if regime == CALM:
                self._bursts += 1
            return 1 - regime, mid
        # A jump: the word's place in the jump band is a uniform draw for sign and size.
        u = (word - r.switch_below) / (r.event_below - r.switch_below)
        sign = -1 if u < 0.5 else 1
        size = self._jump_ticks * (1 + 4 * (u % 0.5))  # 1x to 3x the class's jump
        self._jumps += 1
        if regime == CALM:
            self._bursts += 1
        return BURST, max(self._floor, mid + sign * max(1, round(size)) * self._tick)

    def _is_open(self, ts_ns: int) -> bool:
        return self.session.is_open_ns(ts_ns)

    def _scan_open(self, ts_ns: int) -> int:
        """A time up to which the session is open, from ``ts_ns`` (which is open): the
        start of the first closed minute within a day, or the end of that day's scan."""
        s = self.session
        if s.always_open and not s.holidays and not s.daily_breaks and not s.early_closes:
            return _ALWAYS
        minute = ts_ns // _NS_PER_MINUTE + 1
        end = minute + _OPEN_SCAN_MINUTES
        while minute < end and s.is_open_ns(minute * _NS_PER_MINUTE):
            minute += 1
        return minute * _NS_PER_MINUTE

    def _cross(self, prev: int, ts: int, mid: int, word: int) -> tuple[int, int, int]:
        """The tick at ``ts`` (after one at ``prev``) passed the known open time.

        A function of ``prev`` and ``ts`` alone (not of how far a scan looked ahead), so
        a resumed walk takes the same path. If the session closed between them, the tick
        moves past the reopen and the mid gaps by a move in proportion to the time closed.
        """
        session = self.session
        first = prev // _NS_PER_MINUTE + 1
        if not session.is_open_ns(prev):
            close = prev
        else:
            close = None
            for minute in range(first, ts // _NS_PER_MINUTE + 1):
                if not session.is_open_ns(minute * _NS_PER_MINUTE):
                    close = minute * _NS_PER_MINUTE
                    break
        if close is None:
            return ts, mid, self._scan_open(ts)
        while True:
            after = _EPOCH + dt.timedelta(microseconds=close // 1_000)
            reopen = session.next_open(after)
            if reopen is None:
                raise ConfigError(f"{self.inst.symbol}: session {session.name} stays closed")
            reopen_ns = (reopen - _EPOCH) // dt.timedelta(microseconds=1) * 1_000
            reopen_ns = max(reopen_ns, close)
            new_ts = reopen_ns + (ts - close) % _NS_PER_MINUTE
            if session.is_open_ns(new_ts):
                break
            close = new_ts  # the overshoot left the reopened minute: look again
        closed_ns = reopen_ns - close
        z = _normal_quantiles()[word >> _SHIFT]
        gap = round(z * self._sigma_ticks * 0.1 * math.sqrt(closed_ns / self._mean_ns))
        mid = max(self._floor, mid + gap * self._tick)
        return new_ts, mid, self._scan_open(new_ts)


def _size_units(inst: Instrument, lots: str) -> int:
    units = int(Decimal(lots) * inst.qty_scale) // inst.lot_int * inst.lot_int
    return max(units, inst.lot_int)
