"""What the fraud benchmarks share: a seeded workload of events in the features' form, a
small model trained through ``ml.train``, and the flow's links and clients stages over a
testing source."""

from __future__ import annotations

import random
import time
from decimal import Decimal

from ml.events import Event
from ml.model import FraudModel

T0 = 1_767_600_000 * 1_000_000_000  # 2026-01-05 08:00 UTC
BATCH = 1000  # events per source batch, as a stream read hands them out (XREAD COUNT)


def events(n: int, clients: int, seed: int = 11) -> list[Event]:
    """``n`` events of ``clients`` clients in time order, about a second apart: logins 30 %,
    orders and fills 26 % each, deposits 10 %, withdrawals 5 %, destinations added 3 %. A
    client logs in from its own device and address, one time in twenty from one of a pool
    shared by a fiftieth as many (households, offices, a few rings)."""
    rng = random.Random(seed)
    shared = max(1, clients // 50)
    kinds = ("login", "order", "fill", "deposit", "withdrawal", "destination_added")
    weights = (30, 26, 26, 10, 5, 3)
    ts = T0
    out: list[Event] = []
    for _ in range(n):
        ts += rng.randint(1, 2_000) * 1_000_000
        c = rng.randint(1, clients)
        kind = rng.choices(kinds, weights)[0]
        if kind == "login":
            own = rng.random() > 0.05
            s = rng.randint(1, shared)
            out.append(Event(ts, "login", c, None,
                             device_id=f"dev-{c}" if own else f"dev-s{s}",
                             ip=f"10.{c >> 16}.{(c >> 8) & 255}.{c & 255}" if own
                             else f"192.168.{s >> 8}.{s & 255}",
                             country="FR" if rng.random() > 0.02 else "NG",
                             success=rng.random() > 0.1))  # fmt: skip
        elif kind in ("order", "fill"):
            out.append(Event(ts, kind, c, c, symbol=rng.choice(("EUR/USD", "XAU/USD")),
                             side=rng.choice(("buy", "sell")), qty=Decimal("0.10"),
                             price=Decimal("1.08000")))  # fmt: skip
        elif kind == "deposit":
            out.append(Event(ts, "deposit", c, c, amount=Decimal(rng.randint(1_000, 500_000)) / 100,
                             currency="USD", method=rng.choice(("card", "bank")),
                             instrument_id=f"fp-{c}-{rng.randint(1, 2)}"))  # fmt: skip
        elif kind == "withdrawal":
            amount = Decimal(rng.randint(1_000, 200_000)) / 100
            out.append(Event(ts, "withdrawal", c, c, amount=amount, currency="USD",
                             method="bank", destination_id=f"dst-{c}"))  # fmt: skip
        else:
            out.append(Event(ts, "destination_added", c, c, method=rng.choice(("bank", "crypto")),
                             currency="USD", destination_id=f"dst-{c}"))  # fmt: skip
    return out


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
