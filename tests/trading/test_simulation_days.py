"""The simulation over trading days (``trading.sim.days``): each day has its trading, its
cut-off's end-of-day marks and financing of the positions held over it, deposits and
withdrawals, clients behind every account; the same seed writes the same store."""

from __future__ import annotations

import datetime as dt
import random
import string
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from trading.catalogue import default_catalogue
from trading.clients import Client, ClientKind, check_client
from trading.errors import InvalidInput
from trading.instrument import AccountType
from trading.sim.clients import lei_for, simulated_clients
from trading.sim.days import DaySummary, run_days, trading_days
from trading.store import schema as s
from trading.store.engine import migrate, open_engine
from trading.store.verify import verify_ledger

NEW_YORK = ZoneInfo("America/New_York")
DAYS = [dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)]


def _cutoff(day: dt.date) -> int:
    """17:00 New York on ``day``, UTC ns: written here apart from the code under test."""
    return int(dt.datetime.combine(day, dt.time(17), tzinfo=NEW_YORK).timestamp()) * 10**9


def _window(day: dt.date) -> tuple[int, int]:
    return _cutoff(day - dt.timedelta(days=1)), _cutoff(day)


def _lei_valid(lei: str) -> bool:
    """ISO 17442 / ISO 7064 MOD 97-10, letters as 10..35."""
    digits = "".join(str(int(c, 36)) for c in lei)
    return len(lei) == 20 and lei.isalnum() and lei.isupper() and int(digits) % 97 == 1


@pytest.fixture(scope="module")
def three_days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, list[DaySummary]]:
    path = tmp_path_factory.mktemp("days") / "bourse.db"
    engine = open_engine(f"sqlite:///{path}")
    migrate(engine)
    summaries: list[DaySummary] = []
    report = run_days(engine, default_catalogue(), accounts=12, orders=900, seed=5, days=3,
                      on_day=summaries.append)  # fmt: skip
    # Clients' own mistakes only: every command the simulation meant to succeed did.
    assert set(report.errors) <= {"insufficient_funds", "not_found"}, report.errors
    return engine, summaries


def test_days_when_three_then_each_weekday_from_the_default_start_is_summarized(
    three_days: tuple[Engine, list[DaySummary]],
) -> None:
    engine, summaries = three_days
    assert [d.day for d in summaries] == DAYS
    with engine.connect() as conn:
        for d in summaries:
            start, end = _window(d.day)
            assert (d.start_ns, d.end_ns) == (start, end)
            orders = conn.execute(
                select(s.orders.c.order_id).where(
                    s.orders.c.created_ns > start, s.orders.c.created_ns <= end
                )
            ).all()
            assert d.orders == len(orders) == 300


def test_days_when_three_then_each_day_has_executions_deposits_and_withdrawals(
    three_days: tuple[Engine, list[DaySummary]],
) -> None:
    engine, _ = three_days
    with engine.connect() as conn:
        fills = [r.ts_ns for r in conn.execute(select(s.executions.c.ts_ns)
                                               .where(s.executions.c.qty > 0))]  # fmt: skip
        rows = conn.execute(select(s.deposits)).all()
        deposits = [r.ts_ns for r in rows]
        withdrawals = [r.requested_ns for r in conn.execute(select(s.withdrawals.c.requested_ns))]
    for day in DAYS:
        start, end = _window(day)
        for what, stamps in (("fills", fills), ("deposits", deposits),
                             ("withdrawals", withdrawals)):  # fmt: skip
            assert any(start < t <= end for t in stamps), f"no {what} on {day}"
    # Through the simulated payment provider, each with its own reference.
    assert {r.provider for r in rows} == {"simpay"}
    assert len({r.provider_ref for r in rows}) == len(rows) > 12
    # Clients trade within 08:00-16:00 New York: no order is stamped in the night.
    with engine.connect() as conn:
        created = [r.created_ns for r in conn.execute(select(s.orders.c.created_ns))]
    for t in created:
        local = dt.datetime.fromtimestamp(t / 1e9, NEW_YORK)
        assert dt.time(8) <= local.time() <= dt.time(17), local


