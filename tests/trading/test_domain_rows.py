"""The rows built for the new tables store and read back on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from sqlalchemy import insert, select

from trading import commands as C
from trading.catalogue import default_catalogue
from trading.clients import ClientKind
from trading.financing import compute_financing, eod_mark
from trading.funding import DepositMethod, DestinationKind
from trading.quotes import Quote
from trading.store import domain_rows as R
from trading.store import schema as s
from trading.store.engine import migrate, open_engine

DAY = dt.date(2026, 3, 11)


def test_domain_rows_when_inserted_then_read_back_equal(store_dsn: str) -> None:
    engine = open_engine(store_dsn)
    migrate(engine)
    client = C.CreateClient(5, ClientKind.ENTITY, "GLEIF", "CH", "info@gleif.org",
                            lei="506700GE1G29325QX363")  # fmt: skip
    limits = C.SetLimits(1, 10, None, D("2.5"), D("100000"), 20, reason="review")
    deposit = C.Deposit(1, "USD", 10_000, "psp-1", DepositMethod.CARD, "tok_1", "adyen", "psp-1")
    dest = C.AddDestination(1, DestinationKind.BANK, "main", "DE89370400440532013000", "EUR")
    eurusd = default_catalogue().get("EUR/USD")
    charge = compute_financing(-100, 108_010, eurusd, D("0.25"), 3, D(1) / 3, "EUR")
    mark = eod_mark(Quote("EUR/USD", 108_000, 108_010, 99), DAY)
    with engine.begin() as conn:
        conn.execute(insert(s.clients), [R.client_row(client, 1)])
        conn.execute(insert(s.accounts), [{"account_id": 1, "currency": "EUR", "tier": "retail",
                                           "state": "active", "created_ns": 1,
                                           "client_id": 5}])  # fmt: skip
        conn.execute(insert(s.account_limits), [R.limits_row(limits, 2)])
        conn.execute(insert(s.ledger_txns), [{"txn_id": 1, "account_id": 1, "kind": "deposit",
                                              "ts_ns": 3}])  # fmt: skip
        conn.execute(insert(s.deposits), [R.deposit_row(deposit, 1, 1, 3)])
        conn.execute(insert(s.withdrawal_destinations), [R.destination_row(dest, 1, 4)])
        conn.execute(insert(s.eod_marks), [R.eod_mark_row(mark, 5)])
        conn.execute(insert(s.financing), [R.financing_row(1, 1, charge, DAY, 5, 1)])
    with engine.connect() as conn:
        assert conn.execute(select(s.clients.c.lei)).scalar_one() == "506700GE1G29325QX363"
        row = conn.execute(select(s.account_limits)).one()
        assert R.limits_from_row(row) == R.limits_of(limits)
        assert conn.execute(select(s.deposits.c.method)).scalar_one() == "card"
        assert conn.execute(select(s.withdrawal_destinations.c.display)).scalar_one() == "DE89…3000"
        assert conn.execute(select(s.eod_marks.c.trade_date)).scalar_one() == DAY
        fin = conn.execute(select(s.financing)).one()
        assert (fin.amount, fin.nights, D(fin.conversion_rate)) == (charge.amount, 3, D(1) / 3)
