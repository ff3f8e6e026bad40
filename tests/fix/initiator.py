"""A bare quickfix initiator for interop tests: sends what a test builds, keeps all it gets.

    with Initiator(tmp_path, port, "FIX.4.4", [("BOURSE", "EXECUTOR")]) as ini:
        ini.wait_logon()
        ini.send("BOURSE", "D", [(11, "o1"), (54, "1"), ...])
        report = ini.expect(lambda m: m.type == "8" and m[11] == "o1")

Data dictionary validation is on (the spec of the `fix` extra's quickfix), as in the
adapter. Every message that reaches the application or admin layer after logon, from
either side, is kept as a ``Received`` (tags to values; a repeated tag keeps its first
value), in order; ``expect`` waits, within a bound, for the first one not yet taken that a
test's predicate accepts. This checks what the counterparties do on the wire, below the
adapter (``trading.venues.fix``): the tests through ``FixVenue`` sit beside these.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import quickfix as fix

from tests.fix.counterparties import spec_dir

SOH = "\x01"
WAIT_S = 20.0  # a bound on how long a counterparty may take to answer, not a timing test


@dataclass(frozen=True)
class Received:
    sender: str  # the CompID of our session that received it
    fields: dict[int, str]
    raw: str

    @property
    def type(self) -> str:
        return self.fields[35]

    def __getitem__(self, tag: int) -> str:
        return self.fields[tag]

    def get(self, tag: int) -> str | None:
        return self.fields.get(tag)


def transact_time() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


class Initiator(fix.Application):  # type: ignore[misc]
    def __init__(
        self, home: Path, port: int, begin_string: str, sessions: Sequence[tuple[str, str]]
    ) -> None:
        super().__init__()
        self.begin_string = begin_string
        self._targets = dict(sessions)  # our SenderCompID -> their CompID
        self._ids: dict[str, Any] = {}
        self._logged_on: set[str] = set()
        self._cond = threading.Condition()
        self._inbox: list[Received] = []
        home.mkdir(parents=True, exist_ok=True)
        lines = [
            "[DEFAULT]", "ConnectionType=initiator", "SocketConnectHost=127.0.0.1",
            f"SocketConnectPort={port}", "HeartBtInt=30", "ReconnectInterval=1",
            "StartTime=00:00:00", "EndTime=00:00:00", "ResetOnLogon=Y",
            f"FileStorePath={home / 'store'}", f"FileLogPath={home / 'log'}",
            "UseDataDictionary=Y",
            f"DataDictionary={spec_dir() / (begin_string.replace('.', '') + '.xml')}", "",
        ]  # fmt: skip
        for sender, target in sessions:
            lines += ["[SESSION]", f"BeginString={begin_string}", f"SenderCompID={sender}",
                      f"TargetCompID={target}", ""]  # fmt: skip
        cfg = home / "initiator.cfg"
        cfg.write_text("\n".join(lines))
        settings = fix.SessionSettings(str(cfg))
        self._initiator: Any = fix.SocketInitiator(
            self, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings)
        )
        self._initiator.start()

    # --- the test's side --------------------------------------------------------------

    def wait_logon(self) -> None:
        deadline = time.monotonic() + WAIT_S
        with self._cond:
            while set(self._targets) - self._logged_on:
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(set(self._targets) - self._logged_on)
                    raise AssertionError(f"no logon within {WAIT_S:g} s for {missing}")
                self._cond.wait(left)

    def send(self, sender: str, msg_type: str, fields: Sequence[tuple[int, str]]) -> None:
        message = fix.Message()
        header = message.getHeader()
        header.setField(fix.BeginString(self.begin_string))
        header.setField(fix.MsgType(msg_type))
        for tag, value in fields:
            message.setField(fix.StringField(tag, value))
        if not fix.Session.sendToTarget(message, self._ids[sender]):
            raise AssertionError(f"quickfix refused to send 35={msg_type} on {sender}")

    def expect(self, accept: Callable[[Received], bool], what: str = "a message") -> Received:
        """The first message not yet taken that ``accept`` accepts (waits up to WAIT_S)."""
        deadline = time.monotonic() + WAIT_S
        with self._cond:
            while True:
                for i, message in enumerate(self._inbox):
                    if accept(message):
                        return self._inbox.pop(i)
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(m.raw.replace(SOH, "|") for m in self._inbox)
                    raise AssertionError(f"no {what} within {WAIT_S:g} s; unclaimed:\n{seen}")
                self._cond.wait(left)

    def inbox(self) -> list[Received]:
        with self._cond:
            return list(self._inbox)

    def stop(self) -> None:
        """Logs out and drops the initiator: quickfix keeps a session registered, by its
        ID, until the initiator is destroyed, and a later test's session of the same ID
        would otherwise meet the dead one (a refused send, then a crash at exit)."""
        if self._initiator is not None:
            self._initiator.stop()
            self._initiator = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()

    # --- quickfix's side ----------------------------------------------------------------

    def _keep(self, message: Any, session_id: Any) -> None:
        raw = message.toString()
        fields: dict[int, str] = {}
        for part in raw.split(SOH):
            tag, sep, value = part.partition("=")
            if sep and tag.isdigit():
                fields.setdefault(int(tag), value)
        sender = session_id.getSenderCompID().getValue()
        with self._cond:
            self._inbox.append(Received(sender, fields, raw))
            self._cond.notify_all()

    def onCreate(self, sessionID: Any) -> None:
        self._ids[sessionID.getSenderCompID().getValue()] = sessionID

    def onLogon(self, sessionID: Any) -> None:
        with self._cond:
            self._logged_on.add(sessionID.getSenderCompID().getValue())
            self._cond.notify_all()

    def onLogout(self, sessionID: Any) -> None:
        with self._cond:
            self._logged_on.discard(sessionID.getSenderCompID().getValue())

    def toAdmin(self, message: Any, sessionID: Any) -> None:
        pass

    def fromAdmin(self, message: Any, sessionID: Any) -> None:
        if message.getHeader().getField(35) not in ("0", "1", "A"):  # keep all but chatter
            self._keep(message, sessionID)

    def toApp(self, message: Any, sessionID: Any) -> None:
        pass

    def fromApp(self, message: Any, sessionID: Any) -> None:
        self._keep(message, sessionID)
