"""The API served by uvicorn in a thread on a free port, for clients that need a real
socket: the WebSocket tests (a slow reader needs TCP's back-pressure) and the browser."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from websockets.sync.client import ClientConnection, connect

from serving.api.app import create_app
from serving.settings import Settings
from tests.serving.api.conftest import PASSWORD


@dataclass
class Live:
    base: str  # http://127.0.0.1:PORT
    http: httpx.Client

    @property
    def ws_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/v1/ws"

    def register(self, username: str) -> int:
        """A client's user with its account; the account id."""
        body = {
            "username": username, "password": PASSWORD, "email": f"{username}@example.com",
            "name": f"{username.capitalize()} Martin", "country": "FR",
            "birth_date": "1985-04-02",
        }  # fmt: skip
        res = self.http.post("/v1/auth/register", json=body)
        assert res.status_code == 201, res.text
        return int(res.json()["account_id"])

    def token(self, username: str, totp: str | None = None) -> str:
        body = {"username": username, "password": PASSWORD, "device_id": "ws-test"}
        if totp is not None:
            body["totp"] = totp
        res = self.http.post("/v1/auth/login", json=body)
        assert res.status_code == 200, res.text
        return str(res.json()["token"])

    def ws(self, token: str | None = None, **kw: Any) -> ClientConnection:
        """A connection, authenticated by its first message when ``token`` is given."""
        conn = connect(self.ws_url, open_timeout=10, **kw).__enter__()
        if token is not None:
            conn.send(json.dumps({"op": "auth", "token": token}))
            welcome = json.loads(conn.recv(timeout=10))
            assert welcome["type"] == "welcome", welcome
        return conn


@contextmanager
def live_api(settings: Settings) -> Iterator[Live]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            yield Live(base, http)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def recv_json(conn: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(conn.recv(timeout=timeout))
    return out


def recv_until(
    conn: ClientConnection, done: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> list[dict[str, Any]]:
    """Messages up to and including the first for which ``done`` holds."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"not received in {timeout} s; got {seen[-5:]}"
        msg = recv_json(conn, left)
        seen.append(msg)
        if done(msg):
            return seen


class RawClient:
    """A WebSocket client on a plain socket with a small receive buffer that reads only
    when told: a client that stops reading, with nothing in between to absorb the server's
    messages but the kernel's buffers."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(30)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        n = len(data)
        header = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                  bytes([0x80 | 126]) + struct.pack("!H", n))  # fmt: skip
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the socket without a close frame")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self) -> tuple[int, bytes]:
        """The next frame's opcode and payload (the server never fragments nor masks)."""
        b0, b1 = self._take(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8))[0]
        return b0 & 0x0F, self._take(n)

    def until_closed(self) -> tuple[int, list[dict[str, Any]]]:
        """Reads to the close frame: its code and the messages before it."""
        seen: list[dict[str, Any]] = []
        while True:
            op, payload = self.frame()
            if op == 0x8:
                return struct.unpack("!H", payload[:2])[0], seen
            if op == 0x1:
                seen.append(json.loads(payload))

    def close(self) -> None:
        self.sock.close()
