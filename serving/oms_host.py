"""``bourse oms run``: wires the OMS host to the store and Redis, and runs it until SIGTERM.

Startup fails with one line and a non-zero exit when the store or Redis is unreachable or
another writer holds the store (``writer_lock_held``): a supervisor's log should say why at
a glance, not in a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from rich.console import Console

from serving.settings import Settings

if TYPE_CHECKING:
    from trading.venues.config import VenuesFile

log = logging.getLogger("bourse.oms")

EXIT_UNREACHABLE = 2
EXIT_LOCKED = 3
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run_host(
    settings: Settings,
    redis_url: str | None,
    *,
    partitions: int = 4,
    expire_every_s: float = 1.0,
    console: Console,
    venues: VenuesFile | None = None,
    logon_timeout_s: float = 10.0,
) -> int:
    import redis
    from sqlalchemy.exc import SQLAlchemyError

    from trading.bus.events import RedisStreamsPublisher
    from trading.bus.follow import FollowedQuoteBook
    from trading.catalogue import default_catalogue
    from trading.config import OMSConfig
    from trading.errors import ConfigError, WriterLockHeld
    from trading.oms.engine import OMS
    from trading.oms.host import OMSHost
    from trading.oms.outbox import OutboxRelay
    from trading.store.engine import migrate, open_engine
    from trading.store.lock import WriterLock
    from trading.venues.base import Venue
    from trading.venues.bbook import BBookVenue
    from trading.venues.dropcopy import DropCopy, dropcopy_dir
    from trading.venues.live import LiveVenues

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    url = redis_url or settings.redis_url
    dsn = settings.store_dsn()
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        console.print(f"[red]error[/red] redis_unreachable: {url}: {exc}")
        return EXIT_UNREACHABLE
    if not settings.dsn:  # only once Redis answered: a refused start leaves nothing behind
        settings.home.mkdir(parents=True, exist_ok=True)
    try:
        engine = open_engine(dsn)
        lock = WriterLock(engine)
        lock.acquire()
    except WriterLockHeld as exc:
        console.print(f"[red]error[/red] {exc.code}: {exc.message}")
        return EXIT_LOCKED
    except (SQLAlchemyError, OSError) as exc:
        console.print(f"[red]error[/red] store_unreachable: {_one_line(exc)}")
        return EXIT_UNREACHABLE
    with lock:
        live: LiveVenues | None = None
        try:
            migrate(engine)
            config = OMSConfig()
            catalogue = default_catalogue()
            book = FollowedQuoteBook(
                client, max_age_ns=config.venue.max_quote_age_ms * 1_000_000, clock=time.time_ns
            )
            # The venue's drop copy, under the home even with a PostgreSQL store.
            dropcopy = DropCopy(dropcopy_dir(settings.home), catalogue)
            bbook = BBookVenue(catalogue, book, config.fees, config.venue, time.time_ns, dropcopy)
            venue: Venue = bbook
            if venues is not None:
                try:
                    live = LiveVenues(venues, bbook, catalogue, time.time_ns, settings.home)
                except ConfigError as exc:
                    console.print(f"[red]error[/red] {exc.message}")
                    return EXIT_UNREACHABLE
                # An LP down at start is not fatal: quickfix retries it, routing fails over.
                for line in live.start(logon_timeout_s):
                    console.print(f"[yellow]warning[/yellow] {line}")
                venue = live.router
            oms = OMS(engine, catalogue, book, venue, config, time.time_ns, actor="oms")
        except ConfigError as exc:  # an open order at an LP the venues file no longer has
            console.print(f"[red]error[/red] {exc.message}")
            if live is not None:
                live.stop()
            return EXIT_UNREACHABLE
        except SQLAlchemyError as exc:
            console.print(f"[red]error[/red] store_unreachable: {_one_line(exc)}")
            if live is not None:
                live.stop()
            return EXIT_UNREACHABLE
        relay = OutboxRelay(engine, RedisStreamsPublisher(client, partitions=partitions),
                            partitions=partitions)  # fmt: skip
        host = OMSHost(oms, client, book=book, relay=relay, expire_every_s=expire_every_s)
        stop = threading.Event()
        waker = None
        if live is not None:
            waker = _Waker(host)
            live.router.on_late = waker.poke

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: draining", signum)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info(
            "oms host serving: store %s, redis %s, %d open orders",
            engine.url.render_as_string(hide_password=True), url, oms.open_order_count,
        )  # fmt: skip
        if waker is not None:
            waker.start()
        host.run(stop, ready=lambda: log.info("ready"))
        if waker is not None:
            waker.stop()
        if live is not None:
            live.stop()
        dropcopy.close()
        engine.dispose()
    return 0


def _one_line(exc: Any) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


class _Waker:
    """Runs an empty batch when an LP's reports arrive, so the writer applies them now
    rather than at its next command or timer tick. One batch in flight at a time: reports
    arriving meanwhile ride on the next."""

    def __init__(self, host: Any) -> None:
        self._host = host
        self._due = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="host-lp-waker", daemon=True)

    def poke(self) -> None:
        self._due.set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._due.set()
        self._thread.join(5)

    def _run(self) -> None:
        from concurrent.futures import TimeoutError as FutureTimeout

        from trading.commands import ApplyReports

        while True:
            self._due.wait()
            if self._stop.is_set():
                return
            self._due.clear()
            # No reports of its own: the batch's prepare drains the ones the LP queued.
            fut = self._host.service.submit(ApplyReports((), actor="venue"))
            with contextlib.suppress(FutureTimeout):
                fut.result(1.0)
