"""The ledger as a Beancount 3 file, so that an independent engine re-books our lots FIFO.

``export_beancount(conn, catalogue, out)`` writes every ledger transaction, in ``txn_id``
order, streamed from the store (server-side cursors, ``yield_per``): memory holds one
transaction and one row per ledger account, never the ledger.

What the file says
------------------
- Currency postings are the ledger's minor units as decimals (``trading.money``), with the
  ledger's sign convention unchanged (client money is a negative liability balance).
- Instrument postings (commodity ``EURUSD``) are lot steps turned into units of the
  underlying: ``qty / qty_scale * contract_size`` (one EUR/USD lot is 100,000 ``EURUSD``),
  priced per unit in the instrument's quote currency (``price / price_scale``).
- ``fill_open``: the client's position posting is a lot held at cost,
  ``100000 EURUSD {1.10013 USD, "<open exec id>"}``; the venue's house position posting is
  a conversion at the fill price, ``-100000 EURUSD @ 1.10013 USD``. Both weigh the same.
- ``fill_close``: the client's position posting reduces with an empty cost ``{}`` at the
  close price, so Beancount picks the lots itself, FIFO; the house posting is at the close
  price; the account-currency cash legs are as booked; and one more posting,
  ``Income:Clients:C<id>:RealizedPnL:<QUOTE>``, carries minus the sum of the transaction's
  ``lot_closures.realized_quote`` (exact, in the quote currency; a client gain is a negative
  Income posting). That posting balances the quote currency only if Beancount's FIFO closed
  the same slices of the same lots as ours did: ``bean-check`` is the independent check.

What Beancount needed (found with beancount 3.2.3)
--------------------------------------------------
- Short positions: with FIFO booking, Beancount 3 accepts lots of negative units held at
  cost (``-100000 EURUSD {1.1 USD}``) and reduces them with a positive ``{}`` posting,
  oldest first, exactly as for longs. Under the default STRICT booking the same reduction
  across two lots fails as "Ambiguous matches", so the file sets the global
  ``option "booking_method" "FIFO"`` and, belt and braces, opens every client position
  account with ``"FIFO"``.
- Lot labels: Beancount keys an inventory by (commodity, cost number, cost date, label) and
  has day-granular dates. Two of our lots opened the same day at the same price would merge
  into one Beancount position, and a third lot opened between them at another price would
  then be reduced after both: FIFO would differ from ours for no fault of ours. So every
  lot carries its opening exec id as a label. Beancount's FIFO sorts candidate lots by
  date, stably, in inventory (insertion) order, i.e. by opening order within a day.
- Ordering: Beancount books transactions by date, then file order. A transaction's date is
  the UTC day of the running maximum of ``ts_ns`` in ``txn_id`` order (equal to its own
  day unless a venue reported a time earlier than an already booked transaction), so that
  Beancount books in the ledger's order; the exact ``ts_ns`` is in the metadata.
- Tolerances: every number written is exact (minor units, price grid, lot grid, and the
  exact ``realized_quote`` decimals), so every transaction balances to exactly zero. The
  file sets ``option "tolerance_multiplier" "0"``: Beancount would otherwise infer half a
  cent of slack per USD transaction from its two-decimal cash legs, and a wrong realized
  PnL of less than that would pass.

Account names are Beancount names made from the ledger codes by one table
(``beancount_account``), e.g. ``client:42:cash:USD`` -> ``Liabilities:Clients:C42:Cash:USD``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any, Final, TextIO

from sqlalchemy import Connection, and_, func, select

from trading.catalogue import Catalogue
from trading.errors import LedgerError
from trading.instrument import Instrument
from trading.ledger import commodity_of
from trading.money import format_minor, is_currency
from trading.store import schema as s

__all__ = ["beancount_account", "export_beancount"]

_YIELD_PER: Final = 2_000
_FILL_OPEN: Final = "fill_open"
_FILL_CLOSE: Final = "fill_close"
_EXACT: Final = Context(prec=80)
_INDENT: Final = "  "

# Ledger code -> Beancount account. First match wins: the fixed house accounts come before
# the per-venue patterns so that no venue name can shadow them.
_C = r"(?P<c>[A-Z0-9]+)"
_ACCOUNT_NAMES: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (rf"client:(?P<id>\d+):cash:{_C}", "Liabilities:Clients:C{id}:Cash:{c}"),
        (rf"client:(?P<id>\d+):margin:{_C}", "Liabilities:Clients:C{id}:Margin:{c}"),
        (rf"client:(?P<id>\d+):withdrawal_pending:{_C}",
         "Liabilities:Clients:C{id}:WithdrawalPending:{c}"),
        (rf"client:(?P<id>\d+):position:{_C}", "Assets:Clients:C{id}:Positions:{c}"),
        (rf"house:revenue:commission:{_C}", "Income:House:Commission:{c}"),
        (rf"house:revenue:markup:{_C}", "Income:House:Markup:{c}"),
        (rf"house:psp_clearing:{_C}", "Assets:House:PSPClearing:{c}"),
        (rf"house:fees:{_C}", "Expenses:House:Fees:{c}"),
        (rf"house:financing:{_C}", "Income:House:Financing:{c}"),
        (rf"house:(?P<venue>[^:]+):position:{_C}", "Liabilities:House:{venue}:Positions:{c}"),
        (rf"house:(?P<venue>[^:]+):pnl:{_C}", "Income:House:{venue}:PnL:{c}"),
    )
)  # fmt: skip
_CLIENT_POSITION: Final = re.compile(rf"client:(?P<id>\d+):position:{_C}")
_WORD: Final = re.compile(r"[A-Za-z0-9]+")


def _component(name: str) -> str:
    """A Beancount account component from a free name: ``lp_fix`` -> ``LpFix``."""
    parts = _WORD.findall(name)
    if not parts:
        raise LedgerError(f"{name!r} cannot name a Beancount account component")
    return "".join(p[0].upper() + p[1:] for p in parts)


def beancount_account(code: str) -> str:
    """The Beancount account of a ledger account code; raises LedgerError if unmapped."""
    for pattern, template in _ACCOUNT_NAMES:
        m = pattern.fullmatch(code)
        if m is not None:
            parts = m.groupdict()
            if "venue" in parts:
                parts["venue"] = _component(parts["venue"])
            return template.format(**parts)
    raise LedgerError(f"ledger account {code!r} has no Beancount name", code=code)


def _realized_account(account_id: str, currency: str) -> str:
    return f"Income:Clients:C{account_id}:RealizedPnL:{currency}"


# -- formatting ----------------------------------------------------------------------------


def _num(value: Decimal) -> str:
    """A decimal in plain notation (never ``1E+3``, never ``-0``)."""
    return "0" if value == 0 else format(value, "f")


def _string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _day(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%d")


class _Instruments:
    """Instruments by the commodity code of their holdings, with exact unit conversions."""

    def __init__(self, catalogue: Catalogue) -> None:
        self._by_commodity = {commodity_of(i.symbol): i for i in catalogue}

    def get(self, commodity: str) -> Instrument:
        inst = self._by_commodity.get(commodity)
        if inst is None:
            raise LedgerError(
                f"commodity {commodity!r} is neither a currency nor an instrument of the catalogue",
                commodity=commodity,
            )
        return inst

    @staticmethod
    def units(inst: Instrument, qty: int) -> Decimal:
        return _EXACT.divide(_EXACT.multiply(Decimal(qty), inst.contract_size), inst.qty_scale)

    @staticmethod
    def price(inst: Instrument, price: int) -> Decimal:
        return _EXACT.divide(Decimal(price), inst.price_scale)


# -- the header ----------------------------------------------------------------------------


def _header(conn: Connection, instruments: _Instruments, out: TextIO) -> None:
    a = s.ledger_accounts
    out.write('option "title" "Bourse ledger"\n')
    for (ccy,) in conn.execute(
        select(s.accounts.c.currency).distinct().order_by(s.accounts.c.currency)
    ):
        out.write(f'option "operating_currency" {_string(ccy)}\n')
    out.write('option "booking_method" "FIFO"\n')
    out.write('option "tolerance_multiplier" "0"\n\n')

    first_ns = conn.execute(select(func.min(a.c.opened_ns))).scalar()
    first_post = conn.execute(select(func.min(s.postings.c.ts_ns))).scalar()
    starts = [t for t in (first_ns, first_post) if t is not None]
    if not starts:
        return
    day = _day(min(starts))
    commodities = {c for (c,) in conn.execute(select(a.c.commodity).distinct())}
    for code in sorted(commodities):
        if is_currency(code):
            continue
        inst = instruments.get(code)
        commodities.add(inst.quote)
    for code in sorted(commodities):
        out.write(f"{day} commodity {code}\n")
        if not is_currency(code):
            inst = instruments.get(code)
            out.write(f"{_INDENT}symbol: {_string(inst.symbol)}\n")
            out.write(f"{_INDENT}contract_size: {_string(_num(inst.contract_size))}\n")
            out.write(f"{_INDENT}quote: {_string(inst.quote)}\n")
    out.write("\n")


def _opens(conn: Connection, instruments: _Instruments, out: TextIO) -> None:
    """An ``open`` per ledger account, dated no later than its first posting, and one per
    (client, quote currency) for the realized PnL postings the file adds."""
    a, p = s.ledger_accounts, s.postings
    first = (
        select(p.c.ledger_account_id, func.min(p.c.ts_ns).label("first_ns"))
        .group_by(p.c.ledger_account_id)
        .subquery()
    )
    stmt = (
        select(a.c.code, a.c.commodity, a.c.opened_ns, first.c.first_ns)
        .select_from(a.outerjoin(first, first.c.ledger_account_id == a.c.ledger_account_id))
        .order_by(a.c.ledger_account_id)
        .execution_options(yield_per=_YIELD_PER)
    )
    realized: dict[tuple[str, str], int] = {}
    for row in conn.execute(stmt):
        ts = row.opened_ns if row.first_ns is None else min(row.opened_ns, row.first_ns)
        name = beancount_account(row.code)
        m = _CLIENT_POSITION.fullmatch(row.code)
        if m is not None:
            out.write(f'{_day(ts)} open {name} {row.commodity} "FIFO"\n')
            key = (m["id"], instruments.get(row.commodity).quote)
            realized[key] = min(ts, realized.get(key, ts))
        else:
            out.write(f"{_day(ts)} open {name} {row.commodity}\n")
    for (client, ccy), ts in sorted(realized.items()):
        out.write(f"{_day(ts)} open {_realized_account(client, ccy)} {ccy}\n")
    out.write("\n")


# -- the transactions ----------------------------------------------------------------------


def _closures(conn: Connection, max_txn: int) -> Iterator[tuple[int, list[Any]]]:
    lc = s.lot_closures
    stmt = (
        select(lc.c.txn_id, lc.c.realized_quote, lc.c.quote_currency)
        .where(lc.c.txn_id <= max_txn)
        .order_by(lc.c.txn_id, lc.c.closure_id)
        .execution_options(yield_per=_YIELD_PER)
    )
    for txn_id, rows in itertools.groupby(conn.execute(stmt), key=lambda r: r.txn_id):
        yield txn_id, list(rows)


class _ClosureCursor:
    """The lot closures, merged with the transactions stream by txn id (both ascending)."""

    def __init__(self, groups: Iterator[tuple[int, list[Any]]]) -> None:
        self._groups = groups
        self._head: tuple[int, list[Any]] | None = next(groups, None)

    def take(self, txn_id: int) -> list[Any]:
        while self._head is not None and self._head[0] < txn_id:
            self._head = next(self._groups, None)
        if self._head is not None and self._head[0] == txn_id:
            rows = self._head[1]
            self._head = next(self._groups, None)
            return rows
        return []


def _posting_lines(
    txn: Any, rows: Sequence[Any], closures: list[Any], instruments: _Instruments
) -> list[str]:
    lines: list[str] = []
    client_ids: set[str] = set()
    quote_inst: Instrument | None = None
    for r in rows:
        name = beancount_account(r.code)
        if is_currency(r.commodity):
            lines.append(f"{_INDENT}{name}  {format_minor(r.amount, r.commodity)} {r.commodity}")
            continue
        inst = instruments.get(r.commodity)
        if r.exec_price is None:
            raise LedgerError(
                f"txn {txn.txn_id} ({txn.kind}) moves {r.commodity} but has no execution "
                f"{txn.ref!r} to price it",
                txn_id=txn.txn_id,
            )
        units = f"{_num(instruments.units(inst, r.amount))} {r.commodity}"
        price = f"{_num(instruments.price(inst, r.exec_price))} {inst.quote}"
        client = _CLIENT_POSITION.fullmatch(r.code)
        if client is None:
            lines.append(f"{_INDENT}{name}  {units} @ {price}")
        elif txn.kind == _FILL_OPEN:
            lines.append(f"{_INDENT}{name}  {units} {{{price}, {_string(txn.ref)}}}")
        elif txn.kind == _FILL_CLOSE:
            lines.append(f"{_INDENT}{name}  {units} {{}} @ {price}")
            client_ids.add(client["id"])
            quote_inst = inst
        else:
            raise LedgerError(
                f"txn {txn.txn_id}: a {txn.kind!r} transaction moves a client position; only "
                f"{_FILL_OPEN} and {_FILL_CLOSE} can be exported",
                txn_id=txn.txn_id,
            )
    if quote_inst is not None:
        if len(client_ids) != 1:
            raise LedgerError(f"txn {txn.txn_id} closes positions of several clients")
        total = Decimal(0)
        for c in closures:
            if c.quote_currency != quote_inst.quote:
                raise LedgerError(
                    f"txn {txn.txn_id}: a closure in {c.quote_currency} for {quote_inst.symbol} "
                    f"quoted in {quote_inst.quote}",
                    txn_id=txn.txn_id,
                )
            total = _EXACT.add(total, Decimal(c.realized_quote))
        if total != 0:
            account = _realized_account(client_ids.pop(), quote_inst.quote)
            lines.append(f"{_INDENT}{account}  {_num(-total)} {quote_inst.quote}")
    return lines


def _transaction(
    txn: Any, day: str, rows: Sequence[Any], closures: list[Any], instruments: _Instruments
) -> str:
    head = [f"{day} * {_string(txn.kind)} #{txn.kind}", f"{_INDENT}txn_id: {txn.txn_id}",
            f"{_INDENT}ts_ns: {_string(str(txn.ts_ns))}"]  # fmt: skip
    if txn.account_id is not None:
        head.append(f"{_INDENT}account_id: {txn.account_id}")
    if txn.ref is not None:
        key = "exec_id" if txn.kind in (_FILL_OPEN, _FILL_CLOSE) else "ref"
        head.append(f"{_INDENT}{key}: {_string(txn.ref)}")
    if txn.memo:
        head.append(f"{_INDENT}memo: {_string(txn.memo)}")
    return "\n".join([*head, *_posting_lines(txn, rows, closures, instruments)]) + "\n\n"


def _transactions(conn: Connection, max_txn: int) -> Iterable[tuple[int, Iterator[Any]]]:
    t, p, a, e = s.ledger_txns, s.postings, s.ledger_accounts, s.executions
    stmt = (
        select(
            t.c.txn_id,
            t.c.kind,
            t.c.ref,
            t.c.ts_ns,
            t.c.memo,
            t.c.account_id,
            a.c.code,
            p.c.commodity,
            p.c.amount,
            e.c.price.label("exec_price"),
        )
        .select_from(
            t.join(p, p.c.txn_id == t.c.txn_id)
            .join(a, a.c.ledger_account_id == p.c.ledger_account_id)
            .outerjoin(e, and_(e.c.exec_id == t.c.ref, t.c.kind.in_([_FILL_OPEN, _FILL_CLOSE])))
        )
        .where(t.c.txn_id <= max_txn)
        .order_by(t.c.txn_id, p.c.posting_id)
        .execution_options(yield_per=_YIELD_PER)
    )
    return itertools.groupby(conn.execute(stmt), key=lambda r: r.txn_id)


def export_beancount(conn: Connection, catalogue: Catalogue, out: TextIO) -> int:
    """Write every ledger transaction to ``out`` as Beancount 3 text; the count written.

    Reads the transactions committed when it starts (up to the largest ``txn_id`` then),
    so that a concurrent writer cannot add a posting to an account the header did not open.
    """
    instruments = _Instruments(catalogue)
    max_txn = conn.execute(select(func.max(s.ledger_txns.c.txn_id))).scalar()
    _header(conn, instruments, out)
    if max_txn is None:
        return 0
    _opens(conn, instruments, out)
    closures = _ClosureCursor(_closures(conn, max_txn))
    count = 0
    latest_ns = 0
    for txn_id, group in _transactions(conn, max_txn):
        rows = list(group)
        txn = rows[0]
        latest_ns = max(latest_ns, txn.ts_ns)
        found = closures.take(txn_id) if txn.kind == _FILL_CLOSE else []
        out.write(_transaction(txn, _day(latest_ns), rows, found, instruments))
        count += 1
    return count
