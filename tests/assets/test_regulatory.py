"""The regulatory transaction report over mirror rows inserted straight into a test warehouse:
the XML parses strictly into the auth.016 models with every required field, its values match
the rows (computed here by hand), the CSV holds the same records, a missing client identifier
fails the report by exec id and field with nothing written, and an empty day is a nil report.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from assets.days import Period, cutoff_ns
from assets.regulatory.firm import TEST_LEI, Firm
from assets.regulatory.records import tx_id_of
from assets.regulatory.report import build_regulatory_report
from assets.regulatory.validate import ReportInvalid, check_model
from assets.regulatory.xml_out import NAMESPACE, parse_strict
from assets.warehouse.client import Warehouse
from assets.warehouse.ddl import catalog
from assets.warehouse.extract import _arrow_schema
from trading.catalogue import default_catalogue

DAY = dt.date(2026, 3, 3)
PERIOD = Period.day(DAY)
FIRM = Firm(TEST_LEI, "CY", TEST_LEI)
ENTITY_LEI = "529900T8BM49AURSDO55"  # a real LEI's shape and check digits (Acme in the tests)
PERSON_ID = "FR19800101JEAN#DUPON"


def insert(wh: Warehouse, table: str, rows: list[dict[str, Any]]) -> None:
    schema = _arrow_schema(catalog().table(table))
    columns = {n: [r.get(n, 1 if n == "_version" else None) for r in rows] for n in schema.names}
    wh.insert(table, pa.table(columns, schema=schema))


def clients(wh: Warehouse, *, national_id: str | None = PERSON_ID) -> None:
    insert(wh, "clients", [
        dict(client_id=1, kind="person", name="Jean Paul Dupont", country="FR",
             email="j@example.fr", birth_date=dt.date(1980, 1, 1), national_id=national_id,
             created_ns=0),
        dict(client_id=2, kind="entity", name="Acme GmbH", country="DE", email="o@acme.de",
             lei=ENTITY_LEI, created_ns=0),
    ])  # fmt: skip
    insert(wh, "accounts", [
        dict(account_id=10, currency="USD", tier="retail", state="active", created_ns=0,
             client_id=1, account_type="margin"),
        dict(account_id=20, currency="EUR", tier="retail", state="active", created_ns=0,
             client_id=2, account_type="cash"),
        dict(account_id=30, currency="USD", tier="retail", state="active", created_ns=0,
             client_id=None, account_type="margin"),
    ])  # fmt: skip


@dataclass(frozen=True)
class Fill:
    exec_id: str
    account_id: int
    symbol: str
    side: str
    qty: int  # lot steps
    price: int  # price units
    ts_ns: int
    venue: str = "bbook"


T = cutoff_ns(DAY) - 5 * 3_600 * 10**9  # 12:00 New York on DAY
FILLS = [
    Fill("F1-150", 10, "EUR/USD", "buy", 150, 110_005, T + 123_456_789),
    Fill("F2-3", 20, "AAPL", "buy", 3, 20_012, T + 2 * 10**9),
    Fill("F3-5", 10, "US500", "sell", 5, 50_001, T + 3 * 10**9),
    Fill("F4-7", 20, "XAU/USD", "sell", 7, 200_050, T + 4 * 10**9),
    Fill("F6-2", 20, "AAPL", "sell", 2, 20_100, PERIOD.end_ns),  # at the cut-off: this day
]
CRYPTO = Fill("F5-5", 20, "BTC/USD", "buy", 5, 6_000_000, T + 5_000)
OUTSIDE = [
    Fill("F7-1", 10, "EUR/USD", "buy", 1, 110_000, PERIOD.start_ns),  # the previous day's
    Fill("F8-1", 10, "EUR/USD", "buy", 1, 110_000, PERIOD.end_ns + 1),  # the next day's
]


def executions(wh: Warehouse, fills: list[Fill], *, order_base: int = 100) -> None:
    orders, execs = [], []
    for i, f in enumerate(fills):
        oid = order_base + i
        orders.append(dict(order_id=oid, account_id=f.account_id, client_order_id=f"c{oid}",
                           symbol=f.symbol, side=f.side, type="market", tif="ioc", qty=f.qty,
                           fingerprint="x", status="filled", filled_qty=f.qty, filled_notional=0,
                           created_ns=0, updated_ns=0, initiator="client"))  # fmt: skip
        execs.append(dict(exec_id=f.exec_id, order_id=oid, account_id=f.account_id,
                          kind="fill", qty=f.qty, price=f.price, commission=0, venue=f.venue,
                          ts_ns=f.ts_ns))  # fmt: skip
    # An acknowledgement carries no quantity: not a transaction.
    execs.append(dict(exec_id=f"A{order_base}", order_id=order_base, account_id=10,
                      kind="accepted", qty=0, price=0, commission=0, venue="bbook",
                      ts_ns=T))  # fmt: skip
    insert(wh, "orders", orders)
    insert(wh, "executions", execs)


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    with Warehouse(f"chdb://{tmp_path}/wh") as w:
        w.ensure_schema()
        yield w


def _el(node: Any, *path: str) -> Any:
    for name in path:
        node = getattr(node, name)
    return node


def units(f: Fill) -> Decimal:
    # Contract sizes and lot steps from the catalogue file, written out here: FX 100,000
    # units a lot in 0.01 steps, gold 100 oz in 0.01 steps, an index 1 a lot in 0.1 steps,
    # shares one a lot in whole lots.
    per_step = {"EUR/USD": Decimal(1000), "XAU/USD": Decimal(1), "US500": Decimal("0.1"),
                "AAPL": Decimal(1)}[f.symbol]  # fmt: skip
    return f.qty * per_step


def price(f: Fill) -> Decimal:
    decimals = {"EUR/USD": 5, "XAU/USD": 2, "US500": 1, "AAPL": 2}[f.symbol]
    return Decimal(f.price) / Decimal(10**decimals)


def test_report_when_day_has_fills_then_xml_parses_strictly_with_each_fills_values(
    wh: Warehouse, tmp_path: Path
) -> None:
    clients(wh)
    executions(wh, [*FILLS, CRYPTO, *OUTSIDE])
    out = tmp_path / "reports" / DAY.isoformat() / "regulatory"

    result = build_regulatory_report(wh, PERIOD, out, firm=FIRM, catalogue=default_catalogue())

    assert result.transactions == len(FILLS)
    assert [e.exec_id for e in result.excluded] == [CRYPTO.exec_id]
    text = (out / "transactions.xml").read_bytes()
    assert text.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert f'<Document xmlns="{NAMESPACE}">'.encode() in text
    doc = parse_strict(text)
    assert check_model(doc) == []
    txs = [t.new for t in doc.fin_instrm_rptg_tx_rpt.tx]
    assert [t.tx_id for t in txs] == ["F1Z19150", "F2Z193", "F3Z195", "F4Z197", "F6Z192"]
    for f, t in zip(FILLS, txs, strict=True):
        assert t.exctg_pty == TEST_LEI and t.submitg_pty == TEST_LEI and t.invstmt_pty_ind
        assert t.tx.tradg_cpcty.value == "DEAL" and t.tx.trad_vn == "XOFF"
        assert t.tx.qty.unit == units(f)
        assert t.tx.pric.pric.mntry_val.amt.value == price(f)
        assert t.tx.pric.pric.mntry_val.amt.ccy == "USD"
        when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=f.ts_ns // 1000)
        assert t.tx.trad_dt.to_datetime() == when
        client, house = (t.buyr, t.sellr) if f.side == "buy" else (t.sellr, t.buyr)
        assert house.acct_ownr[0].id.lei == TEST_LEI and house.acct_ownr[0].ctry_of_brnch is None
        assert client.acct_ownr[0].ctry_of_brnch == "CY"
        owner = client.acct_ownr[0].id
        if f.account_id == 10:
            assert (owner.prsn.frst_nm, owner.prsn.nm) == ("Jean Paul", "Dupont")
            assert owner.prsn.birth_dt.to_date() == dt.date(1980, 1, 1)
            assert owner.prsn.othr.id == PERSON_ID
            assert owner.prsn.othr.schme_nm.prtry == "CONCAT"
        else:
            assert owner.lei == ENTITY_LEI and owner.prsn is None
        assert t.exctg_prsn.algo == "BOURSE-BBOOK" and t.invstmt_dcsn_prsn.algo == "BOURSE-BBOOK"
        assert t.addtl_attrbts.scties_fincg_tx_ind is False

    eur, aapl, us500, gold, aapl_sell = txs
    assert eur.tx.trad_dt.fractional_second == 123_456_000  # microseconds, floored
    attrs = eur.fin_instrm.othr.fin_instrm_gnl_attrbts
    assert (attrs.clssfctn_tp, attrs.ntnl_ccy) == ("JFTXCC", "EUR")
    deriv = eur.fin_instrm.othr.deriv_instrm_attrbts
    assert deriv.asst_clss_spcfc_attrbts.fx.othr_ntnl_ccy == "USD"
    assert deriv.pric_mltplr == 1 and deriv.dlvry_tp.value == "CASH"
    assert deriv.undrlyg_instrm.othr.sngl.indx.nm.ref_rate.nm == "EUR/USD"
    assert aapl.fin_instrm.id == "US0378331005" and aapl.fin_instrm.othr is None
    assert aapl.addtl_attrbts.shrt_sellg_ind.value == "SESH"  # the house sells
    assert aapl_sell.addtl_attrbts.shrt_sellg_ind.value == "SELL"  # a cash account's own shares
    index = us500.fin_instrm.othr.deriv_instrm_attrbts.undrlyg_instrm.othr.sngl.indx
    assert (index.isin, index.nm.ref_rate.nm) == ("US78378X1072", "S&P 500")
    assert us500.fin_instrm.othr.fin_instrm_gnl_attrbts.clssfctn_tp == "JEIXCC"
    assert gold.addtl_attrbts.rsk_rdcg_tx is False and eur.addtl_attrbts.rsk_rdcg_tx is None
    assert gold.fin_instrm.othr.fin_instrm_gnl_attrbts.ntnl_ccy == "XAU"

    rows = list(csv.DictReader(io.StringIO((out / "transactions.csv").read_text("utf-8"))))
    assert [r["tx_id"] for r in rows] == [t.tx_id for t in txs]
    assert [r["exec_id"] for r in rows] == [f.exec_id for f in FILLS]
    assert [Decimal(r["quantity"]) for r in rows] == [units(f) for f in FILLS]
    assert [r["price"] for r in rows] == ["1.10005", "200.12", "5000.1", "2000.5", "201"]
    assert rows[0]["quantity"] == "150000" and rows[2]["quantity"] == "0.5"
    assert rows[0]["buyer_national_id"] == PERSON_ID and rows[0]["seller_lei"] == TEST_LEI
    assert rows[0]["trading_datetime"] == "2026-03-03T17:00:00.123456Z"
    assert all("E" not in r["quantity"] + r["price"] for r in rows)


def test_report_when_a_person_lacks_a_national_id_then_it_fails_by_exec_and_field_writing_nothing(
    wh: Warehouse, tmp_path: Path
) -> None:
    clients(wh, national_id=None)
    bad = [
        Fill("F9-1", 30, "EUR/USD", "sell", 1, 110_000, T),
        Fill("F10-1", 10, "US500", "buy", 1, 50_000, T + 1),
    ]
    executions(wh, [*FILLS, *bad, Fill("L1", 20, "EUR/USD", "buy", 1, 110_000, T + 2, "lp")])
    out = tmp_path / "regulatory"
    out.mkdir()
    (out / "transactions.csv").write_text("an earlier run\n")

    with pytest.raises(ReportInvalid) as raised:
        build_regulatory_report(wh, PERIOD, out, firm=FIRM, catalogue=default_catalogue())

    found = {(p.exec_id, p.field) for p in raised.value.problems}
    person_fills = [f.exec_id for f in [*FILLS, *bad] if f.account_id == 10]
    expected = {(e, "buyer.national_id") for e in person_fills if e != "F3-5"}
    expected |= {("F3-5", "seller.national_id"), ("F9-1", "seller"), ("L1", "venue")}
    assert found == expected
    assert "exec F9-1: seller: the account names no client" in str(raised.value)
    assert sorted(p.name for p in out.iterdir()) == ["transactions.csv"]
    assert (out / "transactions.csv").read_text() == "an earlier run\n"


def test_report_when_an_entitys_lei_fails_its_check_digits_then_it_fails(
    wh: Warehouse, tmp_path: Path
) -> None:
    clients(wh)
    insert(wh, "clients", [dict(client_id=2, kind="entity", name="Acme GmbH", country="DE",
                                email="o@acme.de", lei="529900T8BM49AURSDO56", created_ns=0,
                                _version=2)])  # fmt: skip
    executions(wh, [FILLS[1]])

    with pytest.raises(ReportInvalid) as raised:
        build_regulatory_report(
            wh, PERIOD, tmp_path / "r", firm=FIRM, catalogue=default_catalogue()
        )

    [problem] = raised.value.problems
    assert (problem.exec_id, problem.field) == ("F2-3", "buyer.lei")
    assert "check digits" in problem.message
    assert not (tmp_path / "r").exists()


def test_report_when_the_day_has_no_fills_then_csv_header_alone_and_no_xml(
    wh: Warehouse, tmp_path: Path
) -> None:
    clients(wh)
    executions(wh, [CRYPTO, *OUTSIDE])  # spot crypto is not reported; the others are not today
    out = tmp_path / "regulatory"
    out.mkdir()
    (out / "transactions.xml").write_text("<stale/>")

    result = build_regulatory_report(wh, PERIOD, out, firm=FIRM, catalogue=default_catalogue())

    assert result.transactions == 0 and result.xml_path is None
    lines = (out / "transactions.csv").read_text("utf-8").splitlines()
    assert len(lines) == 1 and lines[0].startswith("tx_id,exec_id,report_status,")
    assert not (out / "transactions.xml").exists()


def test_auth016_when_asked_for_zero_transactions_then_its_schema_refuses() -> None:
    # Why an empty day writes no XML: FinInstrmRptgTxRpt holds Tx 1..n.
    from python_iso20022.auth.auth_016_001_03 import models as m

    from assets.regulatory.xml_out import Document

    empty = Document(
        fin_instrm_rptg_tx_rpt=m.FinancialInstrumentReportingTransactionReportV03Auth01600103()
    )
    assert check_model(empty) == [("/FinInstrmRptgTxRpt/Tx", "needs at least 1")]


def test_tx_id_when_exec_ids_differ_only_in_punctuation_or_case_then_references_differ() -> None:
    ids = ["F12-3", "F1-23", "F123", "f123", "FZ123", "F Z", "x" * 60, "y" * 60, "A" * 52]
    refs = [tx_id_of(i) for i in ids]
    assert len(set(refs)) == len(ids)
    assert all(0 < len(r) <= 52 and r.isalnum() and r == r.upper() for r in refs)
    assert tx_id_of("F123") == "F123" and tx_id_of("A" * 52) == "A" * 52
    assert tx_id_of("F12-3") == "F12Z193"  # '-' is code point 45, '19' in base 36


def test_check_model_when_the_document_breaks_a_facet_then_each_is_named_by_path(
    wh: Warehouse,
) -> None:
    from assets.regulatory.records import build_records, load_fills
    from assets.regulatory.xml_out import document

    clients(wh)
    executions(wh, FILLS[:2])
    records, _ = build_records(load_fills(wh, PERIOD), default_catalogue(), FIRM)
    doc = document(records)
    assert check_model(doc) == []
    first = doc.fin_instrm_rptg_tx_rpt.tx[0].new
    first.tx_id = "F" * 53  # Max52Text
    first.buyr.acct_ownr[0].id.lei = ENTITY_LEI  # a person and an LEI: two branches
    doc.fin_instrm_rptg_tx_rpt.tx[1].new.tx.trad_vn = None  # required

    problems = dict(check_model(doc))

    new0, new1 = "/FinInstrmRptgTxRpt/Tx[0]/New", "/FinInstrmRptgTxRpt/Tx[1]/New"
    assert set(problems) == {f"{new0}/TxId", f"{new0}/Buyr/AcctOwnr[0]/Id", f"{new1}/Tx/TradVn"}
    assert "length outside" in problems[f"{new0}/TxId"]
    first.exctg_pty = "NOT-A-LEI"
    assert "does not match" in dict(check_model(doc))[f"{new0}/ExctgPty"]
    assert "exactly one branch" in problems[f"{new0}/Buyr/AcctOwnr[0]/Id"]
    assert problems[f"{new1}/Tx/TradVn"] == "required"
