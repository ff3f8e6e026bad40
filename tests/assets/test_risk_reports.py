"""The risk desk's end-of-day reports against the store's own read side.

A simulation runs across a cut-off; the store is copied into a warehouse; the reports of
that trading day are checked against ``trading.store.read_balances`` (another
implementation: SQLAlchemy over the store, not ClickHouse over the mirror) as of the
cut-off, at that day's end-of-day marks.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from sqlalchemy import Engine, text

from assets.days import Period, cutoff_ns
from assets.defs_risk import risk_reports
from assets.market import prepare_analytics, sql_files, statements
from assets.resources import BourseHome, WarehouseResource
from assets.risk_reports import Account, Holding, RiskInputs, build_report, build_risk_reports
from assets.warehouse.client import Warehouse
from assets.warehouse.extract import extract_all
from trading.catalogue import default_catalogue
from trading.quotes import Quote
from trading.sim.simulation import run_simulation
from trading.store.engine import migrate, open_engine, sqlite_dsn
from trading.store.read_balances import account_snapshot

DAY = dt.date(2026, 1, 5)
CATALOGUE = default_catalogue()


@dataclass
class World:
    home: Path
    store: Engine
    out: dict[str, list[dict[str, str]]]


def _read(folder: Path) -> dict[str, list[dict[str, str]]]:
    return {p.stem: list(csv.DictReader(p.open())) for p in sorted(folder.glob("*.csv"))}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("risk")
    store = open_engine(sqlite_dsn(home))
    migrate(store)
    # Start 40 s before the cut-off: the run crosses it with positions open.
    run_simulation(store, CATALOGUE, 8, 600, seed=4, start_ns=cutoff_ns(DAY) - 40 * 10**9)
    with Warehouse(f"chdb://{home}/warehouse") as wh:
        wh.ensure_schema()
        extract_all(store, wh)
        build_risk_reports(wh, DAY, home / "reports", CATALOGUE)
    yield World(home, store, _read(home / "reports" / DAY.isoformat() / "risk"))
    store.dispose()


def _marks(store: Engine) -> dict[str, Quote]:
    with store.connect() as conn:
        rows = conn.execute(
            text("SELECT symbol, bid, ask, ts_ns FROM eod_marks WHERE trade_date = :d"),
            {"d": DAY},
        ).all()
    return {r.symbol: Quote(r.symbol, r.bid, r.ask, r.ts_ns) for r in rows}


def _usd(minor: int) -> str:
    return f"{Decimal(minor).scaleb(-2):.2f}"


def test_risk_reports_when_a_day_had_trading_then_margin_equals_the_store_read_side(
    world: World,
) -> None:
    # Arrange
    marks = _marks(world.store)
    assert marks, "the simulation took no end-of-day marks"
    cutoff = cutoff_ns(DAY)

    # Act
    margin = {int(r["account_id"]): r for r in world.out["margin"]}

    # Assert
    with world.store.connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT account_id FROM accounts")).all()]
        assert sorted(margin) == sorted(ids)
        held_any = False
        for aid in ids:
            snap = account_snapshot(conn, CATALOGUE, aid, marks.get, as_of_ns=cutoff)
            own = next(b for b in snap.balances if b.currency == snap.currency)
            row = margin[aid]
            assert row["cash"] == _usd(own.cash), aid
            assert row["margin_held"] == _usd(snap.margin_held), aid
            assert row["unrealized"] == _usd(snap.unrealized), aid
            assert row["equity"] == _usd(snap.equity), aid
            assert row["free_margin"] == _usd(snap.free_margin), aid
            if snap.margin_held:
                held_any = True
                level = (Decimal(snap.equity) * 100 / snap.margin_held).quantize(
                    Decimal("0.0001"), ROUND_HALF_EVEN
                )
                assert Decimal(row["margin_level"]) == level
            else:
                assert row["margin_level"] == ""
    assert held_any, "no account held margin at the cut-off: the test proves nothing"


def test_risk_reports_when_a_day_had_trading_then_positions_equal_the_store_at_cutoff(
    world: World,
) -> None:
    # Arrange
    marks = _marks(world.store)
    want: dict[tuple[int, str], tuple[Decimal, int]] = {}
    with world.store.connect() as conn:
        for (aid,) in conn.execute(text("SELECT account_id FROM accounts")).all():
            snap = account_snapshot(conn, CATALOGUE, aid, marks.get, as_of_ns=cutoff_ns(DAY))
            for pos in snap.positions:
                inst = CATALOGUE.get(pos.symbol)
                want[(aid, pos.symbol)] = (inst.qty_from_int(pos.net), len(pos.lots))

    # Act
    got = {
        (int(r["account_id"]), r["symbol"]): (Decimal(r["net_lots"]), int(r["lots"]))
        for r in world.out["positions"]
    }

    # Assert
    assert want and got == want
    exposure = {r["symbol"]: Decimal(r["client_net_lots"]) for r in world.out["exposure"]}
    per_symbol: dict[str, Decimal] = {}
    for (_, symbol), (net, _) in want.items():
        per_symbol[symbol] = per_symbol.get(symbol, Decimal(0)) + net
    assert exposure == per_symbol
    for r in world.out["exposure"]:
        assert Decimal(r["house_net_lots"]) == -Decimal(r["client_net_lots"])


def test_risk_reports_when_a_day_had_trading_then_pnl_holds_its_closures_and_financing(
    world: World,
) -> None:
    # Arrange
    period = Period.day(DAY)
    with world.store.connect() as conn:
        realized = dict(
            conn.execute(
                text(
                    "SELECT account_id, sum(realized) FROM lot_closures "
                    "WHERE closed_ns > :lo AND closed_ns <= :hi GROUP BY account_id"
                ),
                {"lo": period.start_ns, "hi": period.end_ns},
            ).all()
        )
        financing = dict(
            conn.execute(
                text(
                    "SELECT account_id, sum(amount) FROM financing WHERE trade_date = :d "
                    "GROUP BY account_id"
                ),
                {"d": DAY},
            ).all()
        )

    # Act
    pnl = {int(r["account_id"]): r for r in world.out["pnl"]}

    # Assert
    assert realized and financing, "the simulation closed no lot or financed nothing"
    for aid, row in pnl.items():
        assert row["realized"] == _usd(realized.get(aid, 0)), aid
        assert row["financing"] == _usd(financing.get(aid, 0)), aid
        assert row["realized_usd"] == row["realized"]  # USD accounts: converted at 1
    margin = {int(r["account_id"]): r["unrealized"] for r in world.out["margin"]}
    assert {a: r["unrealized"] for a, r in pnl.items()} == margin
    for row in pnl.values():  # nothing was open at the day's start: the change is all of it
        assert row["unrealized_change"] == row["unrealized"]
        parts = ("realized", "commission", "financing", "unrealized_change")
        assert Decimal(row["daily_pnl"]) == sum(Decimal(row[k]) for k in parts)


def test_build_report_when_a_position_was_open_at_the_start_then_the_day_takes_its_change() -> None:
    # Arrange: long 1 lot of EUR/USD from 1.08000, marked 1.08500 at the previous cut-off and
    # 1.09000 at this one; the account paid 1.25 USD of financing.
    holding = Holding(1, "EUR/USD", 100, 100 * 108_000, 1)
    inputs = RiskInputs(
        day=DAY, cutoff_ns=cutoff_ns(DAY),
        accounts=[Account(1, "USD", "margin", "retail", "active"),
                  Account(2, "USD", "margin", "retail", "active")],
        holdings=[holding, Holding(2, "GBP/USD", 10, 10 * 126_000, 1)],
        marks={"EUR/USD": Quote("EUR/USD", 109_000, 109_002, 0),
               "GBP/USD": Quote("GBP/USD", 126_100, 126_102, 0)},
        balances={}, realized={}, commission={}, financing={1: -125},
        opening=[holding, Holding(2, "GBP/USD", 10, 10 * 126_000, 1)],
        opening_marks={"EUR/USD": Quote("EUR/USD", 108_500, 108_502, 0)},
    )  # fmt: skip

    # Act
    pnl = {r["account_id"]: r for r in build_report(inputs, CATALOGUE).tables["pnl"]}

    # Assert: 1 lot = 100,000 EUR; +0.01000 is 1,000 USD open, +0.00500 of it today.
    assert pnl["1"]["unrealized"] == "1000.00"
    assert pnl["1"]["unrealized_change"] == "500.00"
    assert pnl["1"]["daily_pnl"] == "498.75"
    assert pnl["1"]["daily_pnl_usd"] == "498.75"
    # GBP/USD had no earlier mark: the change cannot be had, and is not guessed.
    assert pnl["2"]["unrealized"] == "10.00"
    assert pnl["2"]["unrealized_change"] == pnl["2"]["daily_pnl"] == ""


def test_risk_reports_when_margin_is_used_then_stop_out_lists_the_lowest_levels_first(
    world: World,
) -> None:
    # Act
    ranked = world.out["stop_out"]

    # Assert
    with_level = [r for r in world.out["margin"] if r["margin_level"]]
    assert len(ranked) == min(len(with_level), 20) > 0
    levels = [Decimal(r["margin_level"]) for r in ranked]
    assert levels == sorted(Decimal(r["margin_level"]) for r in with_level)[: len(levels)]
    for r in ranked:
        room = Decimal(r["equity"]) - Decimal(r["margin_held"]) / 2  # stop-out at 50 %
        assert Decimal(r["room_to_stop_out"]) == room.quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def test_build_report_when_the_account_is_in_euros_then_converted_through_the_marks() -> None:
    # Arrange: a EUR account long 1 lot of EUR/USD from 1.08000; marks 1.09000 / 1.09002.
    eurusd = CATALOGUE.get("EUR/USD")
    assert (eurusd.contract_size, eurusd.price_precision, eurusd.qty_scale) == (100_000, 5, 100)
    inputs = RiskInputs(
        day=DAY, cutoff_ns=cutoff_ns(DAY),
        accounts=[Account(1, "EUR", "margin", "retail", "active")],
        holdings=[Holding(1, "EUR/USD", 100, 100 * 108_000, 1)],
        marks={"EUR/USD": Quote("EUR/USD", 109_000, 109_002, 0)},
        balances={1: {"cash": {"EUR": 500_000}, "margin": {"EUR": 333_33}}},
        realized={}, commission={1: 250}, financing={1: -125},
    )  # fmt: skip

    # Act
    report = build_report(inputs, CATALOGUE)

    # Assert: 1,000 USD of profit is 1000 / 1.09001 EUR; back in USD at the same mid.
    mid = Decimal("1.09001")
    eur = (Decimal(1000) / mid).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    (pnl,) = report.tables["pnl"]
    assert pnl["unrealized"] == str(eur)
    assert pnl["unrealized_usd"] == str((eur * mid).quantize(Decimal("0.01"), ROUND_HALF_EVEN))
    assert pnl["commission"] == "-2.50"
    assert pnl["financing_usd"] == str((Decimal("-1.25") * mid).quantize(Decimal("0.01")))
    (margin,) = report.tables["margin"]
    assert margin["equity"] == str(Decimal("5000.00") + Decimal("333.33") + eur)
    (exposure,) = report.tables["exposure"]
    assert exposure["house_net_lots"] == "-1.00"
    assert Decimal(exposure["house_value_usd"]) == -100_000 * mid


def test_risk_reports_when_the_day_had_no_activity_then_every_file_has_its_header_only(
    tmp_path: Path,
) -> None:
    # Arrange: an empty store's mirror (a schema and no rows).
    resources = {
        "home": BourseHome(home=str(tmp_path)),
        "warehouse": WarehouseResource(home=str(tmp_path)),
    }

    # Act
    result = dg.materialize([risk_reports], resources=resources, partition_key="2026-02-07")

    # Assert
    assert result.success
    out = tmp_path / "reports" / "2026-02-07" / "risk"
    files = sorted(p.name for p in out.glob("*.csv"))
    assert files == ["exposure.csv", "margin.csv", "pnl.csv", "positions.csv", "stop_out.csv"]
    for path in out.glob("*.csv"):
        lines = path.read_text().splitlines()
        assert len(lines) == 1 and lines[0].startswith(("trade_date", "rank")), path.name


# -- sql/: the risk desk's ClickHouse views over a small mirror ---------------------------------


@dataclass
class Quiet:
    """A mirror whose trading all happened before DAY's cut-off, marked at DAY's marks:
    the views (now, latest marks) and the report of DAY must then agree."""

    views: dict[str, list[dict[str, object]]]
    report: dict[str, list[dict[str, str]]]


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Quiet:
    home = tmp_path_factory.mktemp("quiet")
    store = open_engine(sqlite_dsn(home))
    migrate(store)
    run_simulation(store, CATALOGUE, 8, 400, seed=9, start_ns=cutoff_ns(DAY) - 3 * 3600 * 10**9)
    with store.connect() as conn:
        last = conn.execute(
            text("SELECT o.symbol, max(e.price) FROM executions e JOIN orders o USING (order_id) "
                 "WHERE e.qty > 0 GROUP BY o.symbol")
        ).all()  # fmt: skip
    store.dispose()
    marks = pa.table({
        "symbol": [s for s, _ in last], "trade_date": pa.array([DAY] * len(last), pa.date32()),
        "bid": [p - 3 for _, p in last], "ask": [p + 2 for _, p in last],
        "ts_ns": [cutoff_ns(DAY)] * len(last), "cutoff_ns": [cutoff_ns(DAY)] * len(last),
    })  # fmt: skip
    views: dict[str, list[dict[str, object]]] = {}
    with Warehouse(f"chdb://{home}/warehouse") as wh:
        wh.ensure_schema()
        extract_all(open_engine(sqlite_dsn(home)), wh)
        # The run rolled only crypto's midnight cut-off: the marks of DAY are replaced by
        # the test's own, one per symbol.
        wh.command("TRUNCATE TABLE eod_marks")
        wh.insert("eod_marks", marks)
        names = prepare_analytics(wh)
        assert names == [p.name for p in sql_files()]
        build_risk_reports(wh, DAY, home / "reports", CATALOGUE)
        for name in ("risk_marks", "risk_rates", "risk_positions", "risk_exposure",
                     "risk_nearest_stop_out", "bars_1m", "bars_1h", "bars_1d"):  # fmt: skip
            table = wh.arrow(f"SELECT * FROM {name}")
            views[name] = table.to_pylist()
    return Quiet(views, _read(home / "reports" / DAY.isoformat() / "risk"))


def test_sql_files_when_listed_then_each_opens_with_a_comment_saying_what_it_answers() -> None:
    files = sql_files()
    assert [p.name for p in files] == sorted(p.name for p in files) and len(files) >= 5
    for path in files:
        head = path.read_text().splitlines()
        assert head[0].startswith(f"-- {path.name}:"), path.name
        assert any(line.startswith("-- Answers:") for line in head), path.name
        assert any(line.startswith("-- Example:") for line in head), path.name
        assert statements(path), path.name


def test_sql_views_when_run_on_a_mirror_then_stop_out_levels_equal_the_report(
    quiet: Quiet,
) -> None:
    # Arrange
    report = {int(r["account_id"]): r for r in quiet.report["margin"] if r["margin_level"]}
    got = quiet.views["risk_nearest_stop_out"]

    # Assert
    assert report and len(got) == len(report)
    assert [r["account_id"] for r in got] == [
        int(r["account_id"]) for r in quiet.report["stop_out"]
    ]
    for row in got:
        want = report[int(str(row["account_id"]))]
        assert Decimal(str(row["margin_level"])) == Decimal(want["margin_level"])
        assert Decimal(int(str(row["equity"]))).scaleb(-2) == Decimal(want["equity"])
        assert Decimal(int(str(row["unrealized"]))).scaleb(-2) == Decimal(want["unrealized"])
        room = Decimal(int(str(row["room_to_stop_out"]))).scaleb(-2)
        assert room == Decimal(want["room_to_stop_out"])


def test_sql_views_when_run_on_a_mirror_then_positions_and_exposure_equal_the_report(
    quiet: Quiet,
) -> None:
    # Arrange
    positions = {
        (int(str(r["account_id"])), str(r["symbol"])): int(str(r["net_qty"]))
        for r in quiet.views["risk_positions"]
    }
    want = {
        (int(r["account_id"]), r["symbol"]): int(
            Decimal(r["net_lots"]) * CATALOGUE.get(r["symbol"]).qty_scale
        )
        for r in quiet.report["positions"]
    }
    exposure = {str(r["symbol"]): r for r in quiet.views["risk_exposure"]}

    # Assert
    assert want and positions == want
    for r in quiet.report["exposure"]:
        view = exposure[r["symbol"]]
        assert Decimal(str(view["house_value_usd"])) == Decimal(r["house_value_usd"]), r["symbol"]
        inst = CATALOGUE.get(r["symbol"])
        assert int(str(view["house_net_qty"])) == int(Decimal(r["house_net_lots"]) * inst.qty_scale)
    rates = {(r["from_currency"], r["to_currency"]): r["rate"] for r in quiet.views["risk_rates"]}
    assert rates[("USD", "USD")] == 1
    jpy = next(m for m in quiet.views["risk_marks"] if m["symbol"] == "USD/JPY")
    inverse = (1 / Decimal(str(jpy["mid"]))).quantize(Decimal(10) ** -18, ROUND_DOWN)
    assert rates[("JPY", "USD")] == inverse  # ClickHouse's decimal division truncates
