"""What the dataflows' launchers share to start a cluster of ``bytewax.run`` processes."""

from __future__ import annotations

import socket


def free_ports(n: int) -> list[int]:
    """``n`` loopback ports free at the time of asking, one per process of a cluster."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
