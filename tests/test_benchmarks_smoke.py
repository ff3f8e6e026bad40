"""Smoke test of `python -m benchmarks --quick`: it runs end to end and writes its JSON.

Nothing here checks a time: only that each benchmark produced positive figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import main


def _numbers(value: object) -> list[float]:
    """Every number in a JSON value's median/min/max summaries (bar the GC pauses, which
    are zero when no full collection happened)."""
    found: list[float] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k.startswith("gc_"):
                continue
            if k in ("median", "min", "max") and isinstance(v, int | float):
                found.append(float(v))
            else:
                found.extend(_numbers(v))
    elif isinstance(value, list):
        for v in value:
            found.extend(_numbers(v))
    return found


@pytest.mark.slow
def test_benchmarks_when_run_quick_on_sqlite_then_each_writes_json_with_positive_figures(
    tmp_path: Path,
) -> None:
    # Arrange / Act
    code = main(["--quick", "--store", "sqlite", "--out", str(tmp_path)])

    # Assert
    assert code == 0
    for name in ("oms_throughput", "history", "latency", "bus"):
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["machine"]["nproc"] >= 1
        assert data["machine"]["sqlite"]
        assert list(data["stores"]) == ["sqlite"]
        numbers = _numbers(data["stores"]["sqlite"])
        assert numbers, name
        assert all(n > 0 for n in numbers), (name, [n for n in numbers if n <= 0])
    for name in ("ticks_throughput", "ticks_scaling", "ticks_latency"):
        data = json.loads((tmp_path / f"{name}.json").read_text())
        numbers = _numbers(data["figures"])
        assert numbers, name
        assert all(n > 0 for n in numbers), (name, [n for n in numbers if n <= 0])
    throughput = json.loads((tmp_path / "oms_throughput.json").read_text())["stores"]["sqlite"]
    assert throughput["oms_group"]["orders_per_s"]["median"] > 0
    assert throughput["filled_fraction"] > 0.5
    assert len(throughput["oms_group"]["orders_per_s"]["runs"]) == 3
