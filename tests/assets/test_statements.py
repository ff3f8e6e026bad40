"""Client statements on a small store built through the OMS, extracted into chDB.

Every figure is recomputed here from the store through SQLAlchemy (deposits and withdrawals
rows, executions, lot closures, financing rows, postings, lots and marks), never from the
statement code, then compared with the CSV files, the manifest and the PDF's text.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import Engine, func, select

from assets.days import Period
from assets.statements.compute import StatementImbalance, build_statements
from assets.statements.csv_out import trade_rows
from assets.statements.manifest import daily_dir, monthly_dir, publish_statements
from assets.statements.trades_csv import sql_decimal, sql_field, trade_lines
from assets.warehouse.client import Warehouse
from assets.warehouse.extract import extract_all
from tests.assets.statements_store import CLIENT_NAME, MONDAY, TUESDAY, build_store
from trading.catalogue import default_catalogue
from trading.money import from_minor
from trading.store import schema as s

WEDNESDAY = dt.date(2026, 1, 7)
SUMMARY_HEADER = (
    "currency,opening_balance,deposits,withdrawals,realized_pnl,commission,financing,"
    "closing_balance,unrealized_pnl,equity"
)


@dataclass
class Built:
    engine: Engine
    reports: Path
    wh_dsn: str


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("statements")
    rig = build_store(f"sqlite:///{root / 'bourse.db'}")
    reports = root / "reports"
    dsn = f"chdb://{root / 'wh'}"
    with Warehouse(dsn) as wh:
        wh.ensure_schema()
        extract_all(rig.engine, wh)
        for day in (MONDAY, TUESDAY, WEDNESDAY):
            period = Period.day(day)
            publish_statements(wh, period, daily_dir(reports, period), default_catalogue())
        month = Period.month(2026, 1)
        publish_statements(wh, month, monthly_dir(reports, month), default_catalogue())
    return Built(rig.engine, reports, dsn)


# --- the figures, recomputed from the store ---------------------------------------------


def _money_accounts(conn: Any, account_id: int) -> list[int]:
    la = s.ledger_accounts
    codes = [f"client:{account_id}:{k}:USD" for k in ("cash", "margin", "withdrawal_pending")]
    return list(conn.execute(select(la.c.ledger_account_id).where(la.c.code.in_(codes))).scalars())


def expected_summary(engine: Engine, account_id: int, period: Period) -> dict[str, Decimal]:
    """The USD summary of one account from the store's own tables."""
    lo, hi = period.start_ns, period.end_ns
    p, e, c, t = s.postings, s.executions, s.lot_closures, s.ledger_txns
    with engine.connect() as conn:
        ids = _money_accounts(conn, account_id)

        def balance(at: int) -> int:
            total = conn.execute(
                select(func.coalesce(func.sum(p.c.amount), 0)).where(
                    p.c.ledger_account_id.in_(ids), p.c.ts_ns <= at
                )
            ).scalar_one()
            return -int(total)

        def total(stmt: Any) -> int:
            return int(conn.execute(stmt).scalar_one() or 0)

        dep = s.deposits
        deposits = total(
            select(func.sum(dep.c.amount)).where(
                dep.c.account_id == account_id, dep.c.ts_ns > lo, dep.c.ts_ns <= hi
            )
        )
        w = s.withdrawals
        withdrawals = total(
            select(func.sum(w.c.amount)).where(
                w.c.account_id == account_id,
                w.c.status == "approved",
                w.c.decided_ns > lo,
                w.c.decided_ns <= hi,
            )
        )
        commission = total(
            select(func.sum(e.c.commission)).where(
                e.c.account_id == account_id, e.c.kind == "fill", e.c.ts_ns > lo, e.c.ts_ns <= hi
            )
        )
        realized = total(
            select(func.sum(c.c.realized)).where(
                c.c.account_id == account_id, c.c.closed_ns > lo, c.c.closed_ns <= hi
            )
        )
        f = s.financing
        financing = total(
            select(func.sum(f.c.amount))
            .select_from(f.join(t, t.c.txn_id == f.c.txn_id))
            .where(f.c.account_id == account_id, t.c.ts_ns > lo, t.c.ts_ns <= hi)
        )
        unrealized = sum(expected_positions(conn, account_id, period).values(), Decimal(0))
        opening, closing = balance(lo), balance(hi)
    cents = {
        "opening_balance": opening,
        "deposits": deposits,
        "withdrawals": withdrawals,
        "realized_pnl": realized,
        "commission": commission,
        "financing": financing,
        "closing_balance": closing,
    }
    out = {k: from_minor(v, "USD") for k, v in cents.items()}
    out["unrealized_pnl"] = unrealized
    out["equity"] = out["closing_balance"] + unrealized
    return out


