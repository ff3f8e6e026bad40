"""Per-client features: each from the client's history strictly before the event."""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from ml.engine import FeatureEngine, feature_matrix
from ml.features import (
    _MAX_EVENTS_24H,
    FEATURES,
    NEVER_H_LOG,
    ClientHistory,
)
from tests.ml.builders import DAY, HOUR, History, random_history

DOCS = Path(__file__).resolve().parents[2] / "docs" / "fraud.md"


def _rows(h: History) -> list[dict[str, float]]:
    x = feature_matrix(h.events)
    return [dict(zip(FEATURES, row, strict=True)) for row in x]


def test_features_when_docs_list_them_then_the_table_matches_features_in_order() -> None:
    text = DOCS.read_text()
    section = text.split("## Features", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.MULTILINE)

    assert tuple(names) == FEATURES


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_features_when_fed_a_prefix_then_the_last_row_equals_the_full_files_row(
    seed: int,
) -> None:
    # Arrange
    h = random_history(seed)
    full = feature_matrix(h.events)

    # Act / Assert: no feature reads an event after its own.
    for cut in (1, 2, 17, 150, 333, len(h.events)):
        prefix = feature_matrix(h.events[:cut])
        np.testing.assert_array_equal(prefix[-1], full[cut - 1])


def test_features_when_a_login_comes_from_a_new_device_and_country_then_flagged() -> None:
    h = History()
    h.login(1, "dev-home", country="FR")  # the first login: nothing is "new" yet
    h.login(1, "dev-home", country="FR", after=HOUR / 1e9)
    h.login(1, "dev-evil", country="BR", success=False, after=60)
    h.login(1, "dev-evil", country="BR", after=60)  # the failed one taught nothing
    h.deposit(1, "100", after=2 * 3600)

    rows = _rows(h)

    assert [r["new_device"] for r in rows] == [0, 0, 1, 1, 0]
    assert [r["new_country"] for r in rows] == [0, 0, 1, 1, 0]
    assert rows[3]["failed_logins_1h"] == 1
    assert rows[2]["login_failed"] == 1
    assert rows[3]["h_since_new_device_log"] == NEVER_H_LOG
    assert rows[4]["h_since_new_device_log"] == pytest.approx(math.log1p(2.0))


def test_features_when_withdrawing_then_amounts_are_against_the_clients_own_deposits() -> None:
    h = History()
    h.deposit(1, "100", method="card", instrument="fp-a")
    h.deposit(1, "300", method="card", instrument="fp-a", after=3600)
    h.withdraw(1, "100", "dst-1", method="bank", after=3600)
    h.trade(1)
    h.withdraw(1, "240", "dst-1", method="bank", after=5 * 3600)

    rows = _rows(h)

    first, last = rows[2], rows[5]
    assert first["amount_vs_deposits_log"] == pytest.approx(math.log(100 / 200))  # median 200
    assert first["withdrawal_to_net_deposits"] == pytest.approx(100 / 400)
    assert first["withdrawn_to_deposited"] == pytest.approx(100 / 400)
    assert first["h_since_deposit_log"] == pytest.approx(math.log1p(1.0))
    assert first["destination_kind_unused"] == 1  # bank, never a deposit method
    assert first["destination_new"] == 1
    assert first["trades_since_funding_log"] == 0
    assert last["withdrawal_to_net_deposits"] == pytest.approx(240 / 300)
    assert last["withdrawn_to_deposited"] == pytest.approx(340 / 400)
    assert last["destination_new"] == 0
    assert last["trades_since_funding_log"] == pytest.approx(math.log1p(2))  # order, fill
    assert last["amount_log"] == pytest.approx(math.log1p(240))


def test_features_when_cards_multiply_in_a_day_then_instruments_24h_counts_them() -> None:
    h = History()
    h.deposit(1, "20", instrument="fp-1")
    h.deposit(1, "20", instrument="fp-2", after=600)
    h.deposit(1, "20", instrument="fp-3", after=600)
    h.deposit(1, "20", instrument="fp-1", after=600)
    h.deposit(1, "20", instrument="fp-1", after=DAY / 1e9 + 10)

    rows = _rows(h)

    assert [r["instruments_24h"] for r in rows] == [1, 2, 3, 3, 1]
    assert [r["instrument_new"] for r in rows] == [0, 1, 1, 0, 0]
    assert [r["deposits_24h"] for r in rows] == [0, 1, 2, 3, 0]


def test_features_when_a_destination_is_added_then_the_withdrawal_knows_its_age() -> None:
    h = History()
    h.deposit(1, "500", method="crypto")
    h.destination(1, "dst-new", method="crypto", after=DAY / 1e9)
    h.withdraw(1, "450", "dst-new", method="crypto", after=1800)
    h.withdraw(1, "10", "dst-unknown", method="crypto", after=60)

    rows = _rows(h)

    assert rows[1]["destination_kind_unused"] == 0  # crypto was a deposit method
    assert rows[2]["h_since_destination_added_log"] == pytest.approx(math.log1p(0.5))
    assert rows[2]["destinations_24h"] == 1
    assert rows[3]["h_since_destination_added_log"] == NEVER_H_LOG


def test_features_when_one_client_is_very_busy_then_its_memory_stays_bounded() -> None:
    h = History()
    for i in range(3 * _MAX_EVENTS_24H):
        h.fill(1, side="buy" if i % 2 else "sell", after=1)
        h.login(1, f"dev-{i}", ip=f"10.{i // 250 % 250}.{i % 250}.1", after=1)
    engine = FeatureEngine()

    rows = [engine.observe(ev) for ev in h.events]

    history = engine.clients[1]
    assert len(history.ev_24h) == _MAX_EVENTS_24H
    assert len(history.devices) == 64
    assert len(history.ips) == 64
    assert dict(zip(FEATURES, rows[-1], strict=True))["events_24h"] == _MAX_EVENTS_24H
    assert len(pickle.dumps(history)) < 64_000


def test_features_when_an_event_type_is_unknown_then_a_clear_error() -> None:
    h = History()
    ev = h.login(1, "dev-a")
    bad = type(ev)(ev.ts_ns, "teleport", 1)
    engine = FeatureEngine()

    with pytest.raises(ValueError, match="unknown event type 'teleport'"):
        engine.observe(bad)
    assert isinstance(ClientHistory(1), ClientHistory)
