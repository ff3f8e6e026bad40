"""Specification of trading.sessions: when each market is open, daylight-saving time included."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.catalogue import default_catalogue
from trading.sessions import TradingSession

CATALOGUE = default_catalogue()
SESSIONS = CATALOGUE.sessions


SECOND = dt.timedelta(seconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def ns(at: dt.datetime) -> int:
    return (at - utc(1970, 1, 1)) // dt.timedelta(microseconds=1) * 1000


# 2026-01-14 and 2026-07-15 are ordinary Wednesdays; 2026-01-10 is a Saturday.

# --- FX -------------------------------------------------------------------------------------


def test_fx_when_saturday_then_closed() -> None:
    assert not SESSIONS["fx"].is_open(utc(2026, 1, 10, 12))


def test_fx_when_monday_10_utc_then_open() -> None:
    assert SESSIONS["fx"].is_open(utc(2026, 1, 12, 10))


def test_fx_when_christmas_2026_then_closed() -> None:
    fx = SESSIONS["fx"]
    assert not fx.is_open(utc(2026, 12, 25, 12))
    assert fx.is_open(utc(2026, 12, 24, 12))


def test_fx_when_sunday_evening_in_winter_then_opens_at_22_utc() -> None:
    fx = SESSIONS["fx"]
    assert not fx.is_open(utc(2026, 1, 11, 22) - SECOND)
    assert fx.is_open(utc(2026, 1, 11, 22))


def test_fx_when_friday_evening_in_winter_then_closes_at_22_utc() -> None:
    fx = SESSIONS["fx"]
    assert fx.is_open(utc(2026, 1, 16, 22) - SECOND)
    assert not fx.is_open(utc(2026, 1, 16, 22))


def test_fx_when_summer_then_follows_new_york_and_opens_at_21_utc() -> None:
    fx = SESSIONS["fx"]
    assert not fx.is_open(utc(2026, 7, 12, 20, 59))
    assert fx.is_open(utc(2026, 7, 12, 21))
    assert not fx.is_open(utc(2026, 7, 17, 21))


def test_session_for_when_fx_pair_then_returns_the_fx_session() -> None:
    assert CATALOGUE.session_for("EUR/USD") is SESSIONS["fx"]


# --- US equities ----------------------------------------------------------------------------


def test_us_equity_when_15_utc_in_january_then_open() -> None:
    assert SESSIONS["us_equity"].is_open(utc(2026, 1, 14, 15))


def test_us_equity_when_13_45_utc_in_july_then_open() -> None:
    assert SESSIONS["us_equity"].is_open(utc(2026, 7, 15, 13, 45))


def test_us_equity_when_13_45_utc_in_january_then_closed() -> None:
    assert not SESSIONS["us_equity"].is_open(utc(2026, 1, 14, 13, 45))


def test_us_equity_when_at_the_bell_then_open_at_the_open_and_closed_at_the_close() -> None:
    equity = SESSIONS["us_equity"]
    assert not equity.is_open(utc(2026, 1, 14, 14, 30) - SECOND)
    assert equity.is_open(utc(2026, 1, 14, 14, 30))
    assert equity.is_open(utc(2026, 1, 14, 21) - SECOND)
    assert not equity.is_open(utc(2026, 1, 14, 21))


@pytest.mark.parametrize(
    "day", [dt.date(2026, 1, 19), dt.date(2026, 4, 3), dt.date(2026, 7, 3), dt.date(2026, 11, 26)]
)
def test_us_equity_when_nyse_holiday_then_closed_all_day(day: dt.date) -> None:
    at = dt.datetime.combine(day, dt.time(16), tzinfo=dt.UTC)
    assert not SESSIONS["us_equity"].is_open(at)


def test_us_equity_when_early_close_day_then_closes_at_13_new_york() -> None:
    equity = SESSIONS["us_equity"]
    assert equity.is_open(utc(2026, 11, 27, 17, 59))  # 12:59 EST
    assert not equity.is_open(utc(2026, 11, 27, 18))  # 13:00 EST


def test_us_equity_when_weekend_then_closed() -> None:
    assert not SESSIONS["us_equity"].is_open(utc(2026, 1, 10, 15))
    assert not SESSIONS["us_equity"].is_open(utc(2026, 1, 11, 15))


def test_is_open_when_given_another_time_zone_then_uses_the_same_instant() -> None:
    new_york = dt.timezone(dt.timedelta(hours=-5))
    at = dt.datetime(2026, 1, 14, 10, 0, tzinfo=new_york)  # 15:00 UTC
    assert SESSIONS["us_equity"].is_open(at)


# --- crypto, metals, indices ----------------------------------------------------------------


@given(at=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_crypto_when_any_instant_then_open(at: dt.datetime) -> None:
    assert SESSIONS["crypto"].is_open(at.replace(tzinfo=dt.UTC))


def test_metals_when_in_the_daily_break_then_closed() -> None:
    metals = SESSIONS["metals"]
    assert metals.is_open(utc(2026, 1, 14, 20, 59))
    assert not metals.is_open(utc(2026, 1, 14, 21, 30))  # 16:30 EST
    assert metals.is_open(utc(2026, 1, 14, 22))
    assert not metals.is_open(utc(2026, 7, 15, 20, 30))  # 16:30 EDT
    assert CATALOGUE.session_for("XAU/USD") is metals


def test_us_index_when_winter_then_sunday_23_to_friday_21_utc_with_a_daily_break() -> None:
    index = SESSIONS["us_index"]
    assert not index.is_open(utc(2026, 1, 11, 22, 59))
    assert index.is_open(utc(2026, 1, 11, 23))
    assert not index.is_open(utc(2026, 1, 14, 21, 30))
    assert index.is_open(utc(2026, 1, 14, 22))
    assert not index.is_open(utc(2026, 1, 16, 21))


def test_eu_index_when_summer_then_frankfurt_hours_move_with_dst() -> None:
    dax = SESSIONS["eu_index"]
    assert dax.is_open(utc(2026, 1, 14, 20, 59))  # 21:59 CET
    assert not dax.is_open(utc(2026, 1, 14, 21))  # 22:00 CET
    assert not dax.is_open(utc(2026, 7, 15, 20))  # 22:00 CEST
    assert dax.is_open(utc(2026, 7, 14, 23, 15))  # Wednesday 01:15 CEST


def test_jp_index_when_between_day_and_night_sessions_then_closed() -> None:
    nikkei = SESSIONS["jp_index"]
    assert nikkei.is_open(utc(2026, 1, 14, 0))  # 09:00 JST
    assert not nikkei.is_open(utc(2026, 1, 14, 7))  # 16:00 JST
    assert nikkei.is_open(utc(2026, 1, 14, 12))  # 21:00 JST
    assert not nikkei.is_open(utc(2026, 1, 14, 22))  # 07:00 JST
    assert not nikkei.is_open(utc(2026, 1, 17, 0))  # Saturday 09:00 JST


# --- nanosecond timestamps, the cache, next_open ---------------------------------------------

instants = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 12, 31)).map(
    lambda d: d.replace(tzinfo=dt.UTC)
)


@given(name=st.sampled_from(sorted(SESSIONS)), at=instants)
def test_is_open_ns_when_same_instant_then_agrees_with_is_open_and_the_uncached_rule(
    name: str, at: dt.datetime
) -> None:
    session = SESSIONS[name]
    expected = session._compute((at - utc(1970, 1, 1)) // dt.timedelta(minutes=1))
    assert session.is_open(at) is expected
    assert session.is_open_ns(ns(at)) is expected


def test_is_open_ns_when_pre_trade_check_then_is_fast_after_the_first_call() -> None:
    session = SESSIONS["us_equity"]
    ts = ns(utc(2026, 1, 14, 15))
    assert session.is_open_ns(ts)
    assert session.is_open_ns(ts + 59 * 10**9)  # same minute: served from the cache
    assert not session.is_open_ns(ns(utc(2026, 1, 14, 21)))


def test_is_open_when_naive_datetime_then_raises_value_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        SESSIONS["fx"].is_open(dt.datetime(2026, 1, 12, 10))


def test_next_open_when_closed_then_returns_the_next_opening_in_utc() -> None:
    assert SESSIONS["fx"].next_open(utc(2026, 1, 10, 12)) == utc(2026, 1, 11, 22)
    assert SESSIONS["us_equity"].next_open(utc(2026, 1, 16, 21)) == utc(2026, 1, 20, 14, 30)
    assert SESSIONS["us_equity"].next_open(utc(2026, 11, 25, 21)) == utc(2026, 11, 27, 14, 30)


def test_next_open_when_already_open_then_returns_the_same_instant() -> None:
    at = utc(2026, 1, 14, 15, 7) + 3 * SECOND
    assert SESSIONS["us_equity"].next_open(at) == at
    assert SESSIONS["crypto"].next_open(at) == at


# --- building sessions ----------------------------------------------------------------------


def test_from_config_when_window_wraps_the_weekend_then_is_open_across_midnight() -> None:
    session = TradingSession.from_config(
        "test", {"tz": "UTC", "open_windows": [["fri 22:00", "mon 02:00"]]}
    )
    assert session.is_open(utc(2026, 1, 10, 12))  # Saturday
    assert session.is_open(utc(2026, 1, 12, 1, 59))  # Monday
    assert not session.is_open(utc(2026, 1, 12, 2))


def test_from_config_when_break_wraps_midnight_then_closed_across_midnight() -> None:
    session = TradingSession.from_config(
        "test", {"tz": "UTC", "always_open": True, "daily_breaks": [["23:30", "00:30"]]}
    )
    assert not session.is_open(utc(2026, 1, 14, 23, 45))
    assert not session.is_open(utc(2026, 1, 15, 0, 15))
    assert session.is_open(utc(2026, 1, 15, 0, 30))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"tz": "UTC", "always_open": True, "colour": "red"}, "unknown key(s) colour"),
        ({"always_open": True}, "'tz'"),
        ({"tz": "Nowhere/Town", "always_open": True}, "unknown time zone"),
        ({"tz": "UTC"}, "needs open_windows"),
        ({"tz": "UTC", "always_open": True, "open_windows": [["mon 00:00", "tue 00:00"]]},
         "exclude each other"),
        ({"tz": "UTC", "open_windows": [["mon 09:00", "mon 09:00"]]}, "empty"),
        ({"tz": "UTC", "open_windows": [["mon 9:00", "mon 17:00"]]}, "'HH:MM'"),
        ({"tz": "UTC", "open_windows": [["mon 09:00", "mon 25:00"]]}, "not a valid time"),
        ({"tz": "UTC", "open_windows": [["mon 09:00"]]}, "not a [start, end] pair"),
        ({"tz": "UTC", "always_open": True, "holidays": ["2026-13-01"]}, "not an ISO date"),
        ({"tz": "UTC", "always_open": True, "holidays": ["2026-12-25"],
          "early_closes": {"2026-12-25": "13:00"}}, "both a holiday and an early close"),
    ],
)  # fmt: skip
def test_from_config_when_table_is_malformed_then_raises_value_error_naming_it(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        TradingSession.from_config("test", table)
    assert message in str(info.value)
    assert "test" in str(info.value)


@pytest.mark.parametrize("ts_ns", [10**30, -(10**30), 400_000 * 365 * 86_400 * 10**9])
def test_is_open_ns_when_the_instant_is_beyond_any_calendar_then_closed_not_raised(
    ts_ns: int,
) -> None:
    assert SESSIONS["fx"].is_open_ns(ts_ns) is False
