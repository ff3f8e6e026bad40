"""Report periods: the trading day, and the months and years statements cover.

A report date is a trading day: it ends at the rollover cut-off, 17:00 New York time, on
that date and begins at the previous calendar day's cut-off (so Monday's begins on Sunday
at 17:00, when the FX week opens, and a weekend date is a day with no activity). Every
instant is UTC nanoseconds, as in the store; an interval holds ``start_ns < t <= end_ns``
so a row stamped exactly at a cut-off belongs to the day that cut-off closes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# The rule itself is the trading core's: its venue's drop copy and the provider's files are
# cut by the same day as the reports, and assets may import trading (not the other way).
from trading.trading_day import CUTOFF, NEW_YORK, cutoff_ns, trading_date_of

__all__ = ["CUTOFF", "NEW_YORK", "Period", "cutoff_ns", "parse_date", "trading_date_of"]


@dataclass(frozen=True)
class Period:
    """A span of trading days, first and last included: ``start_ns < t <= end_ns``."""

    first: dt.date
    last: dt.date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"period ends ({self.last}) before it begins ({self.first})")

    @property
    def start_ns(self) -> int:
        return cutoff_ns(self.first - dt.timedelta(days=1))

    @property
    def end_ns(self) -> int:
        return cutoff_ns(self.last)

    @property
    def label(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    @classmethod
    def day(cls, day: dt.date) -> Period:
        return cls(day, day)

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        first = dt.date(year, month, 1)
        following = dt.date(year + month // 12, month % 12 + 1, 1)
        return cls(first, following - dt.timedelta(days=1))

    @classmethod
    def year(cls, year: int) -> Period:
        return cls(dt.date(year, 1, 1), dt.date(year, 12, 31))


def parse_date(text: str) -> dt.date:
    """A report date from the command line: YYYY-MM-DD, refused otherwise."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}") from None
