"""The stream's features and scores equal the batch path's: random small event sequences
through the real Bytewax flow (links stage, then client shards) against
``ml.engine.FeatureEngine`` over the same events in the same order."""

from __future__ import annotations

import itertools
from decimal import Decimal

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.engine import FeatureEngine
from ml.events import Event
from ml.model import FraudModel
from tests.pipelines.fraud.kit import BASE_NS, run_prepared

CLIENTS = st.integers(1, 6)
DEVICES = st.sampled_from(["dev-a", "dev-b", "dev-c", "dev-d"])
IPS = st.sampled_from(["10.0.0.1", "10.0.0.2", "192.168.1.9"])
AMOUNTS = st.decimals(Decimal("1"), Decimal("50000"), places=2)


@st.composite
def an_event(draw: st.DrawFn) -> Event:
    client = draw(CLIENTS)
    account = client * 10
    kind = draw(st.sampled_from(["login", "deposit", "withdrawal", "destination_added",
                                 "order", "fill"]))  # fmt: skip
    if kind == "login":
        return Event(0, "login", client, None, device_id=draw(DEVICES), ip=draw(IPS),
                     country=draw(st.sampled_from(["FR", "DE", "NG"])),
                     success=draw(st.booleans()))  # fmt: skip
    if kind == "deposit":
        return Event(0, "deposit", client, account, amount=draw(AMOUNTS), currency="USD",
                     method=draw(st.sampled_from(["card", "bank", "crypto"])),
                     instrument_id=draw(st.sampled_from(["fp-1", "fp-2", "fp-3"])))  # fmt: skip
    if kind == "withdrawal":
        return Event(0, "withdrawal", client, account, amount=draw(AMOUNTS), currency="USD",
                     method="bank", destination_id=draw(st.sampled_from(["1", "2"])),
                     withdrawal_id=draw(st.integers(1, 10_000)))  # fmt: skip
    if kind == "destination_added":
        return Event(0, "destination_added", client, account, method="crypto", currency="USD",
                     destination_id=draw(st.sampled_from(["1", "2", "3"])))  # fmt: skip
    return Event(0, kind, client, account, symbol=draw(st.sampled_from(["EUR/USD", "XAU/USD"])),
                 side=draw(st.sampled_from(["buy", "sell"])), qty=Decimal("0.10"),
                 price=Decimal("1.08000"))  # fmt: skip


@st.composite
def histories(draw: st.DrawFn) -> list[list[tuple[str, Event]]]:
    """Events in time order, cut into the batches the source hands out."""
    events = draw(st.lists(an_event(), min_size=1, max_size=40))
    gaps = draw(st.lists(st.integers(0, 7_200), min_size=len(events), max_size=len(events)))
    ts = BASE_NS
    timed = []
    for i, (ev, gap) in enumerate(zip(events, gaps, strict=True)):
        ts += gap * 1_000_000_000
        timed.append((f"t{i}", Event(**{**_asdict(ev), "ts_ns": ts})))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(timed) - 1)), max_size=5)))
    bounds = [0, *cuts, len(timed)]
    return [timed[a:b] for a, b in itertools.pairwise(bounds) if a < b]


def _asdict(ev: Event) -> dict[str, object]:
    return {name: getattr(ev, name) for name in Event.__slots__}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batches=histories())
def test_the_flow_computes_the_batch_paths_vectors_and_scores(
    batches: list[list[tuple[str, Event]]], model: FraudModel
) -> None:
    events = [pair for batch in batches for pair in batch]
    engine = FeatureEngine()
    want = {ident: engine.observe(ev) for ident, ev in events}
    want_scores = model.score(np.asarray([want[i] for i, _ in events], dtype=np.float64))

    scored, _alerts, _holds = run_prepared(batches, model)

    got = {s.ident: s for s in scored}
    assert sorted(got) == sorted(want)
    for k, (ident, _ev) in enumerate(events):
        assert got[ident].vector == want[ident], ident
        assert got[ident].score == float(want_scores[k]), ident
