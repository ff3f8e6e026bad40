"""The batch path of the features: ``Links`` then each client's ``ClientHistory``, in order.

The flow runs the same two objects in two stages (links on one key, then the client's
shard); events reach a client's history in the order they reached the links, so the
stream's vectors equal ``feature_matrix`` over the same events in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ml.events import Event
from ml.features import FEATURES, ClientHistory
from ml.links import Links


class FeatureEngine:
    """Every client's history and the links, fed one event at a time in arrival order."""

    def __init__(self) -> None:
        self.links = Links()
        self.clients: dict[int, ClientHistory] = {}

    def observe(self, ev: Event) -> tuple[float, ...]:
        view = self.links.observe(ev)
        history = self.clients.get(ev.client_id)
        if history is None:
            history = self.clients[ev.client_id] = ClientHistory(ev.client_id)
        return history.observe(ev, view)


PROGRESS_EVERY = 10_000


def feature_matrix(
    events: Iterable[Event], progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """float64 ``[n, len(FEATURES)]``: row i is event i's features, from events before it.

    ``progress`` is told the number of events done every ``PROGRESS_EVERY`` events and at
    the end.
    """
    engine = FeatureEngine()
    observe = engine.observe
    if progress is None:
        rows = [observe(ev) for ev in events]
    else:
        rows = []
        for ev in events:
            rows.append(observe(ev))
            if len(rows) % PROGRESS_EVERY == 0:
                progress(len(rows))
        progress(len(rows))
    if not rows:
        return np.zeros((0, len(FEATURES)), dtype=np.float64)
    return np.asarray(rows, dtype=np.float64)
