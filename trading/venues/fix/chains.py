"""The adapter's durable view of its orders: ClOrdID chains, and which orders are done.

One JSON line per event, appended and flushed to the OS before the message it records is
sent (``HOME/venues/fix/<lp>/orders.jsonl``, beside quickfix's own store of the session):

    {"new": "17.0", "o": 17, "a": 3, "s": "EUR/USD", "d": "buy", "t": "3|..."}   an order sent
    {"ask": "17.1", "o": 17, "k": "cancel"}                          a cancel or replace sent
    {"live": "17.2", "o": 17}                                        a replace took effect
    {"end": "filled", "o": 17}                                       a final state forwarded

Why a file and not a table: the store belongs to the OMS's writer thread, while ClOrdIDs are
minted in the venue's calls and answered in quickfix's thread; a chain must be on disk
before its request is on the wire, with no round trip through the OMS's batch. The file is
read once at start; an order with no ``end`` line is one the LP may still be working,
whose status the adapter asks at every logon.

A request the OMS makes while it prepares a batch is minted in memory at once (``mint``,
``mint_ask``: a cancel in the same batch finds its order's chain) and written only when the
batch is committed, just before it is sent (``write_new``, ``write_ask``); a batch never
stored takes its requests back (``unmint``, ``unmint_ask``), newest first, so the file and
the memory hold only requests that went out.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trading.orders import Side


@dataclass(slots=True)
class Chain:
    order_id: int
    account_id: int
    symbol: str
    side: Side
    sent: int = 0  # ClOrdIDs minted: the next is <order_id>.<sent>
    live: str = ""  # the ClOrdID the LP knows the order by now
    ended: str = ""  # the final state forwarded ("" while working)
    asks: dict[str, str] = field(default_factory=dict)  # ClOrdID -> "cancel" | "replace"
    # What the adapter forwarded: cumulative quantity and notional (quantity ints × price ints).
    filled: int = 0
    notional: int = 0
    acked: bool = False
    # The order's terms (account and request fingerprint), and the first ClOrdID suffix that
    # is this order's: below it, an order the OMS gave the same id and never stored.
    terms: str = ""
    floor: int = 0
    # Minted for a batch not committed yet: neither on disk nor on the wire.
    unsent: bool = False


def suffix(cl_ord_id: str | None) -> int:
    tail = (cl_ord_id or "").rpartition(".")[2]
    return int(tail) if tail.isdigit() else -1


class Chains:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.by_order: dict[int, Chain] = {}
        if path.exists():
            self._load()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")

    def _load(self) -> None:
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash: the request it began never went
                self._replay(rec)

    def _replay(self, rec: dict[str, Any]) -> None:
        oid = int(rec["o"])
        if "new" in rec:
            n = suffix(rec["new"])
            c = Chain(oid, int(rec.get("a", 0)), rec["s"], Side(rec["d"]), sent=n + 1,
                      live=rec["new"], terms=rec.get("t", ""), floor=n)  # fmt: skip
            self.by_order[oid] = c
            return
        c0 = self.by_order.get(oid)
        if c0 is None:
            return
        if "ask" in rec:
            c0.sent += 1
            c0.asks[rec["ask"]] = rec["k"]
        elif "live" in rec:
            c0.live = rec["live"]
        elif "end" in rec:
            c0.ended = rec["end"]

    def _append(self, rec: dict[str, Any]) -> None:
        self._file.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self._file.flush()

    def mint(
        self, order_id: int, account_id: int, symbol: str, side: Side, terms: str
    ) -> tuple[Chain, str, Chain | None]:
        """Mint an order's first ClOrdID in memory: (the chain, the ClOrdID, the chain it
        replaces). An order id seen before (the OMS gave it again after a batch its store
        refused) starts a new chain past the old one's ClOrdIDs."""
        with self._lock:
            old = self.by_order.get(order_id)
            n = old.sent if old is not None else 0
            cl = f"{order_id}.{n}"
            c = Chain(order_id, account_id, symbol, side, sent=n + 1, live=cl, terms=terms,
                      floor=n, unsent=True)  # fmt: skip
            self.by_order[order_id] = c
            return c, cl, old

    def mint_ask(self, chain: Chain, kind: str) -> str:
        """Mint the next ClOrdID of a chain for a cancel or replace, in memory."""
        with self._lock:
            cl = f"{chain.order_id}.{chain.sent}"
            chain.sent += 1
            chain.asks[cl] = kind
            return cl

    def write_new(self, chain: Chain) -> None:
        with self._lock:
            chain.unsent = False
            self._append({"new": f"{chain.order_id}.{chain.floor}", "o": chain.order_id,
                          "a": chain.account_id, "s": chain.symbol, "d": chain.side.value,
                          "t": chain.terms})  # fmt: skip

    def write_ask(self, chain: Chain, cl: str, kind: str) -> None:
        with self._lock:
            self._append({"ask": cl, "o": chain.order_id, "k": kind})

    def unmint(self, chain: Chain, old: Chain | None) -> None:
        """Take back a new order never sent: its order id's chain is the one before."""
        with self._lock:
            if self.by_order.get(chain.order_id) is chain:
                if old is None:
                    del self.by_order[chain.order_id]
                else:
                    self.by_order[chain.order_id] = old

    def unmint_ask(self, chain: Chain, cl: str) -> None:
        """Take back a cancel or replace never sent (the newest minted of its chain)."""
        with self._lock:
            chain.sent -= 1
            chain.asks.pop(cl, None)

    def live(self, chain: Chain, cl_ord_id: str) -> None:
        with self._lock:
            if chain.live != cl_ord_id:
                chain.live = cl_ord_id
                self._append({"live": cl_ord_id, "o": chain.order_id})

    def end(self, chain: Chain, state: str) -> None:
        with self._lock:
            if not chain.ended:
                chain.ended = state
                self._append({"end": state, "o": chain.order_id})

    def working(self) -> list[Chain]:
        with self._lock:
            return [c for c in self.by_order.values() if not c.ended and not c.unsent]

    def close(self) -> None:
        with self._lock:
            self._file.close()
