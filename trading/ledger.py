"""The double-entry ledger: a chart of accounts and balanced transactions.

Sign convention. Currencies are booked from the house's side, debit positive: client money
is a liability, so a client's cash account has a negative balance while the client has
money (``client_cash_available`` turns it round). Instrument commodities (``EURUSD``) are
booked as holdings: a client long one lot holds ``+1`` lot step count in its position
account and the venue's position account (the house, for the B-book) holds the opposite,
which is exactly the house's exposure. Every transaction sums to zero per commodity.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from trading.errors import LedgerError

_NON_ALNUM = re.compile(r"[^A-Z0-9]")
# symbol -> commodity: a fill names its commodity three times, the catalogue holds a few
# hundred symbols.
_COMMODITIES: dict[str, str] = {}


def commodity_of(symbol: str) -> str:
    """The commodity code of an instrument's holdings: ``EUR/USD`` -> ``EURUSD``."""
    code = _COMMODITIES.get(symbol)
    if code is None:
        code = _NON_ALNUM.sub("", symbol.upper())
        if len(_COMMODITIES) < 100_000:  # bounded, whatever callers pass
            _COMMODITIES[symbol] = code
    return code


# The chart of accounts. Codes are stable strings; the store maps them to integer ids.
def client_cash(account_id: int, currency: str) -> str:
    return f"client:{account_id}:cash:{currency}"


def client_margin(account_id: int, currency: str) -> str:
    return f"client:{account_id}:margin:{currency}"


def client_withdrawal_pending(account_id: int, currency: str) -> str:
    return f"client:{account_id}:withdrawal_pending:{currency}"


def client_position(account_id: int, symbol: str) -> str:
    return f"client:{account_id}:position:{commodity_of(symbol)}"


def venue_position(venue: str, symbol: str) -> str:
    return f"house:{venue}:position:{commodity_of(symbol)}"


def venue_pnl(venue: str, currency: str) -> str:
    """The house's trading result against clients on a venue (B-book P&L for ``bbook``)."""
    return f"house:{venue}:pnl:{currency}"


def revenue_commission(currency: str) -> str:
    return f"house:revenue:commission:{currency}"


def revenue_markup(currency: str) -> str:
    return f"house:revenue:markup:{currency}"


def psp_clearing(currency: str) -> str:
    return f"house:psp_clearing:{currency}"


def fees(currency: str) -> str:
    return f"house:fees:{currency}"


# Named tuples, not frozen dataclasses: as immutable, and made 2-3 times faster (a fill
# makes 9 postings and 1-2 entries).
class Posting(NamedTuple):
    account: str  # account code
    commodity: str
    amount: int  # minor units, or lot steps for instruments


class Entry(NamedTuple):
    """A balanced ledger transaction before it is stored."""

    kind: str
    account_id: int | None
    ref: str | None
    postings: tuple[Posting, ...]
    memo: str | None = None


def sums_by_commodity(postings: Iterable[Posting]) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for p in postings:
        sums[p.commodity] += p.amount
    return dict(sums)


def entry(
    kind: str,
    account_id: int | None,
    ref: str | None,
    postings: Iterable[Posting],
    memo: str | None = None,
) -> Entry:
    """A transaction, refused unless its postings sum to zero per commodity."""
    kept = tuple([p for p in postings if p.amount])
    if not kept:
        raise LedgerError(f"{kind}: a transaction needs at least one non-zero posting")
    sums: dict[str, int] = {}
    for _account, commodity, amount in kept:
        sums[commodity] = sums.get(commodity, 0) + amount
    unbalanced = {c: s for c, s in sums.items() if s != 0}
    if unbalanced:
        raise LedgerError(f"{kind}: postings do not balance: {unbalanced}", unbalanced=unbalanced)
    return Entry(kind, account_id, ref, kept, memo)


def transfer(debit: str, credit: str, commodity: str, amount: int) -> tuple[Posting, Posting]:
    """``amount`` debited to one account and credited to the other."""
    return Posting(debit, commodity, amount), Posting(credit, commodity, -amount)


def house_financing(currency: str) -> str:
    """The house's result from financing (swaps): debited when it pays a client, credited
    when a client pays it."""
    return f"house:financing:{currency}"
