"""Live feeds through the live dataflow into the real Redis and the lake.

Each worker polls its live feeds together and screens them in one pass
(``LiveScreenLogic`` -> ``screen_many``); what comes out must be what screening each feed
on its own gives.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import redis
from bytewax.testing import cluster_main, run_main

from pipelines.ticks import lake
from pipelines.ticks.config import FilterConfig
from pipelines.ticks.filters import FeedState, screen
from pipelines.ticks.flow import LiveScreenLogic, Screened, build_flow, build_live_flow, stats_path
from pipelines.ticks.routing import worker_for
from pipelines.ticks.schema import REJECTED_SCHEMA, TICK_SCHEMA
from pipelines.ticks.sources import LiveBatch, LiveTickSource, RawItem, live_route
from tests.pipelines.builders import quotes, walk
from trading.catalogue import default_catalogue
from trading.quotes import quote_from_fields, quote_key

CAT = default_catalogue()
CFG = FilterConfig()


class ScriptedFeed:
    """A ``LiveFeed`` twin: hands over its batches one poll at a time, then ends."""

    def __init__(self, key: str, symbol: str, batches: list[pl.DataFrame],
                 rejects: pl.DataFrame | None = None) -> None:  # fmt: skip
        self._key, self._symbol = key, symbol
        self._batches = list(batches)
        self._rejects = rejects  # normalization rejects, handed over with the first batch
        self.closed = False

    @property
    def key(self) -> str:
        return self._key

    @property
    def symbol(self) -> str:
        return self._symbol

    def poll(self) -> RawItem | None:
        if not self._batches:
            raise StopIteration
        ticks = self._batches.pop(0)
        rejects = self._rejects if self._rejects is not None else _no_rejects()
        self._rejects = None
        return RawItem(self._key, self._symbol, ticks, rejects)

    def next_poll(self) -> datetime | None:
        return None

    def close(self) -> None:
        self.closed = True


def _no_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema={c: t for c, t in REJECTED_SCHEMA.items() if c != "day"})


def _malformed(source: str, seq: int) -> pl.DataFrame:
    row = {c: None for c in TICK_SCHEMA} | {"symbol": "USD/JPY", "source": source,
                                           "source_seq": seq, "reason": "malformed",
                                           "detail": "row 7: 'garbage'"}  # fmt: skip
    return pl.DataFrame([row], schema={c: t for c, t in REJECTED_SCHEMA.items() if c != "day"})


def _cuts(frame: pl.DataFrame, size: int) -> list[pl.DataFrame]:
    return [frame.slice(i, size) for i in range(0, frame.height, size)]


# Three venues' feeds: a spike at EUR/USD row 150, a crossed BTC/USDT quote at row 40, a
# malformed USD/JPY record (source_seq 7) that normalization refused.
EUR_BIDS = walk(300)
EUR_BIDS[150] += 1_100
BTC_BIDS = walk(200, start=9_000_000)
BTC_ASKS: list[int | None] = [b + 10 for b in BTC_BIDS]
BTC_ASKS[40] = BTC_BIDS[40] - 10
FRAMES = {
    "a|EUR/USD": quotes(EUR_BIDS, source="a|EUR/USD"),
    "b|BTC/USDT": quotes(BTC_BIDS, BTC_ASKS, symbol="BTC/USDT", source="b|BTC/USDT"),
    "c|USD/JPY": quotes(walk(120, start=150_000), symbol="USD/JPY", source="c|USD/JPY", seq0=8),
}
SYMBOLS = {k: str(f["symbol"][0]) for k, f in FRAMES.items()}


def _feeds() -> list[ScriptedFeed]:
    return [
        ScriptedFeed("a|EUR/USD", "EUR/USD", _cuts(FRAMES["a|EUR/USD"], 7)),
        ScriptedFeed("b|BTC/USDT", "BTC/USDT", _cuts(FRAMES["b|BTC/USDT"], 13)),
        ScriptedFeed("c|USD/JPY", "USD/JPY", _cuts(FRAMES["c|USD/JPY"], 10),
                     rejects=_malformed("c|USD/JPY", 7)),
    ]  # fmt: skip


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as c:
        yield c


@pytest.mark.parametrize("workers", [1, 2])
def test_live_flow_when_feeds_carry_bad_ticks_then_redis_lake_and_counts_are_screens(
    tmp_path: Path, client: redis.Redis, redis_url: str, workers: int
) -> None:
    # Arrange
    feeds = _feeds()
    flow = build_live_flow(
        LiveTickSource(feeds), CAT, CFG, lake_root=tmp_path / "lake", redis_url=redis_url,
        stats_dir=tmp_path / "stats",
    )  # fmt: skip
    # Act
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    # Assert: the snapshot of each symbol is its feed's last quote (none of them is bad)
    for key, frame in FRAMES.items():
        last = frame.row(-1, named=True)
        quote = quote_from_fields(SYMBOLS[key], client.hgetall(quote_key(SYMBOLS[key])))
        assert (quote.bid, quote.ask, quote.ts_ns) == (last["bid"], last["ask"], last["ts_ns"])
    # the bad ticks are in the lake with their reasons, the good ones all accepted
    rejected = lake.read(tmp_path / "lake", rejected=True)
    got = {(s, int(q)): str(r) for s, q, r in rejected.select("source", "source_seq", "reason")
           .iter_rows()}  # fmt: skip
    assert got == {("a|EUR/USD", 150): "spike", ("b|BTC/USDT", 40): "crossed",
                   ("c|USD/JPY", 7): "malformed"}  # fmt: skip
    accepted = lake.read(tmp_path / "lake")
    for key, frame in FRAMES.items():
        alone = screen(FeedState(), frame, CAT.get(SYMBOLS[key]), CFG,
                       CAT.session_for(SYMBOLS[key]), final=True)  # fmt: skip
        mine = accepted.filter(pl.col("source") == key).select(*TICK_SCHEMA)
        assert mine.equals(alone.accepted)
    # and the counts of each feed add up
    counts = {key: json.loads(stats_path(tmp_path / "stats", key).read_text())["counts"]
              for key in FRAMES}  # fmt: skip
    assert counts == {
        "a|EUR/USD": {"accepted": 299, "spike": 1},
        "b|BTC/USDT": {"accepted": 199, "crossed": 1},
        "c|USD/JPY": {"accepted": 120, "malformed": 1},
    }
    assert all(f.closed for f in feeds)


def test_build_flow_when_given_live_feeds_then_it_builds_the_live_flow(redis_url: str) -> None:
    # The latency benchmark builds its flow this way.
    flow = build_flow(LiveTickSource(_feeds()), CAT, CFG, lake_root=None, stats_dir=None,
                      redis_url=redis_url)  # fmt: skip
    run_main(flow)
    assert flow.flow_id == "ticks_live"
    with redis.Redis.from_url(redis_url) as c:
        assert c.exists(quote_key("EUR/USD"), quote_key("BTC/USDT"), quote_key("USD/JPY")) == 3


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_live_source_when_built_per_worker_then_each_feed_is_polled_once_on_its_route(
    workers: int,
) -> None:
    # Arrange
    source = LiveTickSource(_feeds())
    # Act
    polled = [source.feeds_of(w, workers) for w in range(workers)]
    # Assert: every feed on exactly one worker, spread evenly, routed back to that worker
    keys = sorted(f.key for fs in polled for f in fs)
    assert keys == sorted(FRAMES)
    assert max(map(len, polled)) - min(map(len, polled)) <= 1
    for w in range(workers):
        assert worker_for(live_route(w, workers), workers) == w


def test_live_source_when_a_feed_ends_then_the_others_are_still_polled() -> None:
    # Arrange: one feed of one batch, one of three
    short = ScriptedFeed("s|EUR/USD", "EUR/USD", [quotes(walk(5))])
    long = ScriptedFeed("l|EUR/USD", "EUR/USD", _cuts(quotes(walk(15)), 5))
    part = LiveTickSource([short, long]).build("feeds", 0, 1)
    # Act
    cycles = []
    with pytest.raises(StopIteration):
        for _ in range(10):
            cycles.append(part.next_batch())
    # Assert: one item per cycle, holding the feeds that had ticks; a last empty cycle
    # finds every feed ended, and the next call ends the partition
    assert [sorted(b[0][1].items) if b else [] for b in cycles] == [
        ["l|EUR/USD", "s|EUR/USD"], ["l|EUR/USD"], ["l|EUR/USD"], [],
    ]  # fmt: skip


def _cycle(pos: int, size: int) -> LiveBatch:
    return LiveBatch({k: RawItem(k, SYMBOLS[k], f.slice(pos, size), _no_rejects())
                      for k, f in FRAMES.items()})  # fmt: skip


def _accepted_of(out: list[Screened]) -> dict[str, list[int]]:
    seqs: dict[str, list[int]] = {}
    for s in out:
        seqs.setdefault(s.key, []).extend(s.accepted["source_seq"].to_list())
    return seqs


def test_live_screen_logic_when_cycles_queue_up_or_it_resumes_then_decisions_are_the_same() -> None:
    # Arrange: the same 60 rows of each feed as six cycles of ten
    cycles = [_cycle(pos, 10) for pos in range(140, 200, 10)]
    one_by_one = LiveScreenLogic(CAT, CFG, None)
    queued = LiveScreenLogic(CAT, CFG, None)
    # Act: one cycle per call; three cycles per call, resuming from a snapshot half way
    first = [s for c in cycles for s in one_by_one.on_batch([c])[0]]
    second = queued.on_batch(cycles[:3])[0]
    resumed = LiveScreenLogic(CAT, CFG, queued.snapshot())
    second += resumed.on_batch(cycles[3:])[0]
    # Assert: the EUR/USD spike at row 150 is rejected either way, and every row is decided
    # alike
    assert all(isinstance(s, Screened) for s in first + second)
    assert _accepted_of(first) == _accepted_of(second)  # type: ignore[arg-type]
    assert 150 not in _accepted_of(second)["a|EUR/USD"]  # type: ignore[arg-type]
    assert one_by_one.snapshot().feeds["a|EUR/USD"][1].counts == {"accepted": 59, "spike": 1}
    assert resumed.snapshot().feeds["a|EUR/USD"][1].counts == {"accepted": 59, "spike": 1}
