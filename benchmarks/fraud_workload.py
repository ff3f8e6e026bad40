"""What the fraud benchmarks share: a seeded workload of events in the features' form, a
small model trained through ``ml.train``, and the flow's links and clients stages over a
testing source."""

from __future__ import annotations

import time

from ml.events import Event
from ml.model import FraudModel

BATCH = 1000  # events per source batch, as a stream read hands them out (XREAD COUNT)


def events(n: int, clients: int, seed: int = 11) -> list[Event]:
    """``n`` events of ``clients`` clients: logins, deposits, withdrawals, destinations,
    fills, with shared devices, IPs and instruments (tests/ml/builders.py)."""
    from tests.ml.builders import random_history

    return random_history(seed, n=n, clients=clients).events


def model(seed: int = 5) -> tuple[FraudModel, float]:
    """A model trained on a small labelled history; the seconds training took."""
    from ml.train import train
    from tests.ml.builders import random_history

    t0 = time.perf_counter()
    trained = train(random_history(seed, n=1000, clients=20).frame(), seed=seed)
    return trained.model, time.perf_counter() - t0


def batches(evs: list[Event]) -> list[list[tuple[str, Event]]]:
    pairs = [(f"b{i}", ev) for i, ev in enumerate(evs)]
    return [pairs[i : i + BATCH] for i in range(0, len(pairs), BATCH)]
