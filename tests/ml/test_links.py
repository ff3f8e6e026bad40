"""Links across clients: shared devices, IPs and instruments; opposite fills between peers."""

from __future__ import annotations

import pickle

from ml.links import LINK_FEATURES, MAX_CLIENTS_PER_KEY, Links
from tests.ml.builders import History


def _value(view_values: tuple[float, ...], name: str) -> float:
    return view_values[LINK_FEATURES.index(name)]


def test_links_when_two_clients_log_in_from_one_device_then_they_become_peers() -> None:
    # Arrange
    h = History()
    a = h.login(1, "dev-shared", ip="10.0.0.1")
    b = h.login(2, "dev-shared", ip="10.0.0.2")
    c = h.deposit(1, "100")
    links = Links()

    # Act
    views = [links.observe(ev) for ev in (a, b, c)]

    # Assert
    assert _value(views[0].values, "device_clients") == 0  # nobody before client 1
    assert _value(views[1].values, "device_clients") == 1  # client 1 used it before
    assert _value(views[1].values, "ip_clients") == 0  # other IPs
    assert views[1].peers == frozenset()  # history strictly before the event
    assert views[2].peers == frozenset({2})
    assert _value(views[2].values, "peers") == 1
    assert links.peers_of(2) == frozenset({1})


def test_links_when_a_client_reuses_its_own_device_then_it_counts_no_other_client() -> None:
    h = History()
    events = [h.login(1, "dev-a"), h.login(1, "dev-a"), h.login(1, "dev-a")]
    links = Links()

    views = [links.observe(ev) for ev in events]

    assert [_value(v.values, "device_clients") for v in views] == [0, 0, 0]
    assert links.peers_of(1) == frozenset()


def test_links_when_a_fingerprint_is_used_by_another_client_then_it_is_counted() -> None:
    h = History()
    events = [
        h.deposit(1, "50", instrument="fp-x"),
        h.deposit(2, "50", instrument="fp-x"),
        h.deposit(3, "50", instrument="fp-x"),
        h.deposit(3, "50", instrument="fp-y"),
    ]
    links = Links()

    views = [links.observe(ev) for ev in events]

    assert [_value(v.values, "instrument_clients") for v in views] == [0, 1, 2, 0]


def test_links_when_linked_clients_fill_opposite_sides_within_a_minute_then_counted() -> None:
    # Arrange: 1 and 2 share an IP; 3 is a stranger trading the same symbol.
    h = History()
    events = [
        h.login(1, "dev-1", ip="192.0.2.7"),
        h.login(2, "dev-2", ip="192.0.2.7"),
        h.fill(1, "BTC/USD", "buy"),
        h.fill(2, "BTC/USD", "sell", after=5),  # peer, opposite, 5 s later: counted
        h.fill(3, "BTC/USD", "sell", after=1),  # not a peer of 1
        h.fill(2, "BTC/USD", "buy", after=1),  # same side as 1's buy: not counted
        h.fill(2, "ETH/USD", "sell", after=1),  # other symbol
        h.fill(1, "BTC/USD", "sell", after=120),  # 2's buy is 2 minutes old: out of window
    ]
    links = Links()

    # Act
    views = [links.observe(ev) for ev in events]

    # Assert
    opposite = [_value(v.values, "peer_opposite_fills_60s") for v in views]
    assert opposite == [0, 0, 0, 1, 0, 0, 0, 0]
    day = [_value(v.values, "peer_opposite_fills_24h") for v in views]
    # After the match at event 3, both clients carry it for a day.
    assert day == [0, 0, 0, 0, 0, 1, 1, 1]


def test_links_when_a_device_is_shared_by_many_then_its_memory_is_capped() -> None:
    h = History()
    events = [h.login(c, "dev-cafe", ip=f"10.1.{c // 250}.{c % 250}") for c in range(1, 201)]
    links = Links()

    views = [links.observe(ev) for ev in events]

    assert _value(views[-1].values, "device_clients") == MAX_CLIENTS_PER_KEY
    assert max(len(links.peers_of(c)) for c in range(1, 201)) <= MAX_CLIENTS_PER_KEY


def test_links_when_pickled_mid_stream_then_the_copy_goes_on_identically() -> None:
    h = History()
    for c in (1, 2, 3):
        h.login(c, "dev-s", ip="10.9.9.9")
    h.fill(1, "X", "buy")
    rest = [h.fill(2, "X", "sell"), h.fill(3, "X", "sell"), h.login(4, "dev-s")]
    links = Links()
    for ev in h.events[:4]:
        links.observe(ev)

    copy = pickle.loads(pickle.dumps(links))

    assert [copy.observe(ev) for ev in rest] == [links.observe(ev) for ev in rest]
