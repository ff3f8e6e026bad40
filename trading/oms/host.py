"""The OMS host (``bourse oms run``): the single writer, serving the command bus.

Threads, around one ``OMSService`` (group commit):

- the main loop reads ``bourse:commands`` in the consumer group (first what a previous host
  left pending, then new entries), decodes each entry and submits it with its command id;
  an entry that is not a command is answered with its error and acknowledged at once;
- the answerer pushes each reply to its address and acknowledges the entry, only after the
  command's batch is durable (its future resolves after the commit);
- the quote follower turns each ``bourse:quotes`` entry into a ``QuoteUpdate`` (resting
  limit and stop orders trigger) and keeps the host's quote book current;
- the clock sends ``ExpireDue`` and ``Rollover`` every ``expire_every_s``, both at the OMS's
  clock (a rollover ahead of it is refused), so that day orders expire and each daily
  cut-off's end-of-day marks and financing are posted within a tick of it;
- the outbox relay publishes the events the batches wrote.

``stop`` (SIGTERM) drains: no new entry is read, every command already taken runs and is
answered, then the threads end. After a SIGKILL the next host claims the entries left
unacknowledged and answers them, from the command log when they had run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from trading.bus.codec import Context
from trading.bus.commands import REPLY_PREFIX, Answer, CommandInbox, Entry
from trading.bus.follow import FollowedQuoteBook, QuoteFollower
from trading.bus.wire import command_id_of, parse_entry, reply_address, reply_text
from trading.commands import ExpireDue, QuoteUpdate, Result, Rollover
from trading.errors import BourseError, MalformedCommand, MissingField, UnknownCommandType
from trading.oms.commandlog import CommandLog, Envelope
from trading.oms.engine import OMS
from trading.oms.outbox import OutboxRelay
from trading.oms.service import OMSService

log = logging.getLogger(__name__)

# Entries a previous host read and never acknowledged, idle this long, are claimed again.
RECLAIM_IDLE_MS = 60_000
RECLAIM_EVERY_S = 30.0
_ANSWER_BATCH = 1_000
_WIRE_ERRORS = (MalformedCommand, MissingField, UnknownCommandType)


def host_context(oms: OMS) -> Context:
    """What decoding needs of this OMS: its catalogue, the symbol of an open order (an
    amend's units), its clock (a client's age) and its risk tiers."""

    def symbol_of(order_id: int) -> str | None:
        order = oms.open_order(order_id)
        return order.symbol if order is not None else None

    return Context(oms.catalogue, symbol_of, oms.clock, frozenset(oms.config.risk.tiers))


def keyed_service(oms: OMS, *, pipelined: bool = False, **kwargs: Any) -> OMSService:
    """An ``OMSService`` whose bus commands run once per command id (``CommandLog``)."""
    ctx = Context(oms.catalogue)

    def encode(env: Envelope, result: Result | BaseException) -> str:
        return reply_text(env.command_id, result, ctx, env.symbol)

    return OMSService(oms, pipelined=pipelined, log=CommandLog(oms.engine, encode, oms.clock),
                      **kwargs)  # fmt: skip


class OMSHost:
    def __init__(
        self,
        oms: OMS,
        redis_client: Any,
        *,
        book: FollowedQuoteBook | None = None,
        relay: OutboxRelay | None = None,
        expire_every_s: float = 1.0,
        consumer: str = "host",
        read_count: int = 500,
        block_ms: int = 20,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.oms = oms
        self.client = redis_client
        self.book = book
        self.relay = relay
        self.expire_every_s = expire_every_s
        self.read_count = read_count
        self.block_ms = block_ms
        self.clock = clock or oms.clock
        self.service = keyed_service(oms)
        self.inbox = CommandInbox(redis_client, consumer)
        self.ctx = host_context(oms)
        self._answers: queue.Queue[Answer | None] = queue.Queue()
        self._followers_stop = threading.Event()
        self.taken = 0
        self.refused = 0
        self.answered = 0

    # -- running -----------------------------------------------------------------------------

    def run(self, stop: threading.Event, ready: Callable[[], None] | None = None) -> None:
        """Serve until ``stop`` is set, then drain and return."""
        self.inbox.ensure_group()
        self.service.start()
        answerer = threading.Thread(target=self._answer_loop, name="host-answers", daemon=True)
        answerer.start()
        threads = [
            threading.Thread(target=self._follow_quotes, name="host-quotes", daemon=True),
            threading.Thread(target=self._expire_loop, name="host-expiry", daemon=True),
        ]
        relay_stop = threading.Event()
        if self.relay is not None:
            relay = self.relay
            relay_thread = threading.Thread(
                target=lambda: relay.run(relay_stop), name="host-relay", daemon=True
            )
            threads.append(relay_thread)
        for t in threads:
            t.start()
        try:
            self._take(self.inbox.reclaim(0, self.read_count))
            if ready is not None:
                ready()
            next_reclaim = time.monotonic() + RECLAIM_EVERY_S
            while not stop.is_set():
                try:
                    entries = self.inbox.read(self.read_count, self.block_ms)
                    if time.monotonic() >= next_reclaim:
                        entries += self.inbox.reclaim(RECLAIM_IDLE_MS, self.read_count)
                        next_reclaim = time.monotonic() + RECLAIM_EVERY_S
                except Exception as exc:  # Redis away: wait, and read on when it is back
                    log.error("reading commands failed: %r; retrying", exc)
                    stop.wait(1.0)
                    continue
                self._take(entries)
        finally:
            self._followers_stop.set()
            for t in threads[:2]:
                t.join()
            self.service.stop()  # what was taken runs, and its futures resolve
            self._answers.put(None)
            answerer.join()
            relay_stop.set()
            for t in threads[2:]:
                t.join()
            log.info("host stopped: %d commands taken, %d refused, %d answered",
                     self.taken, self.refused, self.answered)  # fmt: skip

    def _take(self, entries: list[Entry]) -> None:
        """Decode a read's entries, then queue them together: the writer, woken by the first,
        finds the rest already queued and takes them as one batch (one commit for all)."""
        taken: list[tuple[Entry, str | None, Envelope]] = []
        for entry in entries:
            reply_to = reply_address(entry.fields, REPLY_PREFIX)
            try:
                taken.append((entry, reply_to, parse_entry(entry.fields, self.ctx, REPLY_PREFIX)))
            except Exception as exc:  # a poison entry is answered and acknowledged, never retried
                self._refuse(entry, reply_to, exc)
        for entry, reply_to, envelope in taken:
            self.taken += 1
            fut = self.service.submit_keyed(envelope)
            fut.add_done_callback(self._answerer(entry.entry_id, reply_to))

    def _answerer(self, entry_id: str, reply_to: str | None) -> Callable[[Future[str]], None]:
        def done(fut: Future[str]) -> None:
            self._answers.put(Answer(entry_id, reply_to, fut.result()))

        return done

    def _refuse(self, entry: Entry, reply_to: str | None, exc: Exception) -> None:
        self.refused += 1
        cid = command_id_of(entry.fields)
        if not isinstance(exc, BourseError) or isinstance(exc, _WIRE_ERRORS) or not reply_to:
            try:
                self.inbox.dead_letter(entry, repr(exc))
            except Exception as dead:
                log.error("dead-lettering %s failed: %r", entry.entry_id, dead)
        self._answers.put(Answer(entry.entry_id, reply_to, reply_text(cid, exc, self.ctx)))

    def _answer_loop(self) -> None:
        done = False
        while not done:
            first = self._answers.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < _ANSWER_BATCH:
                try:
                    nxt = self._answers.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    done = True
                    break
                batch.append(nxt)
            try:
                self.inbox.answer(batch)
                self.answered += len(batch)
            except Exception as exc:
                # The commands are durable; their entries stay pending and are answered again
                # from the command log when reclaimed.
                log.error("answering %d commands failed: %r", len(batch), exc)

    def _follow_quotes(self) -> None:
        try:
            follower = QuoteFollower(self.client)
        except Exception as exc:
            log.error("cannot follow quotes: %r", exc)
            return
        while not self._followers_stop.is_set():
            try:
                quotes = follower.read(1000, 100)
            except Exception as exc:
                log.error("reading quotes failed: %r; retrying", exc)
                self._followers_stop.wait(1.0)
                continue
            for quote in quotes:
                if self.book is not None:
                    self.book.update(quote)
                self.service.submit(QuoteUpdate(quote))

    def _expire_loop(self) -> None:
        while not self._followers_stop.wait(self.expire_every_s):
            self.service.submit(ExpireDue(self.clock()))
            self.service.submit(Rollover(self.oms.clock()))
