"""Checks before anything is written: every record's required fields, then the built document.

``check_records`` names each gap by exec id and field (a client without a national
identifier, a venue with no reporting mapping...). ``check_model`` walks a built auth.016
document against the facets its xsdata models carry (required elements, occurrences,
patterns, lengths, digits, one branch per choice): a second check that what the records held
came out as the schema wants. ``ReportInvalid`` carries the problems; the report writes
nothing when it is raised.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from assets.regulatory.records import TX_ID_MAX, Party, Transaction
from trading.clients import check_lei, check_national_id
from trading.errors import InvalidClient
from trading.instrument import is_isin

_TX_ID_RE: Final = re.compile(rf"^[A-Z0-9]{{1,{TX_ID_MAX}}}$")
_CCY_RE: Final = re.compile(r"^[A-Z]{3}$")
_CFI_RE: Final = re.compile(r"^[A-Z]{6}$")
# xs:decimal facets of auth.016's quantity (18 digits, 17 decimals) and price (18, 13).
_QTY_DIGITS: Final = (18, 17)
_PRICE_DIGITS: Final = (18, 13)
SHOWN_MAX: Final = 20


@dataclass(frozen=True, slots=True)
class Problem:
    exec_id: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"exec {self.exec_id}: {self.field}: {self.message}"


class ReportInvalid(ValueError):
    """The report cannot be written: these records miss or break required fields."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = "\n  ".join(str(p) for p in self.problems[:SHOWN_MAX])
        more = len(self.problems) - SHOWN_MAX
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"regulatory report not written: {len(self.problems)} problem(s)\n  {shown}{tail}"
        )


def _digits_ok(value: Decimal, facets: tuple[int, int]) -> bool:
    """Whether ``value`` fits xs:decimal's totalDigits and fractionDigits."""
    total, fraction = facets
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    decimals = max(0, -exponent)
    integer_digits = len(digits) + exponent if exponent >= 0 else max(0, len(digits) - decimals)
    return decimals <= fraction and integer_digits + decimals <= total


def _party(role: str, party: Party | None) -> Iterator[tuple[str, str]]:
    if party is None:
        yield role, "the order's side is neither buy nor sell"
        return
    if party.role == "firm":
        return  # the firm's LEI is checked once, as the executing entity
    if party.kind is None:
        who = "no client" if party.client_id is None else f"client {party.client_id}, not found"
        yield role, f"the account names {who}: a client identifier is required"
        return
    if party.kind == "entity":
        try:
            check_lei(party.lei)
        except InvalidClient as exc:
            yield f"{role}.lei", str(exc)
        return
    for name in ("first_name", "surname", "birth_date"):
        if getattr(party, name) is None:
            yield f"{role}.{name}", "missing (required of a person)"
    if party.national_id is None:
        yield f"{role}.national_id", "missing: a person needs a national client identifier"
    else:
        try:
            check_national_id(party.national_id, party.birth_date)
        except InvalidClient as exc:
            yield f"{role}.national_id", str(exc)
    if party.country_of_branch is None:
        yield f"{role}.country_of_branch", "missing"


def _record(r: Transaction) -> Iterator[tuple[str, str]]:
    if not _TX_ID_RE.match(r.tx_id):
        yield "tx_id", f"{r.tx_id!r} is not 1-{TX_ID_MAX} upper-case letters or digits"
    for name in ("executing_lei", "submitting_lei"):
        try:
            check_lei(getattr(r, name))
        except InvalidClient as exc:
            yield name, str(exc)
    if r.order_id is None or r.symbol is None or r.client_side is None:
        yield "order", f"order {r.order_id} of this execution is not in the warehouse"
    yield from _party("buyer", r.buyer)
    yield from _party("seller", r.seller)
    if r.capacity is None or r.venue_mic is None:
        yield "venue", f"no reporting mapping (MIC, capacity) for venue {r.venue!r}"
    if r.quantity is None or r.price is None or r.price_currency is None:
        if r.symbol is not None:
            yield "instrument", f"symbol {r.symbol!r} is not in the catalogue"
        return
    if not r.quantity > 0 or not _digits_ok(r.quantity, _QTY_DIGITS):
        yield "quantity", f"{r.quantity} is not a positive decimal of 18 digits, 17 decimals"
    if not r.price > 0 or not _digits_ok(r.price, _PRICE_DIGITS):
        yield "price", f"{r.price} is not a positive decimal of 18 digits, 13 decimals"
    if not _CCY_RE.match(r.price_currency):
        yield "price_currency", f"{r.price_currency!r} is not an ISO 4217 code"
    yield from _instrument(r)


