"""The links stage: every event of the flow, in arrival order, on one key.

It dedupes the OMS's at-least-once delivery (a high-water mark of event ids per stream),
turns each OMS event and login into an ``ml.events.Event`` (``convert.py``), knows which
client owns each account (``account.opened``, seeded from the store), and runs
``ml.links.Links.observe`` on each event: the cross-client view (shared devices and IPs,
shared funding instruments, linked clients' fills) that the client's shard needs and
could not compute alone. What it hands on is routed by client shard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ml.events import Event
from ml.links import Links
from pipelines.fraud.convert import (
    Malformed,
    NoClient,
    Opened,
    WithdrawalMove,
    convert_event,
    convert_login,
)
from pipelines.fraud.records import DeadLetter
from pipelines.fraud.sources import LoginBatch, Prepared
from pipelines.positions.sources import RAW_CAP, EventBatch
from trading.catalogue import Catalogue
from trading.events import EventDeduper, OutboxEvent

SHARDS = 16
# What a client's shard receives, in order:
#   ("e", ident, ref, Event, LinkView): an event to score
#   ("w", account_id, withdrawal_id, state): a pending withdrawal moved on
ShardEntry = tuple[Any, ...]
Routed = tuple[str, list[ShardEntry]]
# Looks up accounts' clients in the store (those account.opened did not tell this run).
Lookup = Callable[[list[int]], dict[int, int | None]]


def shard_of(client_id: int) -> str:
    return f"c{client_id % SHARDS:02d}"


@dataclass(slots=True)
class Counts:
    skipped_logins: int = 0  # attempts naming no client
    no_client: int = 0  # events of accounts opened without a client
    duplicates: int = 0
    trimmed: int = 0  # reads that found the stream trimmed past them (history lost)


@dataclass(slots=True)
class FrontState:
    """The links stage's state (pickled whole into each snapshot)."""

    links: Links = field(default_factory=Links)
    clients: dict[int, int | None] = field(default_factory=dict)  # account -> client
    last_event_id: dict[str, int] = field(default_factory=dict)  # per stream
    counts: Counts = field(default_factory=Counts)


class Front:
    def __init__(self, state: FrontState, catalogue: Catalogue, lookup: Lookup | None) -> None:
        self.state = state
        self.catalogue = catalogue
        self.lookup = lookup
        self.deduper = EventDeduper(per_account=False, last_event_id=state.last_event_id)

    def on_batch(self, batch: Any) -> tuple[list[Routed], list[DeadLetter]]:
        out: dict[str, list[ShardEntry]] = {}
        dead: list[DeadLetter] = []
        if isinstance(batch, EventBatch):
            self._events(batch, out, dead)
        elif isinstance(batch, LoginBatch):
            dead += batch.dead
            for sid, fields in batch.entries:
                try:
                    ev = convert_login(fields)
                except Malformed as exc:
                    dead.append(_dead(batch.stream, sid, str(exc), None, None, repr(fields)))
                    continue
                if ev is None:
                    self.state.counts.skipped_logins += 1
                    continue
                self._observe(f"l{sid}", f"login:{sid}", ev, out)
        elif isinstance(batch, Prepared):
            for ident, ev in batch.events:
                self._observe(ident, ident, ev, out)
        else:
            raise TypeError(f"not a batch of the fraud flow: {type(batch).__name__}")
        self.state.last_event_id = self.deduper.last_event_id
        return list(out.items()), dead

    def _observe(self, ident: str, ref: str, ev: Event, out: dict[str, list[ShardEntry]]) -> None:
        view = self.state.links.observe(ev)
        out.setdefault(shard_of(ev.client_id), []).append(("e", ident, ref, ev, view))

    def _events(self, batch: EventBatch, out: dict[str, list[ShardEntry]],
                dead: list[DeadLetter]) -> None:  # fmt: skip
        dead += batch.dead
        if batch.trimmed:
            self.state.counts.trimmed += 1
        self._seed([e.account_id for _, e in batch.entries])
        clients = self.state.clients
        for sid, event in batch.entries:
            if not self.deduper.accept(event, stream=batch.stream):
                self.state.counts.duplicates += 1
                continue
            try:
                got = convert_event(event, clients.get(event.account_id), self.catalogue)
            except NoClient as exc:
                if event.account_id in clients:  # opened without a client: nothing to score
                    self.state.counts.no_client += 1
                    continue
                dead.append(_dead(batch.stream, sid, str(exc), event.event_id,
                                  event.account_id, event.payload))  # fmt: skip
                continue
            except Malformed as exc:
                dead.append(_dead(batch.stream, sid, str(exc), event.event_id,
                                  event.account_id, event.payload))  # fmt: skip
                continue
            if got is None:
                continue
            if isinstance(got, Opened):
                clients[got.account_id] = got.client_id
            elif isinstance(got, WithdrawalMove):
                client = clients.get(got.account_id)
                if client is None:
                    self.state.counts.no_client += 1
                    continue
                entry = ("w", got.account_id, got.withdrawal_id, got.state)
                out.setdefault(shard_of(client), []).append(entry)
            else:
                self._observe(f"e{event.event_id}", f"event:{event.event_id}", got, out)

    def _seed(self, accounts: list[int]) -> None:
        """Ask the store for the clients of accounts this run has not seen opened."""
        if self.lookup is None:
            return
        unknown = sorted({a for a in accounts if a not in self.state.clients})
        if unknown:
            found = self.lookup(unknown)
            for account in unknown:
                # Remembered even when absent: the store is not asked twice.
                self.state.clients[account] = found.get(account)


def _dead(stream: str, sid: str, reason: str, event_id: int | None, account_id: int | None,
          raw: str) -> DeadLetter:  # fmt: skip
    return DeadLetter(stream=stream, stream_id=sid, reason=reason, ts_ns=time.time_ns(),
                      event_id=event_id, account_id=account_id, raw=raw[:RAW_CAP])  # fmt: skip


__all__ = ["SHARDS", "Front", "FrontState", "OutboxEvent", "shard_of"]