def expected_positions(conn: Any, account_id: int, period: Period) -> dict[str, Decimal]:
    """Unrealized PnL per open symbol at the period's end: the lots still open then
    (remaining rebuilt from the closures), at the latest end-of-day mark on or before the
    last date, long at the bid and short at the ask; JPY converted at USD/JPY's mid."""
    cat = default_catalogue()
    lots, c, m = s.lots, s.lot_closures, s.eod_marks
    end = period.end_ns
    net: dict[str, int] = defaultdict(int)
    cost: dict[str, int] = defaultdict(int)
    for lot in conn.execute(
        select(lots).where(lots.c.account_id == account_id, lots.c.opened_ns <= end)
    ):
        closed = conn.execute(
            select(func.coalesce(func.sum(c.c.qty), 0)).where(
                c.c.lot_id == lot.lot_id, c.c.closed_ns <= end
            )
        ).scalar_one()
        left = lot.qty - int(closed)
        net[lot.symbol] += left
        cost[lot.symbol] += left * lot.price

    def mark(symbol: str) -> Any:
        return conn.execute(
            select(m)
            .where(m.c.symbol == symbol, m.c.trade_date <= period.last)
            .order_by(m.c.trade_date.desc())
            .limit(1)
        ).first()

    out = {}
    for symbol, q in net.items():
        if q == 0:
            continue
        inst = cat.get(symbol)
        row = mark(symbol)
        price = row.bid if q > 0 else row.ask
        pnl_quote = Decimal(q * price - cost[symbol]) * inst.contract_size / inst.qty_scale
        pnl_quote /= inst.price_scale
        if inst.quote == "JPY":
            jpy = mark("USD/JPY")
            pnl_quote /= Decimal(jpy.bid + jpy.ask) / 2 / 1000
        else:
            assert inst.quote == "USD"
        out[symbol] = pnl_quote.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def summary_of(folder: Path) -> dict[str, Decimal]:
    (row,) = read_csv(folder / "summary.csv")
    assert row.pop("currency") == "USD"
    return {k: Decimal(v) for k, v in row.items()}


# --- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("day", [MONDAY, TUESDAY, WEDNESDAY])
@pytest.mark.parametrize("account_id", [1, 2])
def test_daily_summary_when_built_from_the_store_then_each_figure_equals_the_store(
    built: Built, day: dt.date, account_id: int
) -> None:
    period = Period.day(day)

    got = summary_of(daily_dir(built.reports, period) / str(account_id))

    assert got == expected_summary(built.engine, account_id, period)


def test_summary_when_read_then_header_exact_and_the_balance_identity_holds(built: Built) -> None:
    for folder in [
        *daily_dir(built.reports, Period.day(TUESDAY)).iterdir(),
        *monthly_dir(built.reports, Period.month(2026, 1)).iterdir(),
    ]:
        if not folder.is_dir():
            continue
        header = (folder / "summary.csv").read_text(encoding="utf-8").splitlines()[0]
        v = summary_of(folder)
        moved = v["deposits"] - v["withdrawals"] + v["realized_pnl"] - v["commission"]
        assert header == SUMMARY_HEADER
        assert v["opening_balance"] + moved + v["financing"] == v["closing_balance"]
        assert v["equity"] == v["closing_balance"] + v["unrealized_pnl"]


def test_monthly_summary_when_built_then_it_spans_the_days_and_equals_the_store(
    built: Built,
) -> None:
    month = Period.month(2026, 1)
    for account_id in (1, 2, 3):
        got = summary_of(monthly_dir(built.reports, month) / str(account_id))
        assert got == expected_summary(built.engine, account_id, month)
    # The month's flows are the days' flows: nothing happened after Tuesday.
    days = [summary_of(daily_dir(built.reports, Period.day(d)) / "1") for d in (MONDAY, TUESDAY)]
    monthly = summary_of(monthly_dir(built.reports, month) / "1")
    for key in ("deposits", "withdrawals", "realized_pnl", "commission", "financing"):
        assert monthly[key] == days[0][key] + days[1][key]
    assert monthly["financing"] != 0 and monthly["withdrawals"] == 0


def test_summary_when_a_withdrawal_is_paid_and_another_pending_then_only_the_paid_leaves(
    built: Built,
) -> None:
    v = summary_of(daily_dir(built.reports, Period.day(MONDAY)) / "2")

    assert v["withdrawals"] == Decimal("1000.00")  # the 500.00 still pending stays client money
    assert v["deposits"] == Decimal("50000.00")


