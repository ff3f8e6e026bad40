"""What the client routers share: the caller's own accounts, money and quantities as decimal
strings, opaque page cursors, commands sent as the caller, the quote snapshot.

Another client's account (or an id that does not exist) is 404 ``not_found`` alike: a 403
would confirm that the id belongs to someone.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Select, select

from serving.api.problems import Problem, result_of
from serving.api.sessions import Session
from serving.api.state import ApiState
from trading.bounds import INT64_MAX
from trading.catalogue import Catalogue, default_catalogue
from trading.errors import UnknownSymbol
from trading.instrument import Instrument
from trading.money import format_minor
from trading.quotes import Quote, quote_from_fields, quote_key
from trading.store import schema as s
from trading.store.read_clients import AccountSummary

# A decimal string of a quantity, a price or an amount; an idempotency key.
DECIMAL = r"^[0-9]{1,20}(\.[0-9]{1,20})?$"
KEY = r"^[\x21-\x7e]{1,128}$"

_CATALOGUE: list[Catalogue] = []


def catalogue() -> Catalogue:
    """The instrument catalogue the OMS trades (loaded once per process)."""
    if not _CATALOGUE:
        _CATALOGUE.append(default_catalogue())
    return _CATALOGUE[0]


def instrument(symbol: str) -> Instrument:
    """The instrument of ``symbol`` (an alias resolves); 404 ``not_found`` when none."""
    try:
        return catalogue().resolve(symbol)
    except UnknownSymbol:
        raise Problem.of("not_found", f"no instrument {symbol!r}") from None


# -- money, quantities, prices --------------------------------------------------------------


class Money(BaseModel):
    """An amount in its currency, as a decimal string (``"100.00"`` USD, ``"1500"`` JPY)."""

    amount: str = Field(examples=["100.00"])
    currency: str = Field(examples=["USD"])


def money(minor: int, currency: str) -> Money:
    return Money(amount=format_minor(minor, currency), currency=currency)


def qty_text(inst: Instrument, lots: int) -> str:
    return str(inst.qty_from_int(lots))


def price_text(inst: Instrument, price: int | None) -> str | None:
    return None if price is None else str(inst.price_from_int(price))


def avg_price_text(inst: Instrument, notional: int, qty: int) -> str | None:
    """``notional`` (lot steps × price units) over ``qty`` lot steps as a price, rounded
    half even to three places past the price's, as the OMS's acks give it."""
    if not qty:
        return None
    exact = (Decimal(notional) / qty).scaleb(-inst.price_precision)
    return str(exact.quantize(Decimal(1).scaleb(-(inst.price_precision + 3)), ROUND_HALF_EVEN))


def time_ns(t: dt.datetime | None) -> int | None:
    """UTC nanoseconds of a query's time (a naive one is taken as UTC)."""
    if t is None:
        return None
    aware = t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)
    ns = int(aware.timestamp()) * 10**9 + aware.microsecond * 1000
    if not 0 <= ns < 2**63:  # the store's times are 64-bit nanoseconds since 1970
        raise Problem.of("invalid_input", f"time out of range: {t.isoformat()}",
                         location="query")  # fmt: skip
    return ns


def percent_text(level: Decimal | None) -> str | None:
    return None if level is None else str(level)


# -- ownership ------------------------------------------------------------------------------


def _not_found(account_id: int) -> Problem:
    return Problem.of("not_found", f"no account {account_id}", account_id=account_id)


def _summary_select() -> Select[Any]:
    """An ``AccountSummary``'s columns, in its order."""
    a = s.accounts
    return select(a.c.account_id, a.c.currency, a.c.tier, a.c.account_type, a.c.state,
                  a.c.leverage, a.c.created_ns)  # fmt: skip


def accounts_of(conn: Connection, user: Session) -> list[AccountSummary]:
    """The caller's client's accounts, oldest first (none for a staff user)."""
    if user.client_id is None:
        return []
    a = s.accounts
    stmt = _summary_select().where(a.c.client_id == user.client_id).order_by(a.c.account_id)
    return [AccountSummary(*r) for r in conn.execute(stmt)]


def owned_account(conn: Connection, user: Session, account_id: int) -> AccountSummary:
    """The caller's account ``account_id``; 404 for anyone else's or none."""
    # An id no store column can hold names nothing (and must not reach the database).
    if user.client_id is None or not 0 < account_id <= INT64_MAX:
        raise _not_found(account_id)
    a = s.accounts
    row = conn.execute(
        _summary_select().where(a.c.account_id == account_id, a.c.client_id == user.client_id)
    ).first()
    if row is None:
        raise _not_found(account_id)
    return AccountSummary(*row)


# -- cursors --------------------------------------------------------------------------------

_CURSOR_TAG = "c1."


def encode_cursor(store_cursor: str | None) -> str | None:
    """The store's keyset cursor wrapped so that clients treat it as opaque."""
    if store_cursor is None:
        return None
    raw = base64.urlsafe_b64encode(store_cursor.encode()).decode().rstrip("=")
    return _CURSOR_TAG + raw


def decode_cursor(cursor: str | None) -> str | None:
    """The store's cursor inside ``cursor``; 422 ``invalid_input`` for one not made here."""
    if cursor is None or cursor == "":
        return None
    bad = Problem.of(
        "invalid_input", "not a cursor of this listing", field="cursor", location="query"
    )
    if not cursor.startswith(_CURSOR_TAG) or len(cursor) > 512:
        raise bad
    body = cursor[len(_CURSOR_TAG) :]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None


# -- commands -------------------------------------------------------------------------------


def actor_of(user: Session) -> str:
    return f"api:user-{user.user_id}"


def keyed_command_id(user: Session, scope: str, key: str) -> str:
    """A bus command id made from the caller's idempotency key: the same user, scope and
    key always give the same id, so the OMS answers a retry with the original reply (and
    another body under it with ``duplicate_command_id``)."""
    digest = hashlib.sha256(f"{user.user_id}\x00{scope}\x00{key}".encode()).hexdigest()
    return f"api-{scope}-{digest[:40]}"


def idempotency_conflict() -> Problem:
    return Problem(
        409,
        "idempotency_conflict",
        "this idempotency key was used with another request body",
        title="Idempotency conflict",
    )


def send(
    state: ApiState,
    user: Session,
    type_name: str,
    body: Mapping[str, Any],
    *,
    command_id: str | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """Sends a command as the caller; its result, or its failure as a problem."""
    reply = state.bus.send_raw(
        type_name,
        body,
        state.settings.api_command_timeout_s,
        command_id=command_id,
        reason=reason,
        actor=actor_of(user),
    )
    return result_of(reply)


# -- quotes ---------------------------------------------------------------------------------


def quotes(state: ApiState, symbols: Iterable[str]) -> dict[str, Quote | None]:
    """The snapshot the tick pipeline keeps per symbol, as it is (one round trip). Age is
    not judged here: the quote carries its ``ts_ns`` and the caller sees it."""
    wanted = list(dict.fromkeys(symbols))
    if not wanted:
        return {}
    pipe = state.redis.pipeline(transaction=False)
    for symbol in wanted:
        pipe.hgetall(quote_key(symbol))
    out: dict[str, Quote | None] = {}
    for symbol, raw in zip(wanted, pipe.execute(), strict=True):
        try:
            out[symbol] = quote_from_fields(symbol, raw) if raw else None
        except ValueError:  # written by something else than the pipeline: no quote
            out[symbol] = None
    return out
