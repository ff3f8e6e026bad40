"""Trading sessions: when an instrument can be traded.

A session is written in the local time of the market it follows (`tz`, an IANA zone name), so
that daylight-saving time is right all year: the US equity session is 09:30–16:00 in
America/New_York, which is 14:30–21:00 UTC in January and 13:30–20:00 UTC in July.

A session is open at an instant when, in local wall-clock time,

- the local date is not a holiday,
- the time is not at or after the early close of that date (if it has one),
- the time is not inside a daily break, and
- the session is `always_open`, or the time falls inside one of its weekly open windows.

Windows and breaks are half-open: a window "mon 09:30" → "mon 16:00" is open at 09:30:00 and
closed at 16:00:00. A window or break whose end comes before its start wraps around the week
(or the day): "sun 17:00" → "fri 17:00" is open from Sunday evening to Friday evening.

Every boundary falls on a whole minute of local time, and every zone offset in use is a whole
number of minutes, so the state is constant within each UTC minute. `is_open` caches the
answer per minute: after the first call in a minute a check is a dictionary look-up.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trading.errors import ConfigError

__all__ = ["MINUTES_PER_DAY", "MINUTES_PER_WEEK", "WEEKDAYS", "TradingSession"]

MINUTES_PER_DAY: Final = 24 * 60
MINUTES_PER_WEEK: Final = 7 * MINUTES_PER_DAY
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_NS_PER_MINUTE: Final = 60 * 1_000_000_000
_ONE_MINUTE: Final = dt.timedelta(minutes=1)
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CACHE_LIMIT: Final = 4096  # minutes (about 3 days) kept before the cache is emptied
_NEXT_OPEN_HORIZON: Final = dt.timedelta(days=21)

_TIME_RE: Final = re.compile(r"^(\d{2}):(\d{2})$")
_KEYS: Final = frozenset(
    {
        "description",
        "tz",
        "always_open",
        "open_windows",
        "daily_breaks",
        "holidays",
        "early_closes",
        "rollover",
    }
)

# A window is (start, end) in minutes: since Monday 00:00 local for weekly windows, since
# 00:00 local for daily breaks. end < start means the span wraps around.
Span = tuple[int, int]


@dataclass(frozen=True)
class TradingSession:
    """When a market is open, in its own time zone.

    `open_windows` are weekly spans in minutes since Monday 00:00 local time; `daily_breaks`
    are spans in minutes since local midnight, applied every day; `holidays` are local dates
    on which the session is closed all day; `early_closes` maps a local date to the minute of
    the day from which the session is closed.
    """

    name: str
    tz: str
    open_windows: tuple[Span, ...] = ()
    daily_breaks: tuple[Span, ...] = ()
    holidays: frozenset[dt.date] = frozenset()
    early_closes: Mapping[dt.date, int] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    always_open: bool = False
    description: str = ""
    # The daily cut-off (end of the trading day), minutes since local midnight: the session
    # close, at which end-of-day marks are taken and financing is posted (trading.rollover).
    rollover: int = 0
    _zone: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)
    _cache: dict[int, bool] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a session needs a name")
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"session {self.name!r}: unknown time zone {self.tz!r}") from exc
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "early_closes", MappingProxyType(dict(self.early_closes)))
        if self.always_open and self.open_windows:
            raise ConfigError(
                f"session {self.name!r}: always_open = true and open_windows exclude each other"
            )
        if not self.always_open and not self.open_windows:
            raise ConfigError(f"session {self.name!r}: needs open_windows (or always_open = true)")
        for start, end in self.open_windows:
            _check_span(self.name, "open window", start, end, MINUTES_PER_WEEK)
        for start, end in self.daily_breaks:
            _check_span(self.name, "daily break", start, end, MINUTES_PER_DAY)
        if (
            not isinstance(self.rollover, int)
            or isinstance(self.rollover, bool)
            or not 0 <= self.rollover < MINUTES_PER_DAY
        ):
            raise ValueError(f"session {self.name!r}: rollover {self.rollover!r} is not a time")
        for day, minute in self.early_closes.items():
            if not 0 <= minute < MINUTES_PER_DAY:
                raise ConfigError(
                    f"session {self.name!r}: early close on {day} at minute {minute} "
                    "is outside the day"
                )

    # --- building from the catalogue file ---------------------------------------------------

    @classmethod
    def from_config(cls, name: str, table: Mapping[str, object]) -> TradingSession:
        """Build a session from its `[sessions.<name>]` table; raises ValueError if malformed.

        Keys: `tz` (IANA zone, required), `open_windows` (a list of ["ddd HH:MM", "ddd HH:MM"]
        pairs) or `always_open = true`, `daily_breaks` (a list of ["HH:MM", "HH:MM"] pairs),
        `holidays` (a list of dates, TOML dates or "YYYY-MM-DD" strings), `early_closes` (a
        table of "YYYY-MM-DD" = "HH:MM"), `rollover` ("HH:MM", the daily cut-off; midnight
        when absent), `description`.
        """
        where = f"sessions.{name}"
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}"
            )
        tz = table.get("tz")
        if not isinstance(tz, str):
            raise ConfigError(f"{where}: 'tz' (an IANA time zone name) is required")
        always_open = table.get("always_open", False)
        if not isinstance(always_open, bool):
            raise ConfigError(f"{where}: 'always_open' must be true or false")
        description = table.get("description", "")
        if not isinstance(description, str):
            raise ConfigError(f"{where}: 'description' must be a string")

        windows = tuple(
            (_parse_weekly(where, a), _parse_weekly(where, b))
            for a, b in _pairs(where, "open_windows", table.get("open_windows", []))
        )
        breaks = tuple(
            (_parse_daily(where, a), _parse_daily(where, b, allow_24=True))
            for a, b in _pairs(where, "daily_breaks", table.get("daily_breaks", []))
        )

        raw_holidays = table.get("holidays", [])
        if not isinstance(raw_holidays, list):
            raise ConfigError(f"{where}: 'holidays' must be a list of dates")
        holidays = [_parse_date(where, h) for h in raw_holidays]
        if len(set(holidays)) != len(holidays):
            raise ConfigError(f"{where}: 'holidays' lists a date twice")

        raw_early = table.get("early_closes", {})
        if not isinstance(raw_early, Mapping):
            raise ConfigError(f"{where}: 'early_closes' must be a table of date = \"HH:MM\"")
        early: dict[dt.date, int] = {}
        for key, value in raw_early.items():
            day = _parse_date(where, key)
            if day in holidays:
                raise ConfigError(f"{where}: {day} is both a holiday and an early close")
            early[day] = _parse_daily(where, value)

        return cls(
            name=name,
            tz=tz,
            open_windows=windows,
            daily_breaks=breaks,
            holidays=frozenset(holidays),
            early_closes=MappingProxyType(early),
            always_open=always_open,
            description=description,
            rollover=_parse_daily(where, table["rollover"]) if "rollover" in table else 0,
        )

    # --- queries ------------------------------------------------------------------------------

    def is_open(self, at: dt.datetime) -> bool:
        """Whether the session is open at `at`, an aware datetime (UTC or any zone)."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ConfigError(f"session {self.name!r}: is_open needs an aware datetime, got {at}")
        return self._open_at_minute((at - _EPOCH) // _ONE_MINUTE)

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def is_open_ns(self, ts_ns: int) -> bool:
        """Whether the session is open at `ts_ns`, nanoseconds since the Unix epoch (UTC)."""
        return self._open_at_minute(ts_ns // _NS_PER_MINUTE)

    def next_open(
        self, at: dt.datetime, *, horizon: dt.timedelta = _NEXT_OPEN_HORIZON
    ) -> dt.datetime | None:
        """The first instant at or after `at` when the session is open, in UTC.

        Returns `at` itself (converted to UTC) when already open, and None when the session
        stays closed for the whole `horizon` (three weeks by default).
        """
        if self.is_open(at):
            return at.astimezone(dt.UTC)
        first = (at - _EPOCH) // _ONE_MINUTE + 1
        for minute in range(first, first + horizon // _ONE_MINUTE):
            if self._compute(minute):
                return _EPOCH + minute * _ONE_MINUTE
        return None

    # --- internals ----------------------------------------------------------------------------

    def _open_at_minute(self, minute: int) -> bool:
        cache = self._cache
        state = cache.get(minute)
        if state is None:
            state = self._compute(minute)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[minute] = state
        return state

    def _compute(self, minute: int) -> bool:
        """The state during one UTC minute (minutes since the epoch), without the cache.

        An instant no calendar can place (beyond the years 1-9999) is closed: nothing
        trades there, and a bad timestamp must not raise out of a session check.
        """
        try:
            local = dt.datetime.fromtimestamp(minute * 60, self._zone)
        except (OverflowError, OSError, ValueError):
            return False
        day = local.date()
        if day in self.holidays:
            return False
        of_day = local.hour * 60 + local.minute
        early = self.early_closes.get(day)
        if early is not None and of_day >= early:
            return False
        for start, end in self.daily_breaks:
            if _inside(of_day, start, end):
                return False
        if self.always_open:
            return True
        of_week = local.weekday() * MINUTES_PER_DAY + of_day
        return any(_inside(of_week, start, end) for start, end in self.open_windows)


def _inside(value: int, start: int, end: int) -> bool:
    if start < end:
        return start <= value < end
    return value >= start or value < end  # wraps around


def _check_span(session: str, what: str, start: int, end: int, period: int) -> None:
    if not (0 <= start < period and 0 <= end <= period):
        raise ConfigError(f"session {session!r}: {what} ({start}, {end}) is out of range")
    if start == end or (start == 0 and end == period):
        raise ConfigError(
            f"session {session!r}: {what} ({start}, {end}) is empty or covers everything"
        )


def _pairs(where: str, key: str, value: object) -> list[tuple[object, object]]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {key!r} must be a list of [start, end] pairs")
    pairs: list[tuple[object, object]] = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise ConfigError(f"{where}: {key!r} item {item!r} is not a [start, end] pair")
        pairs.append((item[0], item[1]))
    return pairs


def _parse_daily(where: str, value: object, *, allow_24: bool = False) -> int:
    """'HH:MM' → minutes since midnight; '24:00' only where `allow_24` (the end of a span)."""
    match = _TIME_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f"{where}: {value!r} is not a time of day 'HH:MM'")
    hours, minutes = int(match[1]), int(match[2])
    if hours == 24 and minutes == 0 and allow_24:
        return MINUTES_PER_DAY
    if hours > 23 or minutes > 59:
        raise ConfigError(f"{where}: {value!r} is not a valid time of day")
    return hours * 60 + minutes


def _parse_weekly(where: str, value: object) -> int:
    """'ddd HH:MM' (e.g. 'sun 17:00') → minutes since Monday 00:00."""
    parts = value.split() if isinstance(value, str) else []
    if len(parts) != 2 or parts[0].lower() not in WEEKDAYS:
        raise ConfigError(
            f"{where}: {value!r} is not a weekly time 'ddd HH:MM' "
            f"(ddd one of {', '.join(WEEKDAYS)})"
        )
    return WEEKDAYS.index(parts[0].lower()) * MINUTES_PER_DAY + _parse_daily(where, parts[1])


def _parse_date(where: str, value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        raise ConfigError(f"{where}: {value!r} is a date-time; a holiday is a date")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: {value!r} is not an ISO date 'YYYY-MM-DD'")
