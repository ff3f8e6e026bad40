"""Specification of trading.rollover: the daily cut-offs of each class, daylight-saving time
included, and the nights each charges (triple Wednesday for FX and metals, the weekend on
Friday for the others)."""

from __future__ import annotations

import datetime as dt

import pytest

from trading.catalogue import default_catalogue
from trading.errors import InvalidRollover
from trading.rollover import Cutoff, cutoffs_between, nights_between, spot_date

CATALOGUE = default_catalogue()
DAY_NS = 86_400 * 10**9


def ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp()) * 10**9


def cuts(symbol: str, after: int, until: int) -> list[Cutoff]:
    return cutoffs_between(CATALOGUE.get(symbol), CATALOGUE.session_for(symbol), after, until)


def utc_hours(cutoffs: list[Cutoff]) -> list[tuple[str, int, int]]:
    """(weekday, UTC hour, nights) of each cut-off."""
    return [
        (c.trade_date.strftime("%a"), dt.datetime.fromtimestamp(c.at_ns // 10**9, dt.UTC).hour,
         c.nights)
        for c in cutoffs
    ]  # fmt: skip


def test_fx_when_new_york_enters_summer_time_then_the_cutoff_moves_from_22_to_21_utc() -> None:
    # 2026-03-08: New York goes to EDT; London and Frankfurt stay on winter time until 29 March.
    result = cuts("EUR/USD", ns(2026, 3, 5, 12), ns(2026, 3, 12, 12))
    assert utc_hours(result) == [
        ("Thu", 22, 1), ("Fri", 22, 1), ("Mon", 21, 1), ("Tue", 21, 1), ("Wed", 21, 3),
    ]  # fmt: skip


def test_fx_when_new_york_leaves_summer_time_then_the_cutoff_moves_from_21_to_22_utc() -> None:
    # 2026-11-01: New York back to EST (Europe already changed on 25 October).
    result = cuts("GBP/USD", ns(2026, 10, 29, 12), ns(2026, 11, 5, 12))
    assert utc_hours(result) == [
        ("Thu", 21, 1), ("Fri", 21, 1), ("Mon", 22, 1), ("Tue", 22, 1), ("Wed", 22, 3),
    ]  # fmt: skip


def test_fx_when_a_whole_week_then_five_cutoffs_charge_seven_nights_none_at_the_weekend() -> None:
    result = cuts("USD/JPY", ns(2026, 1, 12), ns(2026, 1, 19))  # Monday to Monday 00:00 UTC
    assert [c.trade_date.weekday() for c in result] == [0, 1, 2, 3, 4]
    assert [c.nights for c in result] == [1, 1, 3, 1, 1]
    assert sum(c.nights for c in result) == 7


def test_metals_when_the_daily_break_precedes_the_cutoff_then_the_day_still_rolls_triple_wed() -> (
    None
):
    result = cuts("XAU/USD", ns(2026, 1, 12), ns(2026, 1, 19))
    assert [(c.trade_date.strftime("%a"), c.nights) for c in result] == [
        ("Mon", 1), ("Tue", 1), ("Wed", 3), ("Thu", 1), ("Fri", 1),
    ]  # fmt: skip
    assert all(dt.datetime.fromtimestamp(c.at_ns // 10**9, dt.UTC).hour == 22 for c in result)


def test_fx_when_christmas_has_no_cutoff_then_its_night_goes_to_the_day_before() -> None:
    result = cuts("EUR/USD", ns(2026, 12, 21), ns(2026, 12, 28, 23))
    assert [(c.trade_date.day, c.nights) for c in result] == [
        (21, 1), (22, 1), (23, 3), (24, 2), (28, 1),
    ]  # fmt: skip


def test_index_when_friday_close_then_it_charges_the_weekend_and_follows_new_york_dst() -> None:
    result = cuts("US500", ns(2026, 3, 5, 12), ns(2026, 3, 10, 12))
    assert utc_hours(result) == [("Thu", 21, 1), ("Fri", 21, 3), ("Mon", 20, 1)]


def test_equity_when_thanksgiving_and_an_early_close_then_skipped_and_moved_to_13_new_york() -> (
    None
):
    result = cuts("AAPL", ns(2026, 11, 24), ns(2026, 12, 1))
    assert [(c.trade_date.day, c.nights) for c in result] == [(24, 1), (25, 2), (27, 3), (30, 1)]
    early = next(c for c in result if c.trade_date.day == 27)
    assert early.at_ns == ns(2026, 11, 27, 18)  # 13:00 EST


def test_jp_index_when_the_night_session_runs_into_saturday_then_no_saturday_cutoff() -> None:
    result = cuts("JP225", ns(2026, 1, 12), ns(2026, 1, 19))
    assert [(c.trade_date.strftime("%a"), c.nights) for c in result] == [
        ("Mon", 1), ("Tue", 1), ("Wed", 1), ("Thu", 1), ("Fri", 3),
    ]  # fmt: skip
    assert result[0].at_ns == ns(2026, 1, 12, 6, 45)  # 15:45 Tokyo


def test_crypto_when_open_every_day_then_a_cutoff_each_midnight_utc_of_one_night() -> None:
    result = cuts("BTC/USD", ns(2026, 1, 9, 12), ns(2026, 1, 12, 12))
    assert [(c.at_ns, c.nights) for c in result] == [
        (ns(2026, 1, 10), 1), (ns(2026, 1, 11), 1), (ns(2026, 1, 12), 1),
    ]  # fmt: skip


def test_cutoffs_when_windows_chain_then_each_cutoff_comes_once() -> None:
    start, middle, end = ns(2026, 3, 1), ns(2026, 3, 11, 21), ns(2026, 3, 20)
    whole = cuts("EUR/USD", start, end)
    halves = cuts("EUR/USD", start, middle) + cuts("EUR/USD", middle, end)
    assert halves == whole
    assert any(c.at_ns == middle for c in whole)  # the bound itself belongs to the first half
    assert cuts("EUR/USD", middle, middle) == []


def test_cutoffs_when_the_window_is_backwards_or_too_long_then_invalid_rollover() -> None:
    with pytest.raises(InvalidRollover):
        cuts("EUR/USD", ns(2026, 3, 2), ns(2026, 3, 1))
    with pytest.raises(InvalidRollover):
        cuts("EUR/USD", ns(2025, 1, 1), ns(2026, 3, 1))


def test_spot_date_and_nights_when_computed_then_follow_t_plus_2_over_weekends() -> None:
    assert spot_date(dt.date(2026, 1, 14)) == dt.date(2026, 1, 16)  # Wed -> Fri
    assert spot_date(dt.date(2026, 1, 15)) == dt.date(2026, 1, 19)  # Thu -> Mon
    eurusd, us500 = CATALOGUE.get("EUR/USD"), CATALOGUE.get("US500")
    assert nights_between(eurusd, dt.date(2026, 1, 16), dt.date(2026, 1, 19)) == 1  # Fri
    assert nights_between(us500, dt.date(2026, 1, 16), dt.date(2026, 1, 19)) == 3
    with pytest.raises(InvalidRollover):
        nights_between(eurusd, dt.date(2026, 1, 16), dt.date(2026, 1, 16))


def test_session_when_rollover_is_given_then_parsed_and_when_malformed_then_refused() -> None:
    from trading.sessions import TradingSession

    table = {"tz": "Asia/Tokyo", "open_windows": [["mon 08:45", "fri 15:45"]]}
    assert TradingSession.from_config("x", {**table, "rollover": "15:45"}).rollover == 945
    assert TradingSession.from_config("x", table).rollover == 0
    for bad in ("24:00", "7pm", 17):
        with pytest.raises(ValueError, match="not a"):
            TradingSession.from_config("x", {**table, "rollover": bad})


def test_catalogue_when_seeded_then_each_session_rolls_at_its_close() -> None:
    rollover = {name: session.rollover for name, session in CATALOGUE.sessions.items()}
    assert rollover == {
        "fx": 17 * 60, "metals": 17 * 60, "us_index": 16 * 60, "eu_index": 22 * 60,
        "uk_index": 21 * 60, "jp_index": 15 * 60 + 45, "crypto": 0, "us_equity": 16 * 60,
    }  # fmt: skip


def test_due_cutoffs_when_some_symbols_rolled_then_each_resumes_after_its_last() -> None:
    from trading.rollover import due_cutoffs

    now = ns(2026, 1, 14, 23)  # Wednesday, after the FX cut-off (22:00 UTC)
    last = {"EUR/USD": ns(2026, 1, 13, 22)}  # rolled on Tuesday
    due = due_cutoffs(CATALOGUE, last, now)
    eurusd = [c for c in due if c.symbol == "EUR/USD"]
    assert [(c.trade_date.day, c.nights) for c in eurusd] == [(14, 3)]
    # Never rolled: looks back one day only (GBP/USD: Wednesday's cut-off).
    assert [c.trade_date.day for c in due if c.symbol == "GBP/USD"] == [14]
    assert due == sorted(due, key=lambda c: (c.at_ns, c.symbol))
    # Once each symbol's marks are recorded, running again at the same time finds nothing.
    assert due_cutoffs(CATALOGUE, last | {c.symbol: c.at_ns for c in due}, now) == []
