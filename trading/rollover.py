"""The daily cut-off: when end-of-day marks are taken and financing (swap) is posted.

When. FX and metals roll at 17:00 America/New_York (the FX market's value-date change), so
22:00 UTC in winter and 21:00 UTC in summer. Every other instrument rolls at its session's
``rollover`` time, its close, in the session's own zone (16:00 New York for US indices and
equities, 22:00 Frankfurt, 21:00 London, 15:45 Tokyo, 00:00 UTC for crypto), or at the early
close of a day that closes early. A cut-off happens on a local date only when the session
traded in the two hours before it: weekends and holidays have none, and a daily break of up
to two hours before the cut-off (metals, 16:00-17:00 New York) does not hide the day.

Nights. Each cut-off charges the nights until the next one:

- FX and metals settle spot (T+2 business days), so a cut-off charges the nights between the
  value dates it rolls: ``spot(next cut-off's date) - spot(this date)``. A Wednesday rolls
  Friday's value to Monday: 3 nights (the "triple swap"); every other weekday 1. Spot metals
  are quoted for the same T+2 value and roll the same way, as the market charges them. Only
  weekends move value dates here: a holiday with no cut-off adds its night to the cut-off
  before it, so a year charges each night once.
- Everything else charges calendar nights to the next cut-off: a Friday close charges the
  weekend (3), a close before a holiday 2 or more; crypto, open every day, charges 1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from trading.catalogue import Catalogue
from trading.errors import InvalidRollover
from trading.instrument import AssetClass, Instrument
from trading.sessions import TradingSession

__all__ = [
    "FX_CUTOFF_MINUTE",
    "FX_CUTOFF_ZONE",
    "Cutoff",
    "cutoff_rule",
    "cutoffs_between",
    "due_cutoffs",
    "nights_between",
    "spot_date",
]

FX_CUTOFF_ZONE: Final = ZoneInfo("America/New_York")
FX_CUTOFF_MINUTE: Final = 17 * 60
_SPOT_CLASSES: Final = frozenset({AssetClass.FX, AssetClass.METAL})
_TRADED_WITHIN_MINUTES: Final = 120
_NS_PER_MINUTE: Final = 60 * 1_000_000_000
_NS_PER_SECOND: Final = 1_000_000_000
_LOOKAHEAD_DAYS: Final = 31  # the longest a session may stay shut and still have a next cut-off


@dataclass(frozen=True, slots=True)
class Cutoff:
    """One daily cut-off of a symbol: its local trade date, its instant (UTC ns) and the
    nights of financing it charges."""

    symbol: str
    trade_date: dt.date
    at_ns: int
    nights: int


def cutoff_rule(instrument: Instrument, session: TradingSession) -> tuple[ZoneInfo, int]:
    """(zone, minute of the local day) of the instrument's daily cut-off."""
    if instrument.asset_class in _SPOT_CLASSES:
        return FX_CUTOFF_ZONE, FX_CUTOFF_MINUTE
    return session.zone, session.rollover


def spot_date(trade_date: dt.date, business_days: int = 2) -> dt.date:
    """The value date ``business_days`` weekdays after ``trade_date`` (weekends skipped)."""
    day = trade_date
    left = business_days
    while left:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def nights_between(instrument: Instrument, trade_date: dt.date, next_trade_date: dt.date) -> int:
    """The nights a cut-off on ``trade_date`` charges when the next is on ``next_trade_date``."""
    if next_trade_date <= trade_date:
        raise InvalidRollover(f"the next cut-off {next_trade_date} is not after {trade_date}")
    if instrument.asset_class in _SPOT_CLASSES:
        return (spot_date(next_trade_date) - spot_date(trade_date)).days
    return (next_trade_date - trade_date).days


def _instant_ns(day: dt.date, minute: int, zone: ZoneInfo) -> int:
    local = dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)
    return int(local.timestamp()) * _NS_PER_SECOND


def _cutoff_on(
    instrument: Instrument, session: TradingSession, day: dt.date
) -> int | None:  # fmt: skip
    """The cut-off instant on local date ``day``, or None when the session did not trade
    into it."""
    zone, minute = cutoff_rule(instrument, session)
    if instrument.asset_class not in _SPOT_CLASSES:
        early = session.early_closes.get(day)
        if early is not None and early < minute:
            minute = early
    at = _instant_ns(day, minute, zone)
    for back in range(1, _TRADED_WITHIN_MINUTES + 1):
        if session.is_open_ns(at - back * _NS_PER_MINUTE):
            return at
    return None


def _local_date(ts_ns: int, zone: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ns // _NS_PER_SECOND, zone).date()


def cutoffs_between(
    instrument: Instrument, session: TradingSession, after_ns: int, until_ns: int
) -> list[Cutoff]:
    """The cut-offs of ``instrument`` with ``after_ns < at_ns <= until_ns``, in order, each
    with the nights it charges. ``session`` is the instrument's (``Catalogue.session_for``).

    A rollover that ran up to ``t`` and runs again up to ``u`` passes ``after_ns=t``: no
    cut-off is ever returned twice or skipped.
    """
    if until_ns < after_ns:
        raise InvalidRollover(f"until {until_ns} is before after {after_ns}")
    if (until_ns - after_ns) > 400 * 86_400 * _NS_PER_SECOND:
        raise InvalidRollover("a rollover spans at most 400 days")
    zone, _ = cutoff_rule(instrument, session)
    first = _local_date(after_ns, zone) - dt.timedelta(days=1)
    last = _local_date(until_ns, zone) + dt.timedelta(days=1)
    found: list[tuple[dt.date, int]] = []
    day = first
    while day <= last:
        at = _cutoff_on(instrument, session, day)
        if at is not None and after_ns < at <= until_ns:
            found.append((day, at))
        day += dt.timedelta(days=1)
    result: list[Cutoff] = []
    for i, (day, at) in enumerate(found):
        following = found[i + 1][0] if i + 1 < len(found) else _next_date(instrument, session, day)
        result.append(
            Cutoff(instrument.symbol, day, at, nights_between(instrument, day, following))
        )
    return result


def _next_date(instrument: Instrument, session: TradingSession, day: dt.date) -> dt.date:
    for ahead in range(1, _LOOKAHEAD_DAYS + 1):
        candidate = day + dt.timedelta(days=ahead)
        if _cutoff_on(instrument, session, candidate) is not None:
            return candidate
    # A session shut for a month: charge one night now, the rest when it trades again.
    return day + dt.timedelta(days=1)


def due_cutoffs(
    catalogue: Catalogue,
    last_cutoff_ns: Mapping[str, int],
    now_ns: int,
    *,
    first_lookback_ns: int = 86_400 * _NS_PER_SECOND,
) -> list[Cutoff]:
    """Every symbol's cut-offs after its last recorded one (``eod_marks.cutoff_ns``) up to
    ``now_ns``, oldest first. A symbol never rolled looks back ``first_lookback_ns`` (a day),
    so a new store does not charge nights before it existed."""
    due: list[Cutoff] = []
    for inst in catalogue:
        after = last_cutoff_ns.get(inst.symbol, now_ns - first_lookback_ns)
        if after < now_ns:
            due.extend(cutoffs_between(inst, catalogue.session_for(inst.symbol), after, now_ns))
    due.sort(key=lambda c: (c.at_ns, c.symbol))
    return due
