"""Which Bytewax worker owns a key, so a source partition can live where its state lives.

Bytewax 0.21 routes a keyed item to worker ``siphash13(key bytes + 0xFF) % workers`` (Rust's
``DefaultHasher`` over a ``String``: SipHash-1-3 with zero keys, the string's bytes then a
0xFF terminator), but it assigns source partitions to workers by a different hash. A tick
source therefore lists, on each process, only the partitions whose key routes to that
process: a feed's batches are then read, screened and written by one process, and never
cross to another. ``tests/pipelines/test_routing.py`` checks this against Bytewax itself,
so an upgrade that changes the routing fails a test instead of silently moving batches.
"""

from __future__ import annotations

import struct

_MASK = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _MASK


def _sipround(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
    v0 = (v0 + v1) & _MASK
    v1 = _rotl(v1, 13) ^ v0
    v0 = _rotl(v0, 32)
    v2 = (v2 + v3) & _MASK
    v3 = _rotl(v3, 16) ^ v2
    v0 = (v0 + v3) & _MASK
    v3 = _rotl(v3, 21) ^ v0
    v2 = (v2 + v1) & _MASK
    v1 = _rotl(v1, 17) ^ v2
    v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash13(data: bytes, k0: int = 0, k1: int = 0) -> int:
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    whole = len(data) // 8 * 8
    for i in range(0, whole, 8):
        (m,) = struct.unpack_from("<Q", data, i)
        v3 ^= m
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
        v0 ^= m
    last = (len(data) & 0xFF) << 56
    for i, byte in enumerate(data[whole:]):
        last |= byte << (8 * i)
    v3 ^= last
    v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    v0 ^= last
    v2 ^= 0xFF
    for _ in range(3):
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


def worker_for(key: str, workers: int) -> int:
    """The index of the worker Bytewax sends items keyed ``key`` to."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return siphash13(key.encode() + b"\xff") % workers


def balanced_routes(weights: dict[str, int], workers: int) -> dict[str, str]:
    """A routing key per feed so that the feeds' weights spread evenly over the workers.

    Hashing alone can put three of four feeds on one worker. Here feeds are placed
    heaviest first on the least loaded worker (ties: lowest index, then key order), and
    each gets the first key of the form ``feed#n`` that Bytewax routes to its worker. The
    result depends on the feeds alone, so every process of a cluster computes the same.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    load = [0] * workers
    routes = {}
    for key in sorted(weights, key=lambda k: (-weights[k], k)):
        target = min(range(workers), key=lambda w: (load[w], w))
        load[target] += max(weights[key], 1)
        salt = 0
        while worker_for(f"{key}#{salt}", workers) != target:
            salt += 1
        routes[key] = f"{key}#{salt}"
    return routes