def test_days_when_three_then_every_traded_symbol_is_marked_at_each_days_cutoffs(
    three_days: tuple[Engine, list[DaySummary]],
) -> None:
    engine, _ = three_days
    with engine.connect() as conn:
        traded = {r.symbol for r in conn.execute(
            select(s.orders.c.symbol).join(s.executions,
                                           s.executions.c.order_id == s.orders.c.order_id)
        )}  # fmt: skip
        marks = {(r.symbol, r.cutoff_ns) for r in conn.execute(select(s.eod_marks))}
    assert {"EUR/USD", "XAU/USD", "US500", "BTC/USD"} <= traded
    for day in DAYS:
        start, end = _window(day)
        marked = {sym for sym, at in marks if start < at <= end}
        assert traded <= marked, f"{day}: {traded - marked} unmarked"
        # FX and metals roll at exactly 17:00 New York.
        assert ("EUR/USD", end) in marks and ("XAU/USD", end) in marks


def test_days_when_positions_are_held_over_a_cutoff_then_each_has_its_financing_row(
    three_days: tuple[Engine, list[DaySummary]],
) -> None:
    engine, summaries = three_days
    catalogue = default_catalogue()
    with engine.connect() as conn:
        fills = conn.execute(
            select(s.executions.c.account_id, s.orders.c.symbol, s.orders.c.side,
                   s.executions.c.qty, s.executions.c.ts_ns)
            .join(s.orders, s.orders.c.order_id == s.executions.c.order_id)
            .where(s.executions.c.qty > 0)
        ).all()  # fmt: skip
        marks = conn.execute(select(s.eod_marks.c.symbol, s.eod_marks.c.cutoff_ns)).all()
        rows = conn.execute(select(s.financing)).all()
    first = _window(DAYS[0])[0]
    expected: set[tuple[int, str, int]] = set()
    for symbol, at in marks:
        if at <= first or catalogue.get(symbol).account_type is AccountType.CASH:
            continue
        net: dict[int, int] = defaultdict(int)
        for f in fills:
            if f.symbol == symbol and f.ts_ns <= at:
                net[f.account_id] += f.qty if f.side == "buy" else -f.qty
        expected |= {(acct, symbol, at) for acct, q in net.items() if q}
    got = {(r.account_id, r.symbol, r.cutoff_ns) for r in rows}
    assert len(expected) > 20
    assert got == expected
    for r in rows:  # valued at the mark, charged over its nights
        assert r.nights >= 1 and r.mark > 0
    # The days' summaries add up the same rows, in dollars.
    for d in summaries:
        in_day = [r.amount for r in rows if d.start_ns < r.cutoff_ns <= d.end_ns]
        assert in_day
        assert d.financing == {"USD": Decimal(sum(in_day)) / 100}


def test_days_when_done_then_every_account_belongs_to_a_valid_client(
    three_days: tuple[Engine, list[DaySummary]],
) -> None:
    engine, _ = three_days
    with engine.connect() as conn:
        accounts = conn.execute(select(s.accounts)).all()
        clients = {r.client_id: r for r in conn.execute(select(s.clients))}
    assert len(accounts) == 12
    assert all(a.client_id in clients for a in accounts)
    kinds = {c.kind for c in clients.values()}
    assert kinds == {"person", "entity"}
    for c in clients.values():
        if c.kind == "entity":
            assert _lei_valid(c.lei) and c.national_id is None and c.birth_date is None
        else:
            assert c.lei is None and c.birth_date is not None
            assert c.national_id[:2].isalpha() and c.national_id[:2].isupper()
            if c.national_id[2:10] == f"{c.birth_date:%Y%m%d}":  # CONCAT: country, birth, names
                assert len(c.national_id) == 20


def test_days_when_done_then_the_ledger_verifies(
    three_days: tuple[Engine, list[DaySummary]],
) -> None:
    engine, _ = three_days
    with engine.connect() as conn:
        assert verify_ledger(conn) == []


