"""The regulatory report end to end: orders through the OMS into a real store, the store
copied into a chDB mirror, the report's values checked against the store's own rows (read
here with SQLAlchemy); and the Dagster asset materialized once in process.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import dagster as dg
from sqlalchemy import select

from assets.days import Period, trading_date_of
from assets.defs_regulatory import regulatory_report
from assets.regulatory.firm import TEST_LEI, Firm
from assets.regulatory.report import build_regulatory_report
from assets.regulatory.validate import check_model
from assets.regulatory.xml_out import parse_strict
from assets.resources import BourseHome, WarehouseResource
from assets.warehouse.client import Warehouse, default_dsn
from assets.warehouse.extract import extract_all
from tests.trading.builders import T0_NS, make_rig
from trading.catalogue import default_catalogue
from trading.clients import ClientKind
from trading.commands import CreateClient, Deposit, OpenAccount, OrderAck
from trading.store import schema as s

PERSON = CreateClient(7, ClientKind.PERSON, "Jean Dupont", "FR", "jean@example.fr",
                      dt.date(1980, 1, 1), national_id="FR19800101JEAN#DUPON")  # fmt: skip
ENTITY = CreateClient(8, ClientKind.ENTITY, "Acme GmbH", "DE", "ops@acme.de",
                      lei="529900T8BM49AURSDO55")  # fmt: skip
DAY = trading_date_of(T0_NS)


def _store_with_fills(home: Path) -> None:
    """Two clients' accounts and three market orders filled by the B-book venue, in the
    store under ``home`` (as `bourse` keeps it), copied into the home's warehouse."""
    rig = make_rig(f"sqlite:///{home / 'bourse.db'}")
    setup = [PERSON, ENTITY, OpenAccount(1, client_id=7), Deposit(1, "USD", 10_000_000, "d1"),
             OpenAccount(2, client_id=8), Deposit(2, "USD", 10_000_000, "d2")]  # fmt: skip
    for result in rig.oms.execute(setup):
        assert not isinstance(result, Exception), result
    for account, cid, symbol, side, qty in [
        (1, "c1", "EUR/USD", "buy", "1.5"),
        (2, "c2", "XAU/USD", "sell", "0.1"),
        (1, "c3", "EUR/USD", "sell", "0.5"),
    ]:
        rig.clock.advance(1_000_000_000)
        ack = rig.oms.execute_one(rig.submit(account, cid, symbol=symbol, side=side, qty=qty))
        assert isinstance(ack, OrderAck) and ack.status == "filled", ack
    with Warehouse(default_dsn(home)) as wh:
        wh.ensure_schema()
        extract_all(rig.engine, wh)
    rig.engine.dispose()


def test_report_when_built_from_the_oms_store_then_each_value_matches_the_stores_fill(
    tmp_path: Path,
) -> None:
    _store_with_fills(tmp_path)
    out = tmp_path / "out"

    with Warehouse(default_dsn(tmp_path)) as wh:
        result = build_regulatory_report(
            wh, Period.day(DAY), out, firm=Firm(TEST_LEI, "CY", TEST_LEI),
            catalogue=default_catalogue(),
        )  # fmt: skip

    from trading.store.engine import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'bourse.db'}")
    e, o, a = s.executions, s.orders, s.accounts
    query = (
        select(e.c.exec_id, e.c.qty, e.c.price, e.c.ts_ns, o.c.symbol, o.c.side, a.c.client_id)
        .join(o, o.c.order_id == e.c.order_id)
        .join(a, a.c.account_id == e.c.account_id)
        .where(e.c.qty > 0)
        .order_by(e.c.ts_ns, e.c.exec_id)
    )
    with engine.connect() as conn:
        fills = conn.execute(query).all()
    engine.dispose()
    assert len(fills) == 3 and result.transactions == 3

    doc = parse_strict((out / "transactions.xml").read_bytes())
    assert check_model(doc) == []
    txs = [t.new for t in doc.fin_instrm_rptg_tx_rpt.tx]
    # Units per stored lot step and price decimals, from the catalogue file's entries.
    step_units = {"EUR/USD": Decimal(1000), "XAU/USD": Decimal(1)}
    decimals = {"EUR/USD": 5, "XAU/USD": 2}
    for fill, t in zip(fills, txs, strict=True):
        assert t.tx_id == fill.exec_id.replace("-", "Z19")
        assert t.tx.qty.unit == fill.qty * step_units[fill.symbol]
        assert (
            t.tx.pric.pric.mntry_val.amt.value == Decimal(fill.price) / 10 ** decimals[fill.symbol]
        )
        stamp = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            microseconds=fill.ts_ns // 1000
        )
        assert t.tx.trad_dt.to_datetime() == stamp
        client, house = (t.buyr, t.sellr) if fill.side == "buy" else (t.sellr, t.buyr)
        assert house.acct_ownr[0].id.lei == TEST_LEI
        owner = client.acct_ownr[0].id
        if fill.client_id == 7:
            assert owner.prsn.othr.id == PERSON.national_id and owner.prsn.nm == "Dupont"
        else:
            assert owner.lei == ENTITY.lei
    assert [t.tx.qty.unit for t in txs] == [Decimal(150_000), Decimal(10), Decimal(50_000)]


def test_regulatory_report_asset_when_materialized_for_a_day_then_writes_its_layout(
    tmp_path: Path,
) -> None:
    _store_with_fills(tmp_path)
    home = str(tmp_path)

    result = dg.materialize(
        [regulatory_report],
        resources={"home": BourseHome(home=home), "warehouse": WarehouseResource(home=home)},
        partition_key=DAY.isoformat(),
    )

    assert result.success
    folder = tmp_path / "reports" / DAY.isoformat() / "regulatory"
    assert sorted(p.name for p in folder.iterdir()) == ["transactions.csv", "transactions.xml"]
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["transactions"].value == 3
    assert metadata["executing_entity_lei"].value == TEST_LEI
    assert (
        len(parse_strict((folder / "transactions.xml").read_bytes()).fin_instrm_rptg_tx_rpt.tx) == 3
    )

    quiet = DAY + dt.timedelta(days=1)
    nil = dg.materialize(
        [regulatory_report],
        resources={"home": BourseHome(home=home), "warehouse": WarehouseResource(home=home)},
        partition_key=quiet.isoformat(),
    )
    assert nil.success
    [event] = nil.get_asset_materialization_events()
    assert event.materialization.metadata["transactions"].value == 0
    folder = tmp_path / "reports" / quiet.isoformat() / "regulatory"
    assert sorted(p.name for p in folder.iterdir()) == ["transactions.csv"]
