"""The yearly tax statement against the ledger and against Beancount's own FIFO booking.

The store is built through the OMS (tests/assets/statements_store.py), extracted into chDB,
and the year's statements written. Expected values come from the store through SQLAlchemy
(lot closures, the ledger's realized postings) and from Beancount loading the ledger's
export and booking the closes itself.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from beancount import loader
from beancount.core import data
from sqlalchemy import Engine, select

from assets.days import Period
from assets.statements.tax import (
    TaxStatementError,
    anniversary,
    build_tax_statements,
    holding_term,
    tax_dir,
)
from assets.statements.tax_pdf import publish_tax
from assets.warehouse.client import Warehouse
from assets.warehouse.extract import extract_all
from tests.assets.statements_store import build_store
from trading.catalogue import default_catalogue
from trading.money import from_minor
from trading.store import schema as s
from trading.store.export_beancount import export_beancount

HEADER = (
    "account_id,symbol,quantity,date_acquired,date_sold,proceeds,cost_basis,gain_loss,term,"
    "currency,lot_id,close_exec_id"
)


@dataclass
class Built:
    engine: Engine
    folder: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("tax")
    rig = build_store(f"sqlite:///{root / 'bourse.db'}")
    folder = tax_dir(root / "reports", 2026)
    with Warehouse(f"chdb://{root / 'wh'}") as wh:
        wh.ensure_schema()
        extract_all(rig.engine, wh)
        publish_tax(wh, 2026, folder, default_catalogue())
        publish_tax(wh, 2025, tax_dir(root / "reports", 2025), default_catalogue())
    return Built(rig.engine, folder)


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def ledger_realized(engine: Engine, account_id: int) -> Decimal:
    """The realized PnL the ledger booked: in each of the account's fill_close transactions,
    the venue P&L account's posting net of the markup moved to revenue (the fills' other
    legs are margin, commission and positions)."""
    t, p, la = s.ledger_txns, s.postings, s.ledger_accounts
    total = 0
    with engine.connect() as conn:
        for code, amount in conn.execute(
            select(la.c.code, p.c.amount)
            .select_from(
                p.join(t, t.c.txn_id == p.c.txn_id).join(
                    la, la.c.ledger_account_id == p.c.ledger_account_id
                )
            )
            .where(t.c.account_id == account_id, t.c.kind == "fill_close")
        ):
            parts = code.split(":")
            if parts[0] == "house" and (parts[2] == "pnl" or parts[1:3] == ["revenue", "markup"]):
                total += amount
    return from_minor(total, "USD")


def beancount_closes(
    engine: Engine,
) -> tuple[list[tuple[int, str, str, Decimal, Decimal]], dict[int, Decimal]]:
    """Beancount's own booking of every close, from the ledger's export: (client, close exec
    id, lot label = opening exec id, units, gain in the quote currency) per reduced lot; and
    per client the account-currency P&L legs of its closes (venue P&L plus markup)."""
    buf = io.StringIO()
    with engine.connect() as conn:
        export_beancount(conn, default_catalogue(), buf)
    entries, errors, _ = loader.load_string(buf.getvalue())
    assert errors == [], errors
    closes = []
    pnl: dict[int, Decimal] = defaultdict(Decimal)
    for txn in entries:
        if not isinstance(txn, data.Transaction) or "fill_close" not in txn.tags:
            continue
        clients = set()
        for p in txn.postings:
            parts = p.account.split(":")
            if parts[:2] == ["Assets", "Clients"] and p.price is not None:
                client = int(parts[2].removeprefix("C"))
                clients.add(client)
                gain = p.units.number * (p.cost.number - p.price.number)
                closes.append((client, txn.meta["exec_id"], p.cost.label, -p.units.number, gain))
        (client,) = clients
        for p in txn.postings:
            pnl_leg = p.account.endswith(":PnL:USD") or p.account.startswith("Income:House:Markup")
            if p.account.startswith("Income:House:") and pnl_leg:
                pnl[client] += p.units.number
    return closes, pnl


def test_tax_csv_when_written_then_header_exact_and_one_row_per_closure_of_the_year(
    built: Built,
) -> None:
    c = s.lot_closures
    with built.engine.connect() as conn:
        closures = conn.execute(select(c).order_by(c.c.closure_id)).all()

    for account_id in (1, 2, 3):
        path = built.folder / f"{account_id}.csv"
        assert path.read_text(encoding="utf-8").splitlines()[0] == HEADER
        rows = rows_of(path)
        mine = [x for x in closures if x.account_id == account_id]
        assert [(r["lot_id"], r["close_exec_id"]) for r in rows] == [
            (str(x.lot_id), x.close_exec_id) for x in mine
        ]
        for r, x in zip(rows, mine, strict=True):
            assert Decimal(r["gain_loss"]) == from_minor(x.realized, "USD")
            assert Decimal(r["proceeds"]) - Decimal(r["cost_basis"]) == Decimal(r["gain_loss"])
            assert Decimal(r["quantity"]) * 100 == x.qty
            assert r["term"] == "short" and r["currency"] == "USD"
    assert rows_of(built.folder / "3.csv") == []  # an account that never traded


def test_tax_total_when_summed_then_equals_the_ledgers_realized_postings(built: Built) -> None:
    for account_id in (1, 2):
        rows = rows_of(built.folder / f"{account_id}.csv")

        total = sum((Decimal(r["gain_loss"]) for r in rows), Decimal(0))

        assert total == ledger_realized(built.engine, account_id)
        assert total != 0


def test_tax_rows_when_beancount_books_the_closes_fifo_then_it_picks_the_same_lots(
    built: Built,
) -> None:
    closes, _ = beancount_closes(built.engine)
    cat = default_catalogue()
    with built.engine.connect() as conn:
        opened_by = dict(conn.execute(select(s.lots.c.lot_id, s.lots.c.open_exec_id)).all())
    ours = []
    for account_id in (1, 2):
        for r in rows_of(built.folder / f"{account_id}.csv"):
            inst = cat.get(r["symbol"])
            units = Decimal(r["quantity"]) * inst.contract_size
            ours.append((account_id, r["close_exec_id"], opened_by[int(r["lot_id"])], units))

    theirs = [(client, exec_id, label, units) for client, exec_id, label, units, _ in closes]
    assert sorted(ours) == sorted(theirs)


def test_tax_gains_when_beancount_values_its_lots_then_usd_quoted_rows_agree(
    built: Built,
) -> None:
    closes, pnl = beancount_closes(built.engine)
    gains = {(c, exec_id, label): g for c, exec_id, label, _, g in closes}
    with built.engine.connect() as conn:
        opened_by = dict(conn.execute(select(s.lots.c.lot_id, s.lots.c.open_exec_id)).all())
    checked = 0
    for account_id in (1, 2):
        rows = rows_of(built.folder / f"{account_id}.csv")
        for r in rows:
            if not r["symbol"].endswith("/USD"):
                continue  # a JPY gain is converted: its total is checked below
            key = (account_id, r["close_exec_id"], opened_by[int(r["lot_id"])])
            booked = gains[key].quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
            assert Decimal(r["gain_loss"]) == booked
            checked += 1
        # Beancount's account-currency P&L legs of the account's closes: minus the client's.
        total = sum((Decimal(r["gain_loss"]) for r in rows), Decimal(0))
        assert total == pnl[account_id]
    assert checked >= 4


def test_tax_when_a_short_lot_is_covered_then_both_dates_are_the_cover_and_proceeds_the_sale(
    built: Built,
) -> None:
    rows = [r for r in rows_of(built.folder / "2.csv") if Decimal(r["quantity"]) < 0]
    c = s.lot_closures
    with built.engine.connect() as conn:
        by_exec = {x.close_exec_id: x for x in conn.execute(select(c).where(c.c.account_id == 2))}

    assert len(rows) == 2
    for r in rows:
        x = by_exec[r["close_exec_id"]]
        lots = Decimal(-x.qty) / 100
        assert r["date_acquired"] == r["date_sold"]
        assert Decimal(r["proceeds"]) == lots * 100_000 * Decimal(x.open_price) / 100_000
        assert Decimal(r["cost_basis"]) == lots * 100_000 * Decimal(x.close_price) / 100_000
    assert {r["date_sold"] for r in rows} == {"2026-01-05", "2026-01-06"}


def test_tax_when_a_year_has_no_closures_then_empty_statements_not_an_error(
    built: Built,
) -> None:
    folder = built.folder.parent / "2025"
    assert sorted(p.name for p in folder.glob("*.csv")) == []  # no account existed yet
    assert (folder / "manifest.json").exists()


def test_holding_term_when_held_past_the_anniversary_then_long() -> None:
    bought = dt.date(2025, 3, 10)
    assert holding_term(bought, dt.date(2026, 3, 10)) == "short"  # exactly one year
    assert holding_term(bought, dt.date(2026, 3, 11)) == "long"
    assert anniversary(dt.date(2024, 2, 29)) == dt.date(2025, 2, 28)
    assert holding_term(dt.date(2024, 2, 29), dt.date(2025, 3, 1)) == "long"


def test_tax_pdf_when_rendered_then_its_text_holds_the_net_and_every_lot(
    built: Built, tmp_path: Path
) -> None:
    pdf = built.folder / "1.pdf"
    rows = rows_of(built.folder / "1.csv")

    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "p")], check=True)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout

    assert list(tmp_path.glob("p*.png"))
    net = sum((Decimal(r["gain_loss"]) for r in rows), Decimal(0))
    assert f"{net:.2f}" in text and "Jean Dupont" in text and "2026" in text
    for r in rows:
        assert r["gain_loss"] in text and r["proceeds"] in text


def _insert(wh: Warehouse, table: str, rows: list[dict[str, object]]) -> None:
    schema = wh.arrow(f"SELECT * FROM {table} LIMIT 0").schema
    wh.insert(table, pa.Table.from_pylist(rows, schema=schema))


def _closure(
    closure_id: int, account_id: int, realized_quote: str, realized: int
) -> dict[str, object]:
    # 0.4 lot of USD/JPY bought at 150.023 and sold at the same price on 2026-03-02.
    return {
        "closure_id": closure_id,
        "lot_id": 7,
        "account_id": account_id,
        "symbol": "USD/JPY",
        "close_exec_id": f"X{closure_id}",
        "qty": 40,
        "open_price": 150023,
        "close_price": 150023,
        "opened_ns": Period.day(dt.date(2026, 2, 2)).end_ns - 1,
        "closed_ns": Period.day(dt.date(2026, 3, 2)).end_ns - 1,
        "realized_quote": realized_quote,
        "quote_currency": "JPY",
        "realized": realized,
        "txn_id": closure_id,
    }


def test_tax_when_a_closure_made_nothing_in_its_quote_currency_then_valued_at_the_marks(
    tmp_path: Path,
) -> None:
    with Warehouse(f"chdb://{tmp_path / 'wh'}") as wh:
        wh.ensure_schema()
        _insert(
            wh,
            "accounts",
            [
                {
                    "account_id": 9,
                    "currency": "USD",
                    "tier": "retail",
                    "state": "active",
                    "created_ns": 0,
                    "client_id": None,
                    "account_type": "margin",
                    "leverage": None,
                    "_version": 1,
                }
            ],
        )
        _insert(
            wh,
            "eod_marks",
            [
                {
                    "symbol": "USD/JPY",
                    "trade_date": dt.date(2026, 2, 27),
                    "bid": 149990,
                    "ask": 150010,
                    "ts_ns": 0,
                    "cutoff_ns": 0,
                }
            ],
        )
        _insert(wh, "lot_closures", [_closure(1, 9, "0", 0)])

        (st,) = build_tax_statements(wh, 2026, default_catalogue())

    (lot,) = st.lots
    # 40,000 USD of USD/JPY at 150.023 is 6,000,920 JPY; at the last mark's mid, 150.000.
    expected = (Decimal(6_000_920) / Decimal("150.000")).quantize(Decimal("0.01"))
    assert from_minor(lot.cost_basis, "USD") == expected
    assert lot.proceeds == lot.cost_basis and lot.gain_loss == 0
    assert (lot.date_acquired, lot.date_sold) == (dt.date(2026, 2, 2), dt.date(2026, 3, 2))


def test_tax_when_a_closures_account_is_not_in_the_warehouse_then_a_clear_error(
    tmp_path: Path,
) -> None:
    with Warehouse(f"chdb://{tmp_path / 'wh'}") as wh:
        wh.ensure_schema()
        _insert(wh, "lot_closures", [_closure(2, 11, "18960", 12597)])

        with pytest.raises(TaxStatementError, match="account 11, which the warehouse"):
            build_tax_statements(wh, 2026, default_catalogue())
