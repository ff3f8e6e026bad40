"""Shared builders for the trading tests: a fake clock, an OMS on a given store with quotes
seeded, request helpers, and a snapshot of the store to compare before and after.

    rig = make_rig("sqlite:////tmp/x/bourse.db")      # migrated, quotes seeded, clock at T0
    rig.oms.execute([OpenAccount(1), Deposit(1, "USD", 1_000_000, "dep-1")])
    ack = rig.oms.execute_one(SubmitOrder(rig.request(1, "c1", qty="1")))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from trading.catalogue import Catalogue, default_catalogue
from trading.commands import AddDestination, Deposit, Done, OpenAccount, QuoteUpdate, SubmitOrder
from trading.config import OMSConfig
from trading.funding import DestinationKind, iban_of
from trading.oms.engine import OMS
from trading.orders import OrderRequest
from trading.quotes import InMemoryQuoteBook, Quote
from trading.store import schema as s
from trading.store.engine import migrate, open_engine
from trading.validate import order_request
from trading.venues.bbook import BBookVenue

# 2026-01-05 08:00 UTC, a Monday: FX, metals and crypto sessions are open.
T0_NS = 1_767_600_000_000_000_000

# Bid and ask per symbol, as decimal strings. USD/JPY also converts JPY PnL to USD.
QUOTES: dict[str, tuple[str, str]] = {
    "EUR/USD": ("1.10000", "1.10010"),
    "USD/JPY": ("150.000", "150.020"),
    "XAU/USD": ("2000.00", "2000.50"),
    "BTC/USD": ("60000.00", "60010.00"),
}


@dataclass
class FakeClock:
    """A clock the test moves by hand; the OMS and the venue read it."""

    now_ns: int = T0_NS

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, ns: int) -> int:
        self.now_ns += ns
        return self.now_ns


@dataclass
class Rig:
    """An OMS wired to a B-book venue, an in-memory quote book and a fake clock."""

    engine: Engine
    oms: OMS
    catalogue: Catalogue
    book: InMemoryQuoteBook
    clock: FakeClock
    venue: BBookVenue
    config: OMSConfig = field(default_factory=OMSConfig)

    def request(
        self,
        account_id: int,
        client_order_id: str,
        symbol: str = "EUR/USD",
        side: str = "buy",
        qty: str = "1",
        **kwargs: Any,
    ) -> OrderRequest:
        return order_request(
            self.catalogue,
            account_id=account_id,
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            qty=qty,
            **kwargs,
        )

    def submit(self, account_id: int, client_order_id: str, **kwargs: Any) -> SubmitOrder:
        return SubmitOrder(self.request(account_id, client_order_id, **kwargs))

    def quote(self, symbol: str, bid: str | Decimal, ask: str | Decimal, **sizes: Any) -> Quote:
        inst = self.catalogue.get(symbol)
        return Quote(
            inst.symbol,
            inst.price_to_int(Decimal(bid)),
            inst.price_to_int(Decimal(ask)),
            self.clock(),
            **sizes,
        )

    def seed_quotes(self, quotes: dict[str, tuple[str, str]] | None = None) -> None:
        """Quotes at the current clock time, through the OMS (so resting orders see them)."""
        cmds = [QuoteUpdate(self.quote(sym, b, a)) for sym, (b, a) in (quotes or QUOTES).items()]
        for result in self.oms.execute(cmds):
            assert not isinstance(result, Exception), result

    def destination(self, account_id: int, currency: str = "USD") -> int:
        """A registered bank destination of the account in ``currency`` (its id)."""
        return add_destination(self.oms, account_id, currency)

    def open_accounts(self, *account_ids: int, cash_minor: int = 10_000_000) -> None:
        """Open USD accounts, each funded with ``cash_minor`` cents (100,000.00 by default)."""
        cmds: list[Any] = []
        for a in account_ids:
            cmds += [OpenAccount(a), Deposit(a, "USD", cash_minor, f"seed-{a}")]
        for result in self.oms.execute(cmds):
            assert not isinstance(result, Exception), result


def destination_of(account_id: int, currency: str = "USD") -> AddDestination:
    """A bank account to withdraw to, its IBAN made of the account id and the currency."""
    bban = f"{account_id:012d}{sum(map(ord, currency)):06d}"
    return AddDestination(account_id, DestinationKind.BANK, f"bank {currency}",
                          iban_of("DE", bban), currency)  # fmt: skip


def add_destination(oms: OMS, account_id: int, currency: str = "USD") -> int:
    """Register ``destination_of`` on the account; its destination id."""
    done = oms.execute_one(destination_of(account_id, currency))
    assert isinstance(done, Done), done
    return int(done.ref.split(":")[1])


def make_engine(dsn: str) -> Engine:
    engine = open_engine(dsn)
    migrate(engine)
    return engine


def make_oms(engine: Engine, clock: FakeClock, config: OMSConfig | None = None) -> Rig:
    """A fresh OMS (recovered from the store) with its own venue and quote book, unseeded."""
    config = config or OMSConfig()
    cat = default_catalogue()
    book = InMemoryQuoteBook()
    venue = BBookVenue(cat, book, config.fees, config.venue, clock)
    oms = OMS(engine, cat, book, venue, config, clock)
    return Rig(engine, oms, cat, book, clock, venue, config)


def make_rig(dsn: str, clock: FakeClock | None = None, config: OMSConfig | None = None) -> Rig:
    """Migrate the store at ``dsn`` and return an OMS on it with the default quotes seeded."""
    rig = make_oms(make_engine(dsn), clock or FakeClock(), config)
    rig.seed_quotes()
    return rig


def store_snapshot(engine: Engine) -> dict[str, Any]:
    """Row counts of every table, the cached balances and the orders' states: equal before
    and after an operation that must change nothing."""
    with engine.connect() as conn:
        snap: dict[str, Any] = {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in s.metadata.tables.items()
        }
        snap["balances"] = sorted(
            tuple(r)
            for r in conn.execute(select(s.balances.c.ledger_account_id, s.balances.c.amount))
        )
        snap["order_states"] = sorted(
            tuple(r)
            for r in conn.execute(
                select(
                    s.orders.c.order_id,
                    s.orders.c.status,
                    s.orders.c.qty,
                    s.orders.c.price,
                    s.orders.c.filled_qty,
                )
            )
        )
        snap["audit_head"] = conn.execute(select(s.audit_head.c.seq, s.audit_head.c.hash)).first()
        snap["audit_head"] = tuple(snap["audit_head"]) if snap["audit_head"] else None
    return snap