def test_days_when_the_store_holds_later_activity_then_refused_and_nothing_changes(
    three_days: tuple[Engine, list[DaySummary]],
) -> None:
    engine, _ = three_days
    with engine.connect() as conn:
        before = conn.execute(select(s.orders.c.order_id)).all()
    with pytest.raises(InvalidInput, match="start after 2026-01-07"):
        run_days(engine, default_catalogue(), accounts=2, orders=10, seed=5, days=1,
                 start=dt.date(2026, 1, 6))  # fmt: skip
    with engine.connect() as conn:
        assert conn.execute(select(s.orders.c.order_id)).all() == before


def test_trading_days_when_a_weekend_and_a_holiday_then_skipped() -> None:
    catalogue = default_catalogue()
    days = trading_days(catalogue, dt.date(2025, 12, 31), 4)
    # 1 January is an FX holiday; 3-4 January 2026 a weekend.
    assert days == [dt.date(2025, 12, 31), dt.date(2026, 1, 2), dt.date(2026, 1, 5),
                    dt.date(2026, 1, 6)]  # fmt: skip
    with pytest.raises(InvalidInput):
        trading_days(catalogue, dt.date(2026, 1, 5), 0)


def test_simulated_clients_when_many_then_each_is_valid_and_owns_its_accounts() -> None:
    as_of = dt.date(2026, 1, 5)
    clients = simulated_clients(random.Random(3), 40, list(range(100, 400)), as_of)
    owned = [a for c in clients for a in c.account_ids]
    assert owned == list(range(100, 400))
    assert [c.command.client_id for c in clients] == list(range(40, 40 + len(clients)))
    leis = [c.command.lei for c in clients if c.command.lei]
    assert len(set(leis)) == len(leis) > 10
    for c in clients:
        m = c.command
        checked = check_client(
            Client(m.client_id, m.kind, m.name, m.country, m.email, m.birth_date, m.lei,
                   m.national_id), as_of)  # fmt: skip
        if checked.kind is ClientKind.ENTITY:
            assert _lei_valid(m.lei or "") and c.tier == "professional"
        else:
            assert m.birth_date is not None
            assert (as_of - m.birth_date).days >= 18 * 365


def test_lei_for_when_ids_differ_then_leis_differ_and_verify() -> None:
    rng = random.Random(1)
    leis = {lei_for(i, rng) for i in (1, 35, 36, 10**6)}
    assert len(leis) == 4 and all(_lei_valid(x) for x in leis)
    assert all(set(x) <= set(string.digits + string.ascii_uppercase) for x in leis)
    with pytest.raises(ValueError):
        lei_for(0, rng)


def test_days_when_run_on_each_store_then_marks_financing_and_the_ledger_hold(
    store_dsn: str,
) -> None:
    engine = open_engine(store_dsn)
    migrate(engine)
    report = run_days(engine, default_catalogue(), accounts=4, orders=160, seed=9, days=2,
                      start=dt.date(2026, 3, 6))  # fmt: skip
    with engine.connect() as conn:
        assert verify_ledger(conn) == []
        btc = {
            r.trade_date
            for r in conn.execute(
                select(s.eod_marks.c.trade_date).where(s.eod_marks.c.symbol == "BTC/USD")
            )
        }
        fx = (
            conn.execute(select(s.eod_marks.c.cutoff_ns).where(s.eod_marks.c.symbol == "EUR/USD"))
            .scalars()
            .all()
        )
        financed = conn.execute(select(s.financing.c.cutoff_ns)).scalars().all()
    engine.dispose()  # fmt: skip
    assert report.clients >= 1
    # Friday 6 March, then Monday 9 March (New York on summer time since the 8th: the cut-off
    # is 21:00 UTC): the weekend's crypto cut-offs are rolled between them.
    assert {dt.date(2026, 3, 7), dt.date(2026, 3, 8)} <= btc
    fri, mon = _cutoff(dt.date(2026, 3, 6)), _cutoff(dt.date(2026, 3, 9))
    assert {fri, mon} <= set(fx)
    assert fri in financed and mon in financed
