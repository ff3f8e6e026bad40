"""Publishing a period's statements: every account's CSV files and PDF, then the manifest.

``statements/manifest.json`` is written last, so a reader that finds it finds every file it
lists; it names each account's files with their sha256 and row counts, and the account's
totals per currency (the summary's figures as decimal strings).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assets.days import Period
from assets.statements.compute import Statement, build_statements
from assets.statements.csv_out import (
    SUMMARY_COLUMNS,
    WrittenFile,
    sha256_of,
    summary_rows,
    write_csvs,
)
from assets.statements.pdf import write_statement_pdf
from assets.statements.trades_csv import trade_lines
from assets.warehouse.client import Warehouse
from trading.catalogue import Catalogue

MANIFEST = "manifest.json"
DEFAULT_BROKER = "Bourse"


@dataclass(frozen=True)
class Published:
    folder: Path
    accounts: int
    trades: int
    csv_files: int
    pdf_files: int
    query_s: float
    csv_s: float
    pdf_s: float

    @property
    def pdfs_per_s(self) -> float:
        return self.pdf_files / self.pdf_s if self.pdf_s > 0 else 0.0


def daily_dir(reports: Path, period: Period) -> Path:
    return reports / period.last.isoformat() / "statements"


def monthly_dir(reports: Path, period: Period) -> Path:
    return reports / "monthly" / f"{period.first:%Y-%m}" / "statements"


def _entry(st: Statement, files: list[WrittenFile]) -> dict[str, Any]:
    totals = {
        row[0]: dict(zip(SUMMARY_COLUMNS[1:], row[1:], strict=True)) for row in summary_rows(st)
    }
    return {
        "account_id": st.account_id,
        "currency": st.currency,
        "client_name": st.client_name,
        "files": [{"name": f.name, "sha256": f.sha256, "rows": f.rows} for f in files],
        "totals": totals,
        "other_movements": {s.currency: dict(s.other) for s in st.summaries if s.other},
        "unmarked_symbols": list(st.unmarked),
    }


def publish_statements(
    wh: Warehouse,
    period: Period,
    folder: Path,
    catalogue: Catalogue,
    *,
    broker: str = DEFAULT_BROKER,
    pdf: bool = True,
) -> Published:
    """Every account's statement for ``period`` under ``folder/<account_id>/``, and the
    manifest. No account: an empty manifest, not an error."""
    started = time.perf_counter()
    # The PDFs list the trades; the CSV files alone take them formatted by the warehouse.
    statements = build_statements(wh, period, catalogue, with_trades=pdf)
    lines = trade_lines(wh, period, catalogue)
    query_s = time.perf_counter() - started
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[int, list[WrittenFile]] = {}
    started = time.perf_counter()
    for st in statements:
        trades = lines.get(st.account_id, ("", 0))
        written[st.account_id] = write_csvs(st, catalogue, folder / str(st.account_id), trades)
    csv_s = time.perf_counter() - started
    started = time.perf_counter()
    if pdf:
        for st in statements:
            path = folder / str(st.account_id) / "statement.pdf"
            write_statement_pdf(st, catalogue, path, broker)
            written[st.account_id].append(WrittenFile(path.name, sha256_of(path), 0))
    pdf_s = time.perf_counter() - started
    manifest = {
        "period": {
            "first": period.first.isoformat(),
            "last": period.last.isoformat(),
            "start_ns": period.start_ns,
            "end_ns": period.end_ns,
        },
        "broker": broker,
        "accounts": [_entry(st, written[st.account_id]) for st in statements],
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return Published(
        folder,
        len(statements),
        sum(n for _, n in lines.values()),
        3 * len(statements),
        len(statements) if pdf else 0,
        query_s,
        csv_s,
        pdf_s,
    )
