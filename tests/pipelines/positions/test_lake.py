"""Specification of the positions flow's lake snapshots (``docs/lake.md``): Parquet files of
positions, accounts and exposure, written through ``LakeSnapshotSink`` in a real Bytewax
dataflow and read back with Polars."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from bytewax.dataflow import Dataflow
from bytewax.operators import input as bw_input
from bytewax.operators import output as bw_output
from bytewax.testing import TestingSource, run_main

from pipelines.positions.lake import (
    ACCOUNTS_SCHEMA,
    CURRENCY_SCHEMA,
    EXPOSURE_SCHEMA,
    POSITIONS_SCHEMA,
    LakeSnapshotSink,
    Snapshot,
    latest_snapshot,
    latest_snapshot_ns,
    read_table,
    snapshot_path,
    worker_part,
    write_snapshot,
)
from tests.pipelines.positions.rows import T0_NS, account, currency, exposure, position

S1 = T0_NS
S2 = T0_NS + 1_000_000_000


def run_sink(root: Path, snaps: list[Snapshot]) -> None:
    flow = Dataflow("lake_snapshot_test")
    stream = bw_input("in", flow, TestingSource(snaps, batch_size=1))
    bw_output("out", stream, LakeSnapshotSink(root))
    run_main(flow)


def two_part_snapshot(ns: int, qty: int) -> list[Snapshot]:
    """Accounts 1 and 2 on worker 0, account 3 on worker 1, positions of ``qty``."""
    return [
        Snapshot(ns, worker_part(0, 2),
                 positions=(position(1, "EUR/USD", qty), position(2, "US500", -qty)),
                 accounts=(account(1), account(2)), exposure=(exposure("EUR/USD", 5),),
                 currencies=(currency("EUR", "12.5", 13),)),
        Snapshot(ns, worker_part(1, 2), positions=(position(3, "BTC/USD", qty),),
                 accounts=(account(3),)),
    ]  # fmt: skip


def test_latest_snapshot_when_two_snapshots_of_two_parts_then_the_newest_whole(
    tmp_path: Path,
) -> None:
    run_sink(tmp_path, two_part_snapshot(S1, 100) + two_part_snapshot(S2, 300))
    positions, accounts = latest_snapshot(tmp_path)
    assert positions.sort("account_id").select("snapshot_ns", "account_id", "symbol",
                                               "net_qty").rows() == [
        (S2, 1, "EUR/USD", 300), (S2, 2, "US500", -300), (S2, 3, "BTC/USD", 300),
    ]  # fmt: skip
    assert sorted(accounts["account_id"]) == [1, 2, 3]
    assert set(accounts["snapshot_ns"]) == {S2}
    exposure_rows = read_table(tmp_path, "exposure", S2)
    assert exposure_rows.select("symbol", "value").rows() == [("EUR/USD", 5)]
    assert read_table(tmp_path, "exposure_currency", S2)["amount"].to_list() == ["12.5"]


def test_latest_snapshot_when_newest_lacks_a_part_then_the_previous_one(tmp_path: Path) -> None:
    run_sink(tmp_path, two_part_snapshot(S1, 100) + two_part_snapshot(S2, 300)[:1])
    assert latest_snapshot_ns(tmp_path) == S1
    positions, _accounts = latest_snapshot(tmp_path)
    assert set(positions["net_qty"].abs()) == {100}
    assert len(positions) == 3


def test_columns_when_written_then_dtypes_are_the_documented_ones_and_none_is_float(
    tmp_path: Path,
) -> None:
    run_sink(tmp_path, two_part_snapshot(S1, 100))
    files = sorted(tmp_path.rglob("*.parquet"))
    assert len(files) == 8  # four tables, two parts
    schemas = {"positions": POSITIONS_SCHEMA, "accounts": ACCOUNTS_SCHEMA,
               "exposure": EXPOSURE_SCHEMA, "exposure_currency": CURRENCY_SCHEMA}  # fmt: skip
    for f in files:
        schema = pl.read_parquet_schema(f)
        assert schema == dict(schemas[f.relative_to(tmp_path).parts[0]]), f
        assert not [c for c, t in schema.items() if t.is_float()], f
    positions = pl.read_parquet(snapshot_path(tmp_path, "positions", S1, worker_part(0, 2)))
    eur = positions.row(0, named=True)
    assert eur == {
        "snapshot_ns": S1, "account_id": 1, "symbol": "EUR/USD", "net_qty": 100,
        "avg_price": "1.10010", "cost": 11_001_000, "currency": "USD", "margin": 10_000,
        "mark": 110_050, "unrealized": 400, "lots": 2, "ts_ns": T0_NS + 1,
    }  # fmt: skip


def test_accounts_when_other_currencies_held_then_one_row_each_with_account_figures_null(
    tmp_path: Path,
) -> None:
    acc = account(4, None, used_margin=0, other_cash=(("JPY", 500_000), ("EUR", 1_234)),
                  unmarked=("US500",))  # fmt: skip
    write_snapshot(tmp_path, S1, "p0", [], [acc])
    _positions, accounts = latest_snapshot(tmp_path)
    rows = accounts.rows(named=True)
    assert [(r["currency"], r["base"], r["cash"], r["balance"]) for r in rows] == [
        ("USD", True, 900_000, 1_000_000), ("EUR", False, 1_234, 1_234),
        ("JPY", False, 500_000, 500_000),
    ]  # fmt: skip
    base, eur = rows[0], rows[1]
    assert base["margin_level"] is None and base["margin_state"] == "ok"
    assert base["unmarked"] == "US500" and base["equity"] == 1_150_000
    figures = ("used_margin", "withdrawal_pending", "unrealized", "equity", "free_margin",
               "margin_level", "margin_state", "unmarked", "positions")  # fmt: skip
    assert all(eur[f] is None for f in figures)
    assert (eur["account_type"], eur["last_seq"], eur["ts_ns"]) == ("margin", 7, T0_NS)


def test_margin_level_when_written_then_an_exact_decimal_string(tmp_path: Path) -> None:
    write_snapshot(tmp_path, S1, "p0", [], [account(1, "123.456789012345678901")])
    level = latest_snapshot(tmp_path)[1]["margin_level"][0]
    assert Decimal(level) == Decimal("123.456789012345678901")


def test_empty_snapshot_when_written_then_files_with_the_schema_and_no_rows(
    tmp_path: Path,
) -> None:
    assert latest_snapshot_ns(tmp_path) is None
    positions, accounts = latest_snapshot(tmp_path)
    assert positions.is_empty() and positions.schema == POSITIONS_SCHEMA
    assert accounts.is_empty() and accounts.schema == ACCOUNTS_SCHEMA

    write_snapshot(tmp_path, S1, "p0", [position(1)], [account(1)])
    paths = write_snapshot(tmp_path, S2, "p0", [], [])
    assert len(paths) == 4 and all(p.exists() for p in paths)
    assert latest_snapshot_ns(tmp_path) == S2  # "no positions now", not the older snapshot
    positions, accounts = latest_snapshot(tmp_path)
    assert positions.is_empty() and positions.schema == POSITIONS_SCHEMA
    assert accounts.is_empty() and accounts.schema == ACCOUNTS_SCHEMA


def test_snapshot_when_closed_position_given_then_it_is_not_written(tmp_path: Path) -> None:
    unmarked = position(1, "US500", 3, mark=None, unrealized=None)
    write_snapshot(tmp_path, S1, "p0", [position(1, "EUR/USD", 0), unmarked], [])
    positions = latest_snapshot(tmp_path)[0]
    assert positions.select("symbol", "mark", "unrealized").rows() == [("US500", None, None)]
    assert positions.schema == POSITIONS_SCHEMA  # nulls keep the int64 columns


def test_paths_when_near_midnight_then_the_utc_day_of_the_snapshot(tmp_path: Path) -> None:
    before = 1_767_657_599_999_999_999  # 2026-01-05 23:59:59.999999999 UTC
    [pos, *_rest] = write_snapshot(tmp_path, before, "p0", [], [])
    assert pos == tmp_path / "positions" / "date=2026-01-05" / f"snapshot-{before}-p0.parquet"
    [pos, *_rest] = write_snapshot(tmp_path, before + 1, "p0", [], [])
    assert pos.parent.name == "date=2026-01-06"
    assert not list(tmp_path.rglob("*.tmp"))


def test_snapshot_when_written_again_then_the_same_files(tmp_path: Path) -> None:
    snaps = two_part_snapshot(S1, 100)
    run_sink(tmp_path, snaps)
    first = {p: p.read_bytes() for p in tmp_path.rglob("*.parquet")}
    run_sink(tmp_path, snaps)  # a replay after a restart
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.parquet")} == first


@pytest.mark.parametrize("part", ["", "a-b", "x.y", "../up"])
def test_snapshot_when_part_name_unsafe_then_value_error_and_nothing_written(
    tmp_path: Path, part: str
) -> None:
    with pytest.raises(ValueError, match="snapshot part"):
        write_snapshot(tmp_path, S1, part, [position(1)], [account(1)])
    assert not list(tmp_path.rglob("*"))
