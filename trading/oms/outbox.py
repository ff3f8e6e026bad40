"""The outbox relay: publishes the OMS's outbox events to the bus, at least once.

The OMS writes an ``outbox`` row in the same transaction as the change it describes
(``trading/oms/engine.py``, ``_emit``). Each event has a unique, increasing ``event_id`` and a
gap-free per-account ``account_seq`` (1, 2, 3...). The relay:

1. reads the unpublished events, oldest first (``ORDER BY event_id LIMIT batch_size``,
   served by the partial index ``ix_outbox_unpublished``), in a short read transaction;
2. hands them to a ``Publisher`` (all or error) outside any database transaction, so the
   store is never locked while the bus answers;
3. marks them published (``published_ns``) in one short write transaction.

A crash or an error between 2 and 3 leaves the events unpublished: the next pass publishes
them again. Delivery is therefore *at least once*; consumers drop what they have seen by
``(account_id, account_seq)`` (``trading.events.EventDeduper``) and the effect is exactly once.

Order: the relay publishes in ``event_id`` order, a batch only after the previous one was
published, and a publisher keeps an account's events in one partition
(``partition_of``; the house's events, account 0, on the house stream), so an account's
events arrive in ``account_seq`` order. This holds
because one writer owns an account, so an account's events commit in ``event_id`` order; the
relay never reads "after the last id it saw" but always "what is still unpublished", so an
event committed late is not skipped.

Several relays may share the work: each owns a set of partitions (``owned``) and reads only
the events of its accounts. Two relays must not own the same partition (each would publish
every event of it; still correct after dedupe, but twice the traffic).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from sqlalchemy import ColumnElement, Engine, bindparam, func, select, update

from trading.errors import BusError, ConfigError
from trading.events import HOUSE_ACCOUNT, OutboxEvent, partition_of
from trading.store import schema as s

log = logging.getLogger(__name__)

BATCH_SIZE_MAX = 10_000
# Ids per UPDATE ... IN (...): under SQLite's historical limit of 999 bound parameters.
_MARK_CHUNK = 500
_BACKOFF_S_MAX = 30.0


class Publisher(Protocol):
    """Where the relay sends events. ``publish`` lands the whole batch or raises."""

    def publish(self, events: Sequence[OutboxEvent]) -> None: ...


class PublishError(BusError):
    """The bus did not take a batch (raised by the in-memory twin when told to fail)."""


class InMemoryPublisher:
    """The bus's twin for unit tests: records what was published, can be told to fail.

    ``fail_next(n)`` makes the next ``n`` calls raise ``PublishError`` without recording
    anything (all or error, like the real bus).
    """

    def __init__(self) -> None:
        self.events: list[OutboxEvent] = []
        self.batches: list[list[OutboxEvent]] = []
        self._failures = 0
        self._lock = threading.Lock()

    def fail_next(self, n: int = 1) -> None:
        with self._lock:
            self._failures = n

    def publish(self, events: Sequence[OutboxEvent]) -> None:
        with self._lock:
            if self._failures > 0:
                self._failures -= 1
                raise PublishError(f"bus refused a batch of {len(events)} events")
            self.batches.append(list(events))
            self.events.extend(events)

    def partition(self, partition: int, partitions: int) -> list[OutboxEvent]:
        """The events one partition would carry, in publication order (the house's are on
        their own stream: ``house``)."""
        with self._lock:
            return [
                e for e in self.events
                if e.account_id != HOUSE_ACCOUNT
                and partition_of(e.account_id, partitions) == partition
            ]  # fmt: skip

    def house(self) -> list[OutboxEvent]:
        """The events the house stream would carry, in publication order."""
        with self._lock:
            return [e for e in self.events if e.account_id == HOUSE_ACCOUNT]


class OutboxRelay:
    """Moves unpublished outbox events to a ``Publisher``; see the module docstring.

    ``partitions`` is the number of partitions the work is split into and ``owned`` the
    ones this relay serves (default: all). Use the bus's partition count so that a relay's
    share is a set of whole streams.
    """

    def __init__(
        self,
        engine: Engine,
        publisher: Publisher,
        batch_size: int = 500,
        *,
        partitions: int = 1,
        owned: Collection[int] | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if not 1 <= batch_size <= BATCH_SIZE_MAX:
            raise ConfigError(f"batch_size must be in 1..{BATCH_SIZE_MAX}, got {batch_size}")
        if partitions <= 0:
            raise ConfigError(f"partitions must be positive, got {partitions}")
        owned_set = frozenset(range(partitions) if owned is None else owned)
        if not owned_set or not owned_set <= frozenset(range(partitions)):
            raise ConfigError(
                f"owned partitions {sorted(owned_set)} not within 0..{partitions - 1}"
            )
        self.engine = engine
        self.publisher = publisher
        self.batch_size = batch_size
        self.partitions = partitions
        self.owned = owned_set
        self.clock = clock
        self.published = 0  # events published by this relay (republications included)
        self.passes = 0

    def _mine(self) -> list[ColumnElement[bool]]:
        """WHERE clauses selecting this relay's unpublished events."""
        o = s.outbox
        clauses: list[ColumnElement[bool]] = [o.c.published_ns.is_(None)]
        if len(self.owned) < self.partitions:
            clauses.append((o.c.account_id % self.partitions).in_(sorted(self.owned)))
        return clauses

    def pending(self) -> list[OutboxEvent]:
        """The next batch to publish: unpublished events in ``event_id`` order."""
        o = s.outbox
        query = (
            select(o.c.event_id, o.c.account_id, o.c.account_seq, o.c.type, o.c.order_id,
                   o.c.ts_ns, o.c.payload)
            .where(*self._mine())
            .order_by(o.c.event_id)
            .limit(self.batch_size)
        )  # fmt: skip
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [OutboxEvent(*r) for r in rows]

    def mark_published(self, event_ids: Sequence[int]) -> int:
        """Stamp ``published_ns`` on these events in one transaction; returns rows changed."""
        o = s.outbox
        now = self.clock()
        stmt = (
            update(o)
            .where(o.c.event_id.in_(bindparam("ids", expanding=True)), o.c.published_ns.is_(None))
            .values(published_ns=now)
        )
        changed = 0
        with self.engine.begin() as conn:
            for i in range(0, len(event_ids), _MARK_CHUNK):
                changed += conn.execute(
                    stmt, {"ids": list(event_ids[i : i + _MARK_CHUNK])}
                ).rowcount
        return changed

    def relay_once(self) -> int:
        """Publish one batch and mark it; returns how many events were published.

        Raises what the publisher or the store raised; nothing is marked then.
        """
        events = self.pending()
        self.passes += 1
        if not events:
            return 0
        _check_order(events)
        self.publisher.publish(events)
        self.published += len(events)
        changed = self.mark_published([e.event_id for e in events])
        if changed != len(events):
            # Another relay owns an overlapping share: correct (consumers dedupe), wasteful.
            log.warning("outbox: %d of %d events were already marked", len(events) - changed,
                        len(events))  # fmt: skip
        return len(events)

    def run(self, stop_event: threading.Event, idle_sleep_s: float = 0.05) -> int:
        """Relay until ``stop_event`` is set; returns the number of events published.

        A full batch is followed at once by the next; an empty or short one by a pause of
        ``idle_sleep_s``. An error (bus or store down) is logged and retried after a pause
        that doubles up to 30 s, so a long outage costs a bounded number of attempts.
        """
        total = 0
        backoff_s = idle_sleep_s
        while not stop_event.is_set():
            try:
                n = self.relay_once()
            except Exception:
                log.exception("outbox relay pass failed; retrying in %.2f s", backoff_s)
                stop_event.wait(backoff_s)
                backoff_s = min(max(backoff_s * 2, 0.01), _BACKOFF_S_MAX)
                continue
            backoff_s = idle_sleep_s
            total += n
            if n < self.batch_size:
                stop_event.wait(idle_sleep_s)
        return total

    def lag(self) -> int:
        """Events of this relay's share not yet published."""
        query = select(func.count()).select_from(s.outbox).where(*self._mine())
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


def _check_order(events: Sequence[OutboxEvent]) -> None:
    """Postcondition of the read: ids increase and each account's sequence increases."""
    last_seq: dict[int, int] = {}
    prev_id = 0
    for e in events:
        assert e.event_id > prev_id, ("outbox not in event_id order", prev_id, e.event_id)
        prev_id = e.event_id
        seq = last_seq.get(e.account_id, 0)
        assert e.account_seq > seq, ("account_seq out of order", e.account_id, seq, e)
        last_seq[e.account_id] = e.account_seq
