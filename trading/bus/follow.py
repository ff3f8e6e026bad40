"""The OMS host's view of the quotes: the snapshot hashes, kept in memory by following the
quote stream.

``FollowedQuoteBook`` is the host's ``QuoteSource``: the newest quote read from
``bourse:quotes``, else the snapshot hash (``RedisQuoteBook``, which also drops what is
stale). Reading Redis for every price the OMS looks up would put a network round trip, or
several (the conversion rates), inside each order of a batch; the stream brings every
change anyway. A quote older than ``max_age_ns`` is never served from memory: the book asks
Redis, which refuses it as stale when nothing newer came.

``QuoteFollower`` reads the stream after a given id, tolerating what it cannot parse (an
entry without a symbol, a malformed field): it is counted, logged and skipped, so a bad
entry never stops the host from following the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, cast

import redis

from trading.bus.quotes import RedisQuoteBook, stream_last_id
from trading.fields import text_of
from trading.quotes import QUOTES_STREAM, Quote, quote_from_fields

log = logging.getLogger(__name__)


class FollowedQuoteBook:
    def __init__(self, client: redis.Redis, *, max_age_ns: int, clock: Callable[[], int]) -> None:
        self.snapshots = RedisQuoteBook(client, max_age_ns=max_age_ns, clock=clock)
        self.max_age_ns = max_age_ns
        self.clock = clock
        self._latest: dict[str, Quote] = {}
        self._lock = threading.Lock()

    def update(self, quote: Quote) -> None:
        with self._lock:
            held = self._latest.get(quote.symbol)
            if held is None or quote.ts_ns >= held.ts_ns:
                self._latest[quote.symbol] = quote

    def get(self, symbol: str) -> Quote | None:
        quote = self._latest.get(symbol)
        if quote is not None and self.clock() - quote.ts_ns <= self.max_age_ns:
            return quote
        quote = self.snapshots.get(symbol)
        if quote is not None:
            self.update(quote)
        return quote


class QuoteFollower:
    """Reads ``bourse:quotes`` from where it was (``"$"``: from its newest entry on)."""

    def __init__(self, client: redis.Redis, *, stream: str = QUOTES_STREAM) -> None:
        self.client = client
        self.stream = stream
        self.last_id = stream_last_id(client, stream=stream)
        self.malformed = 0

    def read(self, count: int = 1000, block_ms: int = 100) -> list[Quote]:
        reply = cast(
            "list[Any] | None",
            self.client.xread({self.stream: self.last_id}, count=count, block=block_ms),
        )
        quotes: list[Quote] = []
        for _name, items in reply or []:
            for entry_id, fields in items:
                self.last_id = text_of(entry_id)
                try:
                    text = {text_of(k): text_of(v) for k, v in fields.items()}
                    quotes.append(quote_from_fields(text["symbol"], text))
                except (KeyError, ValueError, UnicodeDecodeError) as exc:
                    self.malformed += 1
                    log.error("quote stream entry %s skipped: %r", self.last_id, exc)
        return quotes
