"""FIX market data as live tick feeds: ``bourse pipelines ticks --source fix:VENUES.toml --live``.

Every ``[[lp]]`` of the venues file marked ``market_data = true`` gets one market-data
session (``trading.venues.fix.marketdata``) subscribed to the run's symbols, and each
(LP, symbol) pair is one ``LiveFeed`` (``sources.LiveFeed``) keyed ``fix:<lp>|<symbol>``:
the live flow screens and publishes its quotes like any live feed's. A session starts at
its first poll (the flow is built by then) and stops when its last feed closes.

The session's quotes are top of book in the LP's decimals; here they become ticks: prices
to the nearest tick in the instrument's price units (half away from zero, as the vendor
files' are), sizes in ``SIZE_SCALE``-ths of the underlying (an FX LP quotes sizes in the
base currency, a crypto LP in coins), event time the message's SendingTime, receive time
when quickfix handed it over, ``source_seq`` the quote's place in its feed. An empty side
leaves that price null: the filters reject the tick as missing_price, so a one-sided book
shows in the rejects instead of vanishing. The sessions keep their quickfix store and log
under ``HOME/pipelines/ticks/fix/venues/fix/<lp>/``, never the OMS's order sessions'.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl

from pipelines.ticks.schema import REJECTED_SCHEMA, SIZE_SCALE, TICK_SCHEMA
from pipelines.ticks.sources import RawItem
from trading.catalogue import Catalogue
from trading.errors import ConfigError
from trading.instrument import Instrument
from trading.venues.fix.config import LpConfig
from trading.venues.fix.marketdata import MarketDataSession, MdQuote

log = logging.getLogger(__name__)

PREFIX = "fix:"
_NS_PER_S = 1_000_000_000


def is_fix_source(source: str) -> bool:
    return source.startswith(PREFIX)


def venues_path(source: str) -> Path:
    """``fix:PATH`` -> PATH."""
    path = source.removeprefix(PREFIX)
    if not path:
        raise ConfigError("--source fix: needs the venues file: fix:VENUES.toml")
    return Path(path)


def market_data_lps(path: Path) -> list[LpConfig]:
    """The LPs of the venues file marked ``market_data = true`` (at least one)."""
    from trading.venues.config import load_venues

    lps = [lp for lp in load_venues(path).lps if lp.market_data]
    if not lps:
        raise ConfigError(f"{path}: no [[lp]] has market_data = true: no session to subscribe")
    return lps


def unreachable(lps: Sequence[LpConfig], timeout_s: float = 3.0) -> str | None:
    """The first LP whose host:port refuses a TCP connection, as one line; None: all answer.

    Checked once before a run so that a wrong port is an error, not a feed that waits
    (quickfix itself would retry every ``reconnect_s`` for ever)."""
    for lp in lps:
        try:
            with socket.create_connection((lp.host, lp.port), timeout=timeout_s):
                pass
        except OSError as exc:
            return (f"FIX market data: LP {lp.name!r} at {lp.host}:{lp.port} is not reachable "
                    f"({exc.strerror or exc}): check host and port in the venues file")  # fmt: skip
    return None


class _Shared:
    """One LP's session, shared by that LP's feeds: started at the first poll, stopped when
    the last feed closes."""

    def __init__(self, session: MarketDataSession) -> None:
        self.session = session
        self.users = 0
        self._started = False

    def ensure_started(self) -> None:
        if not self._started:
            self._started = True
            self.session.start()

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0 and self._started:
            self.session.stop()
            self._started = False


class FixQuoteFeed:
    """One symbol's quotes from one LP's market-data session (``sources.LiveFeed``)."""

    def __init__(
        self, shared: _Shared, inst: Instrument, *, duration_s: float | None = None,
        poll_interval_s: float = 0.05, clock: Callable[[], int] = time.time_ns,
    ) -> None:  # fmt: skip
        self._shared = shared
        shared.users += 1
        self._inst = inst
        self._lp = shared.session.lp.name
        self._key = f"{PREFIX}{self._lp}|{inst.symbol}"
        self._duration_ns = None if duration_s is None else int(duration_s * _NS_PER_S)
        self._poll_every = timedelta(seconds=poll_interval_s)
        self._clock = clock
        self._t0: int | None = None
        self._sent = 0
        self._ended = False
        self._closed = False
        self._no_rejects = pl.DataFrame(
            schema={c: t for c, t in REJECTED_SCHEMA.items() if c != "day"}
        )

    @property
    def key(self) -> str:
        return self._key

    @property
    def symbol(self) -> str:
        return self._inst.symbol

    @property
    def sent(self) -> int:
        """Quotes handed to the flow so far."""
        return self._sent

    def poll(self) -> RawItem | None:
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
            self._shared.ensure_started()
        if self._ended:
            raise StopIteration
        session = self._shared.session
        quotes = session.drain(self._inst.symbol)
        if self._duration_ns is not None and now - self._t0 >= self._duration_ns:
            self._ended = True  # what arrived up to now still goes out, then the feed ends
        elif not quotes and (reject := session.rejected(self._inst.symbol)) is not None:
            log.warning("%s: the LP refused the subscription: %s", self._key, reject.reason)
            self._ended = True
        if not quotes:
            if self._ended:
                raise StopIteration
            return None
        frame = self.ticks(quotes)
        self._sent += len(quotes)
        return RawItem(self._key, self._inst.symbol, frame, self._no_rejects)

    def next_poll(self) -> datetime:
        return datetime.now(UTC) + self._poll_every

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._shared.release()

    def ticks(self, quotes: Sequence[MdQuote]) -> pl.DataFrame:
        """The quotes as ticks (``TICK_SCHEMA``), numbered on from the feed's last."""
        inst = self._inst
        rows: dict[str, list[object]] = {c: [] for c in TICK_SCHEMA}
        for i, q in enumerate(quotes):
            rows["symbol"].append(inst.symbol)
            rows["kind"].append("quote")
            rows["ts_ns"].append(q.ts_ns)
            rows["recv_ns"].append(q.recv_ns)
            rows["bid"].append(price_units(q.bid, inst))
            rows["ask"].append(price_units(q.ask, inst))
            rows["bid_size"].append(size_units(q.bid_size))
            rows["ask_size"].append(size_units(q.ask_size))
            rows["price"].append(None)
            rows["qty"].append(None)
            rows["trade_id"].append(None)
            rows["source"].append(self._key)
            rows["source_seq"].append(self._sent + i)
        return pl.DataFrame(rows, schema=TICK_SCHEMA)


