"""Sending commands to the OMS: ``CommandClient`` over Redis, ``InMemoryCommandClient`` over
an in-process ``OMSService`` (unit tests). Both answer with the same ``Reply``.

    client = CommandClient(redis.Redis.from_url(url), actor="api")
    reply = client.send(Deposit(7, "USD", 10_000, "psp-123"), timeout=5.0)
    reply.ok, reply.result, reply.code        # or reply.unwrap(): the result, or raises

``send`` takes a command of ``trading.commands`` (written in human units by the codec);
``send_raw`` takes a type name and a JSON body as the API gateway receives it. A command id
is drawn for each command unless given: to retry after a timeout, send again with the same
``command_id`` and the original result comes back, never a second effect. A timeout is a
reply with the code ``timeout``: the command may still run, its reply then goes nowhere.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, cast

import redis

from trading.bus.codec import Context, encode_command, entry_reason
from trading.bus.commands import COMMANDS_STREAM, REPLY_PREFIX, send_entries
from trading.bus.wire import Reply, entry_fields, parse_entry
from trading.catalogue import Catalogue, default_catalogue
from trading.commands import Command
from trading.errors import BourseError, CommandTimeout
from trading.oms.host import host_context
from trading.oms.service import OMSService

log = logging.getLogger(__name__)

Raw = tuple[str, Mapping[str, Any]]  # (type name, body)
DEFAULT_TIMEOUT_S = 10.0
_DRAIN = 1_000  # replies taken per round trip after the first


class _Sender:
    """What both clients share: ids, encoding, the wait."""

    def __init__(
        self,
        actor: str,
        catalogue: Catalogue | None,
        symbol_of: Callable[[int], str | None] | None,
        client_id: str | None,
    ) -> None:
        self.actor = actor
        self.client_id = client_id or uuid.uuid4().hex[:16]
        self.reply_to = REPLY_PREFIX + self.client_id
        self.ctx = Context(catalogue or default_catalogue(), symbol_of)
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"{self.client_id}-{next(self._ids)}"

    def send(
        self,
        command: Command,
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        command_id: str | None = None,
        reason: str = "",
        actor: str | None = None,
    ) -> Reply:
        ids = [command_id] if command_id is not None else None
        return self.send_many([command], timeout, command_ids=ids, reason=reason, actor=actor)[0]

    def send_raw(
        self,
        type_name: str,
        body: Mapping[str, Any],
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        command_id: str | None = None,
        reason: str = "",
        actor: str | None = None,
    ) -> Reply:
        ids = [command_id] if command_id is not None else None
        return self.send_many(
            [(type_name, body)], timeout, command_ids=ids, reason=reason, actor=actor
        )[0]

    def send_many(
        self,
        commands: Sequence[Command | Raw],
        timeout: float = DEFAULT_TIMEOUT_S,
        *,
        command_ids: Sequence[str] | None = None,
        reason: str = "",
        actor: str | None = None,
    ) -> list[Reply]:
        """Send all, then wait for all (``timeout`` for the whole lot); replies in order."""
        futures = self.submit_many(commands, command_ids=command_ids, reason=reason, actor=actor)
        deadline = time.monotonic() + timeout
        return [self._wait(cid, fut, deadline) for cid, fut in futures]

    def submit_many(
        self,
        commands: Sequence[Command | Raw],
        *,
        command_ids: Sequence[str] | None = None,
        reason: str = "",
        actor: str | None = None,
    ) -> list[tuple[str, Future[Reply]]]:
        """Send without waiting: ``(command id, future of the reply)`` per command.
        ``actor`` names who asks for these commands alone (the API sends for many users
        through one client); absent, the client's own."""
        if command_ids is not None and len(command_ids) != len(commands):
            raise ValueError("one command id per command")
        out: list[tuple[str, Future[Reply]]] = []
        outgoing: list[tuple[str, dict[str, str], Future[Reply]]] = []
        for i, command in enumerate(commands):
            cid = command_ids[i] if command_ids is not None else self.new_id()
            fut: Future[Reply] = Future()
            out.append((cid, fut))
            try:
                why = reason
                if isinstance(command, tuple):
                    type_name, body = command
                else:
                    type_name, body = encode_command(command, self.ctx)
                    why = reason or entry_reason(command)
            except BourseError as exc:
                fut.set_result(Reply.failure(cid, exc))
                continue
            fields = entry_fields(cid, type_name, body, self.reply_to, actor or self.actor, why)
            outgoing.append((cid, fields, fut))
        if outgoing:
            self._dispatch(outgoing)
        return out

    def _dispatch(self, outgoing: list[tuple[str, dict[str, str], Future[Reply]]]) -> None:
        raise NotImplementedError

    def _forget(self, command_id: str, fut: Future[Reply]) -> None:
        pass

    def _wait(self, command_id: str, fut: Future[Reply], deadline: float) -> Reply:
        try:
            return fut.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            self._forget(command_id, fut)
            return Reply.failure(
                command_id,
                CommandTimeout(
                    f"no reply to {command_id} in time: it may still run; send it again with "
                    "the same command id to learn its result",
                    command_id=command_id,
                ),
            )


