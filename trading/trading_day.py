"""The report day: it ends at 17:00 New York time (the FX market's value-date change).

A trading day closes at the cut-off on its own date and opens at the previous calendar
day's; an instant exactly at a cut-off belongs to the day it closes. Defined here, in the
core, because files it writes per day (the venue's drop copy, the payment provider's
settlement file) are cut by it; ``assets.days`` builds the report periods on it.
"""

from __future__ import annotations

import datetime as dt
from typing import Final
from zoneinfo import ZoneInfo

NEW_YORK: Final = ZoneInfo("America/New_York")
CUTOFF: Final = dt.time(17, 0)
_NS: Final = 1_000_000_000


def cutoff_ns(day: dt.date) -> int:
    """The cut-off closing ``day``: 17:00 New York time, as UTC nanoseconds."""
    return int(dt.datetime.combine(day, CUTOFF, tzinfo=NEW_YORK).timestamp()) * _NS


def trading_date_of(ts_ns: int) -> dt.date:
    """The trading day an instant (UTC nanoseconds) belongs to."""
    # Whole seconds, floored: the cut-off falls on a second, so no instant changes side.
    day = dt.datetime.fromtimestamp(ts_ns // _NS, NEW_YORK).date()
    return day if ts_ns <= cutoff_ns(day) else day + dt.timedelta(days=1)


def utc_text(ts_ns: int) -> str:
    """An instant as ISO 8601 UTC with microseconds, e.g. ``2026-01-05T15:00:00.123456Z``."""
    seconds, rest = divmod(ts_ns, _NS)
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC).replace(microsecond=rest // 1_000)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
