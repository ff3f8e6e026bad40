"""The router venue in an OMS: failover between LPs, if_no_lp, markup booked as revenue
against the LP's ledger accounts, the route and venue on every order and its events, and
each open order's venue restored after a restart.

The LPs here are an in-memory twin (``PaperLp``) that the test drives by hand: what it
answers later goes through the handler the router bound, as a FIX session's reports do.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select

from tests.trading.builders import FakeClock, Rig, make_engine, make_oms
from trading import ledger as L
from trading.commands import CancelOrder, OrderAck, SubmitOrder
from trading.errors import ConfigError
from trading.oms.engine import OMS
from trading.orders import Order, OrderStatus, OrderType
from trading.routing import parse_routing
from trading.store import schema as s
from trading.store.read_exposure import house_exposure, unhedged
from trading.store.verify import verify_ledger
from trading.venues.base import ExecKind, ExecutionReport, ReportHandler
from trading.venues.bbook import BBookVenue
from trading.venues.router import NO_LP, RouterVenue

ROUTES = """
default_route = "bbook"

[[route]]
name = "hedge"
symbols = ["EUR/USD"]
order_types = ["limit"]
book = "a"
lps = ["lp2", "lp1"]       # listed in this order, but lp1 has the better priority
if_no_lp = "bbook"
markup = "0.00002"

[[route]]
name = "strict"
symbols = ["XAU/USD"]
book = "a"
lps = ["lp1"]
if_no_lp = "reject"
"""


class PaperLp:
    """A liquidity provider in memory: it acknowledges what it is sent, and fills, cancels
    or rejects when the test says so, through the bound handler (the LP's own thread)."""

    def __init__(self, name: str, up: bool = True, types: set[OrderType] | None = None) -> None:
        self.name = name
        self.up = up
        self.types = types or set(OrderType)
        self.handler: ReportHandler | None = None
        self.working: dict[int, Order] = {}
        self.restored: list[int] = []
        self.cancels: list[int] = []
        self.n = 0
        self.batches = 0

    def is_up(self) -> bool:
        return self.up

    def takes(self, order: Order) -> bool:
        return order.type in self.types

    def bind(self, handler: ReportHandler) -> None:
        self.handler = handler

    def _id(self) -> str:
        self.n += 1
        return f"{self.name}:{self.n}"

    def submit(self, order: Order) -> list[ExecutionReport]:
        self.working[order.order_id] = order
        return []  # the acknowledgement comes later, from the session

    def cancel(self, order: Order) -> list[ExecutionReport]:
        self.cancels.append(order.order_id)
        return []

    def replace(
        self, order: Order, qty: int, price: int | None, trigger_price: int | None
    ) -> list[ExecutionReport]:
        return []

    def reset(self) -> None:
        self.working.clear()

    def restore(self, order: Order) -> None:
        self.working[order.order_id] = order
        self.restored.append(order.order_id)

    def on_quote(self, quote: object) -> list[ExecutionReport]:
        return []

    def on_time(self, now_ns: int) -> list[ExecutionReport]:
        return []

    def begin_batch(self) -> None:
        self.batches += 1

    def committed(self, exec_ids: frozenset[str]) -> None:
        pass

    def send(self, order_id: int, kind: ExecKind, ts_ns: int, **fields: object) -> None:
        """A report arriving from the LP (venue left empty: the router stamps it)."""
        assert self.handler is not None
        self.handler([ExecutionReport(self._id(), order_id, kind, ts_ns, **fields)])  # type: ignore[arg-type]


class Desk:
    def __init__(self, engine: Engine, clock: FakeClock, lp1_up: bool = True) -> None:
        self.lp1 = PaperLp("lp1", up=lp1_up)
        self.lp2 = PaperLp("lp2")
        rig: Rig = make_oms(engine, clock)
        routing = parse_routing(tomllib.loads(ROUTES)).resolved(rig.catalogue, ["lp1", "lp2"])
        self.router = RouterVenue(
            rig.venue, {"lp1": self.lp1, "lp2": self.lp2}, routing, rig.catalogue,
            priority={"lp1": 1, "lp2": 2},
        )  # fmt: skip
        # The OMS holds the router in place of the rig's bare B-book.
        self.oms = OMS(engine, rig.catalogue, rig.book, self.router, rig.config, clock)
        self.rig = rig
        self.clock = clock
        self.bbook: BBookVenue = rig.venue

    def submit(self, account_id: int, cid: str, **kw: object) -> OrderAck:
        ack = self.oms.execute_one(SubmitOrder(self.rig.request(account_id, cid, **kw)))
        assert isinstance(ack, OrderAck)
        return ack

    def pump(self) -> None:
        """Apply the reports the LPs delivered (the OMS drains them at its next batch)."""
        self.oms.execute([])


@pytest.fixture
def desk(store_dsn: str) -> Desk:
    engine = make_engine(store_dsn)
    d = Desk(engine, FakeClock())
    d.rig.oms = d.oms
    d.rig.seed_quotes()
    d.rig.open_accounts(1, 2)
    return d


def order_row(engine: Engine, order_id: int):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(s.orders).where(s.orders.c.order_id == order_id)).one()


