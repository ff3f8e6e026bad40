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
    for name in ("oms_throughput", "history", "latency", "bus", "api_orders"):
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["machine"]["nproc"] >= 1
        assert data["machine"]["sqlite"]
        assert list(data["stores"]) == ["sqlite"]
        numbers = _numbers(data["stores"]["sqlite"])
        assert numbers, name
        assert all(n > 0 for n in numbers), (name, [n for n in numbers if n <= 0])
    for name in ("ticks_throughput", "ticks_scaling", "ticks_latency", "positions_throughput",
                 "positions_latency", "positions_scaling", "eod", "ws_fanout", "fix_throughput",
                 "fix_latency", "fraud_quality", "fraud_throughput", "fraud_latency"):  # fmt: skip
        data = json.loads((tmp_path / f"{name}.json").read_text())
        numbers = _numbers(data["figures"])
        assert numbers, name
        assert all(n > 0 for n in numbers), (name, [n for n in numbers if n <= 0])
    positions = json.loads((tmp_path / "positions_throughput.json").read_text())["figures"]
    assert positions["dataflow"]["outcome"]["dead_letters"] == 0
    assert len(positions["profile_plain_loop"]["top_by_own_time"]) == 10
    fraud = json.loads((tmp_path / "fraud_throughput.json").read_text())["figures"]
    assert fraud["dataflow"]["alerts"] == fraud["plain_loop"]["alerts"]
    holds = json.loads((tmp_path / "fraud_latency.json").read_text())["figures"]["runs"][0]
    assert holds["withdrawals"] > 0
    latency = json.loads((tmp_path / "positions_latency.json").read_text())["figures"]
    assert latency["quote_to_margin"]["sent"] > 0
    assert latency["fill_to_exposure"]["sent"] > 0
    api = json.loads((tmp_path / "api_orders.json").read_text())["stores"]["sqlite"]
    first = api["runs"][0]
    assert first["statuses"].get("201", 0) > 0
    assert sum(first["latency_statuses"].values()) == first["latency_orders"]
    assert first["api_timed_ms"]["count"] == first["latency_orders"]
    fanout = json.loads((tmp_path / "ws_fanout.json").read_text())["figures"]
    assert fanout["runs"][0]["clients"] == 20
    assert fanout["quotes_delivered_per_s"]["median"] > 0
    fix = json.loads((tmp_path / "fix_throughput.json").read_text())["figures"]
    assert fix["all_filled"] and all(r["filled"] == r["orders"] for r in fix["runs"])
    fix_latency = json.loads((tmp_path / "fix_latency.json").read_text())["figures"]
    assert fix_latency["all_acked"]
    fraud = json.loads((tmp_path / "fraud_quality.json").read_text())["figures"]
    assert len(fraud["files"]) == 9
    assert all(f["labelled"] > 0 for f in fraud["files"])
    throughput = json.loads((tmp_path / "oms_throughput.json").read_text())["stores"]["sqlite"]
    assert throughput["oms_group"]["orders_per_s"]["median"] > 0
    assert throughput["filled_fraction"] > 0.5
    assert len(throughput["oms_group"]["orders_per_s"]["runs"]) == 3


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, ((1, 2), 8_000_000)),
        (["--processes", "4,2", "--ticks", "16000000"], {}, ((1, 2, 4), 16_000_000)),
        ([], {"BOURSE_BENCH_PROCESSES": "8", "BOURSE_BENCH_TICKS": "1000000"}, ((1, 8), 1_000_000)),
    ],
)
def test_ticks_scaling_when_options_given_then_counts_and_size_follow(
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str],
    expected: tuple[tuple[int, ...], int],
) -> None:
    from benchmarks.__main__ import _parse
    from benchmarks.common import Context
    from benchmarks.ticks_scaling import options

    # Arrange
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    args = _parse(["--only", "ticks_scaling", *argv])
    ctx = Context(quick=False, stores=(), runs=1, out_dir=Path("."), log=print,
                  store_pool=None, processes=args.processes, ticks=args.ticks)  # type: ignore[arg-type]  # fmt: skip
    # Act / Assert
    assert options(ctx) == expected


