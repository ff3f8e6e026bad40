"""The clients' stages, keyed by client shard (``front.shard_of``).

``Histories`` (stage ``clients``): each client's ``ml.features.ClientHistory`` turns its
events (with the links stage's view) into feature vectors. Between the two stages the
vectors of everything a worker holds are scored in one call of the model (``score_all``):
a call costs milliseconds whatever its size, and a batch split across sixteen shards would
pay it sixteen times. ``Decisions`` (stage ``decide``): a score at or above the model's
threshold is an alert; an alert holds the pending withdrawals it concerns (its account's,
or every account of the client for a login) that no hold was sent for yet.

Entries travel in their arrival order through both stages (one key, one path), so the
withdrawals' states at each event are those its earlier events left: a withdrawal requested
is pending from its own event on, one approved later is pending until that event.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from ml.features import ClientHistory
from ml.model import FraudModel
from pipelines.fraud.front import ShardEntry
from pipelines.fraud.records import Alert, Hold, Scored, hold_reason

DRIVERS = 3
# After ``Histories``: ("e", ident, ref, Event, vector) and ("w", account, wid, state);
# after ``score_all``: (entries, scores) with one score per "e" entry, in order.
Scoring = tuple[list[ShardEntry], np.ndarray]


class Histories:
    """One shard's clients' histories; each pickled on its own and kept until it moves."""

    def __init__(self, resume: bytes | None) -> None:
        self.histories: dict[int, ClientHistory] = {}
        self.blobs: dict[int, bytes] = {}
        self.changed: set[int] = set()
        if resume is not None:
            self.blobs = pickle.loads(resume)  # noqa: S301 - our own snapshot
            self.histories = {c: pickle.loads(b) for c, b in self.blobs.items()}  # noqa: S301

    def on_entries(self, entries: list[ShardEntry]) -> list[ShardEntry]:
        out: list[ShardEntry] = []
        for entry in entries:
            if entry[0] != "e":
                out.append(entry)
                continue
            _, ident, ref, ev, view = entry
            history = self.histories.get(ev.client_id)
            if history is None:
                history = self.histories[ev.client_id] = ClientHistory(ev.client_id)
            out.append(("e", ident, ref, ev, history.observe(ev, view)))
            self.changed.add(ev.client_id)
        return out

    def snapshot(self) -> bytes:
        for client in self.changed:
            self.blobs[client] = pickle.dumps(self.histories[client],
                                              protocol=pickle.HIGHEST_PROTOCOL)  # fmt: skip
        self.changed.clear()
        return pickle.dumps(self.blobs, protocol=pickle.HIGHEST_PROTOCOL)


def score_all(
    items: list[tuple[str, list[ShardEntry]]], model: FraudModel
) -> list[tuple[str, Scoring]]:
    """Every vector of ``items`` scored in one call; each shard's entries with its scores."""
    rows = [e[4] for _k, entries in items for e in entries if e[0] == "e"]
    scores = model.score(np.asarray(rows, dtype=np.float64)) if rows else np.zeros(0)
    out: list[tuple[str, Scoring]] = []
    i = 0
    for key, entries in items:
        n = sum(1 for e in entries if e[0] == "e")
        out.append((key, (entries, scores[i : i + n])))
        i += n
    return out


class Decisions:
    """One shard's pending withdrawals, and the alerts and holds its scores decide."""

    def __init__(self, resume: bytes | None) -> None:
        self.pending: dict[int, dict[int, list[Any]]] = {}  # client -> wid -> [account, held]
        self.accounts: dict[int, int] = {}  # account -> client (of withdrawals seen here)
        if resume is not None:
            self.pending, self.accounts = pickle.loads(resume)  # noqa: S301 - our own snapshot

    def on_scored(
        self, entries: list[ShardEntry], scores: np.ndarray, model: FraudModel, scored: bool
    ) -> tuple[list[Alert], list[Hold], list[Scored]]:
        alerts: list[Alert] = []
        holds: list[Hold] = []
        out: list[Scored] = []
        i = 0
        for entry in entries:
            if entry[0] != "e":
                self._move(entry)
                continue
            _, ident, ref, ev, vector = entry
            score = float(scores[i])
            i += 1
            if scored:
                out.append(Scored(ident, vector, score))
            if ev.type == "withdrawal" and ev.withdrawal_id is not None and ev.account_id:
                self.pending.setdefault(ev.client_id, {})[ev.withdrawal_id] = [ev.account_id, False]
                self.accounts[ev.account_id] = ev.client_id
            if score >= model.threshold:
                alert, sent = self._alert(ident, ref, ev, score, vector, model)
                alerts.append(alert)
                holds += sent
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

    def _alert(self, ident: str, ref: str, ev: Any, score: float, vector: tuple[float, ...],
               model: FraudModel) -> tuple[Alert, list[Hold]]:  # fmt: skip
        alert_id = f"fa-{ident}"
        mine = self.pending.get(ev.client_id, {})
        every = ev.account_id is None  # a login: every account of the client
        wids = sorted(w for w, (account, held) in mine.items()
                      if not held and (every or account == ev.account_id))  # fmt: skip
        row = np.asarray(vector, dtype=np.float64)
        drivers = tuple((n, float(v)) for n, v in model.drivers(row, DRIVERS))
        alert = Alert(alert_id, ev.ts_ns, ev.client_id, ev.account_id, ev.type, ref, score,
                      float(model.threshold), model.version, drivers, tuple(wids))  # fmt: skip
        reason = hold_reason(alert)
        for w in wids:
            mine[w][1] = True  # sent: the OMS's held event confirms it later
        return alert, [Hold(f"fraud-hold-{w}-{alert_id}", w, reason) for w in wids]

    def snapshot(self) -> bytes:
        return pickle.dumps((self.pending, self.accounts), protocol=pickle.HIGHEST_PROTOCOL)
