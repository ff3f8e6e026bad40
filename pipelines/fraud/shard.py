"""The clients stage: one shard of clients, keyed by ``front.shard_of``.

Each client's ``ml.features.ClientHistory`` turns its events (with the links stage's view)
into feature vectors; a batch's vectors are scored in one call of the model. A score at or
above the model's threshold is an alert; an alert holds the pending withdrawals it concerns
(its account's, or every account of the client for a login) that no hold was sent for yet.

A batch is walked twice: once for the vectors (each client's history in event order), then
once for the decisions, in the same order, with the withdrawals' states as they stood at
each event: a withdrawal requested in the batch is pending from its own event on, one
approved later in the batch is pending until that event.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.features import ClientHistory
from ml.model import FraudModel
from pipelines.fraud.front import ShardEntry
from pipelines.fraud.records import Alert, Hold, Scored, hold_reason

DRIVERS = 3


@dataclass(slots=True)
class Pending:
    """A client's pending withdrawals: id -> [account, hold sent or held]."""

    withdrawals: dict[int, list[Any]] = field(default_factory=dict)


class ClientShard:
    """The histories and pending withdrawals of one shard's clients."""

    def __init__(self, resume: bytes | None) -> None:
        self.histories: dict[int, ClientHistory] = {}
        self.pending: dict[int, dict[int, list[Any]]] = {}  # client -> wid -> [account, held]
        self.accounts: dict[int, int] = {}  # account -> client (of withdrawals seen here)
        # Each client's history is pickled on its own and kept until it moves again.
        self.blobs: dict[int, bytes] = {}
        self.changed: set[int] = set()
        if resume is not None:
            self.blobs, pending, accounts = pickle.loads(resume)  # noqa: S301 - our own snapshot
            self.histories = {c: pickle.loads(b) for c, b in self.blobs.items()}  # noqa: S301
            self.pending, self.accounts = pending, accounts

    def on_entries(
        self, entries: list[ShardEntry], model: FraudModel, scored: bool = False
    ) -> tuple[list[Alert], list[Hold], list[Scored]]:
        rows: list[tuple[float, ...]] = []
        for entry in entries:
            if entry[0] == "e":
                ev, view = entry[3], entry[4]
                history = self.histories.get(ev.client_id)
                if history is None:
                    history = self.histories[ev.client_id] = ClientHistory(ev.client_id)
                rows.append(history.observe(ev, view))
                self.changed.add(ev.client_id)
        if not rows:
            for entry in entries:
                self._move(entry)
            return [], [], []
        x = np.asarray(rows, dtype=np.float64)
        scores = model.score(x)
        alerts: list[Alert] = []
        holds: list[Hold] = []
        out: list[Scored] = []
        i = 0
        for entry in entries:
            if entry[0] != "e":
                self._move(entry)
                continue
            _, ident, ref, ev, _view = entry
            score = float(scores[i])
            if scored:
                out.append(Scored(ident, rows[i], score))
            if ev.type == "withdrawal" and ev.withdrawal_id is not None and ev.account_id:
                self.pending.setdefault(ev.client_id, {})[ev.withdrawal_id] = [ev.account_id, False]
                self.accounts[ev.account_id] = ev.client_id
            if score >= model.threshold:
                alert, sent = self._alert(ident, ref, ev, score, x[i], model)
                alerts.append(alert)
                holds += sent
            i += 1
        return alerts, holds, out

    def _move(self, entry: ShardEntry) -> None:
        _, account, wid, state = entry
        client = self.accounts.get(account)
        mine = self.pending.get(client) if client is not None else None
        if mine is None or wid not in mine:
            return  # requested before this flow's history began
        if state in ("approved", "rejected"):
            del mine[wid]
        else:
            mine[wid][1] = state == "held"

    def _alert(self, ident: str, ref: str, ev: Any, score: float, row: np.ndarray,
               model: FraudModel) -> tuple[Alert, list[Hold]]:  # fmt: skip
        alert_id = f"fa-{ident}"
        mine = self.pending.get(ev.client_id, {})
        every = ev.account_id is None  # a login: every account of the client
        wids = sorted(w for w, (account, held) in mine.items()
                      if not held and (every or account == ev.account_id))  # fmt: skip
        drivers = tuple((n, float(v)) for n, v in model.drivers(row, DRIVERS))
        alert = Alert(alert_id, ev.ts_ns, ev.client_id, ev.account_id, ev.type, ref, score,
                      float(model.threshold), model.version, drivers, tuple(wids))  # fmt: skip
        reason = hold_reason(alert)
        for w in wids:
            mine[w][1] = True  # sent: the OMS's held event confirms it later
        return alert, [Hold(f"fraud-hold-{w}-{alert_id}", w, reason) for w in wids]

    def snapshot(self) -> bytes:
        for client in self.changed:
            self.blobs[client] = pickle.dumps(self.histories[client],
                                              protocol=pickle.HIGHEST_PROTOCOL)  # fmt: skip
        self.changed.clear()
        return pickle.dumps((self.blobs, self.pending, self.accounts),
                            protocol=pickle.HIGHEST_PROTOCOL)  # fmt: skip