def test_ticks_scaling_when_four_processes_then_every_count_gets_an_even_share() -> None:
    from benchmarks.ticks_scaling import _sizes, balanced_names
    from benchmarks.ticks_throughput import SYMBOLS
    from pipelines.ticks.routing import worker_for

    # Arrange
    sizes = _sizes(False, (1, 2, 4), 16_000_000)
    symbols = tuple(SYMBOLS[k % len(SYMBOLS)] for k in range(sizes["files"]))
    # Act
    names = balanced_names(symbols, 4)
    # Assert: 8 files of 2 M ticks, 2 per process of 4 and 4 per process of 2
    assert (sizes["files"], sizes["rows_per_file"]) == (8, 2_000_000)
    for p in (2, 4):
        owners = [worker_for(f"{name}|{symbol}", p) for name, symbol in names.items()]
        assert sorted(owners.count(k) for k in range(p)) == [8 // p] * p


def test_benchmarks_when_process_counts_are_bad_then_an_argument_error() -> None:
    from benchmarks.__main__ import _parse

    with pytest.raises(SystemExit):
        _parse(["--processes", "0,2"])
    with pytest.raises(SystemExit):
        _parse(["--processes", "two"])


def test_positions_workload_when_applied_by_the_books_then_no_dead_letter_and_lots_close() -> None:
    from benchmarks import positions_workload as wl
    from trading.catalogue import default_catalogue

    # Arrange
    catalogue = default_catalogue()
    work = wl.build(40)
    # Act
    shards, tally = wl.plain_loop(work, wl.shard_context(catalogue, wl.quotes(catalogue)))
    # Assert: every event applied; half of the first CLOSES lots closed; 20 long, 20 short
    assert (work.events, work.fills) == (40 * 14, 40 * 12)
    assert tally.summary()["dead_letters"] == 0
    full = sum(qty for _p, qty in wl.SYMBOLS.values())
    closed = sum(qty // 2 for _p, qty in list(wl.SYMBOLS.values())[: wl.CLOSES])
    assert tally.summary()["long_qty"] == tally.summary()["short_qty"] == 20 * (full - closed)
    books = [b for s in shards.values() for b in s.state.books.values()]
    assert len(books) == 40 and all(b.last_seq == 14 for b in books)


@pytest.mark.parametrize(
    ("argv", "expected"), [([], (1, 2, 4)), (["--processes", "2,8"], (1, 2, 8))]
)
def test_positions_scaling_when_processes_given_then_they_are_measured(
    argv: list[str], expected: tuple[int, ...]
) -> None:
    from benchmarks.__main__ import _parse
    from benchmarks.common import Context
    from benchmarks.positions_scaling import options

    # Arrange
    args = _parse(["--only", "positions_scaling", *argv])
    ctx = Context(quick=False, stores=(), runs=1, out_dir=Path("."), log=print,
                  store_pool=None, processes=args.processes)  # type: ignore[arg-type]  # fmt: skip
    # Act / Assert
    assert options(ctx) == expected


@pytest.mark.slow
def test_bars_when_run_quick_then_the_engines_agree_and_the_views_keep_every_bar(
    tmp_path: Path,
) -> None:
    # Act (the run itself raises when the engines disagree, or a rebuild differs from the
    # bars the views kept)
    code = main(["--quick", "--only", "bars", "--runs", "1", "--out", str(tmp_path)])

    # Assert
    assert code == 0
    data = json.loads((tmp_path / "bars.json").read_text())
    figures = data["figures"]
    assert set(figures["engines_s"]) == {"polars", "duckdb", "chdb"}
    assert all(n > 0 for n in _numbers(figures))
    days = data["params"]["days"] + 1  # the day inserted after the first ones
    assert figures["warehouse_ticks"] == data["params"]["ticks"] + data["params"]["extra_day_ticks"]
    assert figures["bars"] < figures["warehouse_1m_bars"] <= figures["bars"] * days
    assert data["targets"] == {"symbol_day_read_ms": 50, "rebuild_vs_fastest_engine": 2.0}