def test_trades_csv_when_read_then_rows_are_the_periods_fills_with_their_realized(
    built: Built,
) -> None:
    period = Period.day(MONDAY)
    rows = read_csv(daily_dir(built.reports, period) / "1" / "trades.csv")
    e, c = s.executions, s.lot_closures
    with built.engine.connect() as conn:
        fills = conn.execute(
            select(e).where(
                e.c.account_id == 1,
                e.c.kind == "fill",
                e.c.ts_ns > period.start_ns,
                e.c.ts_ns <= period.end_ns,
            )
        ).all()
        realized = dict(
            conn.execute(
                select(c.c.close_exec_id, func.sum(c.c.realized)).group_by(c.c.close_exec_id)
            ).all()
        )

    assert {r["exec_id"] for r in rows} == {f.exec_id for f in fills}
    by_id = {r["exec_id"]: r for r in rows}
    for f in fills:
        row = by_id[f.exec_id]
        assert Decimal(row["commission"]) == from_minor(f.commission, "USD")
        assert Decimal(row["realized_pnl"]) == from_minor(int(realized.get(f.exec_id, 0)), "USD")
        assert Decimal(row["qty"]) * 100 == f.qty  # lots: two decimals on these symbols
        assert row["time_utc"].startswith("2026-01-05T") and row["time_utc"].endswith("Z")
    assert any(Decimal(r["realized_pnl"]) != 0 for r in rows)


def test_positions_csv_when_read_then_open_lots_at_the_end_with_their_unrealized(
    built: Built,
) -> None:
    period = Period.day(TUESDAY)
    rows = read_csv(daily_dir(built.reports, period) / "1" / "positions.csv")
    with built.engine.connect() as conn:
        expected = expected_positions(conn, 1, period)

    assert {r["symbol"]: Decimal(r["unrealized_pnl"]) for r in rows} == expected
    qty = {r["symbol"]: Decimal(r["qty"]) for r in rows}
    assert qty["EUR/USD"] == Decimal("-0.50")  # the sell of 1.5 closed 1 and opened a short


def test_statements_when_an_account_is_idle_then_it_has_one_with_equal_balances(
    built: Built,
) -> None:
    tuesday = daily_dir(built.reports, Period.day(TUESDAY))
    wednesday = daily_dir(built.reports, Period.day(WEDNESDAY))

    idle = summary_of(tuesday / "3")
    assert idle["opening_balance"] == idle["closing_balance"] == 0
    assert not (daily_dir(built.reports, Period.day(MONDAY)) / "3").exists()  # opened Tuesday
    for account in ("1", "2", "3"):
        v = summary_of(wednesday / account)
        assert v["opening_balance"] == v["closing_balance"]
        assert read_csv(wednesday / account / "trades.csv") == []


