"""Running the tick dataflow on live feeds: ``bourse pipelines ticks --source synthetic
--live``, or ``--source fix:VENUES.toml --live`` (FIX market data, ``fix_source``).

One ``PacedFeed`` per symbol (``live.py``): quotes at a steady rate, stamped with the wall
clock as they fall due, a random walk from the symbol's reference mid
(``trading.sim.pricefeed.REFERENCE_MIDS``), screened by the same live flow as any live feed
(``flow.build_live_flow``) and published to the same sinks. It runs until ``duration_s``
has passed (None: until stopped). There is nothing to resume after a stop: a live feed
cannot be rewound, so the run keeps no recovery store, and a new run starts the feeds from
their reference mids again. Screening stats are written at the end of a run with an end.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.ticks import lake
from pipelines.ticks.config import FilterConfig
from pipelines.ticks.live import PacedFeed
from pipelines.ticks.sources import LiveTickSource
from trading.catalogue import Catalogue, default_catalogue
from trading.sim.pricefeed import REFERENCE_MIDS

if TYPE_CHECKING:
    from pipelines.ticks.fix_source import FixQuoteFeed

SINKS = ("lake", "redis")
# How often each feed's quotes are polled (a live cycle); quotes are still stamped with the
# time each fell due, so a late poll shows as latency, not as an older market.
POLL_INTERVAL_S = 0.05


@dataclass(frozen=True, slots=True)
class LiveSpec:
    home: str
    symbols: tuple[str, ...]
    rate_per_s: float  # quotes per second, per symbol
    seed: int = 0
    sinks: tuple[str, ...] = ("redis",)
    redis_url: str | None = None
    config_path: str | None = None
    lake_compression: str = str(lake.DEFAULT_COMPRESSION)
    duration_s: float | None = None  # None: until stopped
    # The venues file whose market-data LPs feed the run (``fix_source``); None: synthetic.
    fix_venues: str | None = None

    def __post_init__(self) -> None:
        unknown = [s for s in self.sinks if s not in SINKS]
        if unknown:
            raise ValueError(f"unknown sink(s) {unknown}; known: {', '.join(SINKS)}")
        if not self.sinks:
            raise ValueError("a live run needs a sink: --sink redis, lake or both")
        if "redis" in self.sinks and not self.redis_url:
            raise ValueError("the redis sink needs a Redis URL")
        if not self.symbols:
            raise ValueError(
                f"a {'FIX' if self.fix_venues else 'synthetic'} source needs --symbols"
            )
        if self.fix_venues is None and not 0 < self.rate_per_s <= 10_000:
            raise ValueError(f"--rate must be within (0, 10000] quotes/s, got {self.rate_per_s}")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError(f"--duration must be positive, got {self.duration_s}")
        lake.Compression.parse(self.lake_compression)

    @property
    def lake_root(self) -> Path:
        return Path(self.home) / "lake"

    @property
    def stats_dir(self) -> Path:
        return Path(self.home) / "pipelines" / "ticks" / "live" / "stats"

    def feeds(self, catalogue: Catalogue) -> Sequence[PacedFeed | FixQuoteFeed]:
        """One paced feed per symbol (an alias names its symbol: given twice, one feed), or
        with ``fix_venues`` one feed per market-data LP and symbol."""
        if self.fix_venues is not None:
            # Imported here: quickfix (the `fix` extra) is needed by FIX sources alone.
            from pipelines.ticks.fix_source import fix_feeds

            return fix_feeds(
                Path(self.fix_venues), self.symbols, catalogue, Path(self.home),
                duration_s=self.duration_s, poll_interval_s=POLL_INTERVAL_S,
            )  # fmt: skip
        symbols = dict.fromkeys(catalogue.resolve(s).symbol for s in self.symbols)
        return [
            PacedFeed(catalogue, s, self.rate_per_s, Decimal(REFERENCE_MIDS.get(s, "100")),
                      key=f"live:{self.seed}|{s}", seed=self.seed * 1_000 + k,
                      duration_s=self.duration_s, poll_interval_s=POLL_INTERVAL_S)
            for k, s in enumerate(symbols)
        ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class LiveReport:
    counts: dict[str, int]  # "accepted" and one entry per reason (runs with an end)
    sent: int  # quotes the feeds produced
    elapsed_s: float

    @property
    def accepted(self) -> int:
        return self.counts.get("accepted", 0)

    @property
    def rejected(self) -> int:
        return sum(n for k, n in self.counts.items() if k != "accepted")


def run_live(spec: LiveSpec) -> LiveReport:
    """Runs the feeds through the live flow in this process until they end (``duration_s``)
    or ``KeyboardInterrupt``. Raises ``ValueError`` (a bad symbol or config) and
    ``redis_sink.RedisUnavailable`` before anything starts."""
    from bytewax.run import cli_main

    from pipelines.ticks.flow import build_flow, stats_path

    catalogue = default_catalogue()
    feeds = spec.feeds(catalogue)
    cfg = FilterConfig.load(Path(spec.config_path), catalogue) if spec.config_path else None
    if "redis" in spec.sinks and spec.redis_url:
        from pipelines.ticks.redis_sink import check_reachable

        check_reachable(spec.redis_url)
    shutil.rmtree(spec.stats_dir, ignore_errors=True)
    flow = build_flow(
        LiveTickSource(feeds), catalogue, cfg or FilterConfig(),
        lake_root=spec.lake_root if "lake" in spec.sinks else None, stats_dir=spec.stats_dir,
        redis_url=spec.redis_url if "redis" in spec.sinks else None,
        lake_compression=lake.Compression.parse(spec.lake_compression),
    )  # fmt: skip
    started = time.perf_counter()
    try:
        cli_main(flow, epoch_interval=dt.timedelta(seconds=1))  # type: ignore[no-untyped-call]
    except Exception as exc:
        # Bytewax turns Ctrl-C into its own runtime error ("signal received"), or wraps the
        # KeyboardInterrupt an operator raised (a sink's write): the caller sees an interrupt.
        if _interrupted(exc):
            raise KeyboardInterrupt from None
        raise
    finally:
        for feed in feeds:  # a FIX feed logs its session out; closing twice is harmless
            feed.close()
    total: Counter[str] = Counter()
    for feed in feeds:
        path = stats_path(spec.stats_dir, feed.key)
        if path.exists():
            counts: dict[str, Any] = json.loads(path.read_text())["counts"]
            total.update({k: int(v) for k, v in counts.items()})
    return LiveReport(dict(total), sum(f.sent for f in feeds), time.perf_counter() - started)


def _interrupted(exc: BaseException) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt) or "signal received" in str(cause):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
