"""The day's fills as RTS 22 transaction records: one record per execution with a quantity.

A B-book broker deals on its own account: every fill is a trade between the client and the
firm, reported by the firm with trading capacity DEAL, off any venue (MIC ``XOFF``). The
client's side carries the client's identifier (an entity's LEI, a person's names, date of
birth and national client identifier); the other side carries the firm's LEI.

Records are built leniently: a missing client, name or identifier leaves its field empty, and
``validate.check_records`` reports every gap with the exec id and the field, before anything
is written. Quantities are in units of the underlying (lots × contract size), so the price
multiplier is 1; prices in the instrument's quote currency.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from assets.days import Period
from assets.regulatory.firm import Firm
from assets.warehouse.client import Warehouse
from trading.catalogue import Catalogue
from trading.errors import UnknownSymbol
from trading.instrument import AssetClass, Instrument
from trading.trading_day import utc_text

# RTS 22 field 2: up to 52 upper-case letters and digits (ESMA's validation pattern).
TX_ID_MAX: Final = 52
_TX_ID_PLAIN: Final = re.compile(r"^[A-Y0-9]+$")
_CONCAT_RE: Final = re.compile(r"^[A-Z]{2}\d{8}[A-Z#]{10}$")


@dataclass(frozen=True, slots=True)
class VenueMapping:
    """How fills from one of our execution venues are reported."""

    mic: str  # RTS 22 field 36: the venue's MIC, XOFF off venue
    capacity: str  # field 29: DEAL (own account), MTCH (matched principal), AOTC (any other)


# The internal venue names (``executions.venue``) and their reporting. A venue missing here
# (an A-book LP, whose capacity and counterparty depend on the agreement) fails the report
# rather than be guessed.
VENUES: Final[dict[str, VenueMapping]] = {"bbook": VenueMapping("XOFF", "DEAL")}


@dataclass(frozen=True, slots=True)
class Party:
    """A buyer or seller: the firm (by its LEI) or a client."""

    role: str  # client | firm
    client_id: int | None = None  # None: the firm, or a client the account does not name
    kind: str | None = None  # entity | person; None: the client is unknown
    lei: str | None = None
    first_name: str | None = None
    surname: str | None = None
    birth_date: dt.date | None = None
    national_id: str | None = None
    id_scheme: str | None = None  # persons: NIDN (national number) or CONCAT
    country_of_branch: str | None = None  # clients: RTS 22 fields 8 and 17


@dataclass(frozen=True, slots=True)
class Transaction:
    """One RTS 22 transaction (NEWT), the fields auth.016 carries, in report units."""

    tx_id: str
    exec_id: str
    account_id: int
    order_id: int | None
    symbol: str | None
    client_side: str | None  # buy | sell, the client's
    ts_ns: int
    venue: str  # the internal venue name
    executing_lei: str
    submitting_lei: str
    buyer: Party | None
    seller: Party | None
    capacity: str | None
    venue_mic: str | None
    quantity: Decimal | None  # units of the underlying
    quantity_lots: Decimal | None
    price: Decimal | None
    price_currency: str | None
    isin: str | None = None
    full_name: str | None = None
    cfi: str | None = None
    notional_currency: str | None = None
    notional_currency_2: str | None = None  # FX: the quote currency
    underlying_name: str | None = None
    underlying_isin: str | None = None
    price_multiplier: Decimal | None = None
    delivery_type: str | None = None
    decision_algo: str | None = None
    execution_algo: str | None = None
    short_selling: str | None = None  # shares: SESH | SELL
    commodity_derivative: bool | None = None  # commodity derivatives: field 64
    sft: bool = False  # field 65

    @property
    def trading_datetime(self) -> str:
        return utc_text(self.ts_ns)


@dataclass(frozen=True, slots=True)
class Excluded:
    """A fill that is not reported, and why."""

    exec_id: str
    symbol: str | None
    reason: str


def tx_id_of(exec_id: str) -> str:
    """The transaction reference of an exec id: unique, upper-case letters and digits.

    Letters A-Y and digits stand for themselves; any other character becomes ``Z`` and its
    code point in two base-36 digits, so distinct exec ids never meet (``F12-3`` is
    ``F12Z193``). An id that would pass 52 characters becomes ``H`` and a SHA-256 digest.
    """
    if _TX_ID_PLAIN.match(exec_id) and len(exec_id) <= TX_ID_MAX:
        return exec_id
    parts = []
    for char in exec_id:
        if ("A" <= char <= "Y") or ("0" <= char <= "9"):
            parts.append(char)
        elif ord(char) < 36 * 36:
            parts.append(f"Z{_base36(ord(char)):0>2}")
        else:
            parts.append("Z__")  # forces the digest below
    text = "".join(parts)
    if len(text) <= TX_ID_MAX and "_" not in text:
        return text
    digest = base64.b32encode(hashlib.sha256(exec_id.encode()).digest()).decode()
    return ("H" + digest.rstrip("="))[:TX_ID_MAX]


def _base36(value: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if not value:
            return out


def split_name(name: str | None) -> tuple[str | None, str | None]:
    """(first names, surname) of a person's legal name: the store keeps one name, so the
    surname is its last word. A one-word name has no first name (reported as missing)."""
    if not name or not name.strip():
        return None, None
    words = name.split()
    if len(words) < 2:
        return None, words[0]
    return " ".join(words[:-1]), words[-1]


# The day's fills with their order, account and client, latest versions (FINAL).
FILLS_SQL: Final = """
SELECT e.exec_id, e.order_id, e.account_id, e.qty, e.price, e.venue, e.ts_ns,
       o.symbol, o.side, a.client_id, c.kind, c.name, c.birth_date, c.lei, c.national_id
