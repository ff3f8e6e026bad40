"""quickfix's ``Application`` for the FIX venue: its callbacks, handed to the venue.

Nothing here may raise into quickfix (an exception into its C++ thread ends the process),
except ``DoNotSend`` from ``toApp``, which is quickfix's contract for "do not send this".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import quickfix as fix

from trading.venues.fix import messages as M

log = logging.getLogger(__name__)


class Callbacks(Protocol):
    """What the venue answers (``trading.venues.fix.venue.FixVenue``)."""

    name: str

    def on_create(self, session: fix.SessionID) -> None: ...

    def on_logon(self, session: fix.SessionID) -> None: ...

    def on_logout(self) -> None: ...

    def on_sent(self, message: fix.Message) -> None: ...

    def on_message(self, message: fix.Message) -> None: ...


class App(fix.Application):  # type: ignore[misc]
    def __init__(self, venue: Callbacks) -> None:
        super().__init__()
        self.venue = venue

    def onCreate(self, session: fix.SessionID) -> None:  # quickfix names the callbacks
        self.venue.on_create(session)

    def onLogon(self, session: fix.SessionID) -> None:
        self._guard(self.venue.on_logon, session)

    def onLogout(self, session: fix.SessionID) -> None:
        self._guard(lambda _s: self.venue.on_logout(), session)

    def toAdmin(self, message: fix.Message, session: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, session: fix.SessionID) -> None:
        msg_type = message.getHeader().getField(M.MSG_TYPE)
        if msg_type == "3":
            self._guard(self.venue.on_message, message)

    def toApp(self, message: fix.Message, session: fix.SessionID) -> None:
        self.venue.on_sent(message)  # raises DoNotSend on purpose: quickfix's contract

    def fromApp(self, message: fix.Message, session: fix.SessionID) -> None:
        self._guard(self.venue.on_message, message)

    def _guard(self, fn: Callable[[object], None], arg: object) -> None:
        try:
            fn(arg)
        except Exception:
            log.exception("%s: FIX callback failed", self.venue.name)
