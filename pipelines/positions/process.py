"""What the positions flow shares within one process: the catalogue, the configuration,
the quotes (one follower of the quote stream per process), the store to rebuild accounts
from, and the command client that sends a stop-out's closes."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from sqlalchemy import Engine

from pipelines.positions.book import AccountBook
from pipelines.positions.config import PositionsConfig, load_config
from pipelines.positions.marks import Marker, QuoteMap
from pipelines.positions.records import CloseOrder
from pipelines.positions.shard import Context
from pipelines.positions.sources_quotes import QuoteStream
from pipelines.positions.spec import PositionsSpec
from pipelines.positions.store_seed import load_books
from trading.catalogue import Catalogue, default_catalogue
from trading.commands import ClosePosition

ACTOR = "positions-flow"
_lock = threading.Lock()
_contexts: dict[str, ProcessContext] = {}


class QuoteFollower:
    """Follows the quote stream into a ``QuoteMap`` from its own thread: the snapshot
    hashes first, then the stream. With ``until_idle`` it stops at the stream's end."""

    def __init__(self, spec: PositionsSpec, symbols: list[str], quotes: QuoteMap) -> None:
        self.source = QuoteStream(spec.redis_url, symbols, until_idle=spec.until_idle)
        self.quotes = quotes
        self.until_idle = spec.until_idle
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="positions-quotes", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            part = self.source.build_part("positions", "quotes", None)
            while True:
                try:
                    batches = part.next_batch()
                except StopIteration:
                    return
                for batch in batches:
                    self.quotes.quotes.update(batch.quotes)
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def wait(self, timeout: float = 60.0) -> None:
        """With ``until_idle``: until every quote available at the start is in the map."""
        if self.until_idle:
            self.done.wait(timeout)


@dataclass
class ProcessContext:
    catalogue: Catalogue
    quotes: QuoteMap
    follower: QuoteFollower
    shard: Context


def _rebuilder(dsn: str) -> Any:
    from trading.store.engine import open_readonly

    engine: list[Engine] = []

    def rebuild(
        ids: Iterable[int] | None, partition: tuple[int, int] | None
    ) -> dict[int, AccountBook]:
        if not engine:
            engine.append(open_readonly(dsn))
        return load_books(engine[0], ids, partition=partition)

    return rebuild


def process_context(spec: PositionsSpec) -> ProcessContext:
    key = spec.to_json()
    with _lock:
        ctx = _contexts.get(key)
        if ctx is None:
            catalogue = default_catalogue()
            config: PositionsConfig = load_config(
                None if spec.config_path is None else Path(spec.config_path)
            )
            quotes = QuoteMap()
            follower = QuoteFollower(spec, sorted(catalogue.symbols), quotes)
            rebuild = _rebuilder(spec.dsn) if spec.dsn else None
            shard = Context(catalogue, Marker(catalogue, quotes), config, rebuild,
                            spec.send_closes)  # fmt: skip
            ctx = _contexts[key] = ProcessContext(catalogue, quotes, follower, shard)
        return ctx


class _CloseOut(StatelessSinkPartition[CloseOrder]):
    def __init__(self, redis_url: str) -> None:
        from trading.bus.client import CommandClient

        self.client = CommandClient(redis.Redis.from_url(redis_url), ACTOR)

    def write_batch(self, items: list[CloseOrder]) -> None:
        commands = [ClosePosition(c.account_id, c.symbol, None, c.reason, actor=ACTOR)
                    for c in items]  # fmt: skip
        # Not waited for: the outcome comes back as the house order's events.
        self.client.submit_many(commands, command_ids=[c.command_id for c in items])

    def close(self) -> None:
        self.client.close()


class CloseSink(DynamicSink[CloseOrder]):
    """Sends a stop-out's closes through the command bus, each under its own command id."""

    def __init__(self, spec: PositionsSpec) -> None:
        self.redis_url = spec.redis_url

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CloseOut:
        return _CloseOut(self.redis_url)
