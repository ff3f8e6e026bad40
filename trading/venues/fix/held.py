"""Requests held until the OMS stored the batch that made them (``FixVenue``'s outbox).

The OMS prepares a batch, then stores it; a request it made meanwhile (35=D, F, G) must not
reach the LP before the batch is durable, nor ever if the store refuses it. Each batch begun
(``begin``) gets a list; its requests wait there with their ClOrdIDs minted in memory.
``release_oldest`` (the oldest batch was stored: batches commit in the order they began)
writes each request's ClOrdID to the chains file and sends it, in order; ``drop`` (a commit
failed, the OMS reloads its state) takes back every request still held, newest first. With
no batch begun (no OMS drives the venue) a request is released at once.

Not thread-safe on its own: the venue calls it under its lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import quickfix as fix

from trading.venues.fix import messages as M
from trading.venues.fix.chains import Chain, Chains


@dataclass(slots=True)
class Held:
    """A request minted for a batch not committed yet: its message waits with it."""

    chain: Chain
    cl: str
    kind: str  # "new", "cancel" or "replace"
    message: fix.Message
    prev: Chain | None = None  # a new order's: the chain its order id had before


class Outbox:
    def __init__(
        self, chains: Chains, send: Callable[[fix.Message], None], clock: Callable[[], int]
    ) -> None:
        self._chains = chains
        self._send = send
        self._clock = clock
        self._batches: deque[list[Held]] = deque()  # oldest first

    def begin(self) -> None:
        self._batches.append([])

    def hold(self, held: Held) -> None:
        if self._batches:
            self._batches[-1].append(held)
        else:
            self._release(held)

    def release_oldest(self) -> None:
        for held in self._batches.popleft() if self._batches else []:
            self._release(held)

    def drop(self) -> None:
        while self._batches:
            for held in reversed(self._batches.pop()):
                if held.kind == "new":
                    self._chains.unmint(held.chain, held.prev)
                else:
                    self._chains.unmint_ask(held.chain, held.cl)

    def _release(self, h: Held) -> None:
        """Write the request's ClOrdID (on disk before it is on the wire), then send it,
        stamped with the time it leaves and naming the ClOrdID in force now."""
        if h.kind == "new":
            self._chains.write_new(h.chain)
        else:
            self._chains.write_ask(h.chain, h.cl, h.kind)
            h.message.setField(M.ORIG_CL_ORD_ID, h.chain.live)
        h.message.setField(M.TRANSACT_TIME, M.fix_time(self._clock()))
        self._send(h.message)
