"""The tax statement's conversion of a closure that realized nothing in its quote currency
(its own ratio gives no rate): a plain simulated day has one end-of-day mark, so the rate
comes from the ledger's other closures between the same currencies, or the day's fills."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from assets.statements.tax import build_tax_statements
from assets.warehouse.client import Warehouse
from assets.warehouse.extract import extract_all
from trading.catalogue import default_catalogue
from trading.sim.simulation import run_simulation
from trading.store import schema as s
from trading.store.engine import migrate, open_engine


def test_tax_when_a_closure_realized_nothing_in_a_foreign_quote_then_it_is_still_converted(
    tmp_path: Path,
) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}/bourse.db")
    migrate(engine)
    run_simulation(engine, default_catalogue(), 20, 2000, 7)  # the demo's day
    with engine.connect() as conn:
        flat_foreign = conn.execute(
            select(func.count())
            .select_from(s.lot_closures)
            .where(
                s.lot_closures.c.realized_quote.in_(("0", "0.0"))
                | (s.lot_closures.c.realized == 0),
                s.lot_closures.c.quote_currency != "USD",
            )
        ).scalar_one()
        booked = conn.execute(select(func.sum(s.lot_closures.c.realized))).scalar_one()
        closures = conn.execute(select(func.count()).select_from(s.lot_closures)).scalar_one()
        marks = conn.execute(select(func.count()).select_from(s.eod_marks)).scalar_one()

    with Warehouse(f"chdb://{tmp_path}/wh") as wh:
        wh.ensure_schema()
        extract_all(engine, wh)
        statements = build_tax_statements(wh, 2026, default_catalogue())

    assert flat_foreign > 0 and marks <= 1  # the case this test is about is in the data
    lots = [x for st in statements for x in st.lots]
    assert len(lots) == closures
    assert all(x.proceeds - x.cost_basis == x.gain_loss for x in lots)
    assert sum(x.gain_loss for x in lots) == booked
    # A converted cost basis is a plausible price, never zero for a non-zero quantity.
    assert all(x.cost_basis != 0 for x in lots if x.qty != 0)
    assert Decimal(sum(x.cost_basis for x in lots)) > 0