def _instrument(r: Transaction) -> Iterator[tuple[str, str]]:
    if r.isin is not None:
        if not is_isin(r.isin):
            yield "instrument.isin", f"{r.isin!r} is not a valid ISIN"
        return
    if not r.full_name:
        yield "instrument.full_name", f"{r.symbol} has no ISIN and no full name in the catalogue"
    if r.cfi is None or not _CFI_RE.match(r.cfi):
        yield "instrument.cfi", f"{r.symbol} has no ISIN and no CFI code in the catalogue"
    for name in ("notional_currency", "notional_currency_2"):
        value = getattr(r, name)
        if (value is not None or name == "notional_currency") and not _CCY_RE.match(value or ""):
            yield f"instrument.{name}", f"{value!r} is not an ISO 4217 code"
    if not r.underlying_name and r.underlying_isin is None:
        yield "instrument.underlying", f"{r.symbol} has no underlying"


def check_records(records: Sequence[Transaction]) -> list[Problem]:
    """Every missing or malformed required field, by exec id; duplicates of a reference."""
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for r in records:
        problems += [Problem(r.exec_id, f, m) for f, m in _record(r)]
        if r.tx_id in seen:
            problems.append(
                Problem(r.exec_id, "tx_id", f"{r.tx_id} repeats (exec {seen[r.tx_id]})")
            )
        seen.setdefault(r.tx_id, r.exec_id)
    return problems


# --- the built document against its models' facets ---------------------------------------------


def _is_set(value: Any) -> bool:
    return value is not None and value != []


def check_model(obj: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, problem) for every facet of the xsdata models that ``obj`` breaks."""
    problems: list[tuple[str, str]] = []
    if not dataclasses.is_dataclass(obj):
        return problems
    fields = [f for f in dataclasses.fields(obj) if f.metadata.get("type") != "Ignore"]
    if type(obj).__name__.split("Auth")[0].endswith("Choice"):
        branches = [f.name for f in fields if f.name != "splmtry_data"]
        chosen = [name for name in branches if _is_set(getattr(obj, name))]
        if len(chosen) != 1:
            problems.append((path or "/", f"a choice needs exactly one branch, has {chosen}"))
    for f in fields:
        name = f.metadata.get("name", f.name)
        here = f"{path}/{name}"
        value = getattr(obj, f.name)
        meta = f.metadata
        if isinstance(value, list):
            if len(value) < meta.get("min_occurs", 0):
                problems.append((here, f"needs at least {meta['min_occurs']}"))
            for i, item in enumerate(value):
                problems += _check_value(item, meta, f"{here}[{i}]")
            continue
        if value is None:
            if meta.get("required"):
                problems.append((here, "required"))
            continue
        problems += _check_value(value, meta, here)
    return problems


def _check_value(value: Any, meta: Mapping[str, Any], here: str) -> list[tuple[str, str]]:
    if dataclasses.is_dataclass(value):
        return check_model(value, here)
    problems: list[tuple[str, str]] = []
    text = value.value if isinstance(value, Enum) else value
    if isinstance(text, str):
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, text):
            problems.append((here, f"{text!r} does not match {pattern}"))
        if len(text) < meta.get("min_length", 0) or len(text) > meta.get("max_length", 10**9):
            problems.append((here, f"{text!r} has a length outside the schema's"))
    if isinstance(text, Decimal):
        if "min_inclusive" in meta and text < meta["min_inclusive"]:
            problems.append((here, f"{text} is below {meta['min_inclusive']}"))
        facets = (meta.get("total_digits", 10**9), meta.get("fraction_digits", 10**9))
        if not _digits_ok(text, facets):
            problems.append((here, f"{text} has more digits than {facets}"))
    return problems
