"""The yearly tax statement as a PDF beside its CSV, and the year's publication.

``publish_tax`` writes ``<account_id>.csv`` and ``<account_id>.pdf`` for every account that
existed by the year's end (an account that sold nothing gets a statement saying so), then
``manifest.json`` with each account's files, row count and totals.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, Spacer

from assets.statements.csv_out import sha256_of
from assets.statements.manifest import DEFAULT_BROKER, MANIFEST
from assets.statements.pdf import BODY, HEADING, SMALL, build, data_table, header_block
from assets.statements.tax import (
    TaxStatement,
    build_tax_statements,
    tax_rows,
    write_tax_csv,
)
from assets.warehouse.client import Warehouse
from trading.catalogue import Catalogue
from trading.money import format_minor

_NOTE = (
    "Gains and losses are realized per lot, first in first out, exactly as the account's "
    "ledger booked them, in the account currency. Proceeds and cost basis are converted at "
    "the rate each closure was booked at; proceeds less cost basis equals the gain or loss. "
    "Short term: held one year or less. For a short sale the proceeds are those of the "
    "opening sale, the cost basis that of the closing purchase, and both dates are the date "
    "of the closing purchase. Dates are trading days (17:00 New York cut-off)."
)


@dataclass(frozen=True)
class PublishedTax:
    folder: Path
    accounts: int
    lots: int
    csv_s: float
    pdf_s: float


def write_tax_pdf(st: TaxStatement, catalogue: Catalogue, path: Path, broker: str) -> None:
    c = st.currency
    facts = [
        ("Account", str(st.account_id)),
        ("Client", st.client_name or "—"),
        ("Tax year", str(st.year)),
        ("Currency", c),
    ]
    story = header_block(broker, "Tax statement", facts)
    story.append(Paragraph("Realized gains and losses (Form 1099-B)", HEADING))
    gains = sum(x.gain_loss for x in st.lots if x.gain_loss > 0)
    losses = sum(x.gain_loss for x in st.lots if x.gain_loss < 0)
    summary = [
        ["Short-term gain or loss", format_minor(st.total("short"), c)],
        ["Long-term gain or loss", format_minor(st.total("long"), c)],
        ["Total gains", format_minor(gains, c)],
        ["Total losses", format_minor(losses, c)],
        ["Net gain or loss", format_minor(st.total(), c)],
        ["Proceeds", format_minor(sum(x.proceeds for x in st.lots), c)],
        ["Cost basis", format_minor(sum(x.cost_basis for x in st.lots), c)],
    ]
    story.append(data_table(["", c], summary, [60 * mm, 40 * mm], 1))
    story.append(Paragraph("Lot closures", HEADING))
    rows = tax_rows(st, catalogue)
    if rows:
        shown = [[r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[10]] for r in rows]
        widths = [19, 15, 20, 20, 25, 25, 22, 11, 15]
        story.append(
            data_table(
                [
                    "Symbol",
                    "Qty",
                    "Acquired",
                    "Sold",
                    "Proceeds",
                    "Cost basis",
                    "Gain/loss",
                    "Term",
                    "Lot",
                ],
                shown,
                [w * mm for w in widths],
                1,
            )
        )
        story.append(
            Paragraph(f"{len(rows)} lot closures; net {format_minor(st.total(), c)} {c}.", SMALL)
        )
    else:
        story.append(Paragraph("No lots were closed in this tax year.", BODY))
    story.append(Spacer(1, 4 * mm))
    story.append(Paragraph(_NOTE, SMALL))
    build(path, story, broker, f"account {st.account_id}, tax year {st.year}", "Tax statement")


def _entry(st: TaxStatement, folder: Path) -> dict[str, Any]:
    c = st.currency
    files = [f"{st.account_id}.csv", f"{st.account_id}.pdf"]
    return {
        "account_id": st.account_id,
        "currency": c,
        "files": [{"name": n, "sha256": sha256_of(folder / n)} for n in files],
        "rows": len(st.lots),
        "totals": {
            "short_term": format_minor(st.total("short"), c),
            "long_term": format_minor(st.total("long"), c),
            "gain_loss": format_minor(st.total(), c),
        },
    }


def publish_tax(
    wh: Warehouse,
    year: int,
    folder: Path,
    catalogue: Catalogue,
    *,
    broker: str = DEFAULT_BROKER,
) -> PublishedTax:
    statements = build_tax_statements(wh, year, catalogue)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for st in statements:
        write_tax_csv(st, catalogue, folder)
    csv_s = time.perf_counter() - started
    started = time.perf_counter()
    for st in statements:
        write_tax_pdf(st, catalogue, folder / f"{st.account_id}.pdf", broker)
    pdf_s = time.perf_counter() - started
    manifest = {
        "year": year,
        "broker": broker,
        "accounts": [_entry(st, folder) for st in statements],
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    lots = sum(len(st.lots) for st in statements)
    return PublishedTax(folder, len(statements), lots, csv_s, pdf_s)
