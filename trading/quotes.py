"""Quotes: the price in force per symbol, behind a small interface.

The in-memory book serves the simulation and unit tests; the tick pipeline feeds a
Redis-backed book (``serving.quotes.RedisQuoteBook``) that implements the same
``QuoteSource``. The Redis layout (key names, and the fields of a snapshot hash and of a
stream entry, with their pure encoder and decoder) is defined at the end of this module, so
that the writer and every reader share it; docs/quotes.md describes it for readers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from trading.errors import MalformedData
from trading.fields import text_of


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book in the instrument's integer units. Sizes ``None`` mean unlimited depth."""

    symbol: str
    bid: int
    ask: int
    ts_ns: int
    bid_size: int | None = None
    ask_size: int | None = None

    @property
    def mid2(self) -> int:
        """Twice the mid, so that it stays an integer."""
        return self.bid + self.ask


class QuoteSource(Protocol):
    """Where prices are read."""

    def get(self, symbol: str) -> Quote | None: ...


class QuoteBook(QuoteSource, Protocol):
    """The OMS's quotes: read, and told of each ``QuoteUpdate`` it executes.

    A book fed elsewhere (the Redis snapshots the tick pipeline writes) already holds the
    quote and may do nothing in ``update``.
    """

    def update(self, quote: Quote) -> None: ...


class InMemoryQuoteBook:
    def __init__(self) -> None:
        self._quotes: dict[str, Quote] = {}

    def get(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def update(self, quote: Quote) -> None:
        if quote.bid <= 0 or quote.ask < quote.bid:
            raise MalformedData(f"crossed or non-positive quote: {quote}")
        self._quotes[quote.symbol] = quote

    def __len__(self) -> int:
        return len(self._quotes)


# -- the Redis layout ----------------------------------------------------------------------
#
# Shared by the writer (``pipelines.ticks.redis_sink``) and the readers (the OMS through
# ``serving.quotes.RedisQuoteBook``, the API's WebSocket), without importing redis here.
# docs/quotes.md is the contract for readers.

QUOTE_KEY_PREFIX = "bourse:quote:"
TRADE_KEY_PREFIX = "bourse:trade:"
QUOTES_STREAM = "bourse:quotes"

# Every field of a quote snapshot hash (and of a ``bourse:quotes`` stream entry), in order.
QUOTE_FIELDS: tuple[str, ...] = (
    "symbol", "bid", "ask", "bid_size", "ask_size", "ts_ns", "recv_ns", "source", "seq",
)  # fmt: skip
TRADE_FIELDS: tuple[str, ...] = ("symbol", "price", "qty", "ts_ns", "trade_id")

_INT_RE = re.compile(r"-?[0-9]+")

# A hash or stream entry as a Redis client returns it: bytes, or str when it decodes.
RawFields = Mapping[bytes, bytes] | Mapping[str, str] | Mapping[bytes | str, bytes | str]


def quote_key(symbol: str) -> str:
    """The snapshot hash of a symbol as the catalogue spells it: ``bourse:quote:EUR/USD``."""
    return QUOTE_KEY_PREFIX + symbol


def trade_key(symbol: str) -> str:
    """The last trade print of a symbol: ``bourse:trade:BTC/USDT``."""
    return TRADE_KEY_PREFIX + symbol


@dataclass(frozen=True, slots=True)
class LastTrade:
    """The last trade print of a symbol, in the instrument's integer units."""

    symbol: str
    price: int
    qty: int
    ts_ns: int
    trade_id: str = ""


def quote_to_fields(
    q: Quote, *, source: str = "", seq: int = -1, recv_ns: int = -1
) -> dict[str, str]:
    """The hash / stream fields of a quote. Integers as decimal strings; a size of ``None``
    (unlimited depth) as ``""``; ``seq`` and ``recv_ns`` are ``-1`` when unknown."""
    return {
        "symbol": q.symbol,
        "bid": str(q.bid),
        "ask": str(q.ask),
        "bid_size": "" if q.bid_size is None else str(q.bid_size),
        "ask_size": "" if q.ask_size is None else str(q.ask_size),
        "ts_ns": str(q.ts_ns),
        "recv_ns": str(recv_ns),
        "source": source,
        "seq": str(seq),
    }


def _decoded(what: str, fields: RawFields) -> dict[str, str]:
    try:
        return {text_of(k): text_of(v) for k, v in fields.items()}
    except UnicodeDecodeError as error:
        raise MalformedData(f"malformed {what}: not UTF-8 ({error})") from None


def _int_field(what: str, f: Mapping[str, str], name: str, *, optional: bool = False) -> int | None:
    if name not in f:
        raise MalformedData(f"malformed {what}: field {name!r} missing (has {sorted(f)})")
    text = f[name]
    if optional and text == "":
        return None
    if not _INT_RE.fullmatch(text):
        raise MalformedData(f"malformed {what}: field {name!r} is {text!r}, not a decimal integer")
    return int(text)


def _hash_of(what: str, symbol: str, fields: RawFields) -> dict[str, str]:
    """The decoded hash, checked to be non-empty and to belong to ``symbol``."""
    f = _decoded(what, fields)
    if not f:
        raise MalformedData(f"malformed {what}: empty")
    stored = f.get("symbol", symbol)
    if stored != symbol:
        raise MalformedData(f"malformed {what}: it holds symbol {stored!r}")
    return f


def quote_from_fields(symbol: str, fields: RawFields) -> Quote:
    """The quote of a snapshot hash or stream entry (keys and values bytes or str, as the
    client decodes them). Raises ``ValueError`` naming the symbol and the bad field when the
    hash is malformed: a missing or non-integer field, a symbol that is not ``symbol``, a
    non-positive or crossed price. Fields it does not know are ignored."""
    what = f"quote hash of {symbol!r}"
    f = _hash_of(what, symbol, fields)
    bid = _int_field(what, f, "bid")
    ask = _int_field(what, f, "ask")
    ts_ns = _int_field(what, f, "ts_ns")
    assert bid is not None and ask is not None and ts_ns is not None
    bid_size = _int_field(what, f, "bid_size", optional=True) if "bid_size" in f else None
    ask_size = _int_field(what, f, "ask_size", optional=True) if "ask_size" in f else None
    if bid <= 0 or ask < bid:
        raise MalformedData(f"malformed {what}: crossed or non-positive (bid {bid}, ask {ask})")
    return Quote(symbol, bid, ask, ts_ns, bid_size, ask_size)


def trade_to_fields(t: LastTrade) -> dict[str, str]:
    return {
        "symbol": t.symbol,
        "price": str(t.price),
        "qty": str(t.qty),
        "ts_ns": str(t.ts_ns),
        "trade_id": t.trade_id,
    }


def trade_from_fields(symbol: str, fields: RawFields) -> LastTrade:
    """The last trade of a ``bourse:trade:{symbol}`` hash; ``ValueError`` when malformed."""
    what = f"trade hash of {symbol!r}"
    f = _hash_of(what, symbol, fields)
    price = _int_field(what, f, "price")
    qty = _int_field(what, f, "qty")
    ts_ns = _int_field(what, f, "ts_ns")
    assert price is not None and qty is not None and ts_ns is not None
    if price <= 0 or qty <= 0:
        raise MalformedData(f"malformed {what}: non-positive (price {price}, qty {qty})")
    return LastTrade(symbol, price, qty, ts_ns, f.get("trade_id", ""))
