"""The quotes the tick pipeline publishes to Redis, read back: the OMS's ``QuoteSource`` on
Redis, and a stream reader for the WebSocket.

The layout (``bourse:quote:{symbol}`` snapshot hashes, the ``bourse:quotes`` stream) and its
encoding live in ``trading.quotes``; docs/quotes.md is the contract.

A quote older than ``max_age_ns`` against the book's clock is never returned: pricing from
it would deal at a price the market has left. Such reads are counted (``stale_reads``, and
per symbol in ``stale_by_symbol``) so the risk desk sees a feed that went quiet. A snapshot
that does not decode (written by something other than the pipeline) is treated the same
way, as no quote, counted in ``malformed_reads`` and logged: an order is then rejected for
want of a quote instead of failing the OMS's whole batch.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, cast

import redis

from trading.fields import text_of
from trading.quotes import QUOTES_STREAM, Quote, quote_from_fields, quote_key

log = logging.getLogger(__name__)


class RedisQuoteBook:
    """``trading.quotes.QuoteSource`` over the pipeline's snapshot hashes.

    ``get`` is one ``HGETALL``; ``get_many`` is one pipelined round trip for any number of
    symbols. ``clock`` gives UTC nanoseconds (``time.time_ns`` in service, a test clock in
    tests); a quote is stale when ``clock() - quote.ts_ns > max_age_ns``.
    """

    def __init__(self, client: redis.Redis, *, max_age_ns: int, clock: Callable[[], int]) -> None:
        if max_age_ns <= 0:
            raise ValueError(f"max_age_ns must be positive, got {max_age_ns}")
        self.client = client
        self.max_age_ns = max_age_ns
        self.clock = clock
        self.stale_reads = 0
        self.malformed_reads = 0
        self.stale_by_symbol: Counter[str] = Counter()

    def get(self, symbol: str) -> Quote | None:
        fields = cast("dict[Any, Any]", self.client.hgetall(quote_key(symbol)))
        return self._fresh(symbol, fields, self.clock())

    def get_many(self, symbols: Iterable[str]) -> dict[str, Quote | None]:
        """The fresh quote of each symbol (``None`` when missing, stale or malformed), in the
        order given, read in one round trip."""
        wanted = list(dict.fromkeys(symbols))
        if not wanted:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for symbol in wanted:
            pipe.hgetall(quote_key(symbol))
        replies = cast("list[dict[Any, Any]]", pipe.execute())
        assert len(replies) == len(wanted), ("HGETALL replies", len(replies), len(wanted))
        now = self.clock()
        return {s: self._fresh(s, f, now) for s, f in zip(wanted, replies, strict=True)}

    def _fresh(self, symbol: str, fields: Mapping[Any, Any], now_ns: int) -> Quote | None:
        if not fields:
            return None
        try:
            quote = quote_from_fields(symbol, fields)
        except ValueError as error:
            self.malformed_reads += 1
            log.error("quote snapshot unusable: %s", error)
            return None
        if now_ns - quote.ts_ns > self.max_age_ns:
            self.stale_reads += 1
            self.stale_by_symbol[symbol] += 1
            return None
        return quote


class QuoteEntry(NamedTuple):
    """A quote read from the stream, with its entry id (the ``last_id`` to read after)."""

    stream_id: str
    quote: Quote


def read_quotes(
    client: redis.Redis,
    last_id: str = "$",
    count: int = 1000,
    block_ms: int | None = None,
    *,
    stream: str = QUOTES_STREAM,
) -> list[QuoteEntry]:
    """Up to ``count`` quote updates after ``last_id`` (``"0"``: the oldest kept; ``"$"``: only
    what arrives from now on, with ``block_ms``). A WebSocket takes ``stream_last_id`` first,
    then sends the snapshots (``RedisQuoteBook.get_many``), then follows the stream from that
    id, dropping an entry whose ``ts_ns`` is not after the quote it last sent for the symbol:
    it misses nothing in between and never goes back in time. Raises ``ValueError`` on a
    malformed entry."""
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    if block_ms is not None and block_ms <= 0:
        raise ValueError(f"block_ms must be positive or None, got {block_ms}")
    reply = cast("list[Any] | None", client.xread({stream: last_id}, count=count, block=block_ms))
    entries: list[QuoteEntry] = []
    for _name, items in reply or []:
        for entry_id, fields in items:
            text = {text_of(k): text_of(v) for k, v in fields.items()}
            if "symbol" not in text:
                raise ValueError(f"malformed quote stream entry {text_of(entry_id)}: no symbol")
            entries.append(QuoteEntry(text_of(entry_id), quote_from_fields(text["symbol"], text)))
    return entries


def stream_last_id(client: redis.Redis, *, stream: str = QUOTES_STREAM) -> str:
    """The id of the newest stream entry, ``"0-0"`` when the stream is empty or absent."""
    reply = cast("list[Any]", client.xrevrange(stream, count=1))
    return text_of(reply[0][0]) if reply else "0-0"
