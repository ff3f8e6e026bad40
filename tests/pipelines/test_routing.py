"""A feed is read and screened by the same process: the routing matches Bytewax's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.ticks.routing import balanced_routes, siphash13, worker_for
from tests.pipelines.routing_flow import KEYS


def test_siphash13_when_given_the_reference_vector_then_matches() -> None:
    # The SipHash-1-3 of the empty string under zero keys (Rust's DefaultHasher of b"").
    assert siphash13(b"") == 0xD1FBA762150C532C


def test_worker_for_when_workers_is_zero_then_error() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        worker_for("k", 0)


def test_routing_when_two_processes_run_then_each_feed_is_read_and_screened_in_one(
    tmp_path: Path,
) -> None:
    # Arrange
    import socket

    socks = [socket.socket() for _ in range(2)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    out = tmp_path / "routing.log"
    addresses = ";".join(f"127.0.0.1:{p}" for p in ports)
    # Act
    flow = "tests.pipelines.routing_flow:flow_from_env()"
    procs = []
    for k in range(2):
        cmd = [sys.executable, "-m", "bytewax.run", flow, "-i", str(k), "-a", addresses]
        env = {**os.environ, "ROUTING_OUT": str(out), "ROUTING_PROCESS": str(k)}
        procs.append(subprocess.Popen(cmd, env=env))
    codes = [p.wait(timeout=120) for p in procs]
    # Assert
    assert codes == [0, 0]
    read, state = {}, {}
    for line in out.read_text().splitlines():
        role, key, pid = line.split(" ")
        (read if role == "read" else state)[key] = pid
    assert set(read) == set(KEYS) == set(state)
    assert {k: state[k] for k in KEYS} == {k: read[k] for k in KEYS}
    assert len(set(read.values())) == 2  # both processes had feeds


def test_balanced_routes_when_four_equal_feeds_on_two_workers_then_two_each() -> None:
    # Arrange: plain hashing puts three of these four on one worker
    keys = [f"synthetic:7|{s}" for s in ("EUR/USD", "BTC/USDT", "US500", "XAU/USD")]
    assert sorted(worker_for(k, 2) for k in keys) != [0, 0, 1, 1]
    # Act
    routes = balanced_routes(dict.fromkeys(keys, 500_000), 2)
    # Assert
    assert sorted(worker_for(r, 2) for r in routes.values()) == [0, 0, 1, 1]
    assert all(routes[k].startswith(k + "#") for k in keys)


def test_balanced_routes_when_weights_differ_then_the_heavy_feed_gets_a_worker_alone() -> None:
    routes = balanced_routes({"big": 1_000, "a": 300, "b": 300, "c": 300}, 2)
    workers = {k: worker_for(r, 2) for k, r in routes.items()}
    assert workers["a"] == workers["b"] == workers["c"] != workers["big"]
