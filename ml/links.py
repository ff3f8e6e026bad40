"""Cross-client state: who shares a device, an IP or a funding instrument, and recent fills.

One ``Links`` sees every event in arrival order (the flow's single ``links`` stage; the batch
path's ``FeatureEngine``). For each event it returns a ``LinkView`` — the link features from
history strictly before the event, and the client's peers — then records the event.

Peers: two clients are linked once they have logged in from the same device or the same IP.
A device, an IP or an instrument remembers at most ``MAX_CLIENTS_PER_KEY`` clients and a
client at most ``MAX_PEERS`` peers: a carrier NAT shared by thousands says no more than one
shared by sixty-four, and memory stays bounded per key. Recent fills are kept per symbol for
``FILL_WINDOW_NS`` only.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ml.events import Event

LINK_FEATURES: tuple[str, ...] = (
    "device_clients",
    "ip_clients",
    "peers",
    "instrument_clients",
    "peer_opposite_fills_60s",
    "peer_opposite_fills_24h",
)

MAX_CLIENTS_PER_KEY = 64
MAX_PEERS = 64
FILL_WINDOW_NS = 60 * 1_000_000_000
DAY_NS = 24 * 3600 * 1_000_000_000
_MAX_FILLS_PER_SYMBOL = 1024  # fills kept per symbol within the window (a bound, not a tuning)
_MAX_MATCHES_PER_CLIENT = 256

_NO_PEERS: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class LinkView:
    """The link features of one event (``LINK_FEATURES`` order) and the client's peers."""

    client_id: int
    values: tuple[float, ...]
    peers: frozenset[int]


def _side(side: str | None) -> int:
    if side == "buy":
        return 1
    if side == "sell":
        return -1
    return 0


class Links:
    """Devices, IPs and instruments to clients; peers per client; recent fills per symbol."""

    def __init__(self) -> None:
        self._device: dict[str, list[int]] = {}
        self._ip: dict[str, list[int]] = {}
        self._instrument: dict[str, list[int]] = {}
        self._peers: dict[int, frozenset[int]] = {}
        self._fills: dict[str, deque[tuple[int, int, int]]] = {}  # symbol -> (ts, client, side)
        self._matches: dict[int, deque[int]] = {}  # client -> ts of its linked opposite fills

    def peers_of(self, client_id: int) -> frozenset[int]:
        return self._peers.get(client_id, _NO_PEERS)

    def observe(self, ev: Event) -> LinkView:
        """The view of ``ev`` from history strictly before it; then ``ev`` is recorded."""
        c = ev.client_id
        peers = self._peers.get(c, _NO_PEERS)
        device_clients = ip_clients = instrument_clients = 0
        opposite_60s = 0
        matched: list[int] = []
        t = ev.type
        if t == "login":
            if ev.device_id is not None:
                device_clients = _others(self._device.get(ev.device_id), c)
            if ev.ip is not None:
                ip_clients = _others(self._ip.get(ev.ip), c)
        elif t == "deposit":
            if ev.instrument_id is not None:
                instrument_clients = _others(self._instrument.get(ev.instrument_id), c)
        elif t == "fill" and ev.symbol is not None:
            recent = self._fills.get(ev.symbol)
            side = _side(ev.side)
            if recent is not None:
                cutoff = ev.ts_ns - FILL_WINDOW_NS
                while recent and recent[0][0] < cutoff:
                    recent.popleft()
                if peers and side:
                    for _ts, other, other_side in recent:
                        if other_side == -side and other in peers:
                            opposite_60s += 1
                            matched.append(other)
        day = self._matches.get(c)
        opposite_24h = _pruned_len(day, ev.ts_ns - DAY_NS) if day is not None else 0
        view = LinkView(
            c,
            (
                float(device_clients),
                float(ip_clients),
                float(len(peers)),
                float(instrument_clients),
                float(opposite_60s),
                float(opposite_24h),
            ),
            peers,
        )
        self._record(ev, matched)
        return view

    def _record(self, ev: Event, matched: list[int]) -> None:
        c = ev.client_id
        t = ev.type
        if t == "login":
            # A failed login still names the device and IP someone used for this client.
            for key, index in ((ev.device_id, self._device), (ev.ip, self._ip)):
                if key is None:
                    continue
                clients = index.get(key)
                if clients is None:
                    index[key] = [c]
                    continue
                if c in clients:
                    continue
                for other in clients:
                    self._link(c, other)
                    self._link(other, c)
                if len(clients) < MAX_CLIENTS_PER_KEY:
                    clients.append(c)
        elif t == "deposit" and ev.instrument_id is not None:
            clients = self._instrument.get(ev.instrument_id)
            if clients is None:
                self._instrument[ev.instrument_id] = [c]
            elif c not in clients and len(clients) < MAX_CLIENTS_PER_KEY:
                clients.append(c)
        elif t == "fill" and ev.symbol is not None:
            recent = self._fills.get(ev.symbol)
            if recent is None:
                recent = self._fills[ev.symbol] = deque(maxlen=_MAX_FILLS_PER_SYMBOL)
            recent.append((ev.ts_ns, c, _side(ev.side)))
            if not matched:
                return
            for who in (c, *dict.fromkeys(matched)):
                q = self._matches.get(who)
                if q is None:
                    q = self._matches[who] = deque(maxlen=_MAX_MATCHES_PER_CLIENT)
                q.append(ev.ts_ns)

    def _link(self, a: int, b: int) -> None:
        if a == b:
            return
        peers = self._peers.get(a, _NO_PEERS)
        if b in peers or len(peers) >= MAX_PEERS:
            return
        self._peers[a] = peers | {b}


def _others(clients: list[int] | None, c: int) -> int:
    if not clients:
        return 0
    return len(clients) - (1 if c in clients else 0)


def _pruned_len(q: deque[int], cutoff: int) -> int:
    while q and q[0] < cutoff:
        q.popleft()
    return len(q)
