"""The positions flow's quote source: the tick pipeline's quotes in Redis (docs/quotes.md).

One partition, ``"quotes"``, whose Bytewax state is the last id read of ``bourse:quotes``.
A fresh start follows the contract's reader recipe: take the stream's last id first, then
read the snapshot hashes of the flow's symbols (one round trip) and hand them out as the
first batch, then follow the stream from that id, dropping an entry whose ``ts_ns`` is not
after the quote already handed out for its symbol (an update between the two steps arrives
twice). The snapshot is not filtered for staleness: a stale quote is still the latest mark.

A resumed partition whose position the stream has trimmed away (it missed updates) starts
again from the snapshots, as the contract says a reader that far behind must.

Each batch is conflated: the latest quote per symbol of what one read returned. A malformed
entry or hash is skipped, counted in ``malformed`` and logged; it does not stop the flow.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import redis
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from pipelines.positions.sources import Pacer, StreamId, connect, parse_id, trimmed_to
from trading.bus.quotes import RedisQuoteBook, read_quotes, stream_last_id
from trading.fields import text_of
from trading.quotes import QUOTES_STREAM, Quote, quote_from_fields

log = logging.getLogger(__name__)

QUOTES_PART = "quotes"


@dataclass(frozen=True, slots=True)
class QuoteBatch:
    """The latest quote per symbol of one read; ``snapshot``: read from the snapshot hashes
    at a fresh start (every symbol that has one), not from the stream."""

    quotes: dict[str, Quote]
    snapshot: bool


class QuotePartition(StatefulSourcePartition[QuoteBatch, str]):
    def __init__(
        self,
        client: redis.Redis,
        symbols: Sequence[str],
        resume: str | None,
        *,
        until_idle: bool,
        count: int,
        block_ms: int,
    ) -> None:
        if count <= 0:
            raise ValueError(f"count must be positive, got {count}")
        self.malformed = 0  # entries and hashes skipped
        self.dropped = 0  # entries not newer than the quote handed out for their symbol
        self.restarted = False  # resumed behind the trimming: started from the snapshots
        self._client = client
        self._symbols = list(dict.fromkeys(symbols))
        self._wanted = frozenset(self._symbols)
        self._count = count
        self._pacer = Pacer(block_ms)
        self._sent: dict[str, int] = {}  # symbol -> ts_ns of the quote handed out
        self._pending: QuoteBatch | None = None
        if resume is not None and self._behind(resume):
            log.warning("quote stream trimmed past %s: starting again from the snapshots", resume)
            self.restarted = True
            resume = None
        if resume is None:
            self._last = stream_last_id(client)  # first: no update is missed in between
            self._pending = QuoteBatch(self._snapshots(), snapshot=True)
        else:
            self._last = resume
        self._end: StreamId | None = None
        if until_idle:
            self._end = parse_id(self._last if resume is None else stream_last_id(client))

    def _behind(self, resume: str) -> bool:
        try:
            info = self._client.xinfo_stream(QUOTES_STREAM)
        except redis.ResponseError as error:
            if "no such key" not in str(error):
                raise
            return False
        return trimmed_to(info, resume) is not None

    def _snapshots(self) -> dict[str, Quote]:
        # No staleness here: a clock at 0 makes no quote older than the bound.
        book = RedisQuoteBook(self._client, max_age_ns=sys.maxsize, clock=lambda: 0)
        found = book.get_many(self._symbols)
        self.malformed += book.malformed_reads
        quotes = {symbol: q for symbol, q in found.items() if q is not None}
        self._sent = {symbol: q.ts_ns for symbol, q in quotes.items()}
        return quotes

    def next_batch(self) -> list[QuoteBatch]:
        if self._pending is not None:
            batch, self._pending = self._pending, None
            return [batch]
        if self._end is not None and parse_id(self._last) >= self._end:
            raise StopIteration
        quotes: dict[str, Quote] = {}
        read = self._read()
        for stream_id, quote in read:
            if self._end is not None and parse_id(stream_id) > self._end:
                break  # arrived after the build: not this run's
            self._last = stream_id
            if quote is None or quote.symbol not in self._wanted:
                continue
            if quote.ts_ns <= self._sent.get(quote.symbol, -1):
                self.dropped += 1
                continue
            quotes[quote.symbol] = quote  # a later entry of the symbol replaces it
            self._sent[quote.symbol] = quote.ts_ns
        if not read:
            self._pacer.idle()
            return []
        self._pacer.busy()
        return [QuoteBatch(quotes, snapshot=False)] if quotes else []

    def _read(self) -> list[tuple[str, Quote | None]]:
        try:
            return list(read_quotes(self._client, self._last, self._count))
        except ValueError:
            pass  # a malformed entry spoils the whole read: read it again entry by entry
        reply = cast(
            "list[Any] | None",
            self._client.xread({QUOTES_STREAM: self._last}, count=self._count),
        )
        out: list[tuple[str, Quote | None]] = []
        for _name, items in reply or []:
            for raw_id, fields in items:
                out.append((text_of(raw_id), self._decode(text_of(raw_id), fields)))
        return out

    def _decode(self, stream_id: str, fields: dict[Any, Any]) -> Quote | None:
        try:
            text = {text_of(k): text_of(v) for k, v in fields.items()}
            return quote_from_fields(text["symbol"], text)
        except (KeyError, ValueError) as error:
            self.malformed += 1
            log.error("quote stream entry %s skipped: %r", stream_id, error)
            return None

    def next_awake(self) -> datetime | None:
        return self._pacer.awake()

    def snapshot(self) -> str:
        return self._last

    def close(self) -> None:
        self._client.close()


class QuoteStream(FixedPartitionedSource[QuoteBatch, str]):
    """The quotes of ``symbols``: the snapshot hashes at a fresh start, then ``bourse:quotes``.

    ``until_idle``: the partition ends once it has handed out the snapshot batch and the
    stream up to its last entry at build.
    """

    def __init__(
        self,
        redis_url: str,
        symbols: Sequence[str],
        *,
        until_idle: bool = False,
        count: int = 1000,
        block_ms: int = 50,
    ) -> None:
        self.redis_url = redis_url
        self.symbols = list(symbols)
        self.until_idle = until_idle
        self.count = count
        self.block_ms = block_ms

    def list_parts(self) -> list[str]:
        return [QUOTES_PART]

    def build_part(self, step_id: str, for_part: str, resume_state: str | None) -> QuotePartition:
        if for_part != QUOTES_PART:
            raise ValueError(f"no partition {for_part!r}: the quote source has {QUOTES_PART!r}")
        return QuotePartition(
            connect(self.redis_url), self.symbols, resume_state,
            until_idle=self.until_idle, count=self.count, block_ms=self.block_ms,
        )  # fmt: skip
