"""A small store built through the OMS for the statement and tax tests: two trading days of
deposits, fills (opening and FIFO-closing lots, long and short, USD and JPY quotes), a paid
withdrawal, a rollover with its marks and financing, a client with a name and an idle
account opened on the second day.

    engine = build_store("sqlite:////tmp/x/bourse.db")
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, select

from tests.trading.builders import T0_NS, FakeClock, Rig, make_rig
from trading.clients import ClientKind
from trading.commands import (
    CreateClient,
    DecideWithdrawal,
    Deposit,
    Done,
    OpenAccount,
    RequestWithdrawal,
    Rollover,
)
from trading.store import schema as s

NS = 1_000_000_000
HOUR = 3_600 * NS
MONDAY = dt.date(2026, 1, 5)
TUESDAY = dt.date(2026, 1, 6)
# Monday 2026-01-05 22:00 UTC: 17:00 New York, the cut-off closing Monday.
MON_CUTOFF_NS = 1_767_650_400 * NS
CLIENT_NAME = "Jean Dupont"


def _ok(rig: Rig, *cmds: Any) -> list[Any]:
    results = rig.oms.execute(list(cmds))
    for r in results:
        assert not isinstance(r, Exception), r
        assert not (isinstance(r, Done) and r.detail == "rejected"), r
    return results


def _order(rig: Rig, account: int, coid: str, **kw: Any) -> None:
    ack = rig.oms.execute_one(rig.submit(account, coid, **kw))
    assert not isinstance(ack, Exception), ack
    o = s.orders
    with rig.engine.connect() as conn:
        status, reason = conn.execute(
            select(o.c.status, o.c.reason).where(
                o.c.account_id == account, o.c.client_order_id == coid
            )
        ).one()
    assert status == "filled", (coid, status, reason)


def build_store(dsn: str) -> Rig:
    """Monday: accounts 1 (a named client's) and 2 funded, trades, a withdrawal; the
    rollover at Monday's cut-off; Tuesday: more closes, account 3 opened and left idle."""
    rig = make_rig(dsn, FakeClock(T0_NS))
    _ok(
        rig,
        CreateClient(
            7,
            ClientKind.PERSON,
            CLIENT_NAME,
            "FR",
            "jean@example.fr",
            dt.date(1980, 1, 1),
            national_id="FR19800101JEAN#DUPON",
        ),
    )
    _ok(
        rig,
        OpenAccount(1, client_id=7),
        Deposit(1, "USD", 10_000_000, "dep-1"),
        OpenAccount(2),
        Deposit(2, "USD", 5_000_000, "dep-2"),
    )
    rig.clock.advance(HOUR)
    rig.seed_quotes()
    _order(rig, 1, "a1", qty="2")  # two EUR/USD lots long
    _order(rig, 2, "b1", side="sell", qty="1")  # one EUR/USD lot short
    _order(rig, 1, "a2", symbol="USD/JPY", qty="1")  # JPY-quoted: PnL converted
    _order(rig, 1, "a3", symbol="XAU/USD", qty="1")
    rig.clock.advance(HOUR)
    rig.seed_quotes()
    rig.seed_quotes({"EUR/USD": ("1.10250", "1.10260"), "USD/JPY": ("150.500", "150.520")})
    _order(rig, 1, "a4", side="sell", qty="1")  # closes the older EUR/USD lot, FIFO
    _order(rig, 2, "b2", side="buy", qty="0.5")  # half the short back, at a loss
    _order(rig, 1, "a5", symbol="USD/JPY", side="sell", qty="0.4")
    dest = rig.destination(2)
    done = _ok(rig, RequestWithdrawal(2, "USD", 100_000, dest))[0]
    wid = int(done.ref.split(":")[1])
    _ok(rig, DecideWithdrawal(wid, approve=True))
    # A second withdrawal requested and left pending: client money, not yet paid out.
    _ok(rig, RequestWithdrawal(2, "USD", 50_000, dest))
    rig.clock.now_ns = MON_CUTOFF_NS - NS
    rig.seed_quotes(
        {
            "EUR/USD": ("1.10300", "1.10310"),
            "USD/JPY": ("150.600", "150.620"),
            "XAU/USD": ("2005.00", "2005.50"),
            "BTC/USD": ("60000.00", "60010.00"),
        }
    )
    rig.clock.now_ns = MON_CUTOFF_NS + NS
    _ok(rig, Rollover(rig.clock()))
    rig.clock.advance(2 * HOUR)
    rig.seed_quotes(
        {
            "USD/JPY": ("150.600", "150.620"),
            "BTC/USD": ("60000.00", "60010.00"),
            "EUR/USD": ("1.09900", "1.09910"),
            "XAU/USD": ("2010.00", "2010.50"),
        }
    )
    _ok(rig, OpenAccount(3), Deposit(1, "USD", 200_000, "dep-3"))
    _order(rig, 1, "a6", side="sell", qty="1.5")  # closes the rest, then opens 0.5 short
    _order(rig, 2, "b3", side="buy", qty="0.5")
    _order(rig, 1, "a7", symbol="XAU/USD", side="sell", qty="1")
    return rig


def store_engine(rig: Rig) -> Engine:
    return rig.engine
