"""``GET /v1/ws``: the WebSocket (protocol and close codes: docs/websocket.md).

Authenticated by a session token, in the first message ``{"op": "auth", "token": ...}``
(preferred: a URL may be logged) or as ``?token=``; without a live session the connection
is closed with 4001. Then ``subscribe`` / ``unsubscribe`` to the channels of
``ws_channels``; each message carries the ``cursor`` (stream position) it reflects, which
``subscribe`` takes back as ``since`` after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy import select

from serving.api import ws_channels as ch
from serving.api.auth import sessions
from serving.api.sessions import Session
from serving.api.state import ApiState
from serving.api.ws_hub import CLOSE_SLOW, CLOSE_UNAUTHENTICATED, Hub, Outbox, Reader, Sub, parse_id
from trading.catalogue import default_catalogue
from trading.store import schema as s

log = logging.getLogger(__name__)

router = APIRouter()

RISK_ROLES = frozenset({"risk", "admin"})
CHANNELS = ("quotes", "portfolio", "orders", "risk")
OPS = ("auth", "subscribe", "unsubscribe", "ping")
MAX_SYMBOLS = 500


class Refused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@router.websocket("/v1/ws")
async def websocket(ws: WebSocket) -> None:
    state: ApiState = ws.app.state.api
    hub: Hub = ws.app.state.ws_hub
    # Accepted first: a refusal before the handshake could carry no close code.
    await ws.accept()
    session = await _authenticate(ws, state)
    if session is None:
        return
    await Connection(ws, state, hub, session).run()


async def _authenticate(ws: WebSocket, state: ApiState) -> Session | None:
    token = ws.query_params.get("token")
    if not token:
        try:
            first = await asyncio.wait_for(ws.receive_text(), state.settings.api_ws_auth_timeout_s)
            msg = json.loads(first)
            token = msg.get("token") if isinstance(msg, dict) and msg.get("op") == "auth" else None
        except (TimeoutError, ValueError, WebSocketDisconnect):
            token = None
    session = None
    if isinstance(token, str) and token:
        session = await asyncio.to_thread(sessions(state).touch, token, state.clock())
    if session is None:
        with contextlib.suppress(Exception):
            await ws.send_json({"type": "error", "code": "unauthenticated",
                                "detail": "send a live session token first: "
                                '{"op": "auth", "token": ...}'})  # fmt: skip
            await ws.close(CLOSE_UNAUTHENTICATED, "unauthenticated")
        return None
    await ws.send_json({"type": "welcome", "user_id": session.user_id, "role": session.role,
                        "mfa": session.mfa, "channels": list(_allowed(session))})  # fmt: skip
    return session


def _allowed(session: Session) -> tuple[str, ...]:
    if session.role in RISK_ROLES and session.mfa:
        return CHANNELS
    return tuple(c for c in CHANNELS if c != "risk")


def _accounts_of(state: ApiState, client_id: int | None) -> list[int]:
    if client_id is None:
        return []
    a = s.accounts
    with state.reader.connect() as conn:
        rows = conn.execute(select(a.c.account_id).where(a.c.client_id == client_id))
        return sorted(int(r[0]) for r in rows)


class Connection:
    def __init__(self, ws: WebSocket, state: ApiState, hub: Hub, session: Session) -> None:
        self.ws = ws
        self.state = state
        self.hub = hub
        self.session = session
        self.settings = state.settings
        self.outbox = Outbox(self.settings.api_ws_queue)
        self.subs: dict[str, tuple[Sub, list[Reader]]] = {}
        self.ended: str | None = None

    async def run(self) -> None:
        tasks = [asyncio.create_task(t) for t in (self._send(), self._receive(),
                                                  self._check_session(),
                                                  self.outbox.failed_event.wait())]  # fmt: skip
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t
            for name in list(self.subs):
                self._drop(name)
        if self.outbox.failed is not None:
            await self._close(CLOSE_SLOW, "slow_consumer", self.outbox.failed)
        elif self.ended is not None:
            await self._close(CLOSE_UNAUTHENTICATED, "unauthenticated", self.ended)

    async def _close(self, code: int, reason: str, detail: str) -> None:
        # The last message and the close frame go after what the socket already holds;
        # a client that never reads again is left after the send timeout.
        wait = self.settings.api_ws_send_timeout_s
        log.info("ws: closing user %s's connection (%s): %s", self.session.user_id, code, detail)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.send_json({"type": "closing", "code": code,
                                                      "reason": reason, "detail": detail}),
                                   wait)  # fmt: skip
            await asyncio.wait_for(self.ws.close(code, reason), wait)

    async def _send(self) -> None:
        timeout = self.settings.api_ws_send_timeout_s
        queue = self.outbox.queue
        while True:
            message, on_sent = await queue.get()
            text = json.dumps(message, separators=(",", ":"))
            try:
                await asyncio.wait_for(self.ws.send_text(text), timeout)
            except TimeoutError:
                self.outbox.fail(f"a message waited more than {timeout} s to be sent")
                return
            if on_sent is not None:
                on_sent()

    async def _receive(self) -> None:
        while True:
            try:
                text = await self.ws.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return
            msg: Any = None
            try:
                msg = json.loads(text)
                if not isinstance(msg, dict):
                    raise Refused("invalid_input", "a message is a JSON object")
                await self._handle(msg)
            except ValueError:
                self._refuse(msg, Refused("invalid_input", "a message is a JSON object"))
            except Refused as refused:
                self._refuse(msg, refused)
            except redis.RedisError as error:
                log.warning("ws: Redis failed for user %s: %s", self.session.user_id, error)
                self._refuse(msg, Refused("unavailable", "Redis cannot be reached: try again"))

    def _refuse(self, msg: Any, refused: Refused) -> None:
        channel = msg.get("channel") if isinstance(msg, dict) else None
        self.outbox.offer({"type": "error", "code": refused.code, "detail": refused.detail,
                           "channel": channel})  # fmt: skip

    async def _check_session(self) -> None:
        """An open connection keeps its session alive: each check pushes back its idle
        timer, often enough that it cannot lapse in between. A session revoked, or past
        its maximum age, ends the connection (4001)."""
        st = self.settings
        every_s = min(st.api_ws_session_check_s, st.api_session_idle_s / 3)
        store = sessions(self.state)
        while True:
            await asyncio.sleep(every_s)
            live = await asyncio.to_thread(store.keep_alive, self.session.sid, self.state.clock())
            if not live:
                self.ended = "the session ended: log in again"
                return

    async def _handle(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "ping":
            self.outbox.offer({"type": "pong"})
        elif op == "subscribe":
            await self._subscribe(msg)
        elif op == "unsubscribe":
            self._drop(str(msg.get("channel")))
            self.outbox.offer({"type": "unsubscribed", "channel": msg.get("channel")})
        else:
            raise Refused("invalid_input", f"op is one of {', '.join(OPS[1:])}")

    def _drop(self, name: str) -> None:
        found = self.subs.pop(name, None)
        if found is None:
            return
        sub, readers = found
        for reader in readers:
            reader.remove(sub)
        if isinstance(sub, ch.QuotesSub):
            self.hub.tickers.discard(sub.tick)

    async def _subscribe(self, msg: dict[str, Any]) -> None:
        name = msg.get("channel")
        if name not in CHANNELS:
            raise Refused("invalid_input", f"channel is one of {', '.join(CHANNELS)}")
        if name not in _allowed(self.session):
            raise Refused("forbidden", "the risk channel is for the risk desk, with 2FA")
        since = msg.get("since")
        sub, readers = await self._make(name, msg)
        if since is not None:
            try:
                parts = str(since).split(",")
                if len(parts) != len(sub.streams):
                    raise ValueError(since)
                for p in parts:
                    parse_id(p)
            except ValueError:
                raise Refused("invalid_input", "since is a cursor this channel sent") from None
        self._drop(name)
        pending_max = self.settings.api_ws_replay_max
        self.subs[name] = (sub, readers)
        try:
            for reader in readers:
                await reader.start()
        except TimeoutError:
            self._drop(name)
            raise Refused("unavailable", "Redis cannot be reached") from None
        upto: dict[str, str] = {}
        for reader in readers:
            upto.update(reader.add(sub))
        if since is not None and await self._resume(sub, readers, str(since), upto, pending_max):
            sub.release()
            return
        sub.cursor = dict(upto)
        body = await sub.snapshot(self.hub.client)  # type: ignore[attr-defined]
        sub.emit({"type": "snapshot", "channel": name, "resumed": False, **body})
        sub.release()
        if isinstance(sub, ch.QuotesSub):
            self.hub.tick_every_interval(sub.tick)

    async def _resume(self, sub: Sub, readers: list[Reader], since: str, upto: dict[str, str],
                      limit: int) -> bool:  # fmt: skip
        """Replays what the client missed, when all of it is still in the streams."""
        since_map = dict(zip(sub.streams, since.split(","), strict=True))
        found = []
        for reader in readers:
            entries = await reader.collect(since_map, upto, limit)
            if entries is None:
                return False
            found.append((reader, entries))
        sub.cursor = dict(since_map)
        sub.emit({"type": "resumed", "channel": sub.channel, "since": since})
        for reader, entries in found:
            reader.apply(sub, entries)
        sub.cursor = dict(upto)
        if isinstance(sub, ch.QuotesSub):
            self.hub.tick_every_interval(sub.tick)
        return True

    async def _make(self, name: str, msg: dict[str, Any]) -> tuple[Sub, list[Reader]]:
        pending_max = self.settings.api_ws_replay_max
        if name == "quotes":
            symbols = msg.get("symbols")
            catalogue = default_catalogue()
            if (not isinstance(symbols, list) or not symbols or len(symbols) > MAX_SYMBOLS
                    or not all(isinstance(x, str) for x in symbols)):  # fmt: skip
                raise Refused("invalid_input", f"symbols: a list of 1..{MAX_SYMBOLS} symbols")
            unknown = [x for x in symbols if x not in catalogue]
            if unknown:
                raise Refused("unknown_symbol", f"unknown symbols: {', '.join(unknown[:10])}")
            return ch.QuotesSub(self.outbox, symbols, catalogue, pending_max), [
                ch.quotes_reader(self.hub)
            ]
        if name == "risk":
            top = self.settings.api_ws_risk_accounts
            return ch.RiskSub(self.outbox, top, pending_max), [
                ch.changes_reader(self.hub),
                ch.alerts_reader(self.hub),
            ]
        accounts = await asyncio.to_thread(_accounts_of, self.state, self.session.client_id)
        if name == "portfolio":
            return ch.PortfolioSub(self.outbox, accounts, pending_max), [
                ch.changes_reader(self.hub)
            ]
        reader = ch.events_reader(self.hub, self.settings.event_partitions)
        return ch.OrdersSub(self.outbox, reader.streams, accounts, pending_max), [reader]
