"""The Redis sink of accepted ticks: the latest quote per symbol and a bounded stream of
updates, in the layout of ``trading.quotes`` (docs/quotes.md).

Per batch of accepted ticks (a Polars frame in ``TICK_SCHEMA``, any symbols):

- quotes: the LAST quote of each symbol in the frame replaces its snapshot hash
  ``bourse:quote:{symbol}`` unless the stored one is newer (``ts_ns`` compared exactly, on the
  server), and only then is it appended to the stream ``bourse:quotes`` (``MAXLEN ~``). The
  stream is conflated: one entry per symbol per batch, never going back in time, which is
  what clients fan out; every tick is in the lake.
- trades: the last print of each symbol in ``bourse:trade:{symbol}``, under the same rule.

One server-side script call (``EVALSHA``) per symbol and kind, all in one pipeline: one
round trip per batch, and no read-compare-write race between writers (two processes
replaying the same symbol, or a replay after a resume, cannot move a snapshot back).
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import polars as pl
import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from pipelines.ticks.schema import SIZE_SCALE, Kind, size_to_qty_units
from trading.catalogue import Catalogue, default_catalogue
from trading.quotes import (
    QUOTES_STREAM,
    LastTrade,
    Quote,
    quote_key,
    quote_to_fields,
    trade_key,
    trade_to_fields,
)

# KEYS[1] the hash, KEYS[2] (quotes only) the stream; ARGV[1] ts_ns, ARGV[2] the stream's
# MAXLEN, ARGV[3..] field/value pairs. ts_ns are compared as decimal strings (length, then
# bytes): Lua numbers are doubles, which cannot tell two nanosecond times 100 ns apart.
# An equal ts_ns overwrites: the later of two quotes in the same nanosecond wins, and a
# replayed batch writes the same values again. Returns 1 when written, 0 when older.
_PUBLISH_LUA = """
local ts = ARGV[1]
local cur = redis.call('HGET', KEYS[1], 'ts_ns')
if cur and (#cur > #ts or (#cur == #ts and cur > ts)) then
  return 0
end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
if #KEYS > 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
end
return 1
"""


class RedisUnavailable(ValueError):
    """The Redis a run publishes to does not answer (checked before the run starts)."""


def check_reachable(url: str, timeout_s: float = 3.0) -> None:
    """Raise ``RedisUnavailable`` (one line: the address and what to do) unless Redis at
    ``url`` answers a PING; a run checks before it creates anything."""
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
    except ValueError as exc:
        raise RedisUnavailable(f"--redis-url {url!r} is not a Redis URL ({exc})") from None
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RedisUnavailable(
            f"Redis at {url} is not reachable ({reason}): start it (redis-server) or point "
            "--redis-url (BOURSE_REDIS_URL) at a running one"
        ) from None
    finally:
        client.close()


class Published(NamedTuple):
    """What one batch changed: snapshots written, and those skipped as older than stored."""

    quotes_written: int
    quotes_skipped: int
    trades_written: int
    trades_skipped: int


_QUOTE_COLS = ["symbol", "bid", "ask", "bid_size", "ask_size", "ts_ns", "recv_ns", "source"]
_TRADE_COLS = ["symbol", "price", "qty", "ts_ns", "trade_id"]


def _last_per_symbol(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The last quote and the last trade of each symbol: the frame is in ``source_seq`` order
    per symbol, so the last row is the newest. (``unique(keep="last")`` is one hash pass,
    about 5x cheaper than a ``group_by().last()`` per kind on 10k rows.)"""
    last = frame.unique(subset=["symbol", "kind"], keep="last", maintain_order=True)
    kind = pl.col("kind")
    return (
        last.filter(kind == Kind.QUOTE.value).select([*_QUOTE_COLS, "source_seq"]),
        last.filter(kind == Kind.TRADE.value).select([*_TRADE_COLS, "source_seq"]),
    )


def _require(row: dict[str, Any], cols: tuple[str, ...]) -> None:
    # Accepted ticks have these; a null would publish a snapshot no reader can decode.
    missing = [c for c in cols if row[c] is None]
    if missing:
        raise ValueError(
            f"tick of {row['symbol']!r} "
            f"(source_seq {row['source_seq']}) has no {missing}: not an accepted tick"
        )


def _args(ts_ns: int, maxlen: int, fields: dict[str, str]) -> list[str]:
    if ts_ns < 0:  # the script compares non-negative decimal strings
        raise ValueError(f"negative ts_ns {ts_ns} for {fields.get('symbol')!r}")
    args = [str(ts_ns), str(maxlen)]
    for k, v in fields.items():
        args += (k, v)
    return args


def _to_qty_units(catalogue: Catalogue, symbol: str, size: int | None) -> int | None:
    """A market-data size (``SIZE_SCALE`` units) as the OMS's quantity units.

    Depth under one lot step rounds down to zero, which the B-book would read as no depth
    at all; it is published as one lot step, the least an order can take.
    """
    if size is None:
        return None
    inst = catalogue.get(symbol)
    units = size_to_qty_units(size, int(inst.contract_size * SIZE_SCALE), inst.qty_scale)
    return max(inst.lot_int, units // inst.lot_int * inst.lot_int)


def publish(
    client: redis.Redis,
    frame: pl.DataFrame,
    stream_maxlen: int,
    catalogue: Catalogue | None = None,
) -> Published:
    """Publish a frame of accepted ticks (``TICK_SCHEMA``) in one round trip.

    Snapshots are ``trading.quotes.Quote``s: sizes and quantities in the instrument's
    order quantity units (the frame has them in ``SIZE_SCALE`` units of the underlying).
    """
    cat = catalogue or default_catalogue()
    if stream_maxlen <= 0:
        raise ValueError(f"stream_maxlen must be positive, got {stream_maxlen}")
    if frame.is_empty():
        return Published(0, 0, 0, 0)
    quotes, trades = _last_per_symbol(frame)
    calls: list[tuple[list[str], list[str]]] = []
    for r in quotes.iter_rows(named=True):
        _require(r, ("symbol", "bid", "ask", "ts_ns"))
        sym = r["symbol"]
        q = Quote(sym, r["bid"], r["ask"], r["ts_ns"], _to_qty_units(cat, sym, r["bid_size"]),
                  _to_qty_units(cat, sym, r["ask_size"]))  # fmt: skip
        fields = quote_to_fields(
            q,
            source=r["source"] or "",
            seq=-1 if r["source_seq"] is None else r["source_seq"],
            recv_ns=-1 if r["recv_ns"] is None else r["recv_ns"],
        )
        calls.append(([quote_key(q.symbol), QUOTES_STREAM], _args(q.ts_ns, stream_maxlen, fields)))
    for r in trades.iter_rows(named=True):
        _require(r, ("symbol", "price", "qty", "ts_ns"))
        qty = _to_qty_units(cat, r["symbol"], r["qty"])
        t = LastTrade(r["symbol"], r["price"], qty or 0, r["ts_ns"], r["trade_id"] or "")
        calls.append(([trade_key(t.symbol)], _args(t.ts_ns, stream_maxlen, trade_to_fields(t))))
    if not calls:
        return Published(0, 0, 0, 0)
    replies = _run(client, calls)
    assert len(replies) == len(calls), ("script replies", len(replies), len(calls))
    nq = len(quotes)
    q_written = sum(int(x) for x in replies[:nq])
    t_written = sum(int(x) for x in replies[nq:])
    return Published(q_written, nq - q_written, t_written, len(trades) - t_written)


# The SHA-1 of the script is its name on every server: EVALSHA first, load it on NOSCRIPT.
_PUBLISH_SHA = hashlib.sha1(_PUBLISH_LUA.encode(), usedforsecurity=False).hexdigest()


def _run(client: redis.Redis, calls: list[tuple[list[str], list[str]]]) -> list[Any]:
    """EVALSHA every call in one pipeline; when the server does not know the script (first
    use, or after a restart), load it and run the pipeline again. Every call runs the same
    script, so on NOSCRIPT none of them ran and the retry repeats nothing."""
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(_PUBLISH_SHA, len(keys), *keys, *args)
        try:
            return list(pipe.execute())
        except redis.exceptions.NoScriptError:
            if attempt:
                raise
            loaded = client.script_load(_PUBLISH_LUA)
            assert loaded == _PUBLISH_SHA, ("script sha", loaded, _PUBLISH_SHA)
    raise AssertionError("unreachable")


Item = tuple[str, pl.DataFrame]


class _RedisQuotePartition(StatelessSinkPartition[Item]):
    def __init__(self, url: str, stream_maxlen: int) -> None:
        self.client = redis.Redis.from_url(url)
        self.stream_maxlen = stream_maxlen

    def write_batch(self, items: list[Item]) -> None:
        frames = [frame for _key, frame in items if not frame.is_empty()]
        if not frames:
            return
        # One round trip for the whole batch, whatever the number of keys in it.
        frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")
        publish(self.client, frame, self.stream_maxlen)

    def close(self) -> None:
        self.client.close()


class RedisQuoteSink(DynamicSink[Item]):
    """Bytewax sink of ``(key, frame)`` items of accepted ticks; each worker has its own
    connection. At least once: a batch replayed after a resume changes nothing, since a
    snapshot never moves back in time and an older quote is not appended to the stream."""

    def __init__(self, url: str, *, stream_maxlen: int = 100_000) -> None:
        if stream_maxlen <= 0:
            raise ValueError(f"stream_maxlen must be positive, got {stream_maxlen}")
        self.url = url
        self.stream_maxlen = stream_maxlen

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> StatelessSinkPartition[Item]:
        return _RedisQuotePartition(self.url, self.stream_maxlen)