def events(engine: Engine, order_id: int) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        rows = conn.execute(
            select(s.outbox.c.type, s.outbox.c.payload)
            .where(s.outbox.c.order_id == order_id)
            .order_by(s.outbox.c.event_id)
        )
        return [(r.type, json.loads(r.payload)) for r in rows]


def balance(engine: Engine, code: str) -> int:
    with engine.connect() as conn:
        lid = conn.execute(
            select(s.ledger_accounts.c.ledger_account_id).where(s.ledger_accounts.c.code == code)
        ).scalar_one()
        return sum(
            r[0] for r in conn.execute(select(s.postings.c.amount).where(
                s.postings.c.ledger_account_id == lid))
        )  # fmt: skip


def limit(price: str, side: str = "buy", qty: str = "1") -> dict[str, object]:
    return {"type": "limit", "price": price, "side": side, "qty": qty, "tif": "gtc"}


def test_route_when_lps_up_then_best_priority_lp_and_recorded_on_order_and_event(
    desk: Desk,
) -> None:
    ack = desk.submit(1, "c1", **limit("1.10000"))
    assert ack.order_id in desk.lp1.working and not desk.lp2.working
    row = order_row(desk.oms.engine, ack.order_id)
    assert (row.route, row.venue, row.status) == ("hedge", "lp1", "submitted")
    ((kind, payload),) = events(desk.oms.engine, ack.order_id)
    assert kind == "order.submitted"
    assert (payload["route"], payload["venue"]) == ("hedge", "lp1")


def test_route_when_best_lp_down_then_next_live_lp(store_dsn: str) -> None:
    engine = make_engine(store_dsn)
    desk = Desk(engine, FakeClock(), lp1_up=False)
    desk.rig.oms = desk.oms
    desk.rig.seed_quotes()
    desk.rig.open_accounts(1)
    ack = desk.submit(1, "c1", **limit("1.10000"))
    assert ack.order_id in desk.lp2.working and not desk.lp1.working
    assert order_row(engine, ack.order_id).venue == "lp2"
    # Back up: the next order goes to lp1 again.
    desk.lp1.up = True
    ack2 = desk.submit(1, "c2", **limit("1.10000"))
    assert order_row(engine, ack2.order_id).venue == "lp1"


def test_route_when_no_lp_up_then_if_no_lp_decides(desk: Desk) -> None:
    desk.lp1.up = desk.lp2.up = False
    # "hedge" falls back to the B-book: a buy limit above the ask fills there at once.
    ack = desk.submit(1, "c1", **limit("1.20000"))
    assert ack.status is OrderStatus.FILLED
    row = order_row(desk.oms.engine, ack.order_id)
    assert (row.route, row.venue) == ("hedge", "bbook")
    # "strict" rejects, and says why.
    ack2 = desk.submit(1, "c2", symbol="XAU/USD", **limit("2001.00"))
    assert (ack2.status, ack2.reason) == (OrderStatus.REJECTED, NO_LP)
    row2 = order_row(desk.oms.engine, ack2.order_id)
    assert (row2.route, row2.venue, row2.reason) == ("strict", None, NO_LP)
    kinds = [k for k, _ in events(desk.oms.engine, ack2.order_id)]
    assert kinds == ["order.submitted", "order.rejected"]


