"""The reconciliation's warehouse tables: every run of a day, and the breaks it found.

Append-only, so a cluster holds them as it holds the mirror: a day reconciled again adds a
run, and a day's breaks are those of its latest run (``assets.recon.breaks.latest_breaks``);
earlier runs stay as the history of what was found and when.
"""

from __future__ import annotations

from assets.warehouse.ddl import TableSpec, ViewSpec

TABLES: list[TableSpec] = [
    TableSpec(
        name="recon_runs",
        columns=(
            ("trade_date", "Date32"),
            ("run_ns", "Int64"),
            ("breaks", "Int64"),
            ("dropcopy_rows", "Int64"),
            ("settlement_rows", "Int64"),
        ),
        order_by=("trade_date", "run_ns"),
    ),
    TableSpec(
        name="breaks",
        columns=(
            ("trade_date", "Date32"),
            ("run_ns", "Int64"),
            ("kind", "String"),
            ("ref", "String"),
            ("detail", "String"),
            # open: found by the run; the operations desk's resolution is a later run's
            # absence of the break (the source fixed, or the record corrected).
            ("status", "String"),
        ),
        order_by=("trade_date", "run_ns", "kind", "ref"),
    ),
]

VIEWS: list[ViewSpec] = []