def test_manifest_when_read_then_lists_each_file_with_its_hash_rows_and_totals(
    built: Built,
) -> None:
    folder = daily_dir(built.reports, Period.day(MONDAY))
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))

    assert [a["account_id"] for a in manifest["accounts"]] == [1, 2]
    for account in manifest["accounts"]:
        assert {f["name"] for f in account["files"]} == {
            "summary.csv",
            "trades.csv",
            "positions.csv",
            "statement.pdf",
        }
        for f in account["files"]:
            path = folder / str(account["account_id"]) / f["name"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"]
            if path.suffix == ".csv":
                assert len(read_csv(path)) == f["rows"]
        summary = summary_of(folder / str(account["account_id"]))
        assert {k: Decimal(v) for k, v in account["totals"]["USD"].items()} == summary
    assert manifest["accounts"][0]["client_name"] == CLIENT_NAME


def test_pdf_when_rendered_then_one_page_or_two_and_its_text_holds_the_totals(
    built: Built, tmp_path: Path
) -> None:
    folder = daily_dir(built.reports, Period.day(MONDAY)) / "1"
    pdf = folder / "statement.pdf"

    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout

    pages = sorted(tmp_path.glob("page*.png"))
    assert 1 <= len(pages) <= 2 and all(p.stat().st_size > 1000 for p in pages)
    (row,) = read_csv(folder / "summary.csv")
    for key in ("closing_balance", "realized_pnl", "commission", "unrealized_pnl", "equity"):
        assert row[key] in text, key
    assert CLIENT_NAME in text and "Bourse" in text and "2026-01-05" in text
    for trade in read_csv(folder / "trades.csv"):
        assert trade["exec_id"] in text


def test_statements_when_the_warehouse_holds_no_account_then_an_empty_manifest(
    tmp_path: Path,
) -> None:
    period = Period.day(MONDAY)
    with Warehouse(f"chdb://{tmp_path / 'wh'}") as wh:
        wh.ensure_schema()
        published = publish_statements(wh, period, tmp_path / "out", default_catalogue())

    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert published.accounts == 0 and manifest["accounts"] == []


def _posting_rows(txn_id: int, kind: str, ledger_account_id: int, amount: int) -> dict[str, Any]:
    ts = Period.day(WEDNESDAY).end_ns - 1
    return {
        "txn": pa.Table.from_pylist(
            [
                {
                    "txn_id": txn_id,
                    "account_id": 1,
                    "kind": kind,
                    "ref": "test",
                    "ts_ns": ts,
                    "memo": None,
                }
            ]
        ),
        "postings": pa.Table.from_pylist(
            [
                {
                    "posting_id": 10_000 + txn_id,
                    "txn_id": txn_id,
                    "ledger_account_id": ledger_account_id,
                    "commodity": "USD",
                    "amount": amount,
                    "ts_ns": ts,
                }
            ]
        ),
    }


def test_statement_when_a_fill_moved_cash_no_closure_explains_then_imbalance(
    built: Built, tmp_path: Path
) -> None:
    # A copy of the mirror with a fill posting no lot closure or commission accounts for.
    with built.engine.connect() as conn:
        (cash_id,) = conn.execute(
            select(s.ledger_accounts.c.ledger_account_id).where(
                s.ledger_accounts.c.code == "client:1:cash:USD"
            )
        ).one()
    with Warehouse(f"chdb://{tmp_path / 'wh'}") as wh:
        wh.ensure_schema()
        extract_all(built.engine, wh)
        rows = _posting_rows(90_001, "fill_close", cash_id, -1234)
        wh.insert("ledger_txns", rows["txn"].cast(_schema(wh, "ledger_txns")))
        wh.insert("postings", rows["postings"].cast(_schema(wh, "postings")))

        with pytest.raises(StatementImbalance, match="account 1 USD: fills moved"):
            build_statements(wh, Period.day(WEDNESDAY), default_catalogue())


def test_statement_when_another_ledger_kind_moves_money_then_named_and_in_the_identity(
    built: Built, tmp_path: Path
) -> None:
    with built.engine.connect() as conn:
        (cash_id,) = conn.execute(
            select(s.ledger_accounts.c.ledger_account_id).where(
                s.ledger_accounts.c.code == "client:1:cash:USD"
            )
        ).one()
    with Warehouse(f"chdb://{tmp_path / 'wh'}") as wh:
        wh.ensure_schema()
        extract_all(built.engine, wh)
        rows = _posting_rows(90_002, "adjustment", cash_id, -2500)
        wh.insert("ledger_txns", rows["txn"].cast(_schema(wh, "ledger_txns")))
        wh.insert("postings", rows["postings"].cast(_schema(wh, "postings")))

        (st,) = [
            x
            for x in build_statements(wh, Period.day(WEDNESDAY), default_catalogue())
            if x.account_id == 1
        ]

    (usd,) = st.summaries
    assert usd.other == (("adjustment", 2500),)
    assert usd.closing - usd.opening == 2500


def _schema(wh: Warehouse, table: str) -> pa.Schema:
    return wh.arrow(f"SELECT * FROM {table} LIMIT 0").schema


def test_trades_csv_when_formatted_by_the_warehouse_then_byte_equal_to_pythons_csv(
    built: Built,
) -> None:
    cat = default_catalogue()
    with Warehouse(built.wh_dsn) as wh:
        for day in (MONDAY, TUESDAY):
            period = Period.day(day)
            lines = trade_lines(wh, period, cat)
            for st in build_statements(wh, period, cat):
                body, n = lines.get(st.account_id, ("", 0))
                expected = io.StringIO()
                csv.writer(expected, lineterminator="\n").writerows(trade_rows(st, cat))
                assert body == expected.getvalue()
                assert n == len(st.trades)


@pytest.mark.parametrize("value", [0, 5, -5, 1234, -1234, 100, 10**15 + 7, -(10**12)])
@pytest.mark.parametrize("digits", [0, 2, 8])
def test_sql_decimal_when_evaluated_then_the_plain_decimal_string(
    built: Built, value: int, digits: int
) -> None:
    expected = f"{Decimal(value).scaleb(-digits):f}"
    with Warehouse(built.wh_dsn) as wh:
        got = wh.scalar(f"SELECT {sql_decimal(f'toInt64({value})', str(digits))}")
    assert got == expected


def test_sql_field_when_text_has_commas_or_quotes_then_quoted_as_csv_writer_does(
    built: Built,
) -> None:
    texts = ["plain", "a,b", 'say "hi"', "line\nbreak", "carriage\rreturn", ""]
    with Warehouse(built.wh_dsn) as wh:
        for text in texts:
            got = wh.scalar(f"SELECT {sql_field('{t:String}')}", {"t": text})
            expected = io.StringIO()
            # Within a row, as the trades' fields are (a lone empty field would be quoted).
            csv.writer(expected, lineterminator="\n").writerow([text, "x"])
            assert got + ",x\n" == expected.getvalue(), text
