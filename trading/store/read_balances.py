"""The read side of money: open positions with their lots, balances per currency, equity and
margin, now or as of any past time.

Now reads the cached balances and the open lots; as of a past time ``T`` sums the postings
up to ``T`` inclusive (through the balance checkpoints: ``trading.store.checkpoints``) and
rebuilds each lot's remaining quantity from its closures up to ``T``. Equity needs marks:
the caller passes a mark provider (``symbol -> Quote | None``, as a ``QuoteSource.get`` is)
holding the prices of that time, and the answer names the symbols it could not mark. Money
is integers of minor units beside its currency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import Connection, func, or_, select

from trading.catalogue import Catalogue
from trading.errors import NotFound
from trading.fx import FxRates
from trading.money import to_minor
from trading.quotes import Quote
from trading.risk import equity, free_margin, position_pnl
from trading.store import schema as s
from trading.store.checkpoints import balances_as_of

Marks = Callable[[str], Quote | None]


@dataclass(frozen=True, slots=True)
class LotView:
    lot_id: int
    qty: int  # signed at opening: + long, - short
    remaining: int  # signed, as of the time asked
    price: int
    # Margin still held for the lot, account currency minor units; None as of a past time
    # (the ledger's margin balance is exact at any time: ``CurrencyBalance.margin_held``).
    margin: int | None
    open_exec_id: str
    opened_ns: int


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    net: int  # signed lot steps
    lots: tuple[LotView, ...]  # oldest first: the order FIFO closes them in

    @property
    def cost(self) -> int:
        """Signed sum of remaining × open price (lot steps × price units)."""
        return sum(lot.remaining * lot.price for lot in self.lots)


@dataclass(frozen=True, slots=True)
class CurrencyBalance:
    currency: str
    cash: int  # free cash, minor units
    margin_held: int
    withdrawal_pending: int


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    account_id: int
    currency: str  # the account's currency: what equity and margin are in
    as_of_ns: int | None  # None: now
    balances: tuple[CurrencyBalance, ...]
    positions: tuple[PositionView, ...]
    margin_held: int
    unrealized: int  # of the positions that could be marked
    equity: int  # cash + margin held + unrealized, in the account currency
    free_margin: int  # equity - margin held
    unmarked: tuple[str, ...]  # symbols with no mark or no conversion to the account currency


def open_positions(
    conn: Connection, account_id: int, as_of_ns: int | None = None
) -> list[PositionView]:
    """An account's open positions by symbol, each with its open lots, now or at a past time."""
    lots, c = s.lots, s.lot_closures
    if as_of_ns is None:
        stmt = select(lots, lots.c.remaining.label("left")).where(
            lots.c.account_id == account_id, lots.c.closed_ns.is_(None)
        )
    else:
        closed = (
            select(func.coalesce(func.sum(c.c.qty), 0))
            .where(c.c.lot_id == lots.c.lot_id, c.c.closed_ns <= as_of_ns)
            .scalar_subquery()
        )
        stmt = select(lots, (lots.c.qty - closed).label("left")).where(
            lots.c.account_id == account_id,
            lots.c.opened_ns <= as_of_ns,
            or_(lots.c.closed_ns.is_(None), lots.c.closed_ns > as_of_ns),
        )
    by_symbol: dict[str, list[LotView]] = {}
    for r in conn.execute(stmt.order_by(lots.c.symbol, lots.c.lot_id)):
        if r.left == 0:
            continue
        margin = r.margin if as_of_ns is None else None
        lot = LotView(r.lot_id, r.qty, int(r.left), r.price, margin, r.open_exec_id, r.opened_ns)
        by_symbol.setdefault(r.symbol, []).append(lot)
    return [
        PositionView(sym, sum(lot.remaining for lot in held), tuple(held))
        for sym, held in by_symbol.items()
    ]


