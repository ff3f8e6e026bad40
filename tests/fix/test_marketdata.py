"""The FIX market-data session (trading/venues/fix/marketdata.py) against a market-data
acceptor on loopback (tests/fix/mdsim.py): subscribe, snapshot, incrementals, rejects."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.fix.counterparties import Counterparty, CounterpartyError, listening_on
from tests.fix.mdsim import Quote, start_mdsim
from trading.venues.fix.config import LpConfig, lp_config
from trading.venues.fix.marketdata import MarketDataSession, MdQuote, sending_time_ns

_EPOCH_S = calendar.timegm((2026, 11, 26, 19, 13, 2, 0, 0, 0))  # the stamps below, in s
WAIT_S = 20.0  # a bound on how long the quotes may take to arrive, not a timing test
SCRIPT: dict[str, list[Quote]] = {
    "BTC/USDT": [
        ("43000.15", "43000.40", "1.5", "2"),
        ("43000.20", "43000.45", "1", "3"),
        (None, "43000.50", None, "0.25"),  # the bid is deleted
        ("42999.95", "43000.05", "4", "5"),
    ],
    "EUR/USD": [("1.08341", "1.08343", "1000000", "2000000"), ("1.08342", "1.08344", "1", "2")],
}


def _lp(port: int, begin_string: str) -> LpConfig:
    return lp_config({
        "name": "mdlp", "host": "127.0.0.1", "port": port, "begin_string": begin_string,
        "sender_comp_id": "CLIENT", "target_comp_id": "MDSIM", "reconnect_s": 1,
        "market_data": True,
    })  # fmt: skip


@pytest.fixture(params=["FIX.4.4", "FIX.4.2"])
def mdsim(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Counterparty]:
    try:
        sim = start_mdsim(tmp_path / "mdsim", SCRIPT, begin_string=request.param)
    except CounterpartyError as exc:
        pytest.fail(str(exc), pytrace=False)
    with sim:
        yield sim


def _collect(session: MarketDataSession, symbol: str, n: int) -> list[MdQuote]:
    got: list[MdQuote] = []
    deadline = time.monotonic() + WAIT_S
    while len(got) < n and time.monotonic() < deadline:
        got += session.drain(symbol)
        time.sleep(0.02)
    return got


def test_session_when_subscribed_then_each_book_change_is_one_quote_in_order(
    mdsim: Counterparty, tmp_path: Path
) -> None:
    session = MarketDataSession(_lp(mdsim.port, mdsim.begin_string), ["BTC/USDT", "EUR/USD"],
                                tmp_path / "md")  # fmt: skip
    session.start()
    try:
        assert session.wait_logon(WAIT_S)
        btc = _collect(session, "BTC/USDT", len(SCRIPT["BTC/USDT"]))
        eur = _collect(session, "EUR/USD", len(SCRIPT["EUR/USD"]))
    finally:
        session.stop()

    def expected(script: list[Quote]) -> list[tuple[Decimal | None, ...]]:
        return [tuple(None if v is None else Decimal(v) for v in q) for q in script]

    assert [(q.bid, q.ask, q.bid_size, q.ask_size) for q in btc] == expected(SCRIPT["BTC/USDT"])
    assert [(q.bid, q.ask, q.bid_size, q.ask_size) for q in eur] == expected(SCRIPT["EUR/USD"])
    # Stamped with the message's SendingTime, received after it (same clock, loopback).
    assert all(q.ts_ns <= q.recv_ns for q in btc + eur)
    assert [q.seq for q in btc] == sorted(q.seq for q in btc)
    assert session.rejects == [] and session.dropped == 0


def test_session_when_the_lp_lacks_a_symbol_then_its_reject_is_kept_and_others_flow(
    mdsim: Counterparty, tmp_path: Path
) -> None:
    session = MarketDataSession(_lp(mdsim.port, mdsim.begin_string), ["NOPE/XYZ", "EUR/USD"],
                                tmp_path / "md")  # fmt: skip
    session.start()
    try:
        assert session.wait_logon(WAIT_S)
        eur = _collect(session, "EUR/USD", len(SCRIPT["EUR/USD"]))
    finally:
        session.stop()

    reject = session.rejected("NOPE/XYZ")
    assert reject is not None
    assert reject.symbols == ("NOPE/XYZ",)
    assert "MDReqRejReason 0" in reject.reason and "unknown symbol NOPE/XYZ" in reject.reason
    assert session.rejected("EUR/USD") is None
    assert len(eur) == len(SCRIPT["EUR/USD"])


def test_mdsim_when_started_then_it_listens_on_loopback_only(mdsim: Counterparty) -> None:
    assert listening_on(mdsim.port) == [f"127.0.0.1:{mdsim.port}"]


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("20261126-19:13:02", _EPOCH_S * 10**9),
        ("20261126-19:13:02.813", _EPOCH_S * 10**9 + 813_000_000),
        ("20261126-19:13:02.813172001", _EPOCH_S * 10**9 + 813_172_001),
    ],
)
def test_sending_time_when_parsed_then_nanoseconds_since_the_epoch(text: str, ns: int) -> None:
    assert sending_time_ns(text) == ns


def test_sending_time_when_the_fraction_is_not_digits_then_value_error() -> None:
    with pytest.raises(ValueError, match="fraction"):
        sending_time_ns("20261126-19:13:02.8x3")
