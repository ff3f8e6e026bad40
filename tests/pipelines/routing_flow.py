"""A two-process flow for test_routing: records which process reads and which screens a key.

Run by ``python -m bytewax.run tests.pipelines.routing_flow:flow_from_env()``; each process
appends ``role key pid`` lines to the file named by ``ROUTING_OUT``.
"""

from __future__ import annotations

import os
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from pipelines.ticks.routing import worker_for

KEYS = [f"feed-{i}.csv|EUR/USD" for i in range(8)] + ["synthetic:7|BTC/USDT", "x|US500"]
KEYS += [f"synthetic:7|{s}#{n}" for s in ("EUR/USD", "XAU/USD") for n in range(5)]


def _log(role: str, key: str) -> None:
    with open(os.environ["ROUTING_OUT"], "a") as fh:
        fh.write(f"{role} {key} {os.getpid()}\n")


class _Part(StatefulSourcePartition[tuple[str, int], None]):
    def __init__(self, key: str) -> None:
        self._key = key
        self._sent = False

    def next_batch(self) -> list[tuple[str, int]]:
        if self._sent:
            raise StopIteration
        self._sent = True
        _log("read", self._key)
        return [(self._key, 1)]

    def snapshot(self) -> None:
        return None


class _Source(FixedPartitionedSource[tuple[str, int], None]):
    def __init__(self, process: int, processes: int) -> None:
        self._process, self._processes = process, processes

    def list_parts(self) -> list[str]:
        return [k for k in KEYS if worker_for(k, self._processes) == self._process]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _Part:
        return _Part(for_part)


class _Null(StatelessSinkPartition[Any]):
    def write_batch(self, items: list[Any]) -> None:
        return None


class _NullSink(DynamicSink[Any]):
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Null:
        return _Null()


def flow_from_env() -> Dataflow:
    flow = Dataflow("routing")
    process = int(os.environ["ROUTING_PROCESS"])
    stream = op.input("in", flow, _Source(process, 2))

    def screen(state: None, value: int) -> tuple[None, int]:
        return None, value

    keyed = op.stateful_map("screen", stream, screen)
    op.inspect("where", keyed, lambda step, item: _log("state", item[0]))
    op.output("out", keyed, _NullSink())
    return flow
