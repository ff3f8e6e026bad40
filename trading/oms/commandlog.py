"""Commands with a client-chosen id: executed once, however often they are delivered.

A bus command arrives as an ``Envelope`` (its id, the fingerprint of its body, the decoded
command, who sent it). ``OMSService`` asks the ``CommandLog`` which commands of a batch
must run:

- an id already in the store (``command_log``) is answered with the reply stored with it,
  and runs nothing; with another fingerprint it is refused (``duplicate_command_id``);
- an id in flight (taken earlier, not yet committed; or twice in one batch) waits for the
  first one's reply;
- the rest run, and their replies are added to the batch's rows, so the reply is stored in
  the same transaction as the effect: after a crash either both are there or neither.

The store's ids of a batch are looked up in one query. A batch whose commit fails stores
no reply: its commands answer ``store_error`` and a retry runs them again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from trading.commands import Command, Result
from trading.errors import DuplicateCommandId
from trading.store import schema as s
from trading.store.repository import Batch

# Ids per IN (...) list: under SQLite's historical limit of 999 bound parameters.
_LOOKUP_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Envelope:
    """A command as it came off the bus."""

    command_id: str
    type: str
    fingerprint: str
    command: Command
    actor: str
    reason: str = ""
    # The instrument of the order it is about, when known: a reply's quantities and prices
    # are written in its units.
    symbol: str | None = None


# encode(envelope, result) -> the reply's JSON text
Encode = Callable[[Envelope, Result | BaseException], str]


class CommandLog:
    def __init__(self, engine: Engine, encode: Encode, clock: Callable[[], int]) -> None:
        self.engine = engine
        self.encode = encode
        self.clock = clock
        # command id -> (fingerprint, futures waiting for the first run's reply)
        self._inflight: dict[str, tuple[str, list[Future[Any]]]] = {}
        self._lock = threading.Lock()
        self.replayed = 0  # answered from the store
        self.joined = 0  # answered with a command in flight

    def lookup(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """``command id -> (fingerprint, reply text)`` of the ids already executed."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, tuple[str, str]] = {}
        if not wanted:
            return found
        c = s.command_log.c
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[i : i + _LOOKUP_CHUNK]
                rows = conn.execute(
                    select(c.command_id, c.fingerprint, c.result).where(c.command_id.in_(chunk))
                )
                found.update({r.command_id: (r.fingerprint, r.result) for r in rows})
        return found

    def admit(self, items: list[tuple[Any, Future[Any]]]) -> list[tuple[Any, Future[Any]]]:
        """The items of a batch that must run; the others are answered or attached here."""
        with self._lock:
            fresh = [
                env.command_id
                for env, _ in items
                if isinstance(env, Envelope) and env.command_id not in self._inflight
            ]
        stored = self.lookup(fresh) if fresh else {}
        run: list[tuple[Any, Future[Any]]] = []
        with self._lock:
            for env, fut in items:
                if not isinstance(env, Envelope):
                    run.append((env, fut))
                    continue
                held = self._inflight.get(env.command_id)
                if held is not None:
                    if held[0] == env.fingerprint:
                        held[1].append(fut)
                        self.joined += 1
                    else:
                        fut.set_result(self.encode(env, _reused(env)))
                    continue
                found = stored.get(env.command_id)
                if found is not None:
                    ok = found[0] == env.fingerprint
                    fut.set_result(found[1] if ok else self.encode(env, _reused(env)))
                    self.replayed += ok
                    continue
                self._inflight[env.command_id] = (env.fingerprint, [])
                run.append((env, fut))
        return run

    def record(
        self, batch: Batch, items: list[tuple[Any, Future[Any]]], results: list[Result]
    ) -> list[str | None]:
        """Add the batch's replies to its rows; returns each item's reply (None: not keyed)."""
        replies: list[str | None] = []
        ts = self.clock()
        for (env, _), result in zip(items, results, strict=True):
            if not isinstance(env, Envelope):
                replies.append(None)
                continue
            text = self.encode(env, result)
            replies.append(text)
            batch.add(
                "command_log",
                {"command_id": env.command_id, "fingerprint": env.fingerprint, "type": env.type,
                 "actor": env.actor, "result": text, "ts_ns": ts},
            )  # fmt: skip
        return replies

    def settle(
        self,
        items: list[tuple[Any, Future[Any]]],
        results: list[Result],
        replies: list[str | None] | None,
    ) -> None:
        """Answer a batch's callers once it is durable (or failed: ``replies`` is None)."""
        for i, ((env, fut), result) in enumerate(zip(items, results, strict=True)):
            if not isinstance(env, Envelope):
                fut.set_result(result)
                continue
            text = replies[i] if replies is not None else None
            if text is None:
                text = self.encode(env, result)
            with self._lock:
                held = self._inflight.pop(env.command_id, None)
            fut.set_result(text)
            for waiter in held[1] if held else ():
                waiter.set_result(text)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._inflight)


def _reused(env: Envelope) -> DuplicateCommandId:
    return DuplicateCommandId(
        f"command id {env.command_id!r} was used for another command",
        command_id=env.command_id,
    )