def balances(
    conn: Connection, account_id: int, as_of_ns: int | None = None
) -> list[CurrencyBalance]:
    """Cash, margin held and withdrawals pending per currency, now or as of a past time.

    Client money is booked as the house's liability (negative balances); here it is turned
    round, so that a client holding 100.00 USD has ``cash == 10000``.
    """
    la, b = s.ledger_accounts, s.balances
    rows: list[tuple[str, str, int]]
    if as_of_ns is None:
        amount = func.coalesce(b.c.amount, 0)
        source = la.outerjoin(b, b.c.ledger_account_id == la.c.ledger_account_id)
        stmt = select(la.c.code, la.c.commodity, amount.label("amount")).select_from(source)
        rows = [(r[0], r[1], r[2]) for r in conn.execute(stmt.where(la.c.account_id == account_id))]
    else:
        # From the balance checkpoints (trading.store.checkpoints): no scan of postings.
        accounts = conn.execute(
            select(la.c.ledger_account_id, la.c.code, la.c.commodity).where(
                la.c.account_id == account_id
            )
        ).all()
        at = balances_as_of(conn, [r[0] for r in accounts], as_of_ns)
        rows = [(code, commodity, at[lid]) for lid, code, commodity in accounts]
    sums: dict[str, dict[str, int]] = {}
    for code, commodity, total in rows:
        kind = code.split(":")[2]  # client:<id>:<kind>:<commodity>
        if kind in ("cash", "margin", "withdrawal_pending"):
            sums.setdefault(commodity, {})[kind] = -int(total)
    return [
        CurrencyBalance(ccy, k.get("cash", 0), k.get("margin", 0), k.get("withdrawal_pending", 0))
        for ccy, k in sorted(sums.items())
    ]


class _MarkBook:
    """A mark provider seen as the quote source ``FxRates`` reads."""

    def __init__(self, marks: Marks) -> None:
        self._marks = marks

    def get(self, symbol: str) -> Quote | None:
        return self._marks(symbol)


def unrealized(
    catalogue: Catalogue, positions: list[PositionView], currency: str, marks: Marks
) -> tuple[int, tuple[str, ...]]:
    """Unrealized PnL of ``positions`` in ``currency`` minor units, longs marked at the bid
    and shorts at the ask (as the OMS marks them), and the symbols that could not be."""
    rates = FxRates(catalogue, _MarkBook(marks))
    total = Decimal(0)
    unmarked: list[str] = []
    for pos in positions:
        inst = catalogue.get(pos.symbol)
        quote = marks(pos.symbol)
        rate = rates.rate(inst.quote, currency)
        if quote is None or rate is None:
            unmarked.append(pos.symbol)
            continue
        total += position_pnl(inst, pos.net, pos.cost, quote, rate)
    return to_minor(total, currency, ROUND_HALF_EVEN), tuple(unmarked)


def account_snapshot(
    conn: Connection,
    catalogue: Catalogue,
    account_id: int,
    marks: Marks,
    as_of_ns: int | None = None,
) -> AccountSnapshot:
    """Balances, positions, equity and margin of an account, now or as of ``as_of_ns``
    (then ``marks`` should give that time's prices)."""
    a = s.accounts
    row = conn.execute(
        select(a.c.currency, a.c.created_ns).where(a.c.account_id == account_id)
    ).first()
    if row is None or (as_of_ns is not None and row.created_ns > as_of_ns):
        raise NotFound(f"account {account_id} does not exist", account_id=account_id)
    currency = row.currency
    cash = balances(conn, account_id, as_of_ns)
    positions = open_positions(conn, account_id, as_of_ns)
    pnl, unmarked = unrealized(catalogue, positions, currency, marks)
    own = next((b for b in cash if b.currency == currency), CurrencyBalance(currency, 0, 0, 0))
    total = equity(own.cash, own.margin_held, pnl)
    return AccountSnapshot(
        account_id, currency, as_of_ns, tuple(cash), tuple(positions), own.margin_held, pnl,
        total, free_margin(own.cash, pnl), unmarked,
    )  # fmt: skip
