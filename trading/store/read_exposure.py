"""The house's positions per venue, from the ledger: what is hedged and what is not.

Every fill moves the client's position against its venue's position account,
``house:<venue>:position:<commodity>`` (``trading.fills``). On the B-book (``bbook``) the
house is the client's counterparty: that position is the house's own risk, unhedged. On an
LP's venue the house passed the trade on to the LP: that position is matched by the LP's
fill, hedged. The balances are the store's cached ones (``ledger verify`` checks them).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from trading.routing import BBOOK
from trading.store import schema as s

_PREFIX = "house:"
_POSITION = ":position:"


@dataclass(frozen=True, slots=True)
class VenueExposure:
    venue: str
    commodity: str  # ``EURUSD`` for EUR/USD (trading.ledger.commodity_of)
    qty: int  # the house's net position, lot steps: + long, - short
    hedged: bool  # at an LP (passed on), not the B-book's own risk


def house_exposure(conn: Connection) -> list[VenueExposure]:
    """Every non-zero house position per venue and commodity, sorted by commodity, with the
    B-book (unhedged) first."""
    a, b = s.ledger_accounts, s.balances
    rows = conn.execute(
        select(a.c.code, b.c.amount)
        .join(b, b.c.ledger_account_id == a.c.ledger_account_id)
        .where(a.c.code.like(f"{_PREFIX}%{_POSITION}%"))
    )
    out = []
    for code, amount in rows:
        venue, _, commodity = code.removeprefix(_PREFIX).partition(_POSITION)
        if amount and venue and commodity:
            out.append(VenueExposure(venue, commodity, int(amount), venue != BBOOK))
    return sorted(out, key=lambda e: (e.commodity, e.hedged, e.venue))


def unhedged(exposures: list[VenueExposure]) -> dict[str, int]:
    """The house's own risk per commodity: its B-book positions alone."""
    return {e.commodity: e.qty for e in exposures if not e.hedged}