def test_route_when_lp_does_not_take_the_type_then_next_lp(desk: Desk) -> None:
    desk.lp1.types = {OrderType.MARKET}
    ack = desk.submit(1, "c1", **limit("1.10000"))
    assert order_row(desk.oms.engine, ack.order_id).venue == "lp2"


def test_route_when_no_rule_matches_then_default_bbook(desk: Desk) -> None:
    ack = desk.submit(1, "c1", type="market", side="buy", qty="1")
    assert ack.status is OrderStatus.FILLED
    row = order_row(desk.oms.engine, ack.order_id)
    assert (row.route, row.venue) == ("bbook", "bbook")


def test_abook_fill_when_lp_fills_then_markup_added_and_booked_against_lp(desk: Desk) -> None:
    eur = desk.rig.catalogue.get("EUR/USD")
    buy = desk.submit(1, "b1", **limit("1.10000", qty="2"))
    sell = desk.submit(2, "s1", **limit("1.09980", side="sell", qty="3"))
    markup = eur.price_to_int(Decimal("0.00002"))
    # The LP works the limits less the markup: a marked-up fill honours the client's limit.
    assert desk.lp1.working[buy.order_id].price == eur.price_to_int(Decimal("1.10000")) - markup
    assert desk.lp1.working[sell.order_id].price == eur.price_to_int(Decimal("1.09980")) + markup
    lp_price = eur.price_to_int(Decimal("1.09990"))
    ts = desk.clock()
    desk.lp1.send(buy.order_id, ExecKind.ACCEPTED, ts)
    desk.lp1.send(buy.order_id, ExecKind.FILL, ts, last_qty=eur.qty_to_int(Decimal("2")),
                  last_price=lp_price)  # fmt: skip
    desk.lp1.send(sell.order_id, ExecKind.ACCEPTED, ts)
    desk.lp1.send(sell.order_id, ExecKind.FILL, ts, last_qty=eur.qty_to_int(Decimal("3")),
                  last_price=lp_price)  # fmt: skip
    desk.pump()
    engine = desk.oms.engine
    b, sl = order_row(engine, buy.order_id), order_row(engine, sell.order_id)
    assert (b.status, sl.status) == ("filled", "filled")
    # The client buys higher and sells lower than the LP.
    assert b.filled_notional == eur.qty_to_int(Decimal("2")) * (lp_price + markup)
    assert sl.filled_notional == eur.qty_to_int(Decimal("3")) * (lp_price - markup)
    with engine.connect() as conn:
        venues = {r.venue for r in conn.execute(select(s.executions.c.venue))
                  if r.venue != "bbook"}  # fmt: skip
        assert verify_ledger(conn) == []
    assert venues == {"lp1"}
    # 5 lots of 100,000 EUR at 0.00002 USD: 10.00 USD of markup, booked as revenue.
    assert balance(engine, L.revenue_markup("USD")) == -1000
    # The LP's position account holds the house's side: the clients are net 1 lot short.
    assert balance(engine, L.venue_position("lp1", "EUR/USD")) == eur.qty_to_int(Decimal("1"))
    fills = [p for k, p in events(engine, buy.order_id) if k == "order.filled"]
    assert fills[0]["venue"] == "lp1" and fills[0]["markup"] == markup


def test_cancel_when_order_at_lp_then_sent_to_that_lp(desk: Desk) -> None:
    ack = desk.submit(1, "c1", **limit("1.10000"))
    desk.lp1.send(ack.order_id, ExecKind.ACCEPTED, desk.clock())
    desk.pump()
    desk.oms.execute_one(CancelOrder(1, ack.order_id))
    assert desk.lp1.cancels == [ack.order_id] and not desk.lp2.cancels
    assert desk.bbook.resting_count == 0