FROM executions AS e
LEFT JOIN (SELECT order_id, symbol, side FROM orders FINAL) AS o ON o.order_id = e.order_id
LEFT JOIN (SELECT account_id, client_id FROM accounts FINAL) AS a
    ON a.account_id = e.account_id
LEFT JOIN (SELECT client_id, kind, name, birth_date, lei, national_id FROM clients FINAL) AS c
    ON c.client_id = a.client_id
WHERE e.ts_ns > {start:Int64} AND e.ts_ns <= {end:Int64} AND e.qty > 0
ORDER BY e.ts_ns, e.exec_id
SETTINGS join_use_nulls = 1
"""

FILL_COLUMNS: Final = (
    "exec_id", "order_id", "account_id", "qty", "price", "venue", "ts_ns",
    "symbol", "side", "client_id", "kind", "name", "birth_date", "lei", "national_id",
)  # fmt: skip


def load_fills(wh: Warehouse, period: Period) -> list[dict[str, Any]]:
    """The period's fills (``start_ns < ts_ns <= end_ns``, qty > 0) as dicts by column."""
    rows = wh.rows(FILLS_SQL, {"start": period.start_ns, "end": period.end_ns})
    return [dict(zip(FILL_COLUMNS, row, strict=True)) for row in rows]


def client_party(row: dict[str, Any], firm: Firm) -> Party:
    """The client's side, from the account's client row (fields empty where unknown)."""
    client_id = row["client_id"]
    kind = row["kind"]
    if client_id is None or kind is None:
        return Party("client", client_id)
    if kind == "person":
        first, surname = split_name(row["name"])
        national = row["national_id"]
        scheme = None
        if national:
            scheme = "CONCAT" if _CONCAT_RE.match(national) else "NIDN"
        return Party(
            "client", client_id, kind, first_name=first, surname=surname,
            birth_date=row["birth_date"], national_id=national, id_scheme=scheme,
            country_of_branch=firm.country,
        )  # fmt: skip
    return Party("client", client_id, kind, lei=row["lei"], country_of_branch=firm.country)


def instrument_fields(inst: Instrument) -> dict[str, Any]:
    """RTS 22 fields 41-56 of an instrument: its ISIN, or what a CFD needs without one."""
    if inst.isin is not None:
        return {"isin": inst.isin}
    pair = inst.asset_class in (AssetClass.FX, AssetClass.METAL)
    return {
        "full_name": inst.full_name,
        "cfi": inst.cfi,
        "notional_currency": inst.base if pair else inst.quote,
        "notional_currency_2": inst.quote if inst.asset_class is AssetClass.FX else None,
        "underlying_name": inst.underlying or inst.symbol,
        "underlying_isin": inst.underlying_isin,
        "price_multiplier": Decimal(1),  # the quantity is already in units of the underlying
        "delivery_type": "CASH",
        "commodity_derivative": False if inst.asset_class is AssetClass.METAL else None,
    }


def to_record(row: dict[str, Any], inst: Instrument | None, firm: Firm) -> Transaction:
    exec_id = str(row["exec_id"])
    side = row["side"]
    client = client_party(row, firm)
    house = Party("firm", None, "entity", lei=firm.lei)
    buyer: Party | None
    seller: Party | None
    buyer, seller = (client, house) if side == "buy" else (house, client)
    if side not in ("buy", "sell"):
        buyer = seller = None
    venue = VENUES.get(str(row["venue"]))
    fields: dict[str, Any] = {}
    lots = units = price = None
    if inst is not None:
        lots = inst.qty_from_int(int(row["qty"]))
        units = plain(lots * inst.contract_size)
        price = plain(inst.price_from_int(int(row["price"])))
        fields = instrument_fields(inst)
        if inst.asset_class is AssetClass.EQUITY and side in ("buy", "sell"):
            # A cash account never sells short; the B-book house holds no shares, so its
            # sale to a buying client is short.
            fields["short_selling"] = "SESH" if side == "buy" else "SELL"
    return Transaction(
        tx_id=tx_id_of(exec_id), exec_id=exec_id, account_id=int(row["account_id"]),
        order_id=row["order_id"], symbol=row["symbol"], client_side=side,
        ts_ns=int(row["ts_ns"]), venue=str(row["venue"]),
        executing_lei=firm.lei, submitting_lei=firm.submitting_lei,
        buyer=buyer, seller=seller,
        capacity=venue.capacity if venue else None, venue_mic=venue.mic if venue else None,
        quantity=units, quantity_lots=lots, price=price,
        price_currency=inst.quote if inst is not None else None,
        decision_algo=firm.algo, execution_algo=firm.algo,
        **fields,
    )  # fmt: skip


def plain(value: Decimal) -> Decimal:
    """``value`` without trailing zeros and never in exponent form (1000, not 1E+3)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def build_records(
    rows: Iterable[dict[str, Any]], catalogue: Catalogue, firm: Firm
) -> tuple[list[Transaction], list[Excluded]]:
    """The reportable records and the fills left out (not financial instruments)."""
    records: list[Transaction] = []
    excluded: list[Excluded] = []
    for row in rows:
        inst: Instrument | None
        try:
            inst = catalogue.get(row["symbol"]) if row["symbol"] is not None else None
        except UnknownSymbol:
            inst = None
        if inst is not None and not inst.reportable:
            excluded.append(Excluded(str(row["exec_id"]), inst.symbol, "not_financial_instrument"))
            continue
        records.append(to_record(row, inst, firm))
    return records, excluded
