"""The records as CSV: one row per transaction, the same fields as the XML, flat.

Decimals are plain decimal strings (no exponent), dates ISO, booleans ``true``/``false``,
absent fields empty. The column names follow RTS 22's field names.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, Final

from assets.regulatory.records import Party, Transaction

PARTY_COLUMNS: Final = (
    "id_type", "lei", "first_name", "surname", "birth_date", "national_id", "id_scheme",
    "country_of_branch", "client_id",
)  # fmt: skip

COLUMNS: Final = (
    "tx_id", "exec_id", "report_status", "executing_entity_lei", "submitting_entity_lei",
    "investment_firm", *(f"buyer_{c}" for c in PARTY_COLUMNS),
    *(f"seller_{c}" for c in PARTY_COLUMNS),
    "transmission", "trading_datetime", "trading_capacity", "quantity", "quantity_lots",
    "price", "price_currency", "venue", "isin", "full_name", "cfi", "notional_currency",
    "notional_currency_2", "price_multiplier", "underlying_isin", "underlying_name",
    "delivery_type", "investment_decision_algo", "execution_algo", "short_selling_indicator",
    "commodity_derivative_indicator", "sft_indicator", "account_id", "order_id", "symbol",
    "client_side", "internal_venue",
)  # fmt: skip


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return format(value, "f") if not isinstance(value, str | int) else str(value)


def _party(p: Party | None) -> list[str]:
    if p is None:
        return [""] * len(PARTY_COLUMNS)
    id_type = "lei" if p.kind != "person" else "person"
    values = (id_type, p.lei, p.first_name, p.surname, p.birth_date, p.national_id,
              p.id_scheme, p.country_of_branch, p.client_id)  # fmt: skip
    return [_text(v) for v in values]


def row_of(r: Transaction) -> list[str]:
    head = [r.tx_id, r.exec_id, "NEWT", r.executing_lei, r.submitting_lei, "true"]
    tail = (
        False, r.trading_datetime, r.capacity, r.quantity, r.quantity_lots, r.price,
        r.price_currency, r.venue_mic, r.isin, r.full_name, r.cfi, r.notional_currency,
        r.notional_currency_2, r.price_multiplier, r.underlying_isin, r.underlying_name,
        r.delivery_type, r.decision_algo, r.execution_algo, r.short_selling,
        r.commodity_derivative, r.sft, r.account_id, r.order_id, r.symbol, r.client_side,
        r.venue,
    )  # fmt: skip
    return [*head, *_party(r.buyer), *_party(r.seller), *(_text(v) for v in tail)]


def render(records: Sequence[Transaction]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(row_of(r) for r in records)
    return out.getvalue()