def test_restart_when_orders_open_then_each_restored_at_its_venue(store_dsn: str) -> None:
    engine = make_engine(store_dsn)
    clock = FakeClock()
    first = Desk(engine, clock)
    first.rig.oms = first.oms
    first.rig.seed_quotes()
    first.rig.open_accounts(1)
    at_lp = first.submit(1, "c1", **limit("1.10000"))
    first.lp1.send(at_lp.order_id, ExecKind.ACCEPTED, clock())
    first.pump()
    unacked = first.submit(1, "c3", **limit("1.10000"))  # the LP has not answered yet
    first.lp1.up = first.lp2.up = False
    at_bbook = first.submit(1, "c2", **limit("1.00000"))  # rests at the B-book
    assert order_row(engine, at_bbook.order_id).venue == "bbook"

    second = Desk(engine, clock)  # a new process: the store is the truth
    assert second.lp1.restored == [at_lp.order_id, unacked.order_id]
    assert not second.lp2.restored
    assert second.bbook.resting_count == 1
    second.oms.execute_one(CancelOrder(1, at_lp.order_id))
    assert second.lp1.cancels == [at_lp.order_id]
    # A fill after the restart still gets the route's markup.
    eur = second.rig.catalogue.get("EUR/USD")
    px = eur.price_to_int(Decimal("1.09995"))
    second.lp1.send(at_lp.order_id, ExecKind.FILL, clock(), last_qty=eur.qty_to_int(Decimal(1)),
                    last_price=px)  # fmt: skip
    second.pump()
    row = order_row(engine, at_lp.order_id)
    assert row.status == "filled"
    assert row.filled_notional == eur.qty_to_int(Decimal(1)) * (
        px + eur.price_to_int(Decimal("0.00002"))
    )
    # So does the first answer to the order the LP had not acknowledged before the restart.
    second.lp1.send(unacked.order_id, ExecKind.FILL, clock(), last_qty=eur.qty_to_int(Decimal(1)),
                    last_price=px)  # fmt: skip
    second.pump()
    assert order_row(engine, unacked.order_id).filled_notional == row.filled_notional


def test_router_when_reports_come_late_then_stamped_with_their_venue(desk: Desk) -> None:
    seen: list[Sequence[ExecutionReport]] = []
    desk.router.bind(seen.append)
    desk.lp2.send(99, ExecKind.ACCEPTED, 1)
    assert seen[0][0].venue == "lp2"


def test_house_exposure_when_fills_at_lp_and_bbook_then_hedged_told_from_unhedged(
    desk: Desk,
) -> None:
    eur = desk.rig.catalogue.get("EUR/USD")
    # 2 lots bought by a client at lp1 (A-book), 1 lot bought at the B-book (a market order:
    # no rule for market orders, so the default route).
    at_lp = desk.submit(1, "a1", **limit("1.10000", qty="2"))
    desk.lp1.send(at_lp.order_id, ExecKind.FILL, desk.clock(), last_qty=eur.qty_to_int(Decimal(2)),
                  last_price=eur.price_to_int(Decimal("1.09990")))  # fmt: skip
    desk.pump()
    assert desk.submit(2, "b1", type="market", side="buy", qty="1").status is OrderStatus.FILLED
    with desk.oms.engine.connect() as conn:
        exposures = house_exposure(conn)
    two, one = eur.qty_to_int(Decimal(2)), eur.qty_to_int(Decimal(1))
    # The house is short what its clients bought: hedged at lp1, its own risk at the B-book.
    assert [(e.venue, e.commodity, e.qty, e.hedged) for e in exposures] == [
        ("bbook", "EURUSD", -one, False), ("lp1", "EURUSD", -two, True),
    ]  # fmt: skip
    assert unhedged(exposures) == {"EURUSD": -one}


def test_restart_when_an_open_orders_lp_left_the_file_then_config_error_names_it(
    store_dsn: str,
) -> None:
    engine = make_engine(store_dsn)
    clock = FakeClock()
    first = Desk(engine, clock)
    first.rig.oms = first.oms
    first.rig.seed_quotes()
    first.rig.open_accounts(1)
    at_lp = first.submit(1, "c1", **limit("1.10000"))
    rig = make_oms(engine, clock)
    router = RouterVenue(rig.venue, {}, parse_routing({}), rig.catalogue)  # lp1 is gone
    with pytest.raises(ConfigError, match=f"order {at_lp.order_id} works at 'lp1'"):
        OMS(engine, rig.catalogue, rig.book, router, rig.config, clock)


def test_batch_when_the_oms_begins_one_then_the_router_tells_every_lp(desk: Desk) -> None:
    before = (desk.lp1.batches, desk.lp2.batches)
    desk.pump()
    desk.pump()
    assert (desk.lp1.batches, desk.lp2.batches) == (before[0] + 2, before[1] + 2)