class CommandClient(_Sender):
    """A client of the OMS host over Redis: ``XADD`` to the command stream, replies on its
    own list read by one listener thread. Thread-safe; one per process is enough."""

    def __init__(
        self,
        client: redis.Redis,
        actor: str,
        *,
        catalogue: Catalogue | None = None,
        symbol_of: Callable[[int], str | None] | None = None,
        client_id: str | None = None,
        stream: str = COMMANDS_STREAM,
    ) -> None:
        super().__init__(actor, catalogue, symbol_of, client_id)
        self.client = client
        self.stream = stream
        self._pending: dict[str, list[Future[Reply]]] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._listener: threading.Thread | None = None

    def __enter__(self) -> CommandClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            self._listener.join()

    def _dispatch(self, outgoing: list[tuple[str, dict[str, str], Future[Reply]]]) -> None:
        with self._lock:
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name=f"replies-{self.client_id}", daemon=True
                )
                self._listener.start()
            for cid, _, fut in outgoing:
                self._pending.setdefault(cid, []).append(fut)
        try:
            send_entries(self.client, (f for _, f, _ in outgoing), stream=self.stream)
        except redis.RedisError as exc:
            for cid, _, fut in outgoing:
                self._forget(cid, fut)
                fut.set_result(Reply.failure(cid, BourseError(f"the bus is unreachable: {exc}")))

    def _forget(self, command_id: str, fut: Future[Reply]) -> None:
        with self._lock:
            waiting = self._pending.get(command_id, [])
            if fut in waiting:
                waiting.remove(fut)
            if not waiting:
                self._pending.pop(command_id, None)

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                got = cast("Any", self.client.blpop([self.reply_to], timeout=0.5))
            except redis.RedisError as exc:
                log.warning("reading replies failed (%s); retrying", exc)
                self._closed.wait(0.5)
                continue
            if got is None:
                continue
            texts = [got[1]]
            try:
                # BLPOP hands over one reply; the rest already there come in one more trip.
                more = cast("Any", self.client.lpop(self.reply_to, _DRAIN))
            except redis.RedisError:
                more = None
            texts.extend(more or ())
            for raw in texts:
                self._deliver(raw.decode() if isinstance(raw, bytes) else raw)

    def _deliver(self, text: str) -> None:
        try:
            reply = Reply.from_json(text)
        except (ValueError, KeyError) as exc:
            log.error("unreadable reply dropped: %s", exc)
            return
        with self._lock:
            waiting = self._pending.get(reply.command_id)
            fut = waiting.pop(0) if waiting else None
            if waiting == []:
                del self._pending[reply.command_id]
        if fut is not None:  # else: a late reply, its sender timed out
            fut.set_result(reply)


class InMemoryCommandClient(_Sender):
    """The bus's twin: the same entries, decoded as the host decodes them, run by an
    in-process ``OMSService`` built with a ``CommandLog`` (``trading.oms.host.keyed_service``)."""

    def __init__(
        self,
        service: OMSService,
        actor: str = "test",
        *,
        catalogue: Catalogue | None = None,
        client_id: str | None = None,
    ) -> None:
        super().__init__(actor, catalogue or service.oms.catalogue, None, client_id)
        self.ctx = host_context(service.oms)
        if catalogue is not None:
            self.ctx = dataclasses.replace(self.ctx, catalogue=catalogue)
        self.service = service

    def _dispatch(self, outgoing: list[tuple[str, dict[str, str], Future[Reply]]]) -> None:
        for cid, fields, fut in outgoing:
            try:
                envelope = parse_entry(fields, self.ctx, REPLY_PREFIX)
            except BourseError as exc:
                fut.set_result(Reply.failure(cid, exc))
                continue
            self.service.submit_keyed(envelope).add_done_callback(_relay_to(fut))


def _relay_to(out: Future[Reply]) -> Callable[[Future[str]], None]:
    def done(inner: Future[str]) -> None:
        out.set_result(Reply.from_json(inner.result()))

    return done