def price_units(price: Decimal | None, inst: Instrument) -> int | None:
    """A price in the instrument's units, on the nearest tick (half away from zero)."""
    if price is None:
        return None
    ticks = (price * inst.price_scale / inst.tick_int).to_integral_value(ROUND_HALF_UP)
    return int(ticks) * inst.tick_int


def size_units(size: Decimal | None) -> int | None:
    if size is None:
        return None
    return int((size * SIZE_SCALE).to_integral_value(ROUND_HALF_UP))


def fix_feeds(
    path: Path, symbols: Sequence[str], catalogue: Catalogue, home: Path,
    *, duration_s: float | None = None, poll_interval_s: float = 0.05,
) -> list[FixQuoteFeed]:  # fmt: skip
    """One feed per (market-data LP, symbol); raises ``ConfigError`` for a bad file and
    ``UnknownSymbol`` for a symbol the catalogue lacks, before any session starts."""
    instruments = list({i.symbol: i for i in (catalogue.resolve(s) for s in symbols)}.values())
    if not instruments:
        raise ConfigError("a FIX market-data source needs --symbols")
    feeds = []
    for lp in market_data_lps(path):
        directory = home / "pipelines" / "ticks" / "fix" / "venues" / "fix" / lp.name
        session = MarketDataSession(lp, [i.symbol for i in instruments], directory)
        shared = _Shared(session)
        feeds += [FixQuoteFeed(shared, i, duration_s=duration_s, poll_interval_s=poll_interval_s)
                  for i in instruments]  # fmt: skip
    return feeds
