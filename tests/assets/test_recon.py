"""The daily reconciliation over two real trading days: clean, then each break injected
(into the venue's drop copy, the provider's settlement file or the warehouse's ledger) and
found, alone."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from assets.days import Period
from assets.recon.breaks import CSV_COLUMNS, Break, BreakKind, latest_breaks
from assets.recon.day import Reconciliation, build_reconciliation
from assets.warehouse.client import Warehouse
from tests.assets.recon_builders import DAY1, DAY2, build_days, copy_home, extract
from trading.catalogue import default_catalogue
from trading.funding_settlement import settlement_path
from trading.venues.dropcopy import dropcopy_dir, dropcopy_path

K = BreakKind


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("recon") / "home"
    build_days(home)
    extract(home)
    return home


@pytest.fixture
def home(built: Path, tmp_path: Path) -> Path:
    return copy_home(built, tmp_path / "home")


@pytest.fixture
def wh(home: Path) -> Iterator[Warehouse]:
    with Warehouse(f"chdb://{home}/warehouse") as w:
        w.ensure_schema()
        yield w


def run(wh: Warehouse, home: Path, day: dt.date = DAY1) -> Reconciliation:
    return build_reconciliation(wh, Period.day(day), home, home / "reports", default_catalogue())


def kinds(result: Reconciliation) -> list[tuple[str, str]]:
    return sorted((b.kind.value, b.ref) for b in result.breaks)


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


def _write(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _edit(path: Path, key: str, column: str, value: str) -> None:
    """Set ``column`` of the row whose first field is ``key``."""
    rows = _rows(path)
    at = rows[0].index(column)
    hits = [r for r in rows[1:] if r[0] == key]
    assert len(hits) == 1, f"{key} not once in {path}"
    hits[0][at] = value
    _write(path, rows)


def copy1(home: Path) -> Path:
    return dropcopy_path(dropcopy_dir(home), DAY1.isoformat())


# -- clean days ---------------------------------------------------------------------------------


def test_reconciliation_when_days_are_clean_then_no_break_and_an_empty_csv(
    home: Path, wh: Warehouse
) -> None:
    for day in (DAY1, DAY2):
        result = run(wh, home, day)

        assert result.breaks == []
        assert _rows(home / "reports" / day.isoformat() / "reconciliation" / "breaks.csv") == [
            list(CSV_COLUMNS)
        ]
        assert latest_breaks(wh, day) == []
        lines = _rows(dropcopy_path(dropcopy_dir(home), day.isoformat()))
        assert result.dropcopy_rows == len(lines) - 1 > 0
        assert result.settlement_rows == len(_rows(settlement_path(home, day))) - 1 > 0
    assert wh.scalar("SELECT count() FROM recon_runs WHERE breaks = 0") == 2


def test_reconciliation_when_a_day_has_no_activity_and_no_file_then_no_break(
    home: Path, wh: Warehouse
) -> None:
    saturday = dt.date(2026, 1, 10)

    result = run(wh, home, saturday)

    assert result.breaks == [] and result.dropcopy_rows == 0


def test_dropcopy_when_decimals_are_written_otherwise_then_values_still_match(
    home: Path, wh: Warehouse
) -> None:
    _edit(copy1(home), "F1-200", "price", "1.1001300")
    _edit(copy1(home), "F1-200", "qty", "2")

    assert run(wh, home).breaks == []


# -- the venue's drop copy ----------------------------------------------------------------------


def test_dropcopy_when_a_price_is_edited_then_price_mismatch(home: Path, wh: Warehouse) -> None:
    _edit(copy1(home), "F1-200", "price", "1.10014")

    result = run(wh, home)

    assert kinds(result) == [("price_mismatch", "F1-200")]
    assert "1.10014" in result.breaks[0].detail and "1.10013" in result.breaks[0].detail


def test_dropcopy_when_a_qty_is_edited_then_qty_mismatch(home: Path, wh: Warehouse) -> None:
    _edit(copy1(home), "F5-300", "qty", "2.00")

    assert kinds(run(wh, home)) == [("qty_mismatch", "F5-300")]


def test_dropcopy_when_a_fill_row_is_deleted_then_extra(home: Path, wh: Warehouse) -> None:
    rows = _rows(copy1(home))
    _write(copy1(home), [r for r in rows if r[0] != "F3-100"])

    assert kinds(run(wh, home)) == [("extra", "F3-100")]


def test_dropcopy_when_an_exec_id_is_duplicated_then_duplicate_exec_id(
    home: Path, wh: Warehouse
) -> None:
    rows = _rows(copy1(home))
    _write(copy1(home), [*rows, next(r for r in rows if r[0] == "F2-100")])

    assert kinds(run(wh, home)) == [("duplicate_exec_id", "F2-100")]


def test_dropcopy_when_the_venue_reports_a_fill_not_stored_then_missing(
    home: Path, wh: Warehouse
) -> None:
    rows = _rows(copy1(home))
    fill = next(r for r in rows if r[0] == "F2-100")
    _write(copy1(home), [*rows, ["F2-999", *fill[1:]]])

    assert kinds(run(wh, home)) == [("missing", "F2-999")]


def test_dropcopy_when_the_account_differs_then_field_mismatch(home: Path, wh: Warehouse) -> None:
    _edit(copy1(home), "F4-100", "account_id", "2")

    result = run(wh, home)

    assert kinds(result) == [("field_mismatch", "F4-100")]
    assert "account_id venue 2 stored 1" in result.breaks[0].detail


def test_dropcopy_when_the_file_is_missing_on_a_day_with_fills_then_file_missing_only(
    home: Path, wh: Warehouse
) -> None:
    copy1(home).unlink()

    result = run(wh, home)

    assert kinds(result) == [("file_missing", str(copy1(home)))]
    assert "5 fill(s)" in result.breaks[0].detail  # b1, s1, g1, c1, f1


def test_dropcopy_when_a_row_is_malformed_then_file_invalid_and_its_fill_unmatched(
    home: Path, wh: Warehouse
) -> None:
    _edit(copy1(home), "F3-100", "price", "2000.6O")  # a letter O
    _edit(copy1(home), "A6", "kind", "acepted")  # not a report kind: not silently skipped

    result = run(wh, home)

    assert kinds(result) == [("extra", "F3-100"), ("file_invalid", str(copy1(home)))]
    lines = [n for n, row in enumerate(_rows(copy1(home)), start=1) if row[0] in ("F3-100", "A6")]
    invalid = next(b for b in result.breaks if b.kind is K.FILE_INVALID)
    assert invalid.detail == f"2 malformed row(s), lines {lines[0]}, {lines[1]}"


def test_dropcopy_when_the_header_is_wrong_then_file_invalid(home: Path, wh: Warehouse) -> None:
    rows = _rows(copy1(home))
    _write(copy1(home), [["exec", *rows[0][1:]], *rows[1:]])

    result = run(wh, home)

    assert ("file_invalid", str(copy1(home))) in kinds(result)
    assert {b.kind for b in result.breaks} == {K.FILE_INVALID, K.EXTRA}


# -- the provider's settlement file -------------------------------------------------------------


def test_settlement_when_a_row_is_added_then_settlement_extra(home: Path, wh: Warehouse) -> None:
    path = settlement_path(home, DAY1)
    rows = _rows(path)
    _write(path, [*rows, ["pay-77", "deposit", "1", "USD", "20.00", "2026-01-05T10:00:00Z"]])

    assert kinds(run(wh, home)) == [("settlement_extra", "pay-77")]


def test_settlement_when_an_amount_changes_then_amount_mismatch(home: Path, wh: Warehouse) -> None:
    _edit(settlement_path(home, DAY1), "pay-1", "amount", "100000.01")

    result = run(wh, home)

    assert kinds(result) == [("amount_mismatch", "pay-1")]
    assert "100000.01 USD" in result.breaks[0].detail and "100000.00 USD" in result.breaks[0].detail


def test_settlement_when_a_payout_is_not_in_the_file_then_settlement_missing(
    home: Path, wh: Warehouse
) -> None:
    path = settlement_path(home, DAY2)
    _write(path, [r for r in _rows(path) if r[0] != "withdrawal:3"])

    assert kinds(run(wh, home, DAY2)) == [("settlement_missing", "withdrawal:3")]


def test_settlement_when_a_row_is_repeated_then_settlement_extra(home: Path, wh: Warehouse) -> None:
    path = settlement_path(home, DAY1)
    rows = _rows(path)
    _write(path, [*rows, rows[1]])

    result = run(wh, home)

    assert kinds(result) == [("settlement_extra", rows[1][0])]
    assert "settled twice" in result.breaks[0].detail


def test_settlement_when_the_file_is_missing_then_file_missing(home: Path, wh: Warehouse) -> None:
    settlement_path(home, DAY2).unlink()

    assert kinds(run(wh, home, DAY2)) == [("file_missing", str(settlement_path(home, DAY2)))]


# -- the ledger ---------------------------------------------------------------------------------


def _delete(wh: Warehouse, table: str, where: str) -> int:
    before = int(wh.scalar(f"SELECT count() FROM {table}"))
    wh.command(f"DELETE FROM {table} WHERE {where}")
    gone = before - int(wh.scalar(f"SELECT count() FROM {table}"))
    assert gone > 0, f"nothing deleted from {table} where {where}"
    return gone


def test_ledger_when_a_posting_is_dropped_then_trial_balance_and_cash_mismatch(
    home: Path, wh: Warehouse
) -> None:
    # The client side of deposit pay-1: its transaction no longer balances, nor does USD.
    txn = wh.scalar("SELECT txn_id FROM deposits WHERE provider_ref = 'pay-1'")
    _delete(wh, "postings", f"txn_id = {txn} AND amount < 0")

    result = run(wh, home)

    assert kinds(result) == [
        ("cash_mismatch", "account:1:USD"),
        ("trial_balance", "commodity:USD"),
        ("trial_balance", f"txn:{txn}"),
    ]


def test_ledger_when_a_transaction_row_is_dropped_then_settlement_extra_and_trial_balance(
    home: Path, wh: Warehouse
) -> None:
    txn = wh.scalar("SELECT txn_id FROM deposits WHERE provider_ref = 'pay-1'")
    postings = [r[0] for r in wh.rows(f"SELECT posting_id FROM postings WHERE txn_id = {txn}")]
    _delete(wh, "ledger_txns", f"txn_id = {txn}")

    result = run(wh, home)

    assert kinds(result) == sorted(
        [("settlement_extra", "pay-1")] + [("trial_balance", f"posting:{p}") for p in postings]
    )


def test_ledger_when_a_lot_closure_is_dropped_then_position_and_cash_mismatch(
    home: Path, wh: Warehouse
) -> None:
    _delete(wh, "lot_closures", "close_exec_id = 'F4-100'")  # account 1 sold 1 of its 2 EUR/USD

    result = run(wh, home)

    assert kinds(result) == [("cash_mismatch", "account:1:USD"),
                             ("position_mismatch", "account:1:EURUSD")]  # fmt: skip
    position = next(b for b in result.breaks if b.kind is K.POSITION_MISMATCH)
    assert "hold 200 lot steps, the ledger's position account 100" in position.detail


def test_ledger_when_financing_is_dropped_then_cash_mismatch_from_the_day_it_was_posted(
    home: Path, wh: Warehouse
) -> None:
    _delete(wh, "financing", "account_id = 2")

    assert run(wh, home, DAY1).breaks == []  # posted after Monday's cut-off
    assert kinds(run(wh, home, DAY2)) == [("cash_mismatch", "account:2:USD")]


# -- runs -----------------------------------------------------------------------------------------


def test_reconciliation_when_run_again_after_a_fix_then_the_latest_run_is_the_days(
    home: Path, wh: Warehouse
) -> None:
    path = settlement_path(home, DAY1)
    original = path.read_bytes()
    _edit(path, "pay-1", "amount", "1.00")
    first = run(wh, home)
    path.write_bytes(original)

    second = run(wh, home)

    assert [b.kind for b in first.breaks] == [K.AMOUNT_MISMATCH]
    assert second.breaks == [] and latest_breaks(wh, DAY1) == []
    stored = wh.rows("SELECT kind, ref, status FROM breaks WHERE trade_date = '2026-01-05'")
    assert [tuple(r) for r in stored] == [("amount_mismatch", "pay-1", "open")]
    assert first.breaks == [Break(K.AMOUNT_MISMATCH, "pay-1", first.breaks[0].detail)]


# -- end to end -----------------------------------------------------------------------------------


def test_reconciliation_when_bourse_simulate_wrote_the_day_then_it_is_clean(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from serving.cli import app

    home = tmp_path / "sim"
    done = CliRunner().invoke(app, ["simulate", "--home", str(home), "--accounts", "6",
                                    "--orders", "300", "--seed", "4"])  # fmt: skip
    assert done.exit_code == 0, done.output
    copies = sorted(p.stem for p in dropcopy_dir(home).glob("*.csv"))
    assert copies and settlement_path(home, dt.date.fromisoformat(copies[0])).exists()
    extract(home)

    with Warehouse(f"chdb://{home}/warehouse") as w:
        results = [run(w, home, dt.date.fromisoformat(day)) for day in copies]

    assert [r.breaks for r in results] == [[]] * len(copies)
    assert sum(r.dropcopy_rows for r in results) > 300  # an acknowledgement per order at least
    assert results[0].settlement_rows >= 6  # every account's first deposit
